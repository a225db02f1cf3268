"""uncertainty.py: the harmonic rule, conformal coverage, selective risk, the calibration split."""

import numpy as np
import pytest
from scipy import stats

from simper_jax import errors
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
