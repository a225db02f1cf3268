"""A residual 1D CNN for time series: channels [N, T, C] → one value per sample [N, T].

The time-series counterpart of ResNet3D-18 here (`resnet3d.py`): a stem convolution, stages of
BasicBlocks (conv → BN → ReLU → conv → BN, + the input, → ReLU), and a projection of each
sample's features to one value — the feature signal SimPer reads. Time is never strided, so
the output has one value per input sample and any window length works; the receptive field
grows with depth (`kernel` − 1 samples per convolution, doubled by `dilation_growth` per
stage), which is what lets a deep stack see a whole cycle of a slow rhythm.

Time series travel through the pipeline as clips [T, 1, 1, C] (a video of 1×1 frames, so the
loop, the views and the readouts need nothing new); the model accepts those [N, T, 1, 1, C]
and plain [N, T, C] alike.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

_KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class BasicBlock1D(nn.Module):
  """conv(k) → BN → ReLU → conv(k) → BN, + shortcut (1×1 conv + BN where the width changes),
  → ReLU, on [N, T, C]; dilated by `dilation`, 'SAME' padding so T is kept."""
  width: int
  kernel: int
  dilation: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv = lambda width, kernel, dilation: nn.Conv(
        width, (kernel,), kernel_dilation=(dilation,), padding="SAME", use_bias=False,
        kernel_init=_KAIMING_FAN_OUT, dtype=self.dtype)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                dtype=self.dtype)
    y = nn.relu(norm()(conv(self.width, self.kernel, self.dilation)(x)))
    y = norm()(conv(self.width, self.kernel, self.dilation)(y))
    if x.shape[-1] != self.width:
      x = norm()(conv(self.width, 1, 1)(x))
    return nn.relu(x + y)


class Model(nn.Module):
  """Residual 1D CNN: series [N, T, C] (or clips [N, T, 1, 1, C]) → feature signals [N, T].

  Attributes:
    widths: channels of each stage; the stem has widths[0].
    blocks: BasicBlocks per stage.
    kernel: convolution length along time, samples (odd).
    dilation_growth: each stage's dilation is this times the previous one's (1 = none).
    dtype: compute dtype name, "float32" or "bfloat16" (parameters stay float32).
  """
  widths: Sequence[int] = (32, 64, 64)
  blocks: Sequence[int] = (2, 2, 2)
  kernel: int = 7
  dilation_growth: int = 2
  dtype: str = "float32"

  @nn.compact
  def __call__(self, series: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    if series.ndim == 5:
      if series.shape[2:4] != (1, 1):
        raise ValueError(f"conv1d reads time series: clips [N, T, 1, 1, C] or [N, T, C], got "
                         f"shape {series.shape} (a video? use featurizer3d or resnet3d18).")
      series = series[:, :, 0, 0, :]
    if series.ndim != 3:
      raise ValueError(f"conv1d expects series [N, T, C], got shape {series.shape}.")
    if len(self.widths) != len(self.blocks):
      raise ValueError(f"conv1d: widths {self.widths} and blocks {self.blocks} must have one "
                       f"entry per stage.")
    dtype = jnp.dtype(self.dtype)
    x = nn.Conv(self.widths[0], (self.kernel,), padding="SAME", use_bias=False,
                kernel_init=_KAIMING_FAN_OUT, dtype=dtype, name="stem_conv")(series.astype(dtype))
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=dtype, name="stem_bn")(x))
    dilation = 1
    for stage, (width, num_blocks) in enumerate(zip(self.widths, self.blocks), 1):
      for block in range(num_blocks):
        x = BasicBlock1D(width, self.kernel, dilation, dtype,
                         name=f"stage{stage}_block{block + 1}")(x, train)
      dilation *= self.dilation_growth
    signal = nn.Dense(1, dtype=dtype, name="projection")(x)[..., 0]
    return signal.astype(jnp.float32)
