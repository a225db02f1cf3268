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
