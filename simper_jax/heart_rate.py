"""Heart rate from a pulse signal, by the rPPG-Toolbox protocol (docs/datasets.md).

signal → (cumsum, for a difference signal) → smoothness-priors detrend (λ = 100) →
1st-order Butterworth band-pass, zero-phase (filtfilt) → periodogram with nfft = the next power
of two of the length → HR = 60 × the frequency of the highest bin inside the band
(0.75–2.5 Hz, i.e. 45–150 bpm). Ground truth goes through the same pipeline on the PPG wave,
so prediction and label share the frequency grid.

The grid is coarse for short signals: fps / nfft Hz, e.g. 7.0 bpm for a 180-frame clip at
30 fps and 1.76 bpm for a 600-frame (20 s) video. That is the protocol's, kept on purpose so
that figures compare with the toolbox's; whole-video evaluation is the default for this reason.
"""

import numpy as np
from scipy import signal as scipy_signal
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

BAND_HZ = (0.75, 2.5)  # 45–150 bpm, as SimPer and MTTS-CAN use
DETREND_LAMBDA = 100.0


def next_pow2(n: int) -> int:
  return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def detrend(signals: np.ndarray, lam: float = DETREND_LAMBDA) -> np.ndarray:
  """Smoothness-priors detrending (Tarvainen et al. 2002) of [..., T] signals along T.

  Removes the trend (I + λ² D₂ᵀD₂)⁻¹ z, D₂ the second-difference operator. A sparse banded
  solve rather than the toolbox's dense inverse: the same numbers, O(T) instead of O(T³), which
  matters for whole videos of thousands of frames.
  """
  x = np.asarray(signals, np.float64)
  length = x.shape[-1]
  if length < 3:
    return x - x.mean(-1, keepdims=True)
  d2 = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(length - 2, length))
  system = (sparse.identity(length) + lam**2 * (d2.T @ d2)).tocsc()
  flat = x.reshape(-1, length).T  # [T, N]
  trend = sparse_linalg.spsolve(system, flat).reshape(length, -1)
  return (flat - trend).T.reshape(x.shape)


def bandpass(signals: np.ndarray, fps: float, band=BAND_HZ) -> np.ndarray:
  """1st-order Butterworth band-pass, applied forwards and backwards (zero phase)."""
  b, a = scipy_signal.butter(1, [band[0] / fps * 2, band[1] / fps * 2], btype="bandpass")
  return scipy_signal.filtfilt(b, a, np.asarray(signals, np.float64), axis=-1)


def heart_rate(signals: np.ndarray, fps: float, *, band=BAND_HZ, diff: bool = False,
               lam: float = DETREND_LAMBDA) -> np.ndarray:
  """Heart rate (bpm) of each [..., T] pulse signal by the protocol above.

  Args:
    signals: [..., T] pulse signals (PPG, or an encoder's feature signal).
    fps: sampling rate, Hz.
    band: the plausible heart-rate band, Hz.
    diff: the signals are first differences (e.g. a model trained on DiffNormalized labels):
      integrate them first.
  Returns:
    [...] heart rates in beats per minute, on the grid 60·fps/nfft.
  """
  x = np.asarray(signals, np.float64)
  if x.shape[-1] < 2:
    raise ValueError(f"A heart rate needs a signal of at least 2 samples, got shape {x.shape}.")
  if diff:
    x = np.cumsum(x, axis=-1)
  x = bandpass(detrend(x, lam), fps, band)
  freqs, power = scipy_signal.periodogram(x, fs=fps, nfft=next_pow2(x.shape[-1]),
                                          detrend=False, axis=-1)
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  if not in_band.any():
    raise ValueError(f"The band {band} Hz holds no frequency bin of a {x.shape[-1]}-sample "
                     f"signal at {fps} fps.")
  return 60.0 * freqs[in_band][np.argmax(power[..., in_band], axis=-1)]


def windows(signal: np.ndarray, window: int | None) -> list[np.ndarray]:
  """Non-overlapping windows of `window` samples (the remainder is dropped); the whole signal
  when `window` is None or longer than the signal (the toolbox's rule)."""
  if window is None or window >= len(signal):
    return [signal]
  return [signal[i:i + window] for i in range(0, len(signal) - window + 1, window)]


def per_video_heart_rates(signals: np.ndarray, ppg: np.ndarray, video_ids, clip_index,
                          fps: float, *, band=BAND_HZ, window: int | None = None,
                          diff: bool = False):
  """Predicted and ground-truth HR per video (or per window of each video).

  Clips of one video are put back in order and concatenated first, so a video's HR is read
  off its whole length (the toolbox's default evaluation).

  Args:
    signals: [N, T] predicted pulse / feature signals of N clips.
    ppg: [N, T] ground-truth PPG of the same clips.
    video_ids: [N] the video each clip comes from; clip_index: [N] its position in the video.
    fps: the sampling rate, one for all clips or [N] per clip (each video's own rate).
    window: frames per evaluation window, or None for whole videos.
  Returns:
    (predicted [K], ground truth [K], unit ids [K]) with K videos or windows.
  """
  video_ids = np.asarray(video_ids)
  clip_fps = np.broadcast_to(np.asarray(fps, np.float64), video_ids.shape)
  pred, true, units = [], [], []
  for video in np.unique(video_ids):
    rows = np.flatnonzero(video_ids == video)
    rows = rows[np.argsort(np.asarray(clip_index)[rows])]
    video_fps = float(clip_fps[rows[0]])
    for k, (s, p) in enumerate(zip(windows(signals[rows].reshape(-1), window),
                                   windows(ppg[rows].reshape(-1), window))):
      pred.append(heart_rate(s, video_fps, band=band, diff=diff))
      true.append(heart_rate(p, video_fps, band=band))
      units.append(f"{video}#{k}" if window else str(video))
  return np.asarray(pred), np.asarray(true), units
