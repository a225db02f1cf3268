"""The linear probe's ridge fit and the spectrum it reads."""

import numpy as np
import pytest

from simper_jax import evaluate
from simper_jax import outputs
from simper_jax.models import heads


def test_ridge_recovers_a_linear_map_and_cv_picks_the_penalty():
  rng = np.random.default_rng(0)
  inputs = rng.normal(size=(200, 5))
  weights = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
  targets = inputs @ weights + 4.0
  head = evaluate.fit_ridge(inputs, targets, 1e-8)
  np.testing.assert_allclose(head["params"]["Dense_0"]["kernel"][:, 0], weights, atol=1e-4)
  np.testing.assert_allclose(heads.LinearHead().apply(head, inputs), targets, atol=1e-3)
  assert evaluate.select_l2(inputs, targets) == min(evaluate.L2_GRID)  # noiseless: no penalty
  noise = rng.normal(size=200)  # nothing to learn: a strong penalty wins
  assert evaluate.select_l2(inputs, noise) >= 1.0


def test_spectrum_in_band_peaks_at_the_signal_frequency():
  fps, hz = 30.0, 1.5
  signals = np.sin(2 * np.pi * hz * np.arange(180) / fps)[None] + np.arange(180) * 0.01
  full = evaluate.spectrum_features(signals)
  band = evaluate.spectrum_features(signals, fps=fps, band=(0.75, 2.5))
  freqs = np.fft.rfftfreq(1024, 1 / fps)
  in_band = freqs[(freqs >= 0.75) & (freqs <= 2.5)]
  assert full.shape == (1, 513) and band.shape == (1, len(in_band))
  np.testing.assert_allclose(band.sum(), 1.0, rtol=1e-5)
  assert abs(in_band[band[0].argmax()] - hz) <= fps / 1024
  assert abs(freqs[full[0].argmax()] - hz) <= fps / 1024  # the linear drift is detrended away


def test_pearson_r_is_undefined_for_a_constant_prediction_and_shown_as_a_dash():
  target = np.array([1.0, 2.0, 4.0])
  constant = evaluate.regression_metrics(np.full(3, 2.0, np.float32), target)
  assert constant["pearson_r"] is None and constant["mae"] == 1.0
  assert evaluate.regression_metrics(target * 2, target)["pearson_r"] == 1.0
  table = outputs.format_table({"train_mean": constant}).splitlines()
  assert table[1].split()[-1] == "—"


def test_reference_keys_add_a_row_predicting_with_a_field_of_the_data():
  import ml_collections  # pylint: disable=g-import-not-at-top
  e = ml_collections.ConfigDict({
      "protocol": "regression", "band": (0.02, 0.25), "probe_l2": 1.0, "knn_similarity": "neg_l2",
      "probe_input": "signal", "fft_harmonic": None, "reference_keys": ("persistence",)})
  rng = np.random.default_rng(0)
  split = lambda n: {"signals": rng.normal(size=(n, 16)), "label": rng.normal(size=n) + 280,
                     "persistence": np.full(n, 280.0)}
  train, test = split(20), split(10)
  results, predictions = evaluate.evaluate_protocol(e, 1.0, train, test)
  assert list(predictions) == list(results)
  assert list(results) == ["1nn", "linear_probe", "train_mean", "persistence"]  # no FFT row
  assert results["persistence"]["mae"] == pytest.approx(np.mean(np.abs(test["label"] - 280)))
  assert evaluate.feature_keys(e) == ("persistence",)


