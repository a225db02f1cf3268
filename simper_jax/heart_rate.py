"""Heart rate from a pulse signal, by the rPPG-Toolbox protocol (docs/heart-rate.md).

signal → (cumsum, for a difference signal) → smoothness-priors detrend (λ = 100) →
1st-order Butterworth band-pass, zero-phase (filtfilt) → periodogram with nfft = the next power
of two of the length → HR = 60 × the frequency of the highest bin inside the band
(0.75–2.5 Hz, i.e. 45–150 bpm). Ground truth goes through the same pipeline on the PPG wave,
so prediction and label share the frequency grid.

The grid is coarse for short signals: fps / nfft Hz, e.g. 7.0 bpm for a 180-frame clip at
30 fps and 1.76 bpm for a 600-frame (20 s) video. That is the protocol's, kept on purpose so
that figures compare with the toolbox's; whole-video evaluation is the default for this reason.
"""

from typing import NamedTuple

import numpy as np
import scipy  # scipy.signal loads on first use: see evaluate.py
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from simper_jax import uncertainty

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
  b, a = scipy.signal.butter(1, [band[0] / fps * 2, band[1] / fps * 2], btype="bandpass")
  return scipy.signal.filtfilt(b, a, np.asarray(signals, np.float64), axis=-1)


def processed(signals: np.ndarray, fps: float, *, band=BAND_HZ, diff: bool = False,
              lam: float = DETREND_LAMBDA) -> np.ndarray:
  """The protocol's signal before its periodogram: [..., T] → (cumsum if `diff`) → detrend →
  band-pass, float64 [..., T]."""
  x = np.asarray(signals, np.float64)
  if x.shape[-1] < 2:
    raise ValueError(f"A heart rate needs a signal of at least 2 samples, got shape {x.shape}.")
  if diff:
    x = np.cumsum(x, axis=-1)
  return bandpass(detrend(x, lam), fps, band)


