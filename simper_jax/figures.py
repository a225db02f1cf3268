"""Figures of a run: each a PNG (matplotlib) with the numbers behind it as a CSV beside it.

Every function takes plain arrays, writes `<out_dir>/<name>.png` and `<out_dir>/<name>.csv`,
and returns the two paths; nothing here reads checkpoints or configs, so a figure can be redrawn
from its CSV alone.
"""

import csv
import json
import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and TPU VMs
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.ticker
import numpy as np

from simper_jax import heart_rate

DPI = 110


def _save(fig, out_dir: str, name: str, header: Sequence[str], rows) -> tuple[str, str]:
  """Writes the figure and its CSV; closes the figure."""
  os.makedirs(out_dir, exist_ok=True)
  png, table = os.path.join(out_dir, f"{name}.png"), os.path.join(out_dir, f"{name}.csv")
  fig.tight_layout()
  fig.savefig(png, dpi=DPI)
  plt.close(fig)
  with open(table, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return png, table


def training_curves(metrics_path: str, out_dir: str) -> tuple[str, str]:
  """The training loss and learning rate against the step, from a run's metrics.jsonl."""
  with open(metrics_path) as f:
    points = [json.loads(line) for line in f if line.strip()]
  if not points:
    raise ValueError(f"{metrics_path}: no logged steps to plot.")
  steps = [p["step"] for p in points]
  loss = [p["train/loss"] for p in points]
  rate = [p["train/learning_rate"] for p in points]
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 4.5), sharex=True)
  top.plot(steps, loss, color="tab:blue")
  top.set_ylabel("training loss")
  # The logged rate is that of the window's last step, constant between decays: a step drawn
  # back to the previous log shows where it changed, where a line would show a false ramp.
  bottom.plot(steps, rate, color="tab:orange", drawstyle="steps-pre")
  bottom.set_ylabel("learning rate")
  bottom.set_yscale("log")
  bottom.set_xlabel("step")
  return _save(fig, out_dir, "training", ("step", "loss", "learning_rate"),
               zip(steps, loss, rate))


def spectra(signals: np.ndarray, true_frequency: np.ndarray | None, fps: float, out_dir: str,
            clips: int = 4, harmonic: int = 1) -> tuple[str, str]:
  """Power spectra of the feature signals of the first `clips` clips, true frequency marked.

  Args:
    signals: [N, L] feature signals sampled at `fps`.
    true_frequency: [N] the clips' true frequencies, Hz; None for a target that is not one.
    harmonic: where the FFT readout looks for the peak (h × the true frequency: a digit
      rotating back and forth looks the same twice per cycle), marked too when not 1.
  """
  if true_frequency is None:
    true_frequency = np.full(len(signals), np.nan)
  signals = np.asarray(signals, np.float64)[:clips]
  # Zero-padded to a power of two ≥ 4 × the length, as the FFT readout does: a 90-frame clip
  # at 30 fps has 0.33 Hz bins unpadded, too coarse to see a peak sit on its mark.
  nfft = heart_rate.next_pow2(4 * signals.shape[-1])
  frequencies = np.fft.rfftfreq(nfft, 1.0 / fps)
  power = np.abs(np.fft.rfft(signals - signals.mean(-1, keepdims=True), n=nfft)) ** 2
  power /= np.maximum(power.max(-1, keepdims=True), 1e-30)  # each clip's peak at 1
  fig, axes = plt.subplots(len(signals), 1, figsize=(6, 1.6 * len(signals)), sharex=True,
                           squeeze=False)
  rows = []
  for i, (ax, clip_power) in enumerate(zip(axes[:, 0], power)):
    ax.plot(frequencies, clip_power, color="tab:blue")
    if np.isfinite(true_frequency[i]):
      ax.axvline(true_frequency[i], color="tab:red", linestyle="--",
                 label=f"true {true_frequency[i]:.2f} Hz")
      if harmonic != 1:
        ax.axvline(harmonic * true_frequency[i], color="tab:green", linestyle=":",
                   label=f"{harmonic} × true")
      ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel(f"clip {i}")
    rows += [(i, f, p, true_frequency[i]) for f, p in zip(frequencies, clip_power)]
  axes[-1, 0].set_xlabel("frequency (Hz)")
  axes[0, 0].set_title("power spectrum of the feature signal (peak = 1)")
  return _save(fig, out_dir, "spectra", ("clip", "frequency_hz", "power", "true_frequency_hz"),
               rows)


