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
import numpy as np

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


def spectra(signals: np.ndarray, true_frequency: np.ndarray, fps: float, out_dir: str,
            clips: int = 4) -> tuple[str, str]:
  """Power spectra of the feature signals of the first `clips` clips, true frequency marked.

  Args:
    signals: [N, L] feature signals sampled at `fps`.
    true_frequency: [N] the clips' true frequencies, Hz.
  """
  signals = np.asarray(signals, np.float64)[:clips]
  frequencies = np.fft.rfftfreq(signals.shape[-1], 1.0 / fps)
  power = np.abs(np.fft.rfft(signals - signals.mean(-1, keepdims=True))) ** 2
  power /= np.maximum(power.max(-1, keepdims=True), 1e-30)  # each clip's peak at 1
  fig, axes = plt.subplots(len(signals), 1, figsize=(6, 1.6 * len(signals)), sharex=True,
                           squeeze=False)
  rows = []
  for i, (ax, clip_power) in enumerate(zip(axes[:, 0], power)):
    ax.plot(frequencies, clip_power, color="tab:blue")
    ax.axvline(true_frequency[i], color="tab:red", linestyle="--",
               label=f"true {true_frequency[i]:.2f} Hz")
    ax.set_ylabel(f"clip {i}")
    ax.legend(loc="upper right", fontsize=8)
    rows += [(i, f, p, true_frequency[i]) for f, p in zip(frequencies, clip_power)]
  axes[-1, 0].set_xlabel("frequency (Hz)")
  axes[0, 0].set_title("power spectrum of the feature signal (peak = 1)")
  return _save(fig, out_dir, "spectra", ("clip", "frequency_hz", "power", "true_frequency_hz"),
               rows)


def predicted_vs_true(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], unit: str,
                      out_dir: str) -> tuple[str, str]:
  """One panel per readout: predicted against true, with the identity line.

  Args:
    predictions: {readout: (predicted [N], true [N])}.
    unit: the target's unit, for the axes ("Hz", "bpm", ...).
  """
  names = list(predictions)
  fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
  rows = []
  for ax, name in zip(axes[0], names):
    predicted, true = (np.asarray(a, np.float64) for a in predictions[name])
    low, high = min(true.min(), predicted.min()), max(true.max(), predicted.max())
    ax.plot([low, high], [low, high], color="0.6", linewidth=1)
    ax.scatter(true, predicted, s=8, alpha=0.6)
    ax.set_title(f"{name} (MAE {np.mean(np.abs(predicted - true)):.3g})", fontsize=9)
    ax.set_xlabel(f"true ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
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
