"""Pure augmentations (docs/method.md §2): f(key, frames, ...) -> frames, jit- and vmap-able.

Two families, chosen by `config.augment.name`: "video" (frames in [0, 1]) and "series" (time
series: clips [T, 1, 1, C] of z-scored channels, see data/timeseries.py). Both act on the
same clip layout, so the views, the methods and the loop are the same for both.

The spatial augmentations (random resized crop, Gaussian blur, horizontal flip) are all linear
maps acting separately on rows and columns. Each is built as a small [H, H] or [W, W] matrix
and the product of those is applied to every frame with a single einsum, which is cheaper than
resampling the clip three times and runs as one matmul on TPU/GPU.
"""

import math

import jax
import jax.numpy as jnp

Array = jnp.ndarray


def speed_window(key: Array, clip: Array, speed: Array, window: int) -> Array:
  """Plays `clip` at `speed` and cuts a random window of `window` frames from the result.

  The resampled clip has frame k = lerp of clip at time k·speed (spacing 1, not the
  reference's T/(T-1) quirk) and floor(T/speed) frames when speed > 1, else T. The window
  starts uniformly in [0, len - window] and wraps around when the resampled clip is shorter
  than the window. Only the `window` frames needed are interpolated.

  Args:
    key: PRNG key.
    clip: [T, H, W, C] float (or any [T, ...]).
    speed: scalar playback speed s > 0.
    window: L, number of output frames.

  Returns:
    [L, H, W, C] frames.
  """
  num_frames = clip.shape[0]
  length = jnp.where(speed > 1.0, jnp.floor(num_frames / speed), num_frames)
  length = jnp.maximum(length, 1.0).astype(jnp.int32)
  slack = jnp.where(length >= window, length - window + 1, length)
  offset = jnp.floor(jax.random.uniform(key) * slack).astype(jnp.int32)
  offset = jnp.minimum(offset, slack - 1)
  frame_index = (offset + jnp.arange(window)) % length  # [L], wraps when length < L
  time = jnp.minimum(frame_index * speed, num_frames - 1)
  lower = jnp.floor(time).astype(jnp.int32)
  upper = jnp.minimum(lower + 1, num_frames - 1)
  frac = (time - lower).reshape((-1,) + (1,) * (clip.ndim - 1))
  return clip[lower] * (1.0 - frac) + clip[upper] * frac


def crop_resize_matrix(start: Array, size: Array, length: int) -> Array:
  """[length, length] bilinear map taking pixels [start, start + size) back to `length` pixels.

  Row i samples the source at start + (i + 0.5)·size/length − 0.5 (pixel centres, as in
  image resizers), clamped to the image, with tent (linear) weights.
  """
  out = jnp.arange(length, dtype=jnp.float32)
  source = jnp.clip(start + (out + 0.5) * size / length - 0.5, 0.0, length - 1.0)
  return jnp.maximum(0.0, 1.0 - jnp.abs(source[:, None] - out[None, :]))