def heart_rate_over_time(starts_s: np.ndarray, ends_s: np.ndarray, bpm: np.ndarray,
                         video_bpm: float, spectrum_bpm: np.ndarray, spectrum_power: np.ndarray,
                         *, band_bpm: tuple[float, float], out_dir: str, name: str,
                         title: str, quantity: str = "heart rate", unit: str = "bpm",
                         whole: str = "whole video",
                         columns: Mapping[str, np.ndarray] | None = None) -> tuple[str, str]:
  """A video's heart rate (or a recording's rate: `quantity`, `unit`, `whole`) in sliding
  windows (at each window's centre, its span as a bar) over its whole-video spectrum, the band
  shaded and the whole-video rate marked.

  Writes <name>.png, <name>.csv (the windows) and <name minus its last suffix>.spectrum.csv.

  Args:
    starts_s, ends_s, bpm: [K] the windows' spans (s) and rates, in `unit`.
    video_bpm: the whole video's rate; spectrum_bpm, spectrum_power: [F] its spectrum.
    columns: more [K] per-window values for the CSV ('confidence', ...); 'low' and 'high' (a
      calibrated interval) are also drawn as a band, 'ood' (flags) as crosses.
  """
  columns = dict(columns or {})
  centres = (np.asarray(starts_s) + np.asarray(ends_s)) / 2
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5))
  if "low" in columns and np.all(np.isfinite(columns["low"])):
    top.fill_between(centres, columns["low"], columns["high"], color="tab:blue", alpha=0.15,
                     label="calibrated interval")
  if "ood" in columns and np.any(columns["ood"]):
    flagged = np.asarray(columns["ood"], bool)
    top.plot(centres[flagged], np.asarray(bpm)[flagged], "x", color="tab:red", markersize=7,
             label="unlike training (OOD)")
  top.errorbar(centres, bpm, xerr=(np.asarray(ends_s) - np.asarray(starts_s)) / 2,
               fmt="o-", color="tab:blue", ecolor="0.8", markersize=3,
               label=f"{ends_s[0] - starts_s[0]:g}-s windows")
  top.axhline(video_bpm, color="tab:red", linestyle="--",
              label=f"{whole} {video_bpm:.3g} {unit}")
  top.set_xlabel("time (s)")
  top.set_ylabel(f"{quantity} ({unit})")
  margin = 0.05 * (band_bpm[1] - band_bpm[0])
  top.set_ylim(band_bpm[0] - margin, band_bpm[1] + margin)
  top.legend(loc="upper right", fontsize=8)
  top.set_title(title, fontsize=9)
  shown = spectrum_bpm <= 2.5 * band_bpm[1]
  peak = max(float(np.max(spectrum_power)), 1e-30)
  bottom.plot(spectrum_bpm[shown], spectrum_power[shown] / peak, color="tab:blue")
  bottom.axvspan(*band_bpm, color="tab:green", alpha=0.1, label="band")
  bottom.axvline(video_bpm, color="tab:red", linestyle="--", label=quantity)
  bottom.set_xlabel(f"frequency ({unit})")
  bottom.set_ylabel("power (peak = 1)")
  bottom.set_title(f"spectrum of the {whole}'s signal" + (" (detrended, band-passed)"
                                                          if unit == "bpm" else ""), fontsize=9)
  bottom.legend(loc="upper right", fontsize=8)
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f"{os.path.splitext(name)[0]}.spectrum.csv"), "w",
            newline="") as f:
    writer = csv.writer(f)
    writer.writerow((f"frequency_{unit.lower()}", "power"))
    writer.writerows((f"{b:.4f}", f"{p:.6g}") for b, p in zip(spectrum_bpm, spectrum_power))
  column = f"{quantity.replace(' ', '_')}_{unit.lower()}"
  rate_format = ".4g" if unit != "bpm" else ".2f"
  cell = lambda v: (str(bool(v)) if isinstance(v, (bool, np.bool_)) else
                    format(v, ".4g") if isinstance(v, (float, np.floating)) else str(v))
  return _save(fig, out_dir, name, ("start_s", "end_s", column, *columns),
               ((f"{a:.3f}", f"{b:.3f}", format(r, rate_format),
                 *(cell(values[k]) for values in columns.values()))
                for k, (a, b, r) in enumerate(zip(starts_s, ends_s, bpm))))


