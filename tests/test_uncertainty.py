"""uncertainty.py: the harmonic rule, conformal coverage, selective risk, the calibration split."""

import warnings

import numpy as np
import pytest
from scipy import stats

from simper_jax import errors
from simper_jax import evaluate
from simper_jax import heart_rate
from simper_jax import uncertainty as unc


def spectrum(peaks, freqs=np.linspace(0.0, 5.0, 501)):
  """A power spectrum [1, F] with a narrow peak of power p at each frequency f of `peaks`."""
  power = np.full(len(freqs), 1e-3)
  for f, p in peaks:
    power[np.argmin(np.abs(freqs - f))] += p
  return freqs, power[None]


def test_a_harmonic_is_not_a_rival_but_another_frequency_is():
  freqs, with_harmonic = spectrum([(1.2, 1.0), (2.4, 0.8)])  # a pulse and its 2f
  _, with_rival = spectrum([(1.2, 1.0), (1.9, 0.8)])  # a pulse and a motion peak
  _, harmonic_prominence = unc.peak_confidence(freqs, with_harmonic, (0.5, 4.0))
  share, rival_prominence = unc.peak_confidence(freqs, with_rival, (0.5, 4.0))
  assert rival_prominence[0] == pytest.approx(1.0 / 0.8, rel=0.01)
  assert harmonic_prominence[0] > 100  # only the noise floor is left to compare with
  assert share[0] == pytest.approx(1.0 / (1.8 + 1e-3 * 351), rel=0.01)


def test_a_sub_harmonic_is_not_a_rival_either():
  freqs, power = spectrum([(2.4, 1.0), (1.2, 0.6)])
  _, prominence = unc.peak_confidence(freqs, power, (0.5, 4.0))
  assert prominence[0] > 100


def test_normalized_conformal_intervals_cover_at_the_nominal_rate():
  # y = x + noise whose scale is known per example: the intervals should cover 90 % of test
  # points overall, and stay near 90 % among the noisiest (a fixed-width interval would not).
  rng = np.random.default_rng(0)
  n_cal, n_test = 2000, 4000
  scale = rng.uniform(0.2, 3.0, n_cal + n_test)
  x = rng.uniform(0, 10, n_cal + n_test)
  y = x + rng.normal(size=n_cal + n_test) * scale
  low, high = unc.conformal_intervals(x[:n_cal], y[:n_cal], scale[:n_cal],
                                      x[n_cal:], scale[n_cal:], coverage=0.9)
  covered = (y[n_cal:] >= low) & (y[n_cal:] <= high)
  band = stats.binom.interval(0.999, n_test, 0.9)
  assert band[0] <= covered.sum() <= band[1] + 0.01 * n_test  # at least nominal, not far above
  noisy = scale[n_cal:] > 2.5
  assert covered[noisy].mean() > 0.85
  assert np.all(high - low > 0) and np.corrcoef(high - low, scale[n_cal:])[0, 1] > 0.99


def test_selective_mae_by_hand():
  abs_errors = np.array([5.0, 1.0, 3.0, 0.0, 2.0, 4.0, 1.0, 6.0, 0.5, 2.5])
  confidence = np.array([0.1, 0.9, 0.4, 1.0, 0.6, 0.3, 0.8, 0.0, 0.95, 0.5])
  # Most confident first: 0.0, 0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0
  result = unc.selective_risk(abs_errors, confidence)
  assert result["mae_at"][1.0] == pytest.approx(2.5)
  assert result["mae_at"][0.9] == pytest.approx(19.0 / 9)
  assert result["mae_at"][0.8] == pytest.approx(14.0 / 8)
  assert result["mae_at"][0.5] == pytest.approx(4.5 / 5)
  assert result["mae_at"][0.2] == pytest.approx(0.25)
  running = np.cumsum([0.0, 0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]) / np.arange(1, 11)
  assert result["aurc"] == pytest.approx(running.mean())


def test_calibration_takes_whole_groups_from_training_only():
  groups = [f"rec{i // 5}" for i in range(50)]  # 10 recordings of 5 windows
  mask = unc.calibration_split(groups, 0.3, seed=1)
  chosen = {g for g, m in zip(groups, mask) if m}
  assert len(chosen) == 3 and all(m == (g in chosen) for g, m in zip(groups, mask))
  with pytest.raises(errors.ConfigError, match="calibration_fraction=1.5"):
    unc.calibration_split(groups, 1.5)


def test_calibrating_on_test_or_on_the_probe_fit_is_refused():
  unc.check_disjoint(["a", "b"], test=["c"], probe_fit=["d", "e"])
  with pytest.raises(ValueError, match="also in test"):
    unc.check_disjoint(["a", "b"], test=["b", "c"])
  with pytest.raises(ValueError, match="also in probe_fit"):
    unc.check_disjoint(["a"], test=["c"], probe_fit=["a"])


