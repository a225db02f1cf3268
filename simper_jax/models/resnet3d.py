"""ResNet3D-18 (Tran et al. 2018, "A closer look at spatiotemporal convolutions"), the backbone
SimPer uses for Countix and LST, written layer for layer after torchvision's `r3d_18`.

torchvision's network, on [N, C, T, H, W]:
  stem    Conv3d C→64, kernel (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3), no bias → BN → ReLU
          (no max-pool)
  stages  four stages of two BasicBlocks, widths 64/128/256/512, strides 1/2/2/2 on time *and*
          space; a BasicBlock is conv3×3×3 (stride) → BN → ReLU → conv3×3×3 → BN, plus the
          input (through a 1×1×1 conv (stride) + BN where the shape changes), → ReLU
  head    global average pool over (T, H, W) → Dense(400)
  init    convs kaiming normal (fan_out, ReLU gain), BN γ = 1, β = 0.

**The one change** SimPer's per-frame feature signal needs: time is never strided (stages 2–4
stride (1, 2, 2)) and the head pools space only, then a 1×1 projection (a Dense from the last
width to 1) gives one value per frame: [N, T, H, W, C] → [N, T]. The convolutions, their
parameters and their count are torchvision's; only the strides along time and the head differ
(so the 400-way classifier's 205,200 parameters are replaced by the projection's 513).

The stem padding (1, 3, 3) and the 3×3×3 convs' padding 1 are written out, not "SAME": with
stride 2 and an even input, SAME pads (2, 3) where PyTorch pads (3, 3), and the outputs would
differ from torchvision's by a pixel shift.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

# torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu"): an untruncated normal of
# variance 2 / (out channels × kernel volume).
_KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
STAGE_STRIDES = ((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2))  # torchvision: 1, 2, 2, 2 in time too


class BasicBlock(nn.Module):
  """conv3×3×3 → BN → ReLU → conv3×3×3 → BN, + shortcut, → ReLU, on [N, T, H, W, C]."""
  width: int
  strides: tuple[int, int, int]
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv = lambda width, kernel, strides, padding: nn.Conv(
        width, kernel, strides, padding=padding, use_bias=False, kernel_init=_KAIMING_FAN_OUT,
        dtype=self.dtype)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                dtype=self.dtype)  # torchvision's BatchNorm3d defaults
    y = conv(self.width, (3, 3, 3), self.strides, ((1, 1),) * 3)(x)
    y = nn.relu(norm()(y))
    y = conv(self.width, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3)(y)
    y = norm()(y)
    if self.strides != (1, 1, 1) or x.shape[-1] != self.width:
      x = norm()(conv(self.width, (1, 1, 1), self.strides, "VALID")(x))
    return nn.relu(x + y)


class Model(nn.Module):
  """ResNet3D-18 with time kept: video [N, T, H, W, C] in [0, 1] → feature signals [N, T].

  Attributes:
    widths: the four stages' channels (torchvision: 64, 128, 256, 512); the stem has widths[0].
    blocks: BasicBlocks per stage (ResNet-18: 2 each).
    dtype: compute dtype name, "float32" or "bfloat16" (parameters stay float32).
  """
  widths: Sequence[int] = (64, 128, 256, 512)
  blocks: Sequence[int] = (2, 2, 2, 2)
  dtype: str = "float32"

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    if video.ndim != 5:
      raise ValueError(f"resnet3d18 expects video [N, T, H, W, C], got shape {video.shape}.")
    if len(self.widths) != len(STAGE_STRIDES) or len(self.blocks) != len(STAGE_STRIDES):
      raise ValueError(f"resnet3d18 has {len(STAGE_STRIDES)} stages; got widths={self.widths} "
                       f"and blocks={self.blocks}.")
    dtype = jnp.dtype(self.dtype)
    x = nn.Conv(self.widths[0], (3, 7, 7), (1, 2, 2), padding=((1, 1), (3, 3), (3, 3)),
                use_bias=False, kernel_init=_KAIMING_FAN_OUT, dtype=dtype,
                name="stem_conv")(video.astype(dtype))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                     name="stem_bn")(x)
    x = nn.relu(x)
    for stage, (width, num_blocks, strides) in enumerate(
        zip(self.widths, self.blocks, STAGE_STRIDES), 1):
      for block in range(num_blocks):
        x = BasicBlock(width, strides if block == 0 else (1, 1, 1), dtype,
                       name=f"stage{stage}_block{block + 1}")(x, train)
    x = jnp.mean(x, axis=(2, 3))  # pool space only: [N, T, C]
    signal = nn.Dense(1, dtype=dtype, name="projection")(x)[..., 0]
    return signal.astype(jnp.float32)
