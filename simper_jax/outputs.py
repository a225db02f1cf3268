"""What an evaluation reports: the zero-shot regions of the test labels, the results tables,
the unlabelled runs' prediction tables, and the files (results.json, CSVs) written whole.

`simper_jax.evaluate` computes the readouts; this module says what they found.
"""

import json
import os

import numpy as np

from simper_jax import evaluate
from simper_jax import uncertainty
from simper_jax import workdir as run_files


REGIONS = ("seen", "interpolation", "extrapolation")
REGION_WORDS = {"seen": "inside", "interpolation": "between", "extrapolation": "beyond"}


def label_regions(labels: np.ndarray, seen_bands) -> dict:
  """Zero-shot regions of the test labels, given the label ranges the training split covers.

  Args:
    labels: [M]; seen_bands: ((low, high), ...).
  Returns:
    {'seen': inside a band, 'interpolation': outside every band but between the lowest and
    the highest seen label, 'extrapolation': below or above them}: [M] boolean masks, the
    empty ones left out.
  """
  labels = np.asarray(labels, np.float64)
  seen = np.zeros(len(labels), bool)
  for low, high in seen_bands:
    seen |= (labels >= low) & (labels <= high)
  lowest, highest = min(b[0] for b in seen_bands), max(b[1] for b in seen_bands)
  beyond = (labels < lowest) | (labels > highest)
  masks = {"seen": seen, "interpolation": ~seen & ~beyond, "extrapolation": beyond}
  return {name: mask for name, mask in masks.items() if mask.any()}


def unseen_bands(seen_bands, low: float, high: float) -> list[tuple[float, float]]:
  """The parts of [low, high] outside every seen band: what a figure shades."""
  gaps, start = [], low
  for band_low, band_high in sorted(seen_bands):
    if band_low > start:
      gaps.append((start, min(band_low, high)))
    start = max(start, band_high)
  if start < high:
    gaps.append((start, high))
  return [(a, b) for a, b in gaps if b > a]


def region_results(predictions: dict, test_labels: np.ndarray, seen_bands) -> dict:
  """{region: {readout: metrics}} of {readout: (predicted, true, ...)}, for the per-clip
  readouts: those whose truth is the test clips' labels (a per-video readout, scored against
  each video's own rate, has no clip to place in a region — even when there are as many
  videos as clips)."""
  regions = label_regions(test_labels, seen_bands)
  per_clip = {name: (np.asarray(pred), np.asarray(true))
              for name, (pred, true, *_) in predictions.items()
              if np.array_equal(true, test_labels)}
  return {region: {name: evaluate.regression_metrics(pred[mask], true[mask])
                   for name, (pred, true) in per_clip.items()}
          for region, mask in regions.items()}


# (metrics key, column title, number format) of the results tables, in order: a column shows
# when any row has its key, and a value is followed by its standard error ('<key>_se') when it
# has one.
COLUMNS = (("n", "n", "{}"), ("mae", "MAE", "{:.4f}"), ("mape", "MAPE %", "{:.2f}"),
           ("rmse", "RMSE", "{:.4f}"), ("pearson_r", "r", "{:.3f}"),
           ("snr_db", "SNR dB", "{:.2f}"), ("count_mae", "count MAE", "{:.3f}"),
           ("obo", "OBO", "{:.3f}"),
           # How far to trust it (simper_jax/uncertainty.py): the MAE of the most confident
           # half, and the test truths' share inside their calibrated intervals.
           ("mae_at_50", "MAE@50%", "{:.4f}"), ("coverage", "coverage", "{:.2f}"),
           ("harmonic", "harmonic", "{}"))


def metric_cell(metrics: dict, key: str, fmt: str) -> str:
  """'value ± standard error', 'value' without one, '—' for a missing or undefined value."""
  value = metrics.get(key)
  if value is None:
    return "—"
  error = metrics.get(f"{key}_se")
  return fmt.format(value) + ("" if error is None else " ± " + fmt.format(error))


def present_columns(results: dict, skip=()) -> list[tuple[str, str, str]]:
  """The `COLUMNS` that some row of {readout: metrics} has."""
  return [c for c in COLUMNS if c[0] not in skip and any(c[0] in m for m in results.values())]


def format_table(results: dict, unit: str = "") -> str:
  """A plain-text table, one row per readout, a column per metric some readout has (`COLUMNS`;
  the counting columns for Countix, SNR for the heart-rate readouts that have a signal)."""
  columns = present_columns(results, skip=("harmonic",))
  titles = ["readout"] + [title + (unit if key == "mae" else "") for key, title, _ in columns]
  rows = [[name] + [metric_cell(m, key, fmt) for key, _, fmt in columns]
          for name, m in results.items()]
  widths = [max(len(row[i]) for row in [titles] + rows) for i in range(len(titles))]
  line = lambda cells: "  ".join([cells[0].ljust(max(widths[0], 14))] + [
      cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])])
  return "\n".join(line(cells) for cells in [titles] + rows)