def periodogram(signals: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
  """(frequencies [F] Hz, power [..., F]) of [..., T] signals, nfft = next power of two."""
  return scipy.signal.periodogram(signals, fs=fps, nfft=next_pow2(signals.shape[-1]),
                                  detrend=False, axis=-1)


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
  return peak_bpm(*spectrum(signals, fps, band=band, diff=diff, lam=lam), band)


def spectrum(signals: np.ndarray, fps: float, *, band=BAND_HZ, diff: bool = False,
             lam: float = DETREND_LAMBDA) -> tuple[np.ndarray, np.ndarray]:
  """(frequencies [F] Hz, power [..., F]): the periodogram of the processed [..., T] signals,
  from which the protocol reads both the heart rate (`peak_bpm`) and the SNR
  (`spectrum_snr_db`) — computed once when both are wanted."""
  return periodogram(processed(signals, fps, band=band, diff=diff, lam=lam), fps)


def peak_bpm(freqs: np.ndarray, power: np.ndarray, band=BAND_HZ) -> np.ndarray:
  """60 × the frequency of the highest bin of each [..., F] spectrum inside `band`: [...] bpm."""
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  if not in_band.any():
    raise ValueError(f"The band {band} Hz holds no frequency bin of the spectrum (bins "
                     f"{freqs[1] - freqs[0]:g} Hz apart, up to {freqs[-1]:g} Hz): the signal "
                     f"is too short, or its rate too low, for the band.")
  return 60.0 * freqs[in_band][np.argmax(power[..., in_band], axis=-1)]


SNR_HALF_WIDTH_HZ = 0.1  # ±6 bpm around the true rate and its second harmonic (the toolbox's)


def spectrum_snr_db(freqs: np.ndarray, power: np.ndarray, true_hz, band=BAND_HZ) -> np.ndarray:
  """The rPPG-Toolbox's SNR of power spectra: the power within ±0.1 Hz of the true rate f and
  of 2f (the latter also beyond the band, as the toolbox counts it) against the power of the
  rest of the band, as 20·log10 of that power ratio — the toolbox's `mag2db` of a power
  ratio, kept so that figures compare with its tables (10·log10 would be the power decibel:
  half these values). 0 where the rest of the band holds no power (the toolbox's rule).

  Args:
    freqs: [F] Hz; power: [..., F]; true_hz: [...] the true rate of each spectrum, Hz.
  Returns:
    [...] SNR in dB.
  """
  f0 = np.asarray(true_hz, np.float64)[..., None]
  near = lambda centre: np.abs(freqs - centre) <= SNR_HALF_WIDTH_HZ
  harmonics = near(f0) | near(2 * f0)
  rest = (freqs >= band[0]) & (freqs <= band[1]) & ~harmonics
  signal_power = np.sum(power * harmonics, axis=-1)
  rest_power = np.sum(power * rest, axis=-1)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(rest_power > 0, 20 * np.log10(signal_power / rest_power), 0.0)


def snr_db(signals: np.ndarray, true_bpm, fps: float, *, band=BAND_HZ, diff: bool = False,
           lam: float = DETREND_LAMBDA) -> np.ndarray:
  """SNR (dB, `spectrum_snr_db`) of [..., T] pulse signals against true rates [...] in bpm,
  on the protocol's processed signal and periodogram (as the toolbox computes it)."""
  freqs, power = spectrum(signals, fps, band=band, diff=diff, lam=lam)
  return spectrum_snr_db(freqs, power, np.asarray(true_bpm, np.float64) / 60.0, band)


def window_starts(length: int, window: int, step: int) -> np.ndarray:
  """Start indices of the windows of `window` samples every `step` that fit in `length`."""
  return np.arange(0, length - window + 1, step)


def windows(signal: np.ndarray, window: int | None) -> list[np.ndarray]:
  """Non-overlapping windows of `window` samples (the remainder is dropped); the whole signal
  when `window` is None or longer than the signal (the toolbox's rule)."""
  if window is None or window >= len(signal):
    return [signal]
  return [signal[i:i + window] for i in window_starts(len(signal), window, window)]


class VideoRates(NamedTuple):
  """Heart rates of K videos (or windows of them), `per_video_heart_rates`' result."""
  pred: np.ndarray  # [K] bpm, read off the signals
  true: np.ndarray  # [K] bpm, read off the PPG by the same protocol
  units: list  # [K] 'video' or 'video#window'
  snr: np.ndarray  # [K] dB, of the signals around the true rate
  details: dict  # [K] each: how sure its reading is (spectral confidence × agreement)


def per_video_heart_rates(signals: np.ndarray, ppg: np.ndarray, video_ids, clip_index,
                          fps: float, *, band=BAND_HZ, window: int | None = None,
                          diff: bool = False) -> VideoRates:
  """Predicted and ground-truth HR per video (or per window of each video), the SNR of the
  prediction around the true HR, and how sure each reading is.

  Clips of one video are put back in order and concatenated first, so a video's HR is read
  off its whole length (the toolbox's default evaluation). Its confidence is its spectrum's
  (`uncertainty.spectral_confidence`) times the share of its clip-long pieces whose own rate
  agrees with it (`uncertainty.window_agreement`): a video whose pieces disagree has no one
  rate, whatever its whole spectrum says.

  Args:
    signals: [N, T] predicted pulse / feature signals of N clips.
    ppg: [N, T] ground-truth PPG of the same clips.
    video_ids: [N] the video each clip comes from; clip_index: [N] its position in the video.
    fps: the sampling rate, one for all clips or [N] per clip (each video's own rate).
    window: frames per evaluation window, or None for whole videos.
  Returns:
    `VideoRates` of K videos or windows.
  """
  pred, true, units, snr, details = [], [], [], [], []
  clip_length = signals.shape[1]
  for video, rows in videos_in_order(video_ids, clip_index):
    video_fps = float(np.broadcast_to(np.asarray(fps, np.float64), len(video_ids))[rows[0]])
    for k, (s, p) in enumerate(zip(windows(signals[rows].reshape(-1), window),
                                   windows(ppg[rows].reshape(-1), window))):
      freqs, power = spectrum(s, video_fps, band=band, diff=diff)
      pred.append(peak_bpm(freqs, power, band))
      true.append(heart_rate(p, video_fps, band=band))
      snr.append(spectrum_snr_db(freqs, power, true[-1] / 60.0, band))
      units.append(f"{video}#{k}" if window else str(video))
      pieces = np.stack(windows(s, clip_length))
      agreement = uncertainty.window_agreement(
          heart_rate(pieces, video_fps, band=band, diff=diff), pred[-1],
          tolerance=60.0 * video_fps / clip_length)
      found = uncertainty.spectral_confidence(freqs, power[None], band,
                                              resolution=video_fps / len(s))
      found["confidence"] = found["confidence"] * agreement
      details.append({**found, "window_agreement": np.atleast_1d(agreement)})
  return VideoRates(np.asarray(pred), np.asarray(true), units, np.asarray(snr),
                    {key: np.concatenate([d[key] for d in details]) for key in details[0]}
                    if details else {})


def videos_in_order(video_ids, clip_index) -> list[tuple[object, np.ndarray]]:
  """[(video id, the row numbers of its clips in video order)], videos sorted by id."""
  video_ids, clip_index = np.asarray(video_ids), np.asarray(clip_index)
  out = []
  for video in np.unique(video_ids):
    rows = np.flatnonzero(video_ids == video)
    out.append((video, rows[np.argsort(clip_index[rows])]))
  return out