def predicted_vs_true(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], unit: str,
                      out_dir: str, unseen_bands: Sequence[tuple[float, float]] = (),
                      columns: int = 4) -> tuple[str, str]:
  """One panel per readout: predicted against true, with the identity line.

  Args:
    predictions: {readout: (predicted [N], true [N])}.
    unit: the target's unit, for the axes ("Hz", "bpm", ...).
    unseen_bands: ((low, high), ...) true values the training split did not hold (zero-shot),
      shaded.
    columns: panels per row.
  """
  names = list(predictions)
  rows_of_panels = -(-len(names) // columns)
  width = min(columns, len(names))
  fig, axes = plt.subplots(rows_of_panels, width, figsize=(3.2 * width, 3.2 * rows_of_panels),
                           squeeze=False)
  for ax in axes.flat[len(names):]:
    ax.set_visible(False)
  rows = []
  for ax, name in zip(axes.flat, names):
    predicted, true = (np.asarray(a, np.float64) for a in predictions[name])
    low, high = min(true.min(), predicted.min()), max(true.max(), predicted.max())
    for i, (band_low, band_high) in enumerate(unseen_bands):
      ax.axvspan(band_low, band_high, color="0.85", zorder=0,
                 label="unseen in training" if i == 0 else None)
    ax.plot([low, high], [low, high], color="0.6", linewidth=1)
    ax.scatter(true, predicted, s=8, alpha=0.6)
    ax.set_title(f"{name} (MAE {np.mean(np.abs(predicted - true)):.3g})", fontsize=9)
    ax.set_xlabel(f"true ({unit})" if unit else "true")
    ax.set_ylabel(f"predicted ({unit})" if unit else "predicted")
    if unseen_bands:
      ax.legend(loc="upper left", fontsize=7)
    rows += [(name, t, p) for t, p in zip(true, predicted)]
  return _save(fig, out_dir, "predicted_vs_true", ("readout", "true", "predicted"), rows)


def bland_altman(predicted: np.ndarray, true: np.ndarray, unit: str, out_dir: str,
                 name: str = "bland_altman") -> tuple[str, str]:
  """Difference against mean of prediction and truth, with the bias and the 95 % limits of
  agreement (bias ± 1.96 SD), as the rPPG literature draws heart-rate agreement."""
  predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
  mean, difference = (predicted + true) / 2, predicted - true
  bias = difference.mean()
  spread = 1.96 * difference.std(ddof=1) if len(true) > 1 else 0.0
  fig, ax = plt.subplots(figsize=(5, 3.8))
  ax.scatter(mean, difference, s=10, alpha=0.7)
  for value, style, label in ((bias, "-", f"bias {bias:.2f}"),
                              (bias + spread, "--", f"+1.96 SD {bias + spread:.2f}"),
                              (bias - spread, "--", f"−1.96 SD {bias - spread:.2f}")):
    ax.axhline(value, color="tab:red", linestyle=style, linewidth=1, label=label)
  ax.set_xlabel(f"(predicted + true) / 2 ({unit})")
  ax.set_ylabel(f"predicted − true ({unit})")
  ax.legend(fontsize=8)
  return _save(fig, out_dir, name, ("mean", "difference", "bias", "limit_low", "limit_high"),
               [(m, d, bias, bias - spread, bias + spread) for m, d in zip(mean, difference)])


def curves(panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], x_label: str,
           y_label: str, out_dir: str, name: str, log_x: bool = True,
           log_y: bool = False) -> tuple[str, str]:
  """One panel per entry, one line per series: e.g. test MAE against the training fraction,
  a line per method (data efficiency), or against view strength, a line per readout (sweeps).

  Args:
    panels: {panel title: {series: [(x, y), ...]}}.
  """
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
  rows = []
  for ax, (title, series) in zip(axes[0], panels.items()):
    for label, points in series.items():
      xs, ys = zip(*sorted(points)) if points else ((), ())
      ax.plot(xs, ys, marker="o", label=label)
      rows += [(title, label, x, y) for x, y in zip(xs, ys)]
    if log_x:
      ax.set_xscale("log")
      ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
      ax.set_xticks(sorted({x for points in series.values() for x, _ in points}))
      ax.tick_params(axis="x", labelrotation=45)  # neighbouring ticks can be close in log x
    if log_y:  # errors that span decades: equal ratios, equal distances
      ax.set_yscale("log")
      ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
      ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
      ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x_label, fontsize=9)
    ax.set_ylabel(y_label)
    ax.legend(fontsize=8)
  return _save(fig, out_dir, name, ("panel", "series", "x", "y"), rows)


