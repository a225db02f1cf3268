"""The rPPG HR protocol and TS-CAN, against hand-worked cases and independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import heart_rate as hr
from simper_jax.models import tscan


@pytest.mark.parametrize("bpm", [48.0, 61.3, 75.0, 99.9, 123.4, 147.0])
@pytest.mark.parametrize("num_frames", [180, 600])
def test_heart_rate_of_a_sinusoid_is_exact_to_one_bin(bpm, num_frames):
  fps = 30.0
  t = np.arange(num_frames) / fps
  signal = np.sin(2 * np.pi * bpm / 60 * t + 0.7) + 0.002 * t  # plus a slow drift
  bin_bpm = 60 * fps / hr.next_pow2(num_frames)
  assert abs(hr.heart_rate(signal, fps) - bpm) <= bin_bpm
  # A difference signal integrates back to the same rate.
  assert abs(hr.heart_rate(np.diff(signal, prepend=signal[0]), fps, diff=True) - bpm) <= bin_bpm


def test_heart_rate_ignores_peaks_outside_the_band():
  t = np.arange(600) / 30.0
  # A strong 0.2 Hz sway and a 4 Hz flicker around a weak 72 bpm pulse.
  signal = 5 * np.sin(2 * np.pi * 0.2 * t) + 3 * np.sin(2 * np.pi * 4 * t) + \
      0.5 * np.sin(2 * np.pi * 1.2 * t)
  assert abs(hr.heart_rate(signal, 30.0) - 72.0) <= 60 * 30 / 1024


def test_detrend_matches_the_dense_smoothness_priors_formula():
  rng = np.random.default_rng(0)
  signal = rng.normal(size=50).cumsum()
  length, lam = len(signal), 100.0
  d2 = np.zeros((length - 2, length))
  for i in range(length - 2):
    d2[i, i:i + 3] = (1, -2, 1)
  dense = (np.eye(length) - np.linalg.inv(np.eye(length) + lam**2 * d2.T @ d2)) @ signal
  np.testing.assert_allclose(hr.detrend(signal, lam), dense, atol=1e-8)
  # Batched rows give the same as one at a time.
  batch = np.stack([signal, 2 * signal + 1])
  np.testing.assert_allclose(hr.detrend(batch)[1], hr.detrend(2 * signal + 1), atol=1e-8)


def test_per_video_heart_rates_reassemble_clips_in_order():
  fps, bpm = 30.0, 84.0
  wave = np.sin(2 * np.pi * bpm / 60 * np.arange(540) / fps)
  clips = wave.reshape(3, 180)
  order = [2, 0, 1]  # clips arrive shuffled
  pred, true, units, *_ = hr.per_video_heart_rates(
      clips[order], clips[order], ["v"] * 3, np.asarray(order), fps)
  assert units == ["v"] and abs(true[0] - bpm) <= 60 * fps / 1024 and pred[0] == true[0]
  _, _, windows, *_ = hr.per_video_heart_rates(clips, clips, ["v"] * 3, np.arange(3), fps,
                                              window=200)
  assert windows == ["v#0", "v#1"]  # 540 frames: two whole 200-frame windows


def test_per_video_snr_is_measured_around_the_true_rate_not_the_prediction():
  """A video whose signal pulses at 100 bpm while its PPG says 72: the prediction is 100, and
  the SNR (around 72 and 144 bpm) is that of a signal with no power there — far below the SNR
  the same signal has around its own rate."""
  fps = 30.0
  t = np.arange(600) / fps
  signal = np.sin(2 * np.pi * 100 / 60 * t) + 0.1 * np.random.default_rng(0).normal(size=600)
  ppg = np.sin(2 * np.pi * 72 / 60 * t)
  pred, true, _, snr, _ = hr.per_video_heart_rates(signal.reshape(3, 200), ppg.reshape(3, 200),
                                                ["v"] * 3, np.arange(3), fps)
  assert abs(pred[0] - 100) <= 60 * fps / 1024 and abs(true[0] - 72) <= 60 * fps / 1024
  np.testing.assert_allclose(snr, hr.snr_db(signal, true[0], fps), rtol=1e-12)
  assert snr[0] < hr.snr_db(signal, pred[0], fps) - 20


def test_per_video_windows_follow_each_clips_own_rate_in_video_order():
  """Two videos whose rate changes from clip to clip, clips shuffled across both: each
  180-frame window is read at its own clip's rate, predicted from a signal that is not the
  PPG (a phase-shifted square wave at the same rate)."""
  fps = 30.0
  rates = {"a": [60.0, 90.0, 120.0], "b": [105.0, 72.0, 84.0]}
  signals, ppg, ids, index = [], [], [], []
  for video, video_rates in rates.items():
    for k, bpm in enumerate(video_rates):
      t = np.arange(180) / fps + 6 * k
      ppg.append(np.sin(2 * np.pi * bpm / 60 * t))
      signals.append(np.sign(np.sin(2 * np.pi * bpm / 60 * t + 1.0)))
      ids.append(video)
      index.append(k)
  order = np.random.default_rng(0).permutation(6)
  signals, ppg = np.asarray(signals)[order], np.asarray(ppg)[order]
  pred, true, units, *_ = hr.per_video_heart_rates(signals, ppg, np.asarray(ids)[order],
                                                  np.asarray(index)[order], fps, window=180)
  assert units == ["a#0", "a#1", "a#2", "b#0", "b#1", "b#2"]
  expected = rates["a"] + rates["b"]
  bin_bpm = 60 * fps / 256  # nfft = next power of two of 180
  np.testing.assert_allclose(true, expected, atol=bin_bpm)
  np.testing.assert_allclose(pred, expected, atol=bin_bpm)


def test_temporal_shift_hand_worked():
  # 2 blocks of 3 frames, 3 channels; value = 100·frame + channel.
  frames = (100 * np.arange(6)[:, None] + np.arange(3)[None, :]).astype(np.float32)
  shifted = np.asarray(tscan.temporal_shift(jnp.asarray(frames)[:, None, None, :], 3))[:, 0, 0]
  expected = np.array([
      # channel 0 from t+1 (zero at a block's end), channel 1 from t−1 (zero at its start),
      # channel 2 unchanged.
      [100, 0, 2], [200, 1, 102], [0, 101, 202],
      [400, 0, 302], [500, 301, 402], [0, 401, 502]], np.float32)
  np.testing.assert_array_equal(shifted, expected)


def test_attention_mask_and_input_normalizations():
  gate = jax.random.uniform(jax.random.key(0), (2, 4, 5, 1))
  mask = tscan.attention_mask(gate)
  np.testing.assert_allclose(mask.sum(axis=(1, 2, 3)), [10.0, 10.0], rtol=1e-5)  # H·W/2
  video = jax.random.uniform(jax.random.key(1), (2, 6, 4, 4, 3), minval=0.2, maxval=0.9)
  diff = tscan.diff_normalized(video)
  raw = (video[:, 1:] - video[:, :-1]) / (video[:, 1:] + video[:, :-1] + 1e-7)
  np.testing.assert_allclose(diff[:, :-1] * raw.std(axis=(1, 2, 3, 4))[:, None, None, None, None],
                             raw, rtol=1e-4, atol=1e-6)
  assert np.all(diff[:, -1] == 0)
  std = tscan.standardized(video)
  np.testing.assert_allclose(std.mean(axis=(1, 2, 3, 4)), 0, atol=1e-5)
  np.testing.assert_allclose(std.std(axis=(1, 2, 3, 4)), 1, rtol=1e-4)


def test_tscan_output_shape_dropout_and_frame_depth_check():
  model = tscan.Model(frame_depth=5, widths=(4, 8), dense=8)
  video = jax.random.uniform(jax.random.key(0), (2, 10, 20, 20, 3))
  # Jitted, as in training: one compilation per function, not one per operation.
  variables = jax.jit(model.init)(jax.random.key(1), video)
  assert set(variables) == {"params"}  # no BatchNorm
  assert variables["params"]["hidden"]["kernel"].shape == (3 * 3 * 8, 8)  # 20→18→9→7→3
  apply = jax.jit(model.apply)
  out = apply(variables, video)
  assert out.shape == (2, 10) and out.dtype == jnp.float32
  dropped = jax.jit(lambda v, x, key: model.apply(v, x, train=True, rngs={"dropout": key}))(
      variables, video, jax.random.key(2))
  assert dropped.shape == (2, 10) and not np.allclose(dropped, out)
  # Frames do not leak across clips: changing clip 1 leaves clip 0's signal unchanged.
  other = video.at[1].set(jax.random.uniform(jax.random.key(3), video.shape[1:]))
  np.testing.assert_allclose(apply(variables, other)[0], out[0], rtol=1e-6)
  with pytest.raises(ValueError, match="frame_depth=5"):
    model.apply(variables, video[:, :7])
