"""Classic, training-free rPPG methods: a mean-RGB trace of the face crop → a pulse signal.

Each is a pure NumPy function `method(rgb [T, 3], fps) -> pulse [T]`, written from its paper's
equations; the heart rate is then read by the same protocol as every learned readout
(`simper_jax.heart_rate.heart_rate`: detrend, band-pass, periodogram peak). The channel order
is R, G, B.

Implemented so far: GREEN, CHROM, POS (issue 15 adds ICA, LGI, PBV and OMIT).
"""

import numpy as np
from scipy import signal as scipy_signal

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
  b, a = scipy_signal.butter(3, [band[0] / fps * 2, band[1] / fps * 2], btype="bandpass")
  pulse = np.zeros(len(rgb))
  window = np.hanning(length)
  for start in range(0, max(1, len(rgb) - length + 1), length // 2):
    part = rgb[start:start + length]
    normalized = part / part.mean(0)
    x = 3 * normalized[:, 0] - 2 * normalized[:, 1]
    y = 1.5 * normalized[:, 0] + normalized[:, 1] - 1.5 * normalized[:, 2]
    padlen = min(len(part) - 1, 3 * max(len(a), len(b)))
    xf, yf = (scipy_signal.filtfilt(b, a, v, padlen=padlen) for v in (x, y))
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


METHODS = {"green": green, "chrom": chrom, "pos": pos}