def test_evaluation_compiles_once_per_encoder_not_once_per_variables():
  """Variables are arguments of the jitted encoder and predictor: two checkpoints (or two
  fine-tuned copies) share one compilation, and each gives its own outputs."""
  import jax  # pylint: disable=g-import-not-at-top
  from simper_jax import finetune, sharding  # pylint: disable=g-import-not-at-top
  from simper_jax.models import featurizer3d  # pylint: disable=g-import-not-at-top
  # A module no other test builds: the jitted functions are cached per module for the whole
  # test process, and another test's encoder of the same module would count here.
  module = featurizer3d.Model(widths=(3,), temporal_kernel=3)
  video = np.random.default_rng(0).integers(0, 255, (8, 6, 8, 8, 1), dtype=np.uint8)
  first = module.init(jax.random.key(0), video[:1].astype(np.float32))
  second = module.init(jax.random.key(1), video[:1].astype(np.float32))
  batch_sharding = sharding.batch_sharding(sharding.make_mesh((("data", -1),), jax.devices()))
  outputs = [evaluate.make_encoder_fn(module, v, batch_sharding)(video) for v in (first, second)]
  assert not np.allclose(outputs[0], outputs[1])
  assert evaluate.jitted_encode(module)._cache_size() == 1
  head = heads.LinearHead().init(jax.random.key(2), evaluate.spectrum(np.zeros((1, 6))))
  predictions = [finetune.make_predict_fn(module, v, head, batch_sharding)(video)
                 for v in (first, second)]
  assert not np.allclose(predictions[0], predictions[1])
  assert finetune._jitted_predict(module, None)._cache_size() == 1


def test_prefetch_keeps_order_and_raises_the_readers_error():
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  assert list(pipeline.prefetch(iter(range(5)))) == list(range(5))

  def failing():
    yield 1
    raise ValueError("damaged record")

  with pytest.raises(ValueError, match="damaged record"):
    list(pipeline.prefetch(failing()))


def test_standard_errors_against_the_rppg_toolbox_formulas_worked_by_hand():
  """Truth 50, 60, 70, 80 and predictions 52, 57, 70, 84: errors 2, −3, 0, 4 (n = 4).
  |e| = 2, 3, 0, 4: mean 2.25, population variance 8.75 / 4 → MAE SE √2.1875 / 2.
  e² = 4, 9, 0, 16: mean 7.25, variance 142.75 / 4 → RMSE SE √(√35.6875 / 2).
  |e|/y = .04, .05, 0, .05: mean .035, variance (.000025 + .000225 + .001225 + .000225) / 4
  = .000425 → MAPE SE 100 · √.000425 / 2.  r SE √((1 − r²) / 2).  SNR SE std / √n."""
  metrics = evaluate.regression_metrics(np.array([52.0, 57, 70, 84]),
                                        np.array([50.0, 60, 70, 80]))
  assert metrics["mae"] == pytest.approx(2.25) and metrics["rmse"] == pytest.approx(np.sqrt(7.25))
  assert metrics["mae_se"] == pytest.approx(np.sqrt(2.1875) / 2)
  assert metrics["rmse_se"] == pytest.approx(np.sqrt(np.sqrt(35.6875) / 2))
  assert metrics["mape"] == pytest.approx(3.5)
  assert metrics["mape_se"] == pytest.approx(100 * np.sqrt(0.000425) / 2)
  r = metrics["pearson_r"]
  assert metrics["pearson_r_se"] == pytest.approx(np.sqrt((1 - r**2) / 2))
  snr = evaluate.snr_metrics(np.array([1.0, 3.0, 5.0, 7.0]))  # variance 5
  assert snr == pytest.approx({"snr_db": 4.0, "snr_db_se": np.sqrt(5.0) / 2})
  # Undefined where the formula is: a constant prediction's r, or n − 2 = 0.
  assert evaluate.regression_metrics(np.full(4, 65.0), np.array([50.0, 60, 70, 80]))[
      "pearson_r_se"] is None
  assert evaluate.regression_metrics(np.array([1.0, 2]), np.array([1.0, 3]))[
      "pearson_r_se"] is None


def test_tables_show_each_value_with_its_standard_error():
  metrics = {"fft": {**evaluate.regression_metrics(np.array([52.0, 57, 70, 84]),
                                                   np.array([50.0, 60, 70, 80])),
                     **evaluate.snr_metrics(np.array([1.0, 3.0, 5.0, 7.0]))}}
  header, row = outputs.format_table(metrics, " bpm").splitlines()
  assert header.split() == ["readout", "n", "MAE", "bpm", "MAPE", "%", "RMSE", "r", "SNR", "dB"]
  assert "2.2500 ± 0.7395" in row and "4.00 ± 1.12" in row and "3.50 ± 1.03" in row
  from simper_jax import report  # pylint: disable=g-import-not-at-top
  assert "| 2.2500 ± 0.7395 |" in report.metrics_table(metrics)