# --- How sure each readout is -----------------------------------------------------------------
def test_a_clean_tone_is_read_surer_than_noise_or_a_peak_with_a_rival():
  fps, t = 30.0, np.arange(300) / 30.0
  rng = np.random.default_rng(0)
  tone = np.sin(2 * np.pi * 1.2 * t) + 0.05 * rng.normal(size=len(t))
  rival = tone + 0.9 * np.sin(2 * np.pi * 2.0 * t)  # another rhythm, not a harmonic
  harmonic = tone + 0.9 * np.sin(2 * np.pi * 2.4 * t)  # a pulse's 2f: no rival
  noise = rng.normal(size=len(t))
  pred, details = evaluate.fft_readout(np.stack([tone, rival, harmonic, noise]), fps, (0.7, 3.0))
  confidence = details["confidence"]
  assert pred[0] == pytest.approx(1.2, abs=0.03)
  assert confidence[0] > 0.5 and confidence[3] < 0.1
  assert confidence[1] < 0.6 * confidence[0]  # the rival halves it, about
  assert details["peak_prominence"][2] > 10 * details["peak_prominence"][1]
  assert np.all((confidence > 0) & (confidence <= 1))
  # The rule: the peak's share of the band, times its share of the pair (peak, rival).
  prominence = details["peak_prominence"]
  np.testing.assert_allclose(confidence, details["peak_share"] * prominence / (1 + prominence))


def test_the_1nn_confidence_falls_where_the_nearest_labels_disagree():
  rng = np.random.default_rng(0)
  t = np.arange(64) / 16.0
  wave = lambda f: np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
  # Around 1 Hz every training clip has the label 1; around 3 Hz the labels are scattered.
  train = np.stack([wave(1.0) for _ in range(10)] + [wave(3.0) for _ in range(10)])
  labels = np.r_[np.ones(10), rng.uniform(0.5, 5.0, 10)]
  pred, details = evaluate.knn_readout(train, labels, np.stack([wave(1.0), wave(3.0)]),
                                       similarity="max_xcorr", fps=16.0)
  assert pred[0] == 1.0 and details["knn_spread"][0] == 0.0
  assert details["confidence"][0] == 1.0 and details["confidence"][1] < 0.8
  assert details["nn_similarity"].shape == (2,)


def test_the_probe_is_less_sure_far_from_its_training_inputs():
  rng = np.random.default_rng(0)
  train_inputs = rng.normal(size=(60, 3)) * [1.0, 1.0, 0.01]  # the third input barely varies
  labels = train_inputs @ [1.0, -1.0, 0.0] + 0.3 * rng.normal(size=60)
  near, far = np.zeros((1, 3)), np.array([[0.0, 0.0, 5.0]])  # far along the unseen direction
  _, details = evaluate.probe_readout(train_inputs, labels, np.r_[near, far], l2=1e-3)
  assert details["bootstrap_std"][1] > 10 * details["bootstrap_std"][0]
  assert details["confidence"][1] < details["confidence"][0]


def test_a_video_whose_clips_disagree_is_read_with_less_confidence():
  fps, clip = 30.0, 180
  t = np.arange(3 * clip) / fps
  steady = np.sin(2 * np.pi * 1.2 * t)
  changing = np.concatenate([np.sin(2 * np.pi * f * t[:clip]) for f in (1.0, 1.6, 2.2)])
  signals = np.concatenate([steady.reshape(3, clip), changing.reshape(3, clip)])
  ids, index = ["steady"] * 3 + ["changing"] * 3, np.r_[0:3, 0:3]
  rates = heart_rate.per_video_heart_rates(signals, signals, ids, index, fps)
  by_video = dict(zip(rates.units, rates.details["window_agreement"]))
  assert by_video == {"changing": pytest.approx(1 / 3), "steady": 1.0}
  confidence = dict(zip(rates.units, rates.details["confidence"]))
  assert confidence["changing"] < 0.5 * confidence["steady"]
  share, prominence = rates.details["peak_share"], rates.details["peak_prominence"]
  np.testing.assert_allclose(rates.details["confidence"], share * prominence / (1 + prominence)
                             * rates.details["window_agreement"])


