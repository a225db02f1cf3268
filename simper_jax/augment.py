"""Pure video augmentations (docs/method.md §2): f(key, frames, ...) -> frames, jit- and vmap-able.

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
    clip: [T, H, W, C] float.
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
  frac = (time - lower)[:, None, None, None]
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


def invariant(key: Array, frames: Array, *, reverse_prob: float = 0.5,
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