def gaussian_blur_matrix(sigma: Array, length: int, kernel_size: int) -> Array:
  """[length, length] Gaussian blur of odd `kernel_size`, rows renormalized at the edges."""
  offsets = jnp.arange(length)[:, None] - jnp.arange(length)[None, :]
  weights = jnp.exp(-0.5 * (offsets / sigma) ** 2) * (jnp.abs(offsets) <= kernel_size // 2)
  return weights / jnp.sum(weights, axis=1, keepdims=True)


def blur_kernel_size(height: int) -> int:
  """≈ H/20 rounded to odd, as the reference; at least 3 so that small clips blur at all."""
  size = max(3, int(round(height / 20)))
  return size if size % 2 else size + 1


def invariant(key: Array, frames: Array, *, name: str = "video", **kwargs) -> Array:
  """The periodicity-invariant augmentations of family `name` ("video" or "series"), with
  that family's keyword arguments (`video_invariant`, `series_invariant`)."""
  if name not in INVARIANTS:
    raise ValueError(f"augment.name={name!r}; expected one of {tuple(INVARIANTS)}.")
  return INVARIANTS[name](key, frames, **kwargs)


def video_invariant(key: Array, frames: Array, *, reverse_prob: float = 0.5,
              crop_area: tuple[float, float] = (0.5, 1.0),
              crop_aspect: tuple[float, float] = (0.75, 4 / 3),
              brightness: tuple[float, float] = (0.7, 1.3), blur_prob: float = 0.2,
              blur_sigma: tuple[float, float] = (0.1, 2.0), flip_prob: float = 0.5) -> Array:
  """Periodicity-invariant augmentations, one draw for the view, same for all its frames.

  Time reversal, random resized crop back to H×W, brightness scaling, Gaussian blur,
  horizontal flip, clip to [0, 1].

  Args:
    key: PRNG key.
    frames: [L, H, W, C] float in [0, 1].

  Returns:
    [L, H, W, C] float in [0, 1].
  """
  _, height, width, _ = frames.shape
  keys = jax.random.split(key, 9)
  frames = jnp.where(jax.random.bernoulli(keys[0], reverse_prob), frames[::-1], frames)

  # Random resized crop: area fraction and log-aspect uniform, box clamped inside the image.
  area = jax.random.uniform(keys[1], minval=crop_area[0], maxval=crop_area[1])
  log_aspect = jax.random.uniform(keys[2], minval=math.log(crop_aspect[0]),
                                  maxval=math.log(crop_aspect[1]))
  crop_w = jnp.minimum(jnp.sqrt(area * jnp.exp(log_aspect)) * width, width)
  crop_h = jnp.minimum(jnp.sqrt(area / jnp.exp(log_aspect)) * height, height)
  top = jax.random.uniform(keys[3]) * (height - crop_h)
  left = jax.random.uniform(keys[4]) * (width - crop_w)
  rows = crop_resize_matrix(top, crop_h, height)  # [H, H]
  cols = crop_resize_matrix(left, crop_w, width)  # [W, W]

  sigma = jax.random.uniform(keys[5], minval=blur_sigma[0], maxval=blur_sigma[1])
  blur = jax.random.bernoulli(keys[6], blur_prob)
  rows = jnp.where(blur, gaussian_blur_matrix(sigma, height, blur_kernel_size(height)) @ rows,
                   rows)
  cols = jnp.where(blur, gaussian_blur_matrix(sigma, width, blur_kernel_size(width)) @ cols,
                   cols)
  cols = jnp.where(jax.random.bernoulli(keys[7], flip_prob), cols[::-1], cols)

  frames = jnp.einsum("ih,lhwc,jw->lijc", rows, frames, cols)
  scale = jax.random.uniform(keys[8], minval=brightness[0], maxval=brightness[1])
  return jnp.clip(frames * scale, 0.0, 1.0)


def random_rotation(key: Array) -> Array:
  """A uniformly random 3×3 rotation (Haar measure): QR of a Gaussian matrix, the signs fixed
  so that R has det +1."""
  q, r = jnp.linalg.qr(jax.random.normal(key, (3, 3)))
  q = q * jnp.sign(jnp.diag(r))[None, :]
  return q * jnp.where(jnp.linalg.det(q) < 0, -1.0, 1.0)


def baseline_drift(key: Array, length: int, std: float) -> Array:
  """[length] slow drift: a ramp plus a half-cycle of a sine across the window, amplitudes
  ~ N(0, std). At most half a cycle per window, so it adds no power at a rhythm's rate."""
  keys = jax.random.split(key, 3)
  t = jnp.linspace(0.0, 1.0, length)
  ramp = jax.random.normal(keys[0]) * std * (t - 0.5)
  phase = jax.random.uniform(keys[1], maxval=2 * math.pi)
  return ramp + jax.random.normal(keys[2]) * std * jnp.sin(math.pi * t + phase)


def series_invariant(key: Array, frames: Array, *, reverse_prob: float = 0.5,
                     scale: tuple[float, float] = (0.7, 1.3), noise_std: float = 0.05,
                     drift_std: float = 0.2, rotate3d: bool = False,
                     channel_dropout: float = 0.0) -> Array:
  """Periodicity-invariant augmentations of a time-series view, one draw for the view.

  Time reversal; amplitude scaling (one factor for all channels, so their ratios stay);
  with `rotate3d`, one random 3D rotation of every consecutive triple of channels (a tri-axial
  sensor worn at another angle: the norm of each sample is kept); channel dropout (each
  channel zeroed with that probability, never all of them); per-channel baseline drift and
  Gaussian noise, both in units of the channels' standard deviation (the series are
  z-scored). None moves a rhythm's frequency.

  Args:
    key: PRNG key.
    frames: [L, 1, 1, C] (or [L, C]) z-scored channels.

  Returns:
    the same shape.
  """
  shape = frames.shape
  series = frames.reshape(shape[0], -1)  # [L, C]
  length, channels = series.shape
  keys = jax.random.split(key, 6)
  series = jnp.where(jax.random.bernoulli(keys[0], reverse_prob), series[::-1], series)
  series = series * jax.random.uniform(keys[1], minval=scale[0], maxval=scale[1])
  if rotate3d:
    if channels % 3:
      raise ValueError(f"augment.rotate3d rotates triples of channels (x, y, z); this series "
                       f"has {channels} channels.")
    rotations = jax.vmap(random_rotation)(jax.random.split(keys[2], channels // 3))
    series = jnp.einsum("gij,lgj->lgi", rotations,
                        series.reshape(length, channels // 3, 3)).reshape(length, channels)
  keep = jax.random.bernoulli(keys[3], 1.0 - channel_dropout, (channels,))
  keep = jnp.where(jnp.any(keep), keep, jnp.ones_like(keep))
  series = series * keep
  drift = jax.vmap(lambda k: baseline_drift(k, length, drift_std), out_axes=1)(
      jax.random.split(keys[4], channels))
  series = series + drift + noise_std * jax.random.normal(keys[5], series.shape)
  return series.reshape(shape)


INVARIANTS = {"video": video_invariant, "series": series_invariant}
