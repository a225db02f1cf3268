"""TS-CAN (Liu et al. 2020), the temporal-shift convolutional attention network, in Flax.

Two 2D-conv branches over frames: *motion* on DiffNormalized frames, with a temporal shift
(TSM) before each motion conv, and *appearance* on Standardized frames, whose 1×1-conv
sigmoid masks gate the motion features. A dense head gives one value per frame: for SimPer
that per-frame output is the feature signal; trained on PPG labels it is the pulse.

Unlike the rPPG-Toolbox, the two normalized inputs are computed here, from the raw frames in
[0, 1], per clip: augmentations then act on real frames, and users feed plain video.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

_EPS = 1e-7


def diff_normalized(video: jnp.ndarray) -> jnp.ndarray:
  """[N, L, H, W, C] -> (x[t+1] − x[t]) / (x[t+1] + x[t] + ε), divided by its std over each
  clip, with a zero frame appended so the clip keeps L frames (the toolbox's DiffNormalized)."""
  diff = (video[:, 1:] - video[:, :-1]) / (video[:, 1:] + video[:, :-1] + _EPS)
  std = jnp.std(diff, axis=(1, 2, 3, 4), keepdims=True)
  diff = diff / jnp.maximum(std, _EPS)
  return jnp.concatenate([diff, jnp.zeros_like(video[:, :1])], axis=1)


def standardized(video: jnp.ndarray) -> jnp.ndarray:
  """[N, L, H, W, C] -> (x − mean) / std over each clip (the toolbox's Standardized)."""
  mean = jnp.mean(video, axis=(1, 2, 3, 4), keepdims=True)
  std = jnp.std(video, axis=(1, 2, 3, 4), keepdims=True)
  return (video - mean) / jnp.maximum(std, _EPS)


def temporal_shift(frames: jnp.ndarray, frame_depth: int) -> jnp.ndarray:
  """TSM on [N·D, H, W, C] frames in blocks of D = `frame_depth` consecutive frames.

  Channels in thirds (c // 3 each for the first two): the first third takes frame t+1, the
  second frame t−1, the rest stays; zeros come in at each block's ends.
  """
  nd, h, w, c = frames.shape
  x = frames.reshape(nd // frame_depth, frame_depth, h, w, c)
  fold = c // 3
  zero = jnp.zeros_like(x[:, :1])
  from_next = jnp.concatenate([x[:, 1:, ..., :fold], zero[..., :fold]], axis=1)
  from_prev = jnp.concatenate([zero[..., fold:2 * fold], x[:, :-1, ..., fold:2 * fold]], axis=1)
  return jnp.concatenate([from_next, from_prev, x[..., 2 * fold:]], axis=-1).reshape(frames.shape)


def attention_mask(gate: jnp.ndarray) -> jnp.ndarray:
  """[n, H, W, 1] sigmoid gate -> g / Σ_HW g · H · W · 0.5 (TS-CAN's soft attention)."""
  _, h, w, _ = gate.shape
  return gate / jnp.sum(gate, axis=(1, 2), keepdims=True) * h * w * 0.5


class Model(nn.Module):
  """TS-CAN: video [N, L, H, W, 3] in [0, 1] -> one value per frame [N, L].

  Attributes:
    frame_depth: D, frames per temporal-shift block; L must be a multiple of it.
    widths: channels of the two conv stages (paper: 32, 64).
    dense: width of the hidden dense layer (paper: 128).
    dropout: rates after the conv stages and after the hidden dense layer (paper: .25, .5).
    dtype: compute dtype name, "float32" or "bfloat16" (parameters stay float32).
  """
  frame_depth: int = 10
  widths: Sequence[int] = (32, 64)
  dense: int = 128
  dropout: Sequence[float] = (0.25, 0.5)
  dtype: str = "float32"

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    if video.ndim != 5 or video.shape[-1] != 3:
      raise ValueError(f"tscan expects RGB video [N, L, H, W, 3], got shape {video.shape}.")
    n, length, h, w, c = video.shape
    if length % self.frame_depth:
      raise ValueError(f"tscan: clip length {length} is not a multiple of frame_depth="
                       f"{self.frame_depth} (model.frame_depth); the temporal shift works in "
                       f"blocks of that many frames.")
    dtype = jnp.dtype(self.dtype)
    conv = lambda width, padding, name: nn.Conv(width, (3, 3), padding=padding, dtype=dtype,
                                                name=name)
    pool = lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2))
    shift = lambda x: temporal_shift(x, self.frame_depth)
    stage_dropout, dense_dropout = self.dropout

    motion = diff_normalized(video).reshape(n * length, h, w, c).astype(dtype)
    appearance = standardized(video).reshape(n * length, h, w, c).astype(dtype)
    for stage, width in enumerate(self.widths, 1):
      motion = jnp.tanh(conv(width, "SAME", f"motion{stage}_same")(shift(motion)))
      motion = jnp.tanh(conv(width, "VALID", f"motion{stage}_valid")(shift(motion)))
      appearance = jnp.tanh(conv(width, "SAME", f"appearance{stage}_same")(appearance))
      appearance = jnp.tanh(conv(width, "VALID", f"appearance{stage}_valid")(appearance))
      gate = nn.sigmoid(nn.Conv(1, (1, 1), dtype=dtype, name=f"attention{stage}")(appearance))
      motion = motion * attention_mask(gate)
      motion = nn.Dropout(stage_dropout, deterministic=not train)(pool(motion))
      appearance = nn.Dropout(stage_dropout, deterministic=not train)(pool(appearance))
    if motion.shape[1] < 1 or motion.shape[2] < 1:
      raise ValueError(f"tscan: {h}×{w} frames are too small for {len(self.widths)} conv "
                       f"stages (each takes 2 pixels and halves); use at least 12×12.")
    x = motion.reshape(n * length, -1)
    x = jnp.tanh(nn.Dense(self.dense, dtype=dtype, name="hidden")(x))
    x = nn.Dropout(dense_dropout, deterministic=not train)(x)
    return nn.Dense(1, dtype=dtype, name="output")(x).reshape(n, length).astype(jnp.float32)
