"""How far to trust a rate: a confidence for each prediction, calibrated intervals, selective
risk, and out-of-distribution flags (docs/uncertainty.md).

The pieces the evaluation (run.py), the readouts (evaluate.py), the figures, the report and
predict call:

  spectral_confidence  a spectrum's peak: its share of the in-band power, discounted by the
                       strongest rival that is not one of its harmonics (`peak_confidence`);
                       `spread_confidence` and `window_agreement` for the other readouts
  calibration_split    which training recordings calibrate the intervals (never test ones)
  calibrate            normalized split-conformal [low, high] per readout, and their coverage
  selective_metrics    MAE when only the most confident predictions are kept, and the AURC
  ood_features, ood_report   how unlike the training clips a clip's feature signal is
  SHIFTS               test clips made unlike training on purpose (noise, still, flicker)
  save, RunCalibration what predict needs of a run: workdir/uncertainty.npz

Only training data chooses anything here: the calibration part is carved out of the training
split (by group, so one recording's windows are not on both sides), and a caller that would
calibrate on test or on the examples a probe was fitted on gets an error (`check_disjoint`).
"""

import io
import os
from collections.abc import Sequence

import numpy as np

from simper_jax import errors
from simper_jax import workdir as run_files

# Coverages at which selective MAE is reported (the most confident share kept).
COVERAGES = (1.0, 0.9, 0.8, 0.5, 0.2)


def check_config(eval_config, fail) -> None:
  """The eval fields read here; `fail(field, expected)` raises errors.ConfigError."""
  fraction = eval_config.get("calibration_fraction", 0.0)
  if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
    fail("eval.calibration_fraction", "expected a share of the training split in [0, 1) (0: "
                                      "no calibration).")
  coverage = eval_config.get("coverage", 0.9)
  if not (isinstance(coverage, (int, float)) and 0 < coverage < 1):
    fail("eval.coverage", "expected a nominal coverage strictly between 0 and 1, e.g. 0.9.")
  unknown = [name for name in eval_config.get("ood_shifts", ()) if name not in SHIFTS]
  if unknown:
    fail("eval.ood_shifts", f"unknown {unknown}; expected names from {tuple(SHIFTS)}.")
  if eval_config.get("ood_shift_clips", 256) < 1:
    fail("eval.ood_shift_clips", "expected at least 1.")


HARMONICS = (2.0, 3.0, 4.0, 1 / 2, 1 / 3, 1 / 4)  # multiples of a peak that are not rivals


