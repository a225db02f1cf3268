"""The SimPer paper's 3D-CNN featurizer: video -> one scalar per frame (docs/method.md §3)."""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

CONV_IMPLS = ("auto", "xla", "im2col")


def spatial_max_pool(x: jnp.ndarray) -> jnp.ndarray:
  """2×2 max-pool over H and W of [N, L, H, W, C] (VALID: an odd last row/column is dropped).

  The same values as `nn.max_pool(x, (1, 2, 2), strides=(1, 2, 2))`, written as a reshape and
  a max because XLA's generic pooling gradient (select-and-scatter) is several times slower
  on CPU, and no faster elsewhere.
  """
  n, length, h, w, c = x.shape
  x = x[:, :, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, length, h // 2, 2, w // 2, 2, c).max(axis=(3, 5))


def conv3d_im2col(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """A stride-1, SAME-padded 3D convolution as a spatial im2col and a 1D convolution in time.

  [N, T, H, W, Cin] with kernel [kt, kh, kw, Cin, Cout] -> [N, T, H, W, Cout], the values of
  `lax.conv_general_dilated(..., "SAME")`. The kh·kw shifted copies of the input become
  channels, and the remaining kt-tap convolution over time runs on kh·kw·Cin input channels.
  On CPU, XLA's 1D convolution with that many channels (and its gradients) runs about 1.9×
  faster than its 3D convolution on the paper's 64→128 layer (benchmarks/step_profile.py); on
  accelerators cuDNN's and the TPU's 3D convolutions are the better choice, so `Conv3D` uses
  this on CPU only.
  """
  kt, kh, kw, cin, cout = kernel.shape
  n, t, h, w, _ = x.shape
  same = lambda k: ((k - 1) // 2, k - 1 - (k - 1) // 2)  # lax's SAME padding at stride 1
  padded = jnp.pad(x, ((0, 0), (0, 0), same(kh), same(kw), (0, 0)))
  cols = jnp.concatenate([padded[:, :, i:i + h, j:j + w] for i in range(kh) for j in range(kw)],
                         axis=-1)  # [N, T, H, W, kh·kw·Cin], (i, j, c) order as the kernel's
  sequences = jnp.transpose(cols, (0, 2, 3, 1, 4)).reshape(n * h * w, t, kh * kw * cin)
  out = jax.lax.conv_general_dilated(sequences, kernel.reshape(kt, kh * kw * cin, cout), (1,),
                                     [same(kt)], dimension_numbers=("NWC", "WIO", "NWC"))
  return jnp.transpose(out.reshape(n, h, w, t, cout), (0, 3, 1, 2, 4))


class Conv3D(nn.Module):
  """`nn.Conv(features, kernel_size, padding="SAME")` on [N, T, H, W, C], with the same
  parameters (kernel [kt, kh, kw, Cin, Cout], bias) and initializers, computed by XLA's 3D
  convolution or by `conv3d_im2col`.

  Attributes:
    impl: "auto" (im2col on CPU, XLA's convolution elsewhere), "xla" or "im2col".
  """
  features: int
  kernel_size: Sequence[int]
  dtype: Any = jnp.float32
  impl: str = "auto"

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    if self.impl not in CONV_IMPLS:
      raise ValueError(f"Unknown conv impl {self.impl!r}; expected one of {CONV_IMPLS}.")
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    impl = self.impl
    if impl == "auto":
      impl = "im2col" if jax.default_backend() == "cpu" else "xla"
    if impl == "im2col":
      y = conv3d_im2col(x, kernel)
    else:
      y = jax.lax.conv_general_dilated(x, kernel, (1, 1, 1), "SAME",
                                       dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    return y + bias


class Model(nn.Module):
  """Conv3D blocks that pool space only, so the output keeps every frame.

  Each block is Conv3D(k_t×3×3, same) → BatchNorm → ReLU → 2×2 spatial max-pool; a 1×1×1
  conv to one channel → BatchNorm → ReLU → spatial mean gives the feature signal. With
  widths (64, 128) and k_t = 5 this is the reference featurizer's layer stack.

  Attributes:
    widths: output channels of each block.
    temporal_kernel: kernel length along time.
    dtype: compute dtype name, "float32" or "bfloat16" (parameters stay float32).
    conv_impl: how the k_t×3×3 convolutions are computed: "auto" (`conv3d_im2col` on CPU,
      XLA's 3D convolution on accelerators), "xla" or "im2col"; the same parameters and, to
      float rounding, the same values either way.
  """
  widths: Sequence[int] = (64, 128)
  temporal_kernel: int = 5
  dtype: str = "float32"
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """[N, L, H, W, C] in [0, 1] -> feature signals [N, L] (float32)."""
    if video.ndim != 5:
      raise ValueError(f"featurizer3d expects video [N, L, H, W, C], got shape {video.shape}.")
    dtype = jnp.dtype(self.dtype)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                                dtype=dtype)  # Keras BatchNormalization defaults
    x = video.astype(dtype)
    for i, width in enumerate(self.widths):
      # Named as nn.Conv would be, so checkpoints of either implementation load in the other.
      x = Conv3D(width, (self.temporal_kernel, 3, 3), dtype=dtype, impl=self.conv_impl,
                 name=f"Conv_{i}")(x)
      x = nn.relu(norm()(x))
      x = spatial_max_pool(x)
    x = nn.Conv(1, (1, 1, 1), dtype=dtype, name=f"Conv_{len(self.widths)}")(x)
    x = nn.relu(norm()(x))
    return jnp.mean(x, axis=(2, 3, 4)).astype(jnp.float32)