def test_calibrate_gives_intervals_and_says_when_there_are_too_few_residuals():
  rng = np.random.default_rng(0)
  def readout(n):
    truth = rng.uniform(0, 5, n)
    scale = rng.uniform(0.1, 1.0, n)
    return evaluate.Readout(truth + scale * rng.normal(size=n), truth, {},
                            {"confidence": 1.0 / scale})
  metrics, intervals = unc.calibrate({"probe": readout(500)}, {"probe": readout(2000)}, 0.9)
  assert 0.87 <= metrics["probe"]["coverage"] <= 0.93
  low, high = intervals["probe"]
  assert np.all(high > low) and metrics["probe"]["interval_width"] == pytest.approx(
      np.mean(high - low))
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # said by the run in one line, not by crepes' warning
    few, _ = unc.calibrate({"probe": readout(8)}, {"probe": readout(50)}, 0.9)
  assert few["probe"]["interval_width"] is None and few["probe"]["coverage"] == 1.0
  assert unc.min_calibration(0.9) == 9 and unc.min_calibration(0.95) == 19


# --- Out of distribution ------------------------------------------------------------------------
def test_ood_features_compare_spectra_of_any_length_and_see_loudness():
  fps = 30.0
  wave = lambda f, n, amplitude=1.0: amplitude * np.sin(2 * np.pi * f * np.arange(n) / fps)
  features = unc.ood_features(np.stack([wave(2.0, 90), wave(2.0, 180)[:90]]), fps)
  longer = unc.ood_features(wave(2.0, 360)[None], fps)
  other = unc.ood_features(wave(6.0, 90)[None], fps)
  quiet = unc.ood_features(wave(2.0, 90, 1e-3)[None], fps)
  spectrum = lambda f: f[:, :-1]
  assert features.shape == (2, unc.OOD_BINS + 1)
  np.testing.assert_allclose(np.sum(spectrum(features) ** 2, axis=1), 1.0, rtol=1e-5)
  same = np.linalg.norm(spectrum(features)[0] - spectrum(longer)[0])
  assert same < 0.5 * np.linalg.norm(spectrum(features)[0] - spectrum(other)[0])
  np.testing.assert_allclose(spectrum(quiet), spectrum(features)[:1], atol=1e-5)
  assert quiet[0, -1] == pytest.approx(features[0, -1] + np.log(1e-3), abs=1e-3)
  constant = unc.ood_features(np.ones((1, 90)), fps)  # no spectrum at all: the flat one
  np.testing.assert_allclose(spectrum(constant) ** 2, 1.0 / unc.OOD_BINS, rtol=1e-5)


def test_the_ood_score_ranks_shifted_inputs_above_clean_ones():
  rng = np.random.default_rng(0)
  fps, n = 30.0, 120
  t = np.arange(n) / fps
  def clean(count):  # training-like: a rhythm between 1 and 2 Hz, some noise
    f = rng.uniform(1.0, 2.0, (count, 1))
    return np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (count, 1))) + 0.2 * rng.normal(
        size=(count, n))
  features = lambda signals: unc.ood_features(signals, fps)
  # "quiet": the training rhythms at a thousandth of their strength (a spectrum like theirs,
  # a loudness unlike); "noise": white noise as loud as they are.
  shifted = {"noise": features(rng.normal(size=(50, n))),
             "quiet": features(1e-3 * clean(50)),
             "fast": features(np.sin(2 * np.pi * 9.0 * t + rng.uniform(0, 6.3, (50, 1))))}
  report = unc.ood_report(features(clean(300)), features(clean(100)), features(clean(200)),
                          shifted)
  assert all(value > 0.95 for value in report["auroc"].values()), report["auroc"]
  assert report["flagged"]["calibration"] == pytest.approx(0.05, abs=0.011)
  assert report["flagged"]["test"] < 0.15
  assert all(report["flagged"][name] > 0.8 for name in shifted), report["flagged"]
  assert set(report["auroc_mahalanobis"]) == set(shifted)


def test_region_aurocs_tell_unseen_labels_from_seen_ones():
  report = {"scores_by_set": {"test": np.array([0.1, 0.2, 0.3, 0.9, 1.0])},
            "mahalanobis_test": np.array([0.1, 0.5, 0.3, 0.2, 1.0]), "auroc": {},
            "auroc_mahalanobis": {}}
  labels = np.array([1.0, 1.5, 2.0, 4.0, 4.5])
  unc.add_region_aurocs(report, labels, [(0.0, 5.0)])  # nothing unseen: nothing added
  assert report["auroc"] == {} and report["auroc_mahalanobis"] == {}
  unc.add_region_aurocs(report, labels, [(0.5, 3.0)])
  assert report["auroc"] == {"unseen_frequencies": 1.0}
  assert report["auroc_mahalanobis"] == {"unseen_frequencies": pytest.approx(4 / 6)}


