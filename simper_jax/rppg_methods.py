"""Classic, training-free rPPG methods: a mean-RGB trace of the face crop → a pulse signal.

Each is a pure NumPy function `method(rgb [T, 3], fps) -> pulse [T]`, written from its paper's
equations; the heart rate is then read by the same protocol as every learned readout
(`simper_jax.heart_rate.heart_rate`: detrend, band-pass, periodogram peak). The channel order
is R, G, B.

GREEN, ICA, CHROM, POS, LGI, PBV and OMIT; `METHODS` maps their lower-case names to them.
"""

import warnings

import numpy as np
import scipy  # scipy.signal loads on first use: see evaluate.py

from simper_jax import heart_rate as hr

# Window of the methods that normalize locally (CHROM, POS): 1.6 s, about one cardiac cycle
# at the lowest plausible heart rate (Wang et al. 2017 §IV).
WINDOW_SECONDS = 1.6


def _check(rgb: np.ndarray) -> np.ndarray:
  rgb = np.asarray(rgb, np.float64)
  if rgb.ndim != 2 or rgb.shape[1] != 3:
    raise ValueError(f"Expected a mean-RGB trace [T, 3]; got shape {rgb.shape}.")
  if np.any(rgb.mean(0) <= 0):
    raise ValueError("The trace's mean colour must be positive in every channel (a face crop's "
                     "mean pixel); got " + str(rgb.mean(0)) + ".")
  return rgb


def green(rgb: np.ndarray, fps: float) -> np.ndarray:
  """GREEN (Verkruysse, Svaasand & Nelson 2008): the green channel carries the strongest
  plethysmographic signal; the pulse is its mean over the skin, demeaned."""
  del fps
  g = _check(rgb)[:, 1]
  return g - g.mean()


