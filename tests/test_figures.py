"""Each figure function writes a valid PNG and, beside it, the CSV of the numbers it draws."""

import csv
import json

import matplotlib.image
import numpy as np
import pytest

from simper_jax import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read(png, table):
  with open(png, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  image = matplotlib.image.imread(png)
  assert image.ndim == 3 and min(image.shape[:2]) > 100 and image.std() > 0  # drawn, not blank
  with open(table) as f:
    rows = list(csv.reader(f))
  return rows[0], rows[1:]


def test_training_curves(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text("".join(json.dumps({"step": s, "train/loss": 2.0 / s,
                                         "train/learning_rate": 1e-3 if s < 30 else 1e-4}) + "\n"
                             for s in (10, 20, 30, 40)))
  header, rows = _read(*figures.training_curves(str(metrics), str(tmp_path / "figures")))
  assert header == ["step", "loss", "learning_rate"]
  assert [[float(x) for x in row] for row in rows] == [[10, 0.2, 1e-3], [20, 0.1, 1e-3],
                                                        [30, 2 / 30, 1e-4], [40, 0.05, 1e-4]]
  (tmp_path / "empty.jsonl").write_text("")
  with pytest.raises(ValueError, match="empty.jsonl: no logged steps"):
    figures.training_curves(str(tmp_path / "empty.jsonl"), str(tmp_path))


def test_spectra_peak_at_the_true_frequency(tmp_path):
  fps, true = 30.0, np.array([1.5, 3.0, 0.75])
  t = np.arange(120) / fps
  signals = np.sin(2 * np.pi * true[:, None] * t) + 0.1
  header, rows = _read(*figures.spectra(signals, true, fps, str(tmp_path), clips=3))
  assert header == ["clip", "frequency_hz", "power", "true_frequency_hz"]
  table = np.array(rows, np.float64)
  for clip in range(3):
    mine = table[table[:, 0] == clip]
    assert len(mine) == 61  # rfft bins of 120 samples
    np.testing.assert_allclose(mine[np.argmax(mine[:, 2]), 1], true[clip])  # peak (1) at truth
    assert mine[:, 2].max() == 1.0 and np.all(mine[:, 3] == true[clip])


def test_predicted_vs_true(tmp_path):
  true = np.linspace(1, 4, 10)
  header, rows = _read(*figures.predicted_vs_true(
      {"fft": (true + 0.1, true), "linear_probe": (true[::-1], true)}, "Hz", str(tmp_path)))
  assert header == ["readout", "true", "predicted"]
  assert [r[0] for r in rows] == ["fft"] * 10 + ["linear_probe"] * 10
  np.testing.assert_allclose([float(r[2]) for r in rows[:10]], true + 0.1)
  np.testing.assert_allclose([float(r[2]) for r in rows[10:]], true[::-1])


def test_bland_altman_bias_and_limits(tmp_path):
  true = np.array([60.0, 70.0, 80.0, 90.0])
  predicted = true + np.array([1.0, 3.0, 1.0, 3.0])
  header, rows = _read(*figures.bland_altman(predicted, true, "bpm", str(tmp_path)))
  assert header == ["mean", "difference", "bias", "limit_low", "limit_high"]
  table = np.array(rows, np.float64)
  np.testing.assert_allclose(table[:, 0], (predicted + true) / 2)
  np.testing.assert_allclose(table[:, 1], predicted - true)
  spread = 1.96 * np.std([1.0, 3.0, 1.0, 3.0], ddof=1)
  np.testing.assert_allclose(table[0, 2:], [2.0, 2.0 - spread, 2.0 + spread])