def risk_coverage(curves_by_readout: Mapping[str, Sequence[tuple[float, float]]], unit: str,
                  out_dir: str) -> tuple[str, str]:
  """Selective prediction: the MAE of the most confident predictions kept, against the share
  kept (`uncertainty.risk_coverage_curve`), a line per readout. A confidence that means
  something makes its line fall to the left; a flat line is a confidence that says nothing."""
  fig, ax = plt.subplots(figsize=(5.5, 4))
  rows = []
  for name, points in curves_by_readout.items():
    coverage, mae = zip(*points)
    ax.plot(coverage, mae, label=name, linewidth=1.2)
    rows += [(name, c, m) for c, m in points]
  ax.set_xlabel("coverage (share of the most confident predictions kept)")
  ax.set_ylabel(f"MAE ({unit})" if unit else "MAE")
  ax.set_xlim(0, 1)
  ax.set_yscale("log")  # readouts' errors differ by decades (a training-mean row beside them)
  ax.legend(fontsize=7)
  return _save(fig, out_dir, "risk_coverage", ("readout", "coverage", "mae"), rows)


def ood_scores(scores_by_set: Mapping[str, np.ndarray], threshold: float,
               out_dir: str) -> tuple[str, str]:
  """Histograms of the OOD score per set (held-out training recordings, test clips, each
  shifted set) and the flag's threshold."""
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  everything = np.concatenate([np.asarray(s, np.float64) for s in scores_by_set.values()])
  # Shifted sets can lie decades beyond the threshold: log-spaced bins on a log axis.
  low = max(everything.min(), 1e-3 * max(everything.max(), 1e-12))
  edges = np.geomspace(low, everything.max() * (1 + 1e-9) + 1e-12, 50)
  ax.set_xscale("log")
  rows = []
  for name, scores in scores_by_set.items():
    ax.hist(np.clip(scores, low, None), bins=edges, histtype="step", linewidth=1.3,
            weights=np.full(len(scores), 1.0 / max(len(scores), 1)), label=name)
    rows += [(name, float(v)) for v in scores]
  ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
  ax.set_xlabel("OOD score (distance to the k-th nearest training spectrum)")
  ax.set_ylabel("share of the set")
  ax.legend(fontsize=7)
  return _save(fig, out_dir, "ood_scores", ("set", "score"), rows)


def umap_embedding(features: np.ndarray, target: np.ndarray, unit: str, out_dir: str,
                   seed: int = 0) -> tuple[str, str]:
  """A 2-D UMAP (umap-learn) of per-clip features, each point coloured by its target.

  Args:
    features: [N, F], one row per clip (the evaluation passes the feature signals' normalized
      power spectra, the linear probe's phase-invariant input: the raw signals of two clips
      at one frequency differ by their phase, and UMAP would spread them apart).
    target: [N].
  """
  import umap  # pylint: disable=g-import-not-at-top  (numba-compiled: imported only here)
  features = np.asarray(features, np.float64)
  # Fewer neighbours than clips (UMAP needs it); a fixed seed gives one layout per input.
  reducer = umap.UMAP(n_neighbors=max(2, min(15, len(features) - 1)), random_state=seed,
                      n_jobs=1)  # a seed makes UMAP serial anyway; saying so silences a warning
  embedding = reducer.fit_transform(features)
  fig, ax = plt.subplots(figsize=(5, 4.2))
  points = ax.scatter(embedding[:, 0], embedding[:, 1], c=target, s=8, cmap="viridis")
  fig.colorbar(points, ax=ax, label=f"target ({unit})" if unit else "target")
  ax.set_xlabel("UMAP 1")
  ax.set_ylabel("UMAP 2")
  ax.set_title("test features, coloured by the target", fontsize=10)
  return _save(fig, out_dir, "umap", ("umap_1", "umap_2", "target"),
               zip(embedding[:, 0], embedding[:, 1], target))