# Per-clip fields written beside each prediction of an unlabelled evaluation, where the data
# has them (video_folder does).
UNLABELLED_KEYS = ("video_id", "clip_index", "start_s")


def unlabelled_predictions(test: dict, *, fps: float, band, harmonic: int, protocol: str,
                           unit: str, ood_scores: np.ndarray | None = None,
                           ood_threshold: float | None = None):
  """What can be said without labels: the FFT readout's rate of each test clip, and of each
  video (the median over its clips: robust to a few clips read at a harmonic), with how sure
  each is and whether the clip is unlike the training clips.

  Args:
    test: `compute_features` output: 'signals' [N, L] and the UNLABELLED_KEYS it has.
    ood_scores: [N] `uncertainty.ood_report` scores, flagged above `ood_threshold`.

  Returns:
    (by_clip, by_video) pandas DataFrames: by_clip has the UNLABELLED_KEYS, `frequency_hz`,
    `rate_<unit>` (the same rate in the label's unit: bpm for heart rate), `confidence`,
    `peak_prominence` (`uncertainty.spectral_confidence`) and, given scores, `ood_score` and
    `ood`; by_video (only with 'video_id', else empty) has `video_id`, `clips`, `frequency_hz`
    (median), `min_hz`, `max_hz`, `rate_<unit>`, `confidence` (its clips' median times the
    share of them within one frequency bin, fps / L, of its rate) and `ood_clips` (how many
    are flagged).
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top  (only unlabelled runs need it)
  frequency, details = evaluate.fft_readout(test["signals"], fps, band, harmonic)
  rate_column = f"rate_{unit or 'unit'}"
  per_unit = evaluate.LABEL_HZ.get(protocol) or 1.0
  text = lambda values: [v.decode() if isinstance(v, bytes) else v for v in values]
  by_clip = pd.DataFrame({k: text(np.asarray(test[k]).tolist()) for k in UNLABELLED_KEYS
                          if k in test})
  by_clip["frequency_hz"] = np.round(frequency, 4)
  by_clip[rate_column] = np.round(frequency / per_unit, 4)
  by_clip["confidence"] = np.round(details["confidence"], 4)
  by_clip["peak_prominence"] = np.round(details["peak_prominence"], 3)
  if ood_scores is not None:
    by_clip["ood_score"] = np.round(ood_scores, 4)
    by_clip["ood"] = ood_scores > ood_threshold
  if "video_id" not in by_clip:
    return by_clip, pd.DataFrame()
  by_video = by_clip.groupby("video_id", sort=True).agg(
      clips=("frequency_hz", "size"), frequency_hz=("frequency_hz", "median"),
      min_hz=("frequency_hz", "min"), max_hz=("frequency_hz", "max"),
      confidence=("confidence", "median")).reset_index()
  resolution = fps / test["signals"].shape[1]
  agreement = by_clip.groupby("video_id", sort=True)["frequency_hz"].apply(
      lambda rates: uncertainty.window_agreement(rates.to_numpy(), float(rates.median()),
                                                 resolution)).to_numpy()
  by_video["frequency_hz"] = np.round(by_video["frequency_hz"], 4)
  by_video[rate_column] = np.round(by_video["frequency_hz"] / per_unit, 4)
  by_video["confidence"] = np.round(by_video["confidence"] * agreement, 4)
  if ood_scores is not None:
    by_video["ood_clips"] = by_clip.groupby("video_id", sort=True)["ood"].sum().to_numpy()
  return by_clip, by_video


def write_csv(workdir: str, name: str, table) -> str:
  """workdir/name from a DataFrame, written whole or not at all (a temporary file renamed)."""
  path = os.path.join(workdir, name)
  run_files.write_atomic(path, table.to_csv(index=False))
  return path


def write_results(workdir: str, payload: dict) -> tuple[str, str | None]:
  """Writes workdir/results.json; an existing one is first kept as results.previous.json.

  Returns:
    (path written, a sentence about the file it replaced, or None).
  """
  path = os.path.join(workdir, "results.json")
  replaced = None
  if os.path.exists(path):
    with open(path) as f:
      try:
        old_step = json.load(f).get("step")
      except ValueError:
        old_step = "?"
    os.replace(path, os.path.join(workdir, "results.previous.json"))
    replaced = (f"It replaces the results of step {old_step}, kept as "
                f"{os.path.join(workdir, 'results.previous.json')}.")
  run_files.write_atomic(path, json.dumps(payload, indent=2))
  return path, replaced