def peak_confidence(freqs: np.ndarray, power: np.ndarray, band: tuple[float, float], *,
                    resolution: float = 0.0,
                    tolerance: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
  """(share, prominence) [N] of power spectra [N, F] on `freqs` [F] inside `band` (Hz).

  share: the part of the in-band power within `resolution` (Hz) of the highest in-band bin —
  a signal of T samples at fs resolves fs/T, and a zero-padded periodogram spreads even a
  pure tone over the bins of that lobe — so 1 for a pure tone, about 2·resolution / the band
  for white noise. prominence: the peak's power over the highest local maximum beyond the
  lobe that is not within `tolerance` (relative) of one of its harmonics or sub-harmonics
  (2f, 3f, 4f, f/2, f/3, f/4) — a strong 2f is what a periodic waveform that is not a sine
  has, not a rival reading — as a ratio ≥ 1 (inf when no rival peak exists).
  """
  inside = (freqs >= band[0]) & (freqs <= band[1])
  f, p = freqs[inside], np.asarray(power, np.float64).reshape(-1, len(freqs))[:, inside]
  rows = np.arange(len(p))
  total = p.sum(axis=1)
  top = p.argmax(axis=1)
  lobe = np.abs(f[None, :] - f[top][:, None]) <= resolution + 1e-12  # [N, F]
  share = np.where(lobe, p, 0.0).sum(axis=1) / np.where(total > 0, total, 1.0)
  # Local maxima (the band's edges count when they rise towards them) outside the peak's lobe
  # and away from its harmonics: [N, F] masks.
  padded = np.pad(p, ((0, 0), (1, 1)), constant_values=-np.inf)
  local_max = (p >= padded[:, :-2]) & (p >= padded[:, 2:])
  ratio = f[None, :] / np.maximum(f[top], 1e-12)[:, None]
  harmonic = np.zeros_like(local_max)
  for k in HARMONICS:
    harmonic |= np.abs(ratio - k) <= tolerance * k
  rival_mask = local_max & ~harmonic & ~lobe
  rival_mask[rows, top] = False
  rival = np.where(rival_mask, p, 0.0).max(axis=1, initial=0.0)
  with np.errstate(divide="ignore"):
    prominence = np.where(rival > 0, p[rows, top] / np.where(rival > 0, rival, 1.0), np.inf)
  return share, prominence


def spectral_confidence(freqs: np.ndarray, power: np.ndarray, band, *,
                        resolution: float = 0.0) -> dict:
  """How sure a reading off the highest in-band peak of each of [N, F] spectra is: {'confidence',
  'peak_share', 'peak_prominence': [N]}, `peak_confidence`'s two numbers and their product
  confidence = share · P / (1 + P) — the peak's part of the in-band power, times its part of
  the pair (peak, strongest rival): a rival as strong as the peak halves it. In (0, 1]."""
  share, prominence = peak_confidence(freqs, power, band, resolution=resolution)
  pair = 1.0 / (1.0 + 1.0 / prominence)  # P / (1 + P), 1 for no rival (P = inf)
  return {"confidence": share * pair, "peak_share": share, "peak_prominence": prominence}


def spread_confidence(spread: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """A spread of possible readings [M] (label units) as a confidence in (0, 1]: 1 / (1 +
  spread / the training labels' std), so that it means the same in Hz, bpm or kelvin."""
  scale = float(np.std(labels)) or 1.0
  return 1.0 / (1.0 + np.asarray(spread, np.float64) / scale)


def window_agreement(window_rates: np.ndarray, rate: float, tolerance: float) -> float:
  """The share of a recording's windows whose own rate [K] is within `tolerance` of the rate
  read off the whole (1 when they all agree; a recording whose windows disagree has no one
  rate)."""
  window_rates = np.atleast_1d(np.asarray(window_rates, np.float64))
  return float(np.mean(np.abs(window_rates - rate) <= tolerance + 1e-9))


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
  it is not; crepes computes the finite-sample quantile (the ⌈coverage·(n + 1)⌉-th smallest
  normalized residual; where coverage·(n + 1) is a whole number, crepes' floating point can
  take the next one: wider, never narrower). Guarantee (exchangeable data): coverage ≥
  `coverage` on average over calibration sets.
  """
  cal_scale, scale = np.maximum(cal_scale, 1e-12), np.maximum(scale, 1e-12)
  if len(cal_pred) < min_calibration(coverage):
    # crepes would warn and return its "maximum size" intervals; no finite interval has the
    # guarantee with so few residuals, so say so plainly.
    return np.full(len(pred), -np.inf), np.full(len(pred), np.inf)
  # Imported here: crepes brings pandas, scipy.stats and scikit-learn (1 s), which a command
  # that stops at a mistake on its command line has no use for.
  import crepes  # pylint: disable=g-import-not-at-top
  regressor = crepes.ConformalRegressor()
  regressor.fit(np.asarray(cal_target, np.float64) - np.asarray(cal_pred, np.float64),
                sigmas=np.asarray(cal_scale, np.float64))
  bounds = regressor.predict_int(np.asarray(pred, np.float64),
                                 sigmas=np.asarray(scale, np.float64), confidence=coverage)
  return bounds[:, 0], bounds[:, 1]


def min_calibration(coverage: float) -> int:
  """The fewest calibration residuals for a finite split-conformal interval at `coverage`:
  the ceil(coverage·(n + 1))-th smallest of n must exist (9 at 0.9, 19 at 0.95)."""
  return int(np.ceil(coverage / (1.0 - coverage) - 1e-9))


def selective_risk(abs_errors: np.ndarray, confidence: np.ndarray,
                   coverages: Sequence[float] = COVERAGES) -> dict:
  """MAE of the most confident predictions at each coverage, and the AURC.

  Returns:
    {"mae_at": {coverage: MAE of the ceil(coverage·N) most confident}, "aurc": the mean, over
    k = 1..N, of the MAE of the k most confident (the area under the risk–coverage curve;
    lower is better, and it equals the MAE when confidence says nothing)}. Ties in confidence
    are broken by order of appearance (a stable sort), so the result does not depend on luck.
  """
  running = _running_mae(abs_errors, confidence)
  mae_at = {float(c): float(running[max(1, int(np.ceil(c * len(running) - 1e-9))) - 1])
            for c in coverages}
  return {"mae_at": mae_at, "aurc": float(running.mean())}


def _running_mae(abs_errors: np.ndarray, confidence: np.ndarray) -> np.ndarray:
  """[N] the MAE of the k most confident predictions, k = 1..N (ties: first come first)."""
  order = np.argsort(-np.asarray(confidence, np.float64), kind="stable")
  return np.cumsum(np.asarray(abs_errors, np.float64)[order]) / np.arange(1, len(order) + 1)


def conformal_scale(confidence: np.ndarray) -> np.ndarray:
  """The difficulty by which a readout's calibration residuals are normalized: 1 / confidence
  (floored at 0.001), so an interval is as many times wider as its reading is less sure."""
  return 1.0 / np.maximum(np.asarray(confidence, np.float64), 1e-3)


def calibrate(calibration: dict, test: dict, coverage: float) -> tuple[dict, dict]:
  """Intervals for every readout of `test` that `calibration` also has, and what they and the
  readout's confidence are worth on test.

  Args:
    calibration, test: {readout: `evaluate.Readout`} of the same fitted readouts on the
      calibration part of the training split and on the test split (details['confidence']).
    coverage: the intervals' nominal coverage (eval.coverage).
  Returns:
    ({readout: {'coverage': the share of test truths inside their interval, 'interval_width':
    the mean width (None where the calibration part is smaller than `min_calibration`: the
    intervals are then infinite), 'calibration_n'}}, {readout: (low [M], high [M])}).
  """
  metrics, intervals = {}, {}
  for name, readout in test.items():
    if name not in calibration:
      continue
    cal = calibration[name]
    scale = lambda r: conformal_scale(r.details["confidence"])
    low, high = conformal_intervals(cal.pred, cal.true, scale(cal), readout.pred, scale(readout),
                                    coverage)
    true = np.asarray(readout.true, np.float64)
    intervals[name] = (low, high)
    width = float(np.mean(high - low))
    metrics[name] = {"coverage": float(np.mean((true >= low) & (true <= high))),
                     "interval_width": width if np.isfinite(width) else None,
                     "calibration_n": int(len(cal.pred))}
  return metrics, intervals


def selective_metrics(readouts: dict) -> dict:
  """{readout: {'selective_mae': {'100%': …, '90%': …, …}, 'mae_at_50', 'aurc'}} of
  {readout: `evaluate.Readout`} on test, the most confident predictions kept first."""
  out = {}
  for name, readout in readouts.items():
    risk = selective_risk(np.abs(np.asarray(readout.pred, np.float64)
                                 - np.asarray(readout.true, np.float64)),
                          readout.details["confidence"])
    out[name] = {"selective_mae": {f"{100 * c:g}%": v for c, v in risk["mae_at"].items()},
                 "mae_at_50": risk["mae_at"][0.5], "aurc": risk["aurc"]}
  return out


def risk_coverage_curve(abs_errors: np.ndarray, confidence: np.ndarray,
                        points: int = 50) -> list[tuple[float, float]]:
  """[(coverage, MAE of the most confident share)] at `points` coverages from 1/points to 1."""
  running = _running_mae(abs_errors, confidence)
  kept = np.unique(np.clip(np.ceil(np.linspace(1 / points, 1, points) * len(running)), 1,
                           len(running)).astype(int))
  return [(k / len(running), float(running[k - 1])) for k in kept]


# --- Out-of-distribution inputs ------------------------------------------------------------------
OOD_BINS = 64  # the fixed frequency grid, 0 to Nyquist, of the OOD features
OOD_K = 5  # the k-th nearest reference clip's distance is the OOD distance
OOD_QUANTILE = 0.95  # the flag's threshold: this quantile of the calibration part's scores
OOD_REFERENCE_MAX = 20_000  # reference rows kept (a random subset beyond), for memory and predict


def ood_features(signals: np.ndarray, fps: float, bins: int = OOD_BINS) -> np.ndarray:
  """[N, T] feature signals → [N, bins + 1]: the square roots of their normalized power
  spectra, the power summed into `bins` equal cells from 0 to fps/2, then the log of each
  signal's standard deviation (its loudness).

  Two things a clip unlike training changes: the shape of the encoder's response (a rhythm
  it never saw, a flicker, noise) and its strength (a still scene or a dead sensor leaves
  the feature signal near its bias, whose spectrum alone — noise's, once normalized — can
  look like anything). The spectrum is on a fixed grid in Hz, so that signals of any length
  (a training clip, a window of a user's recording) land in one space; square roots of
  distributions (the Hellinger embedding), so that a Euclidean distance compares shapes. The
  spectrum is the linear-detrended periodogram zero-padded to a power of two ≥ 4·T, as the
  FFT readout reads it.
  """
  import scipy.signal  # pylint: disable=g-import-not-at-top  (0.7 s; only evaluations use it)
  signals = np.asarray(signals, np.float64)
  nfft = 1 << int(np.ceil(np.log2(max(4 * signals.shape[-1], 2))))
  freqs, power = scipy.signal.periodogram(signals, fs=fps, nfft=nfft, detrend="linear", axis=-1)
  # Power per grid cell: the cumulative power at the cells' edges, differenced (mass-keeping).
  step = freqs[1] - freqs[0]
  bin_edges = np.append(freqs - step / 2, freqs[-1] + step / 2)
  cumulative = np.concatenate([np.zeros((len(power), 1)), np.cumsum(power, axis=1)], axis=1)
  edges = np.linspace(0.0, fps / 2, bins + 1)
  cells = np.maximum(np.diff(np.stack([np.interp(edges, bin_edges, row) for row in cumulative]),
                             axis=1), 0.0)
  total = cells.sum(axis=1, keepdims=True)
  std = np.std(signals, axis=-1, keepdims=True)
  # A constant signal has no spectrum (what detrending leaves is rounding): it gets the flat
  # one, and its loudness says the rest.
  flat = (total <= 0) | (std <= 1e-6 * (np.abs(signals.mean(axis=-1, keepdims=True)) + 1e-12))
  cells = np.where(flat, 1.0 / bins, cells / np.where(total > 0, total, 1.0))
  loudness = np.log(std + 1e-12)
  return np.concatenate([np.sqrt(cells), loudness], axis=1).astype(np.float32)


def knn_distance(reference: np.ndarray, queries: np.ndarray, k: int = OOD_K,
                 chunk: int = 2048) -> np.ndarray:
  """[M] the Euclidean distance from each query [M, D] to its k-th nearest row of `reference`
  [N, D] (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors")."""
  reference = np.asarray(reference, np.float64)
  k = min(k, len(reference))
  squared_ref = np.sum(reference**2, axis=1)
  out = []
  for begin in range(0, len(queries), chunk):
    rows = np.asarray(queries[begin:begin + chunk], np.float64)
    squared = np.sum(rows**2, axis=1)[:, None] + squared_ref[None, :] - 2 * rows @ reference.T
    out.append(np.sqrt(np.maximum(np.partition(squared, k - 1, axis=1)[:, k - 1], 0.0)))
  return np.concatenate(out) if out else np.zeros(0)


def ood_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """[M, 2] the k-NN distance (`knn_distance`) of each query's spectrum and, apart, of its
  loudness, to the reference clips' (`ood_features` rows)."""
  return np.stack([knn_distance(reference[:, :-1], queries[:, :-1]),
                   knn_distance(reference[:, -1:], queries[:, -1:])], axis=1)


def ood_scores(distances: np.ndarray, scale: np.ndarray) -> np.ndarray:
  """[M] the OOD score of `ood_distances` rows: the larger of the two, each in units of its
  OOD_QUANTILE over the calibration part (`scale` [2]): how far from training, in spectrum or
  in loudness, against the farthest held-out training recordings. No weight to choose: each
  distance is 1 at the same tail share of held-out recordings (a median would not do: the
  loudness distances have a far longer tail than the spectra's, and would decide alone)."""
  return np.max(np.asarray(distances) / np.maximum(scale, 1e-12), axis=1)


def mahalanobis_distance(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """[M] each query's Mahalanobis distance from the reference rows' mean, under their
  Ledoit–Wolf shrunk covariance (the second OOD score, reported beside the k-NN one)."""
  from sklearn import covariance  # pylint: disable=g-import-not-at-top
  model = covariance.LedoitWolf().fit(np.asarray(reference, np.float64))
  return np.sqrt(np.maximum(model.mahalanobis(np.asarray(queries, np.float64)), 0.0))


def ood_reference(features: np.ndarray, seed: int = 0) -> np.ndarray:
  """At most OOD_REFERENCE_MAX rows of `features`, chosen at random by `seed`."""
  if len(features) <= OOD_REFERENCE_MAX:
    return features
  rows = np.random.default_rng(seed).choice(len(features), OOD_REFERENCE_MAX, replace=False)
  return features[np.sort(rows)]


def auroc(in_distribution: np.ndarray, shifted: np.ndarray) -> float:
  """The area under the ROC curve of telling `shifted` scores from `in_distribution` ones
  (higher: more unlike training): 0.5 is chance, 1 a perfect separation."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  labels = np.r_[np.zeros(len(in_distribution)), np.ones(len(shifted))]
  return float(metrics.roc_auc_score(labels, np.r_[in_distribution, shifted]))


def ood_report(reference: np.ndarray, calibration: np.ndarray, test: np.ndarray,
               shifted: dict) -> dict:
  """The OOD scores of `ood_features` rows against `reference` (the fitting clips'), the flag's
  threshold, and how well the score tells each shifted set from the test clips.

  Args:
    reference: [N, D] the fitting part's features; calibration: [K, D] the held-out training
      recordings' (they set the scale and the threshold: recordings the reference has not
      seen, as a user's will be); test: [M, D]; shifted: {name: [S, D]} test clips made
      unlike training on purpose (`SHIFTS`).
  Returns:
    {'score': 'knn', 'k', 'quantile', 'scale' [2] (`ood_scores`), 'threshold' (the
    OOD_QUANTILE of the calibration scores), 'flagged': {set: share above the threshold},
    'auroc': {shift: AUROC of shifted vs test}, 'auroc_mahalanobis': {shift: the same for
    `mahalanobis_distance` on the same features}, 'scores_by_set': {set: [n] scores} and
    'mahalanobis_test': [M] (for the figure, the prediction table and `region_aurocs`; not
    for results.json)}.
  """
  sets = {"calibration": calibration, "test": test, **shifted}
  distances = {name: ood_distances(reference, features) for name, features in sets.items()}
  scale = np.quantile(distances["calibration"], OOD_QUANTILE, axis=0)
  scores = {name: ood_scores(d, scale) for name, d in distances.items()}
  threshold = float(np.quantile(scores["calibration"], OOD_QUANTILE))
  mahalanobis = {name: mahalanobis_distance(reference, sets[name]) for name in ("test", *shifted)}
  return {"score": "knn", "k": OOD_K, "quantile": OOD_QUANTILE,
          "scale": [float(v) for v in scale], "threshold": threshold,
          "flagged": {name: float(np.mean(s > threshold)) for name, s in scores.items()},
          "auroc": {name: auroc(scores["test"], scores[name]) for name in shifted},
          "auroc_mahalanobis": {name: auroc(mahalanobis["test"], mahalanobis[name])
                                for name in shifted},
          "scores_by_set": scores, "mahalanobis_test": mahalanobis["test"]}


def add_region_aurocs(report: dict, labels: np.ndarray, seen_bands) -> None:
  """Adds 'unseen_frequencies' to `report`'s AUROCs (both scores): telling the test clips
  whose label lies outside every training band from those inside (zero-shot configs: the
  shift the labels define). Nothing when either side is empty."""
  labels = np.asarray(labels, np.float64)
  seen = np.zeros(len(labels), bool)
  for low, high in seen_bands:
    seen |= (labels >= low) & (labels <= high)
  if seen.all() or not seen.any():
    return
  for key, scores in (("auroc", report["scores_by_set"]["test"]),
                      ("auroc_mahalanobis", report["mahalanobis_test"])):
    report[key]["unseen_frequencies"] = auroc(scores[seen], scores[~seen])


def describe_ood(report: dict) -> str:
  """The OOD report in a few log lines."""
  flagged = ", ".join(f"{name} {100 * share:.0f} %" for name, share in report["flagged"].items())
  lines = [f"\nOut-of-distribution score: the distance of a clip's feature spectrum and "
           f"loudness to the {report['k']}th nearest training clip's, each in units of the "
           f"held-out training recordings' {100 * report['quantile']:g}th percentile; flagged "
           f"above {report['threshold']:.3f} (theirs of the score). Flagged: {flagged}."]
  if report["auroc"]:
    lines.append("AUROC against the test clips (k-NN / Mahalanobis): " + ", ".join(
        f"{name} {value:.3f} / {report['auroc_mahalanobis'].get(name, float('nan')):.3f}"
        for name, value in report["auroc"].items()) + ".")
  return "\n".join(lines)


# Inputs unlike any training clip, made from the test clips (eval.ood_shifts), on which the OOD
# score is evaluated where the truth is known: each `shift(rng, clips [b, T, H, W, C], fps)`
# returns clips of the same shape and dtype (uint8 videos, float16 series).
def _as_dtype(values: np.ndarray, dtype) -> np.ndarray:
  if np.issubdtype(dtype, np.integer):
    return np.clip(np.round(values), 0, np.iinfo(dtype).max).astype(dtype)
  return values.astype(dtype)


def noise_clips(rng: np.random.Generator, clips: np.ndarray, fps: float) -> np.ndarray:
  """White Gaussian noise with each clip's own mean and std per channel: a sensor that
  records nothing, or a camera pointed at nothing in the dark."""
  x = np.asarray(clips, np.float64)
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1e-3)
  return _as_dtype(mean + std * rng.standard_normal(x.shape), clips.dtype)


def static_clips(rng: np.random.Generator, clips: np.ndarray, fps: float) -> np.ndarray:
  """Each clip's first frame held still, with faint sensor noise (1 % of its std): the face
  (or the moving thing) gone, the scene left."""
  x = np.asarray(clips, np.float64)
  still = np.broadcast_to(x[:, :1], x.shape)
  std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1e-3)
  return _as_dtype(still + 0.01 * std * rng.standard_normal(x.shape), clips.dtype)


FLICKER_DEPTH = 0.3  # a strong lamp: brightness ×(1 ± 0.3)


def flicker_clips(rng: np.random.Generator, clips: np.ndarray, fps: float) -> np.ndarray:
  """The clip under a strongly flickering lamp: brightness × (1 + 0.3·sin(2π·0.4·fps·t)), a
  mains flicker aliased to 0.4 × the frame rate (12 Hz at 30 fps), at a random phase."""
  x = np.asarray(clips, np.float64)
  t = np.arange(x.shape[1]) / fps
  phase = rng.uniform(0, 2 * np.pi, (len(x), 1))
  gain = 1.0 + FLICKER_DEPTH * np.sin(2 * np.pi * 0.4 * fps * t[None, :] + phase)
  return _as_dtype(x * gain[:, :, None, None, None], clips.dtype)


SHIFTS = {"noise": noise_clips, "static": static_clips, "flicker": flicker_clips}


def prediction_table(readouts: dict, intervals: dict, ids: np.ndarray,
                     ood_scores: np.ndarray | None, ood_threshold: float | None):
  """One row per (readout, prediction): 'readout', 'unit' (the clip, or for per-video readouts
  the video), 'true', 'predicted', 'low', 'high' (empty without calibration), every detail of
  the readout's confidence, and for per-clip readouts 'ood_score' and 'ood' (above the
  threshold). A pandas DataFrame."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  frames = []
  for name, readout in readouts.items():
    count = len(readout.pred)
    per_clip = count == len(ids) and "unit" not in readout.details
    columns = {"readout": name,
               "unit": readout.details.get("unit", ids if per_clip else np.arange(count)),
               "true": readout.true, "predicted": readout.pred}
    low, high = intervals.get(name, (np.full(count, np.nan), np.full(count, np.nan)))
    columns.update(low=low, high=high)
    columns.update({k: v for k, v in readout.details.items() if k != "unit"})
    if per_clip and ood_scores is not None:
      columns.update(ood_score=ood_scores, ood=ood_scores > ood_threshold)
    frames.append(pd.DataFrame(columns))
  table = pd.concat(frames, ignore_index=True)
  numbers = table.select_dtypes("number").columns
  table[numbers] = table[numbers].round(6)
  return table


UNCERTAINTY_FILE = "uncertainty.npz"


def save(workdir: str, calibration: dict, ood_reference: np.ndarray, ood: dict, *,
         coverage: float) -> str:
  """workdir/uncertainty.npz: what `predict` needs to give a new recording the run's intervals
  and OOD flag — each readout's calibration predictions, truths and confidences, the OOD
  reference features, scale and threshold (`ood_report`). Written whole or not at all."""
  arrays = {"coverage": np.float64(coverage), "ood_reference": ood_reference,
            "ood_scale": np.asarray(ood["scale"], np.float64),
            "ood_threshold": np.float64(ood["threshold"]),
            "readouts": np.asarray(sorted(calibration))}
  for name, readout in calibration.items():
    arrays.update({f"{name}/pred": np.asarray(readout.pred, np.float64),
                   f"{name}/true": np.asarray(readout.true, np.float64),
                   f"{name}/confidence": np.asarray(readout.details["confidence"], np.float64)})
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  path = os.path.join(workdir, UNCERTAINTY_FILE)
  run_files.write_atomic(path, buffer.getvalue())
  return path


class RunCalibration:
  """A trained run's workdir/uncertainty.npz (`save`): calibrated intervals and OOD flags for
  the predictions `predict` makes on new recordings with the run's encoder."""

  def __init__(self, path: str):
    with np.load(path) as stored:
      self.coverage = float(stored["coverage"])
      self.reference = stored["ood_reference"]
      self.scale, self.threshold = stored["ood_scale"], float(stored["ood_threshold"])
      self.readouts = {name: tuple(stored[f"{name}/{key}"] for key in ("pred", "true",
                                                                        "confidence"))
                       for name in stored["readouts"].tolist()}
    self.path = path

  @classmethod
  def of_run(cls, workdir: str) -> "RunCalibration | None":
    """The run's calibration, or None when it was evaluated without one
    (eval.calibration_fraction=0, or before uncertainty.npz existed)."""
    path = os.path.join(workdir, UNCERTAINTY_FILE)
    return cls(path) if os.path.exists(path) else None

  def describe(self, readout: str) -> str:
    """A line saying where `readout`'s intervals come from, and when they are thin evidence."""
    count = len(self.readouts[readout][0])
    return (f"Intervals at {self.coverage:g} from the run's {readout} readout, calibrated on "
            f"{count} held-out training clips ({self.path})"
            + (f"; so few that their coverage on new recordings is uncertain, and windows "
               f"unlike those clips (another length, another camera) are not covered by the "
               f"guarantee." if count < 50 else "."))

  def interval(self, readout: str, pred: np.ndarray,
               confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[low], [high] around predictions of `readout` (a readout the run calibrated, e.g. 'fft')
    with their confidences, at the run's coverage."""
    cal_pred, cal_true, cal_confidence = self.readouts[readout]
    return conformal_intervals(cal_pred, cal_true, conformal_scale(cal_confidence),
                               np.asarray(pred, np.float64), conformal_scale(confidence),
                               self.coverage)

  def ood(self, signals: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """([N] OOD scores, [N] flags) of [N, T] feature signals against the run's training clips."""
    scores = ood_scores(ood_distances(self.reference, ood_features(signals, fps)), self.scale)
    return scores, scores > self.threshold