def chrom(rgb: np.ndarray, fps: float, band=(0.7, 4.0)) -> np.ndarray:
  """CHROM (de Haan & Jeanne 2013, eq. 9–11): in overlapping Hann windows, each channel is
  normalized by its window mean, projected on the two chrominance signals
  X = 3R − 2G and Y = 1.5R + G − 1.5B, both band-passed, and combined as S = X − (σX/σY)·Y,
  which cancels a change of the light's intensity and specular reflection under the paper's
  standardized-skin-tone assumption; windows are overlap-added.
  """
  rgb = _check(rgb)
  length = max(2, int(round(WINDOW_SECONDS * fps)))
  length += length % 2  # an even window: half-overlapping Hann windows sum to a constant
  b, a = scipy.signal.butter(3, [band[0] / fps * 2, band[1] / fps * 2], btype="bandpass")
  pulse = np.zeros(len(rgb))
  window = np.hanning(length)
  for start in range(0, max(1, len(rgb) - length + 1), length // 2):
    part = rgb[start:start + length]
    normalized = part / part.mean(0)
    x = 3 * normalized[:, 0] - 2 * normalized[:, 1]
    y = 1.5 * normalized[:, 0] + normalized[:, 1] - 1.5 * normalized[:, 2]
    padlen = min(len(part) - 1, 3 * max(len(a), len(b)))
    xf, yf = (scipy.signal.filtfilt(b, a, v, padlen=padlen) for v in (x, y))
    alpha = xf.std() / max(yf.std(), 1e-12)
    s = xf - alpha * yf
    pulse[start:start + len(part)] += window[:len(part)] * s
  return pulse


def pos(rgb: np.ndarray, fps: float) -> np.ndarray:
  """POS, plane-orthogonal-to-skin (Wang, den Brinker, Stuijk & de Haan 2017, Algorithm 1): in
  each window of 1.6 s (sliding by one frame), temporal normalization Cn = C / mean(C), the
  projection S = [[0, 1, −1], [−2, 1, 1]] · Cn onto the plane orthogonal to the skin tone
  (both rows sum to 0, so an intensity change, the same factor on every channel, vanishes),
  tuning h = S1 + (σ(S1)/σ(S2))·S2, and overlap-adding h − mean(h)."""
  rgb = _check(rgb)
  length = max(2, int(round(WINDOW_SECONDS * fps)))
  projection = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
  pulse = np.zeros(len(rgb))
  for end in range(length, len(rgb) + 1):
    part = rgb[end - length:end]
    s = (part / part.mean(0)) @ projection.T  # [length, 2]
    h = s[:, 0] + s[:, 0].std() / max(s[:, 1].std(), 1e-12) * s[:, 1]
    pulse[end - length:end] += h - h.mean()
  return pulse


def ica(rgb: np.ndarray, fps: float, band=(0.75, 2.5), seed: int = 0) -> np.ndarray:
  """ICA (Poh, McDuff & Picard 2010): the three channels, detrended and standardized, are
  unmixed into three independent sources, and the source whose power spectrum has the highest
  peak inside the heart-rate `band` is the pulse. Poh et al. used JADE and always took the
  second source; scikit-learn's FastICA (a maintained solver of the same model) with the
  rPPG-Toolbox's rule of the strongest in-band peak is used here, since ICA's source order is
  arbitrary."""
  from sklearn.decomposition import FastICA  # pylint: disable=g-import-not-at-top
  from sklearn.exceptions import ConvergenceWarning  # pylint: disable=g-import-not-at-top
  rgb = _check(rgb)
  x = scipy.signal.detrend(rgb, axis=0)
  x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
  # A few traces stop at max_iter short of tol; their unmixing still isolates the pulse (the
  # lamp tests include such traces), and a warning per video would flood the evaluation log.
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    sources = FastICA(n_components=3, whiten="unit-variance", random_state=seed,
                      max_iter=1000, tol=1e-3).fit_transform(x)  # [T, 3]
  freqs, power = scipy.signal.periodogram(sources, fs=fps, axis=0)
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  return sources[:, int(np.argmax(power[in_band].max(0)))]


def lgi(rgb: np.ndarray, fps: float) -> np.ndarray:
  """LGI, local group invariance (Pilz, Zaunseder, Krajewski & Blazek 2018): the colour
  vectors are projected off their principal direction (the first left singular vector of
  X Xᵀ, X = [3, T], which an intensity change only scales), Y = (I − s sᵀ) X; the pulse is
  Y's second row."""
  del fps
  x = _check(rgb).T  # [3, T]
  u, _, _ = np.linalg.svd(x @ x.T)
  return _second_row_off(x, u[:, 0])


def pbv(rgb: np.ndarray, fps: float) -> np.ndarray:
  """PBV, blood-volume-pulse signature (de Haan & van Leest 2014): with the channels
  normalized by their means, Cn = [3, T] (zero mean), and the signature estimated as each
  channel's share of the variation, Pbv = σ(Cn) / ‖σ(Cn)‖, the pulse is the projection
  Cnᵀ W / (Pbvᵀ W) with W = (Cn Cnᵀ)⁻¹ Pbv: the direction whose output has the least power
  while keeping unit gain along the pulse's signature."""
  del fps
  rgb = _check(rgb)
  cn = (rgb / rgb.mean(0) - 1).T  # [3, T]
  signature = cn.std(1)
  signature /= max(np.linalg.norm(signature), 1e-12)
  w = np.linalg.solve(cn @ cn.T, signature)
  return (cn.T @ w) / (signature @ w)


def omit(rgb: np.ndarray, fps: float) -> np.ndarray:
  """OMIT, orthogonal matrix image transformation (Casado & López 2022): as LGI, with the
  principal direction taken from the QR decomposition of X = [3, T] (the first column of Q)
  instead of an SVD; the pulse is the second row of (I − q qᵀ) X."""
  del fps
  x = _check(rgb).T  # [3, T]
  q, _ = np.linalg.qr(x)
  return _second_row_off(x, q[:, 0])


def _second_row_off(x: np.ndarray, direction: np.ndarray) -> np.ndarray:
  """Row 1 of (I − d dᵀ) x: the colour vectors [3, T] projected off the unit `direction`."""
  d = direction[:, None]
  return ((np.eye(3) - d @ d.T) @ x)[1]


METHODS = {"green": green, "ica": ica, "chrom": chrom, "pos": pos, "lgi": lgi, "pbv": pbv,
           "omit": omit}


def video_pulses(method: str, mean_rgb: np.ndarray, video_ids, clip_index, fps) -> np.ndarray:
  """The pulse of `method` for each of N clips, run once per whole video.

  A video's clips are put in order and their traces concatenated, as the heart-rate protocol
  concatenates the learned readouts' signals: the methods' windows (CHROM, POS) and ICA's
  unmixing then see the whole video, as the rPPG-Toolbox runs them, not 6-s pieces.

  Args:
    method: a name in `METHODS`; mean_rgb: [N, T, 3] each clip's mean face colour per frame.
    video_ids, clip_index: [N] each clip's video and its position in it.
    fps: one frame rate, or [N] each clip's video's own.
  Returns:
    [N, T] pulse signals, row for row with `mean_rgb`.
  """
  mean_rgb = np.asarray(mean_rgb, np.float64)
  clip_fps = np.broadcast_to(np.asarray(fps, np.float64), len(mean_rgb))
  pulses = np.empty(mean_rgb.shape[:2])
  for _, rows in hr.videos_in_order(video_ids, clip_index):
    pulse = METHODS[method](mean_rgb[rows].reshape(-1, 3), float(clip_fps[rows[0]]))
    pulses[rows] = pulse.reshape(len(rows), -1)
  return pulses