def test_the_shifts_keep_shape_and_dtype_and_do_what_they_say():
  rng = np.random.default_rng(0)
  fps = 30.0
  t = np.arange(60) / fps
  video = (120 + 60 * np.sin(2 * np.pi * 1.5 * t)[None, :, None, None, None]
           * np.ones((2, 60, 4, 4, 3))).astype(np.uint8)
  series = np.sin(2 * np.pi * 1.5 * t)[None, :, None, None, None].repeat(2, 0).astype(np.float16)
  for name, shift in unc.SHIFTS.items():
    for clips in (video, series):
      out = shift(np.random.default_rng(1), clips, fps)
      assert out.shape == clips.shape and out.dtype == clips.dtype, name
  still = unc.static_clips(rng, video, fps).astype(float)
  assert np.abs(np.diff(still, axis=1)).max() <= 6  # the first frame held, faint noise
  flickering = unc.flicker_clips(rng, np.full((1, 60, 2, 2, 1), 100, np.uint8), fps)
  brightness = flickering[0, :, 0, 0, 0].astype(float)
  spectrum = np.abs(np.fft.rfft(brightness - brightness.mean()))
  assert np.fft.rfftfreq(60, 1 / fps)[spectrum.argmax()] == pytest.approx(0.4 * fps, abs=0.5)
  assert 0.25 < (brightness.max() - 100) / 100 <= 0.31
  noise = unc.noise_clips(rng, video, fps).astype(float)
  assert abs(noise.mean() - video.mean()) < 3 and abs(np.corrcoef(
      noise[0, :, 0, 0, 0], video[0, :, 0, 0, 0])[0, 1]) < 0.4


# --- The calibration part in a run --------------------------------------------------------------
def test_the_readouts_never_see_the_recordings_that_calibrate_them():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from simper_jax import run  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({
      "seed": 0, "data": {"fps": 16.0},
      "eval": {"protocol": "frequency", "band": (0.5, 6.0), "probe_l2": 1.0, "fft_harmonic": 1,
               "knn_similarity": "max_xcorr", "probe_input": "spectrum",
               "calibration_fraction": 0.25}})
  rng = np.random.default_rng(0)
  def split(recordings, prefix):
    n = 4 * recordings  # 4 windows each, every one with its own label
    return {"signals": rng.normal(size=(n, 32)).astype(np.float32),
            "label": rng.permutation(n).astype(np.float32) / n + 1.0,
            "video_id": np.repeat([f"{prefix}{r}" for r in range(recordings)], 4),
            "clip_index": np.tile(np.arange(4), recordings)}
  features = {"train": split(12, "rec"), "test": split(3, "test")}
  parts = run.calibration_parts(config, features, {"train": list(range(48)), "test": [0]})
  fit_videos, cal_videos = set(parts.fit["video_id"]), set(parts.cal["video_id"])
  assert len(cal_videos) == 3 and not fit_videos & cal_videos  # whole recordings, apart
  assert len(parts.fit["label"]) + len(parts.cal["label"]) == 48
  assert parts.cal_source.indices == sorted(parts.cal_source.indices)
  # A calibration clip among the 1-NN's references would be its own nearest neighbour and
  # read its own label exactly; no residual may be 0.
  _, readouts = evaluate.evaluate_protocol(config.eval, 16.0, parts.fit, parts.cal)
  assert np.all(readouts["1nn"].pred != readouts["1nn"].true)
  assert parts.summary() == {"fit_clips": 36, "calibration_clips": 12, "fit_groups": 9,
                             "calibration_groups": 3}
  config.eval.calibration_fraction = 0.0
  assert run.calibration_parts(config, features, {"train": [], "test": []}) is None


def test_a_run_writes_intervals_confidences_and_ood_flags(tiny_run):
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  with open(os.path.join(tiny_run.workdir, "results.json")) as f:
    results = json.load(f)
  assert results["coverage"] == 0.9 and results["calibration"]["calibration_clips"] >= 1
  for readout, metrics in results["test"].items():
    assert {"coverage", "interval_width", "mae_at_50", "aurc", "selective_mae"} <= set(metrics)
    assert metrics["selective_mae"]["100%"] == pytest.approx(metrics["mae"]), readout
  assert set(results["ood"]["auroc"]) == set(tiny_run.config.eval.ood_shifts)
  table = pd.read_csv(os.path.join(tiny_run.workdir, "predictions.csv"))
  assert set(table["readout"]) == set(results["test"])
  assert {"true", "predicted", "low", "high", "confidence", "ood_score", "ood"} <= set(table)
  assert table["confidence"].between(0, 1, inclusive="right").all()
  stored = np.load(os.path.join(tiny_run.workdir, unc.UNCERTAINTY_FILE))
  assert stored["ood_reference"].shape[1] == unc.OOD_BINS + 1
  assert float(stored["ood_threshold"]) == pytest.approx(results["ood"]["threshold"])
