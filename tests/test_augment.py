"""Augmentations: speed changes the frequency by s, invariant ones keep it; all pure and jit-able."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import augment
from simper_jax.methods import simper

FPS = 30.0


def sinusoid_clip(frequency: float, num_frames: int = 300, size: int = 12) -> jnp.ndarray:
  """[T, size, size, 1]: a fixed spatial pattern whose brightness oscillates at `frequency`."""
  t = np.arange(num_frames) / FPS
  yy, xx = np.mgrid[:size, :size] / size
  pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + 0.5 * yy))
  intensity = 0.5 + 0.4 * np.sin(2 * np.pi * frequency * t)
  return jnp.asarray((intensity[:, None, None] * pattern)[..., None], jnp.float32)


def dominant_frequency(frames) -> float:
  """Peak of the spectrum of the mean-brightness signal of [L, H, W, C] frames, in Hz."""
  signal = np.asarray(frames).mean(axis=(1, 2, 3))
  power = np.abs(np.fft.rfft(signal - signal.mean())) ** 2
  return float(np.fft.rfftfreq(len(signal), 1 / FPS)[np.argmax(power)])


@pytest.mark.parametrize("speed", [0.6, 1.0, 1.5, 2.0])
def test_speed_multiplies_the_dominant_frequency(speed):
  window, frequency = 120, 2.0
  frames = jax.jit(augment.speed_window, static_argnums=3)(
      jax.random.key(0), sinusoid_clip(frequency), jnp.float32(speed), window)
  assert frames.shape == (window, 12, 12, 1)
  assert abs(dominant_frequency(frames) - speed * frequency) <= FPS / window  # one FFT bin


def test_invariant_augmentations_keep_the_frequency():
  window, frequency = 120, 2.5
  frames = sinusoid_clip(frequency)[:window]
  fn = jax.jit(augment.invariant)
  for seed in range(8):
    out = fn(jax.random.key(seed), frames)
    assert out.shape == frames.shape
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert abs(dominant_frequency(out) - frequency) <= FPS / window


def test_invariant_augmentations_change_the_frames():
  frames = sinusoid_clip(2.0)[:30]
  outs = [augment.invariant(jax.random.key(s), frames) for s in range(4)]
  assert all(float(jnp.abs(o - frames).max()) > 1e-3 for o in outs)


def test_window_wraps_when_the_sped_up_clip_is_shorter():
  clip = jnp.arange(10, dtype=jnp.float32)[:, None, None, None] * jnp.ones((10, 2, 2, 1))
  frames = augment.speed_window(jax.random.key(0), clip, jnp.float32(2.0), 8)
  # Speed 2 keeps floor(10/2) = 5 frames (times 0, 2, 4, 6, 8); 8 frames wrap around them.
  values = np.asarray(frames[:, 0, 0, 0])
  assert set(values.tolist()) == {0.0, 2.0, 4.0, 6.0, 8.0}
  assert np.all(np.diff(values)[np.diff(values) > 0] == 2.0)


def test_crop_resize_identity_and_blur_rows_sum_to_one():
  np.testing.assert_allclose(augment.crop_resize_matrix(0.0, 16.0, 16), np.eye(16), atol=1e-6)
  blur = augment.gaussian_blur_matrix(1.0, 16, augment.blur_kernel_size(16))
  np.testing.assert_allclose(np.asarray(blur).sum(1), 1.0, rtol=1e-6)


def test_views_are_pure_and_vmappable():
  clips = jnp.stack([sinusoid_clip(1.0, 90, 8), sinusoid_clip(2.0, 90, 8)])
  make = jax.jit(jax.vmap(functools.partial(simper.make_views, num_speeds=4,
                                            speed_range=(0.5, 2.0), window=30)))
  keys = jax.random.split(jax.random.key(3), 2)
  views, speeds = make(keys, clips)
  again, _ = make(keys, clips)
  assert views.shape == (2, 8, 30, 8, 8, 1) and speeds.shape == (2, 8)
  np.testing.assert_array_equal(np.asarray(views), np.asarray(again))
  np.testing.assert_array_equal(speeds[:, :4], speeds[:, 4:])  # [s_1..s_M, s_1..s_M]
  assert np.all(np.diff(np.asarray(speeds[:, :4]), axis=1) >= 0)  # sorted
  assert float(speeds.min()) >= 0.5 and float(speeds.max()) <= 2.0


# --- Each invariant augmentation alone, over many draws -------------------------------------
DRAWS = 400
OFF = dict(reverse_prob=0.0, crop_area=(1.0, 1.0), crop_aspect=(1.0, 1.0),
           brightness=(1.0, 1.0), blur_prob=0.0, flip_prob=0.0)


def _draws(frames, **only):
  """augment.invariant with every augmentation off except `only`, DRAWS times: [DRAWS, ...]."""
  fn = jax.jit(jax.vmap(functools.partial(augment.invariant, **{**OFF, **only}), (0, None)))
  return np.asarray(fn(jax.random.split(jax.random.key(0), DRAWS), frames))


def _binomial_ok(count: int, p: float) -> bool:
  """count of DRAWS Bernoulli(p) draws within 4 standard deviations of its mean."""
  return abs(count - DRAWS * p) <= 4 * np.sqrt(DRAWS * p * (1 - p))


def _coordinate_frames(length=3, size=16):
  """[L, size, size, 2] in [0, 1]: channel 0 is the column, channel 1 the row, channel 0 also
  grows with time (so reversal, flips and crops each leave a distinct trace)."""
  yy, xx = np.mgrid[:size, :size] / (size - 1)
  t = np.arange(length)[:, None, None] / (4 * length)
  return jnp.asarray(np.stack([0.75 * xx + t, np.broadcast_to(yy, (length, size, size))],
                              axis=-1), jnp.float32)


def test_all_off_is_the_identity():
  frames = _coordinate_frames()
  np.testing.assert_allclose(_draws(frames)[:4], np.broadcast_to(frames, (4,) + frames.shape),
                             atol=1e-6)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_flip_is_horizontal_at_its_probability(p):
  frames = _coordinate_frames()
  out = _draws(frames, flip_prob=p)
  flipped = np.all(np.isclose(out, frames[:, :, ::-1]), axis=(1, 2, 3, 4))
  same = np.all(np.isclose(out, frames), axis=(1, 2, 3, 4))
  assert np.all(flipped ^ same)  # every draw is the clip or its left-right mirror
  assert _binomial_ok(int(flipped.sum()), p)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_reversal_reverses_time_at_its_probability(p):
  frames = _coordinate_frames()
  out = _draws(frames, reverse_prob=p)
  reversed_ = np.all(np.isclose(out, frames[::-1]), axis=(1, 2, 3, 4))
  same = np.all(np.isclose(out, frames), axis=(1, 2, 3, 4))
  assert np.all(reversed_ ^ same)
  assert _binomial_ok(int(reversed_.sum()), p)


def test_brightness_scales_uniformly_in_its_range():
  frames = jnp.full((2, 8, 8, 1), 0.5)
  scale = _draws(frames, brightness=(0.7, 1.3))[:, 0, 0, 0, 0] / 0.5
  assert scale.min() >= 0.7 - 1e-6 and scale.max() <= 1.3 + 1e-6
  assert scale.min() < 0.71 and scale.max() > 1.29  # the whole range is used
  assert abs(scale.mean() - 1.0) < 0.03 and abs(np.median(scale) - 1.0) < 0.05  # uniform


def test_blur_at_its_probability_and_only_smooths():
  checkerboard = (np.indices((16, 16)).sum(axis=0) % 2).astype(np.float32)
  frames = jnp.asarray(np.broadcast_to(checkerboard[None, :, :, None], (2, 16, 16, 1)))
  out = _draws(frames, blur_prob=0.2)
  blurred = np.abs(out - np.asarray(frames)).max(axis=(1, 2, 3, 4)) > 1e-3
  assert _binomial_ok(int(blurred.sum()), 0.2)
  # Blurring a checkerboard pulls every pixel towards the mean 0.5; the mean is kept inside.
  contrast = np.abs(out[blurred] - 0.5).mean(axis=(1, 2, 3, 4))
  assert np.all(contrast < 0.5 - 1e-3)
  np.testing.assert_allclose(out[blurred][:, :, 4:12, 4:12].mean(axis=(1, 2, 3, 4)), 0.5,
                             atol=0.02)


def test_crop_area_and_aspect_stay_in_their_ranges_and_span_them():
  size = 16
  out = _draws(_coordinate_frames(size=size), crop_area=(0.5, 1.0),
               crop_aspect=(0.75, 4 / 3))[:, 0]  # first frame: [DRAWS, H, W, 2]
  # A crop resized back to `size` pixels maps a linear ramp to a linear ramp of slope
  # crop/size: read the crop's width and height from interior pixels (no edge clamping).
  width = (out[:, 8, size - 3, 0] - out[:, 8, 2, 0]) / 0.75 * (size - 1) / (size - 5) * size
  height = (out[:, size - 3, 8, 1] - out[:, 2, 8, 1]) * (size - 1) / (size - 5) * size
  area, aspect = width * height / size**2, width / height
  assert area.min() >= 0.5 - 0.01 and area.max() <= 1.0 + 0.01
  assert aspect.min() >= 0.75 - 0.01 and aspect.max() <= 4 / 3 + 0.01
  assert area.min() < 0.55 and area.max() > 0.85  # both ends of the ranges are reached
  assert aspect.min() < 0.8 and aspect.max() > 1.25
