"""The SimPer paper's 3D-CNN featurizer: video -> one scalar per frame (docs/method.md §3)."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def spatial_max_pool(x: jnp.ndarray) -> jnp.ndarray:
  """2×2 max-pool over H and W of [N, L, H, W, C] (VALID: an odd last row/column is dropped).

  The same values as `nn.max_pool(x, (1, 2, 2), strides=(1, 2, 2))`, written as a reshape and
  a max because XLA's generic pooling gradient (select-and-scatter) is several times slower
  on CPU, and no faster elsewhere.
  """
  n, length, h, w, c = x.shape
  x = x[:, :, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, length, h // 2, 2, w // 2, 2, c).max(axis=(3, 5))


class Model(nn.Module):
  """Conv3D blocks that pool space only, so the output keeps every frame.

  Each block is Conv3D(k_t×3×3, same) → BatchNorm → ReLU → 2×2 spatial max-pool; a 1×1×1
  conv to one channel → BatchNorm → ReLU → spatial mean gives the feature signal. With
  widths (64, 128) and k_t = 5 this is the reference featurizer's layer stack.

  Attributes:
    widths: output channels of each block.
    temporal_kernel: kernel length along time.
    dtype: compute dtype name, "float32" or "bfloat16" (parameters stay float32).
  """
  widths: Sequence[int] = (64, 128)
  temporal_kernel: int = 5
  dtype: str = "float32"

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """[N, L, H, W, C] in [0, 1] -> feature signals [N, L] (float32)."""
    if video.ndim != 5:
      raise ValueError(f"featurizer3d expects video [N, L, H, W, C], got shape {video.shape}.")
    dtype = jnp.dtype(self.dtype)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                                dtype=dtype)  # Keras BatchNormalization defaults
    x = video.astype(dtype)
    for width in self.widths:
      x = nn.Conv(width, (self.temporal_kernel, 3, 3), padding="SAME", dtype=dtype)(x)
      x = nn.relu(norm()(x))
      x = spatial_max_pool(x)
    x = nn.Conv(1, (1, 1, 1), dtype=dtype)(x)
    x = nn.relu(norm()(x))
    return jnp.mean(x, axis=(2, 3, 4)).astype(jnp.float32)
