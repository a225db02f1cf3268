"""Each figure function writes a valid PNG and, beside it, the CSV of the numbers it draws."""

import csv
import json
import os

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
    assert len(mine) == 257  # rfft bins of 120 samples zero-padded to 512
    bin_width = fps / 512
    assert abs(mine[np.argmax(mine[:, 2]), 1] - true[clip]) <= bin_width  # peak: a bin next to truth
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


def test_predicted_vs_true_shades_the_unseen_bands(tmp_path):
  """The zero-shot plot: the unseen band is drawn (grey pixels appear that a plot without it
  lacks), and many readouts wrap onto several rows of panels."""
  true = np.linspace(0.5, 5, 40)
  readouts = {name: (true, true) for name in ("fft", "1nn", "linear_probe", "a", "b")}
  plain, _ = figures.predicted_vs_true(readouts, "Hz", str(tmp_path / "plain"))
  shaded, _ = figures.predicted_vs_true(readouts, "Hz", str(tmp_path / "shaded"),
                                        unseen_bands=[(2.0, 3.0)])
  grey = lambda png: np.sum(np.all(np.abs(matplotlib.image.imread(png)[..., :3] - 0.85) < 0.01,
                                   axis=-1))
  assert grey(shaded) > grey(plain) + 1000
  image = matplotlib.image.imread(shaded)
  assert image.shape[0] > 1.5 * 3.2 * figures.DPI  # two rows of panels for five readouts


def test_curves_one_line_per_series(tmp_path):
  panels = {"fft": {"simper": [(1.0, 0.1), (0.05, 0.3), (0.5, 0.2)], "simclr": [(1.0, 0.9)]},
            "1nn": {"simper": [(1.0, 0.2)]}}
  header, rows = _read(*figures.curves(panels, "share", "MAE", str(tmp_path), "grid"))
  assert header == ["panel", "series", "x", "y"]
  assert rows == [["fft", "simper", "0.05", "0.3"], ["fft", "simper", "0.5", "0.2"],
                  ["fft", "simper", "1.0", "0.1"], ["fft", "simclr", "1.0", "0.9"],
                  ["1nn", "simper", "1.0", "0.2"]]  # sorted by x within each line


def test_umap_keeps_neighbours_together(tmp_path):
  """Two well-separated clusters of features stay apart in the embedding: each point's nearest
  embedded neighbour carries its own cluster's target."""
  rng = np.random.default_rng(0)
  target = np.repeat([1.0, 4.0], 15)
  features = rng.normal(size=(30, 8)) * 0.1 + target[:, None]
  header, rows = _read(*figures.umap_embedding(features, target, "Hz", str(tmp_path)))
  assert header == ["umap_1", "umap_2", "target"]
  table = np.array(rows, np.float64)
  np.testing.assert_array_equal(table[:, 2], target)
  distances = np.linalg.norm(table[:, None, :2] - table[None, :, :2], axis=-1)
  np.fill_diagonal(distances, np.inf)
  assert np.all(target[np.argmin(distances, axis=1)] == target)


def test_signal_vs_reference(tmp_path):
  t = np.arange(60) / 30.0
  ppg = np.sin(2 * np.pi * 1.2 * t)
  header, rows = _read(*figures.signal_vs_reference(-2 * ppg + 5, ppg, 30.0, str(tmp_path)))
  assert header == ["time_s", "feature", "feature_filtered", "ppg"]
  table = np.array(rows, np.float64)
  np.testing.assert_allclose(table[:, 0], t)
  np.testing.assert_allclose(table[:, 1], -2 * ppg + 5)  # the numbers as given, not rescaled
  np.testing.assert_allclose(table[:, 3], ppg)


def test_signal_vs_reference_filters_to_the_band_and_finds_the_lag(tmp_path):
  """A feature that follows the PPG a quarter period late, under a slow drift: band-passed,
  the drift is gone, and the correlation is found at the lag, not at 0."""
  from simper_jax import heart_rate  # pylint: disable=g-import-not-at-top
  fps, rate = 30.0, 1.25
  t = np.arange(600) / fps
  ppg = np.sin(2 * np.pi * rate * t)
  feature = np.sin(2 * np.pi * rate * (t - 0.2)) + 3 * t / t[-1]  # 0.2 s = a quarter period
  _, rows = _read(*figures.signal_vs_reference(feature, ppg, fps, str(tmp_path),
                                               band=(0.75, 2.5)))
  filtered = np.array(rows, np.float64)[:, 2]
  np.testing.assert_allclose(filtered, heart_rate.bandpass(feature, fps, (0.75, 2.5)))
  assert abs(np.corrcoef(filtered, ppg)[0, 1]) < 0.2  # near 0 at lag 0 ...
  lag, r = figures.best_lag(filtered, ppg, max_lag=10)  # less than half the 24-sample period
  assert lag in (5, 6, 7) and r > 0.9  # ... high 0.2 s later
  lag, r = figures.best_lag(-np.roll(ppg, -4), ppg, max_lag=10)  # leads by 4, inverted
  assert lag == -4 and r == pytest.approx(-1.0)


def test_draw_run_draws_the_heart_rate_figures_when_there_is_a_ppg(tmp_path):
  rng = np.random.default_rng(0)
  t = np.arange(64) / 30.0
  labels = rng.uniform(60, 100, 12)
  ppg = np.sin(2 * np.pi * labels[:, None] / 60 * t)
  test = {"signals": ppg + 0.1 * rng.normal(size=ppg.shape), "label": labels, "ppg": ppg,
          "video_id": np.repeat([3, 7], 6), "clip_index": np.tile([1, 0, 2, 3, 5, 4], 2)}
  predictions = {"fft": (labels[:2] + 1, labels[:2]), "1nn": (labels[::-1], labels)}
  common = dict(metrics_path=str(tmp_path / "absent.jsonl"), fps=30.0, unit="bpm",
                label_hz=1 / 60, harmonic=1, probe_inputs=rng.normal(size=(12, 5)))
  written = figures.draw_run(str(tmp_path / "hr"), test=test, predictions=predictions, **common)
  assert sorted(os.path.basename(p) for p in written) == [
      "bland_altman_fft.png", "feature_vs_ppg.png", "predicted_vs_true.png", "spectra.png",
      "umap.png"]
  _, rows = _read(*(str(tmp_path / "hr" / f"feature_vs_ppg.{e}") for e in ("png", "csv")))
  # Video 3's six clips in clip_index order, concatenated.
  order = [1, 0, 2, 3, 5, 4]
  np.testing.assert_allclose([float(r[3]) for r in rows],
                             np.concatenate([ppg[order.index(i)] for i in range(6)]))
  del test["ppg"]
  written = figures.draw_run(str(tmp_path / "plain"), test=test, predictions=predictions,
                             **common)
  assert not any("ppg" in p or "bland" in p for p in written)