def best_lag(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[int, float]:
  """(lag, r): the shift of `signal` behind `reference`, in samples within ±max_lag, whose
  Pearson r has the largest magnitude (signal[t + lag] against reference[t])."""
  def correlation(lag):
    a = signal[max(lag, 0):len(signal) + min(lag, 0)]
    b = reference[max(-lag, 0):len(reference) + min(-lag, 0)]
    return float(np.corrcoef(a, b)[0, 1]) if np.ptp(a) and np.ptp(b) else 0.0
  correlations = {lag: correlation(lag) for lag in range(-max_lag, max_lag + 1)}
  lag = max(correlations, key=lambda k: abs(correlations[k]))
  return lag, correlations[lag]


def signal_vs_reference(signal: np.ndarray, reference: np.ndarray, fps: float, out_dir: str,
                        band: tuple[float, float] | None = None, reference_name: str = "PPG",
                        name: str = "feature_vs_ppg", max_lag_seconds: float = 1.0
                        ) -> tuple[str, str]:
  """One video's feature signal above its reference signal (the PPG), on one time axis, each
  standardized. With `band` (Hz) the feature is also drawn band-passed as the heart-rate
  protocol filters it before its FFT (`heart_rate.bandpass`), the raw signal faint behind it.

  The title gives the largest |correlation| of the (filtered) feature with the reference over
  lags up to `max_lag_seconds`: the feature's sign and its delay relative to the finger's PPG
  are arbitrary, so the correlation at lag 0 says little (a feature that pulses with the PPG
  a quarter period later has r = 0 there).
  """
  signal, reference = (np.asarray(a, np.float64) for a in (signal, reference))
  standard = lambda a: (a - a.mean()) / max(a.std(), 1e-12)
  filtered = heart_rate.bandpass(signal, fps, band) if band is not None else signal
  time = np.arange(len(signal)) / fps
  best, r = best_lag(filtered, reference, int(max_lag_seconds * fps))
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 3.8), sharex=True)
  if band is not None:
    top.plot(time, standard(signal), color="0.75", linewidth=0.7, label="raw")
  top.plot(time, standard(filtered), color="tab:blue", linewidth=0.9,
           label=f"band-passed {band[0]:g}–{band[1]:g} Hz" if band is not None else None)
  if band is not None:
    top.legend(loc="upper right", fontsize=7)
  top.set_ylabel("feature (z)")
  top.set_title(f"feature signal and {reference_name} of one test video (best r = "
                f"{r:.2f} at lag {best / fps:+.2f} s)", fontsize=10)
  bottom.plot(time, standard(reference), color="tab:red", linewidth=0.9)
  bottom.set_ylabel(f"{reference_name} (z)")
  bottom.set_xlabel("time (s)")
  return _save(fig, out_dir, name, ("time_s", "feature", "feature_filtered",
                                    reference_name.lower()),
               zip(time, signal, filtered, reference))


def draw_run(out_dir: str, *, metrics_path: str, test: dict, predictions: dict, fps: float,
             unit: str, label_hz: float | None, harmonic: int, probe_inputs: np.ndarray,
             unseen_bands=(), band=None, risk_coverage_curves=None, ood_sets=None,
             ood_threshold: float | None = None) -> list[str]:
  """Every figure of a run's evaluation; returns the PNG paths.

  Args:
    test: the test split's `evaluate.compute_features` output ('signals' [N, T], 'label', and,
      for heart rate, 'ppg', 'video_id', 'clip_index').
    predictions: {readout: (predicted, true)}.
    label_hz: the label in Hz per label unit (1/60 for bpm); None: not a frequency.
    harmonic: the FFT readout's.
    probe_inputs: [N, F] per-clip features for the UMAP.
    unseen_bands: label ranges the training split did not cover (zero-shot), shaded.
    band: the readouts' frequency band, Hz (the feature-vs-PPG figure filters to it).
    risk_coverage_curves: {readout: [(coverage, MAE)]}, or None.
    ood_sets, ood_threshold: {set: [n] OOD scores} and the flag's threshold, or None.
  """
  written = []
  if os.path.exists(metrics_path) and os.path.getsize(metrics_path):
    written.append(training_curves(metrics_path, out_dir)[0])
  true_hz = None if label_hz is None else np.asarray(test["label"], np.float64) * label_hz
  written.append(spectra(test["signals"], true_hz, fps, out_dir, harmonic=harmonic)[0])
  written.append(predicted_vs_true(predictions, unit, out_dir, unseen_bands)[0])
  if risk_coverage_curves:
    written.append(risk_coverage(risk_coverage_curves, unit, out_dir)[0])
  if ood_sets:
    written.append(ood_scores(ood_sets, ood_threshold, out_dir)[0])
  if len(probe_inputs) > 2:
    written.append(umap_embedding(probe_inputs, test["label"], unit, out_dir)[0])
  if "ppg" in test:  # heart rate: agreement plot and one video beside its PPG
    if "fft" in predictions:
      written.append(bland_altman(*predictions["fft"], unit, out_dir,
                                  name="bland_altman_fft")[0])
    video = np.flatnonzero(np.asarray(test["video_id"]) == np.asarray(test["video_id"])[0])
    video = video[np.argsort(np.asarray(test["clip_index"])[video])]
    video_fps = float(np.asarray(test["fps"])[video[0]]) if "fps" in test else fps
    written.append(signal_vs_reference(np.concatenate(test["signals"][video]),
                                       np.concatenate(test["ppg"][video]), video_fps,
                                       out_dir, band=band)[0])
  return written
