"""The SimPer paper's 3D-CNN featurizer: video -> one scalar per frame (docs/method.md §3)."""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

CONV_IMPLS = ("auto", "xla", "im2col")


# The model runs in a time-minor layout, [N, H, W, T, C]. On CPU each convolution is a spatial
# im2col and a 1D convolution over T of N·H·W sequences, and in this layout the im2col's
# columns already are those sequences (a reshape), where [N, T, H, W, C] needed a transpose of
# the step's largest tensor and another of the output (with their gradients ~1.6 s of a 17 s
# batch-4 step on 2 CPU cores). Accelerators get the same logical layout through the
# convolution's dimension numbers and pick their own physical layout.
TIME_MINOR = (0, 2, 3, 1, 4)  # [N, T, H, W, C] -> [N, H, W, T, C]


def spatial_max_pool(x: jnp.ndarray) -> jnp.ndarray:
  """2×2 max-pool over H and W of time-minor [N, H, W, T, C] (VALID: an odd last row/column
  is dropped).

  The values of `nn.max_pool` with window and strides (2, 2) over H and W, written as the
  maximum of the four strided corners: their gradient is a few selects that XLA fuses, where
  XLA's generic pooling gradient (select-and-scatter) and a reshape-and-max are several times
  slower on CPU. On the paper's first pool (benchmarks/step_profile.py, "max-pool 0", forward
  and backward, 2 CPU cores): 107 ms, against 312 ms for the reshape-and-max.
  """
  n, h, w, t, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  top = jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2])
  bottom = jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2])
  return jnp.maximum(top, bottom)


def _same(k: int) -> tuple[int, int]:
  """lax's SAME padding of a stride-1 window of k."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def conv3d_im2col(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """A stride-1, SAME-padded 3D convolution as a spatial im2col and a 1D convolution in time.

  Time-minor [N, H, W, T, Cin] with kernel [kt, kh, kw, Cin, Cout] -> [N, H, W, T, Cout], the
  values of `conv3d_xla`. The kh·kw shifted copies of the input become channels, and the
  remaining kt-tap convolution over time runs on kh·kw·Cin input channels. On CPU, XLA's 1D
  convolution with that many channels (and its gradients) runs about 1.9× faster than its 3D
  convolution on the paper's 64→128 layer (benchmarks/step_profile.py); on accelerators cuDNN's
  and the TPU's 3D convolutions are the better choice, so `Conv3D` uses this on CPU only.
  """
  kt, kh, kw, cin, cout = kernel.shape
  n, h, w, t, _ = x.shape
  padded = jnp.pad(x, ((0, 0), _same(kh), _same(kw), (0, 0), (0, 0)))
  cols = jnp.concatenate([padded[:, i:i + h, j:j + w] for i in range(kh) for j in range(kw)],
                         axis=-1)  # [N, H, W, T, kh·kw·Cin], (i, j, c) order as the kernel's
  out = jax.lax.conv_general_dilated(cols.reshape(n * h * w, t, kh * kw * cin),
                                     kernel.reshape(kt, kh * kw * cin, cout), (1,),
                                     [_same(kt)], dimension_numbers=("NWC", "WIO", "NWC"))
  return out.reshape(n, h, w, t, cout)


def conv3d_xla(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """XLA's stride-1, SAME 3D convolution of time-minor [N, H, W, T, Cin] with a
  [kt, kh, kw, Cin, Cout] kernel -> [N, H, W, T, Cout]."""
  # (batch, feature, spatial dims in the kernel's order: T, H, W) for input and output.
  time_minor = (0, 4, 3, 1, 2)
  numbers = jax.lax.ConvDimensionNumbers(time_minor, (4, 3, 0, 1, 2), time_minor)
  return jax.lax.conv_general_dilated(x, kernel, (1, 1, 1), "SAME", dimension_numbers=numbers)


class Conv3D(nn.Module):
  """`nn.Conv(features, kernel_size, padding="SAME")` on time-minor [N, H, W, T, C], with the
  same parameters (kernel [kt, kh, kw, Cin, Cout], bias) and initializers as nn.Conv on
  [N, T, H, W, C], computed by `conv3d_xla` or `conv3d_im2col`.

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
    conv = conv3d_im2col if impl == "im2col" else conv3d_xla
    return conv(x, kernel) + bias


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
    x = jnp.transpose(video.astype(dtype), TIME_MINOR)  # see TIME_MINOR
    for i, width in enumerate(self.widths):
      # Named as nn.Conv would be, so checkpoints of either implementation load in the other.
      x = Conv3D(width, (self.temporal_kernel, 3, 3), dtype=dtype, impl=self.conv_impl,
                 name=f"Conv_{i}")(x)
      x = nn.relu(norm()(x))
      x = spatial_max_pool(x)
    # A 1×1×1 kernel is the same in either layout.
    x = nn.Conv(1, (1, 1, 1), dtype=dtype, name=f"Conv_{len(self.widths)}")(x)
    x = nn.relu(norm()(x))
    return jnp.mean(x, axis=(1, 2, 4)).astype(jnp.float32)
