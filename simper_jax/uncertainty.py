"""How far to trust a rate: spectral-peak confidence, calibrated intervals, selective risk.

The pieces the readouts, the figures, the report and predict call (docs/readouts.md):

  peak_confidence      a spectrum's peak: its share of the in-band power and its prominence
                       over the strongest peak that is not one of its harmonics
  calibration_split    which training examples calibrate the intervals (never test ones)
  conformal_intervals  split-conformal [low, high] at a coverage, each scaled by a difficulty
  selective_risk       MAE when only the most confident predictions are kept, and the area
                       under the risk–coverage curve

Only training data chooses anything here: the calibration part is carved out of the training
split (by group, so one recording's windows are not on both sides), and a caller that would
calibrate on test or on the examples a probe was fitted on gets an error (`check_disjoint`).
"""

from collections.abc import Sequence

import crepes
import numpy as np

from simper_jax import errors

# Coverages at which selective MAE is reported (the most confident share kept).
COVERAGES = (1.0, 0.9, 0.8, 0.5, 0.2)


def _is_harmonic(f: float, of: float, tolerance: float) -> bool:
  """Whether `f` lies within `tolerance` (relative) of k·`of` or `of`/k for k = 2, 3, 4."""
  return any(abs(f - k * of) <= tolerance * k * of or abs(f - of / k) <= tolerance * of / k
             for k in (2, 3, 4))


def peak_confidence(freqs: np.ndarray, power: np.ndarray, band: tuple[float, float], *,
                    tolerance: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
  """(share, prominence) [N] of power spectra [N, F] on `freqs` [F] inside `band` (Hz).

  share: the highest in-band bin's part of the in-band power (1/F_band for white noise, 1 for
  a pure tone). prominence: its power over the highest local maximum that is not within
  `tolerance` of one of its harmonics or sub-harmonics (2f, 3f, 4f, f/2, f/3, f/4) — a strong
  2f is what a periodic waveform that is not a sine has, not a rival reading — as a ratio ≥ 1
  (inf when no rival peak exists).
  """
  inside = (freqs >= band[0]) & (freqs <= band[1])
  f, p = freqs[inside], np.asarray(power, np.float64)[:, inside]
  total = p.sum(axis=1)
  top = p.argmax(axis=1)
  share = p[np.arange(len(p)), top] / np.where(total > 0, total, 1.0)
  prominence = np.full(len(p), np.inf)
  for n, row in enumerate(p):  # per spectrum: few peaks each, a vectorized form is no clearer
    peaks = [k for k in range(len(row)) if k != top[n]
             and (k == 0 or row[k] >= row[k - 1]) and (k == len(row) - 1 or row[k] >= row[k + 1])
             and not _is_harmonic(f[k], f[top[n]], tolerance)]
    rival = max((row[k] for k in peaks), default=0.0)
    if rival > 0:
      prominence[n] = row[top[n]] / rival
  return share, prominence


def calibration_split(groups: Sequence, fraction: float, seed: int = 0) -> np.ndarray:
  """A boolean mask [N] over training examples: True for the calibration part, about
  `fraction` of the groups (a recording, a subject), chosen at random by `seed`.

  Raises:
    ConfigError: fraction outside (0, 1), or fewer than 2 groups to divide.
  """
  if not 0.0 < fraction < 1.0:
    raise errors.ConfigError(f"eval.calibration_fraction={fraction}: expected a share of the "
                             f"training split strictly between 0 and 1.")
  names = np.asarray([str(g) for g in groups])
  unique = np.unique(names)
  if len(unique) < 2:
    raise errors.ConfigError(f"eval.calibration_fraction: {len(unique)} training group(s); "
                             f"calibrating needs at least 2 (one to fit, one to calibrate).")
  rng = np.random.default_rng(seed)
  count = min(len(unique) - 1, max(1, round(fraction * len(unique))))
  chosen = rng.choice(unique, size=count, replace=False)
  return np.isin(names, chosen)


def check_disjoint(calibration_ids: Sequence, **others: Sequence) -> None:
  """Raises ValueError when a calibration example id is also in one of `others` (test=...,
  probe_fit=...): intervals calibrated there would cover by construction, not by evidence."""
  calibration = set(map(str, calibration_ids))
  for name, ids in others.items():
    shared = calibration & set(map(str, ids))
    if shared:
      raise ValueError(f"{len(shared)} calibration example(s) are also in {name} (for instance "
                       f"{sorted(shared)[0]!r}); calibrate on a held-out part of training.")


def conformal_intervals(cal_pred: np.ndarray, cal_target: np.ndarray, cal_scale: np.ndarray,
                        pred: np.ndarray, scale: np.ndarray, coverage: float = 0.9
                        ) -> tuple[np.ndarray, np.ndarray]:
  """(low, high) [N] around `pred` [N]: normalized split-conformal at `coverage`.

  The calibration residuals |target − pred| are divided by each example's difficulty scale
  (> 0; larger: less sure), so an interval is narrow where its readout is sure and wide where
  it is not; crepes computes the finite-sample quantile. Guarantee (exchangeable data):
  coverage ≥ `coverage` on average over calibration sets.
  """
  cal_scale, scale = np.maximum(cal_scale, 1e-12), np.maximum(scale, 1e-12)
  regressor = crepes.ConformalRegressor()
  regressor.fit(np.asarray(cal_target, np.float64) - np.asarray(cal_pred, np.float64),
                sigmas=np.asarray(cal_scale, np.float64))
  bounds = regressor.predict_int(np.asarray(pred, np.float64),
                                 sigmas=np.asarray(scale, np.float64), confidence=coverage)
  return bounds[:, 0], bounds[:, 1]


def selective_risk(abs_errors: np.ndarray, confidence: np.ndarray,
                   coverages: Sequence[float] = COVERAGES) -> dict:
  """MAE of the most confident predictions at each coverage, and the AURC.

  Returns:
    {"mae_at": {coverage: MAE of the ceil(coverage·N) most confident}, "aurc": the mean, over
    k = 1..N, of the MAE of the k most confident (the area under the risk–coverage curve;
    lower is better, and it equals the MAE when confidence says nothing)}. Ties in confidence
    are broken by order of appearance (a stable sort), so the result does not depend on luck.
  """
  abs_errors = np.asarray(abs_errors, np.float64)
  order = np.argsort(-np.asarray(confidence, np.float64), kind="stable")
  running = np.cumsum(abs_errors[order]) / np.arange(1, len(order) + 1)
  mae_at = {float(c): float(running[max(1, int(np.ceil(c * len(order) - 1e-9))) - 1])
            for c in coverages}
  return {"mae_at": mae_at, "aurc": float(running.mean())}
