"""The periodic similarities and the SimPer loss against hand-worked and naive references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import similarity
from simper_jax.methods import simper
import naive


def test_max_xcorr_hand_worked():
  u = np.array([1.0, -1.0, 1.0, -1.0])
  # With itself: lag 0 gives Σu² = 4 = L·σ², divided by σ² (L − 1) = 3.
  np.testing.assert_allclose(similarity.max_xcorr(u[None], u[None]), [[4 / 3]], rtol=1e-6)
  # With its negation: the best lag (±1) overlaps 3 samples, each product 1: 3/3.
  np.testing.assert_allclose(similarity.max_xcorr(u[None], -u[None]), [[1.0]], rtol=1e-6)
  # A constant signal has σ = 0: the product is replaced by 1 and the correlation is 0.
  np.testing.assert_allclose(similarity.max_xcorr(u[None], np.ones((1, 4))), [[0.0]], atol=1e-7)


def test_npsd_hand_worked():
  fps, length = 30.0, 60
  t = np.arange(length) / fps
  three_hz, six_hz = np.sin(2 * np.pi * 3 * t), np.sin(2 * np.pi * 6 * t)
  got = similarity.npsd(np.stack([three_hz, six_hz]), np.stack([three_hz, 2 * six_hz]), fps=fps)
  np.testing.assert_allclose(got, [[1.0, 0.0], [0.0, 1.0]], atol=1e-5)


@pytest.mark.parametrize("name", ["max_xcorr", "npsd"])
def test_similarity_matches_naive_per_row(name):
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(5, 40)), rng.normal(size=(7, 40))
  b[3] = 2.5  # a constant row
  fn = similarity.get(name, fps=30.0)
  ref = naive.max_xcorr if name == "max_xcorr" else lambda u, v: naive.npsd(u, v, 30.0)
  expected = np.array([[ref(u, v) for v in b] for u in a])
  np.testing.assert_allclose(fn(jnp.asarray(a), jnp.asarray(b)), expected, rtol=2e-4, atol=1e-5)


def test_max_xcorr_is_invariant_to_a_circular_phase_shift():
  length, period = 120, 12
  t = np.arange(length)
  u = np.sin(2 * np.pi * t / period) + 0.5 * np.sin(4 * np.pi * t / period + 1.0)
  self_sim = float(similarity.max_xcorr(u[None], u[None])[0, 0])
  for shift in range(1, period):
    v = np.roll(u, shift)  # a pure phase shift: integer periods in the window
    sim = float(similarity.max_xcorr(u[None], v[None])[0, 0])
    # Linear correlation loses at most half a period of overlap at the best lag.
    assert self_sim * (1 - period / (2 * length)) - 1e-5 <= sim <= self_sim + 1e-5, shift
  # Cosine similarity, by contrast, sees a half-period shift as an opposite signal.
  assert float(similarity.cosine(u[None], np.roll(u, period // 2)[None])[0, 0]) < -0.5


def test_loss_hand_worked():
  # M = 2 views per half; cosine similarity of orthogonal signals is the identity matrix.
  e1, e2 = np.eye(2)
  features = np.stack([e1, e2, e1, e2])[None]  # [1, 4, 2]
  speeds = np.array([[1.0, 2.0, 1.0, 2.0]])
  # Targets, τ_label = 1: softmax(−|Δs|) = [1, e⁻¹]/(1 + e⁻¹) per row (mirrored in row 2).
  # Logits = identity: log softmax = [1, 0] − log(e + 1).
  y_same, y_other = 1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))
  expected = -(y_same * (1 - np.log(np.e + 1)) + y_other * (0 - np.log(np.e + 1)))
  got = simper.simper_loss(jnp.asarray(features), jnp.asarray(speeds), similarity="cosine",
                           label_temperature=1.0)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # τ_feat scales the logits: with τ_feat = 0.5 they are 2·identity.
  got_half = simper.simper_loss(jnp.asarray(features), jnp.asarray(speeds), similarity="cosine",
                                label_temperature=1.0, feature_temperature=0.5)
  expected_half = -(y_same * (2 - np.log(np.exp(2) + 1)) + y_other * (0 - np.log(np.exp(2) + 1)))
  np.testing.assert_allclose(got_half, expected_half, rtol=1e-6)


def test_loss_matches_naive_per_row_loop():
  rng = np.random.default_rng(1)
  batch, m, length = 3, 5, 32
  features = rng.normal(size=(batch, 2 * m, length)).astype(np.float32)
  speeds = np.sort(rng.uniform(0.5, 2.0, size=(batch, m)), axis=1)
  speeds = np.concatenate([speeds, speeds], axis=1).astype(np.float32)
  got = simper.simper_loss(jnp.asarray(features), jnp.asarray(speeds))
  np.testing.assert_allclose(got, naive.simper_loss(features.astype(np.float64), speeds),
                             rtol=1e-4)


@pytest.mark.parametrize("name", similarity.SIMILARITIES)
def test_finite_gradient_for_a_constant_feature_signal(name):
  features = jnp.ones((2, 6, 16)).at[0, 1].set(jnp.linspace(0, 1, 16))
  speeds = jnp.tile(jnp.array([0.5, 1.0, 1.5]), (2, 2))
  grad = jax.jit(jax.grad(lambda f: simper.simper_loss(f, speeds, similarity=name)))(features)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"features \[B, 2M, L\]"):
    simper.simper_loss(jnp.ones((6, 16)), jnp.ones((6,)))
  with pytest.raises(ValueError, match="M >= 2"):
    simper.simper_loss(jnp.ones((1, 2, 16)), jnp.ones((1, 2)))
  with pytest.raises(ValueError, match="Unknown similarity 'dot'"):
    simper.simper_loss(jnp.ones((1, 4, 16)), jnp.ones((1, 4)), similarity="dot")


def test_fft_readout_recovers_frequency_and_harmonic():
  from simper_jax import evaluate
  fps, t = 30.0, np.arange(150) / 30.0
  freqs = np.array([0.8, 1.7, 3.2])
  signals = np.sin(2 * np.pi * freqs[:, None] * t + 0.3)
  np.testing.assert_allclose(evaluate.fft_frequency(signals, fps, (0.5, 5.0)), freqs, atol=0.06)
  doubled = np.sin(2 * np.pi * 2 * freqs[:, None] * t)  # a signal at 2f, read as f
  np.testing.assert_allclose(evaluate.fft_frequency(doubled, fps, (0.5, 5.0), harmonic=2),
                             freqs, atol=0.06)


def test_label_distances_on_hand_worked_speeds():

  a, b = jnp.asarray([0.5, 2.0]), jnp.asarray([1.0, 2.0, 0.25])
  delta = np.array([[0.5, 1.5, 0.25], [1.0, 0.0, 1.75]])
  np.testing.assert_allclose(simper.label_distance(a, b, "l1"), delta, rtol=1e-6)
  np.testing.assert_allclose(simper.label_distance(a, b, "l2"), delta**2, rtol=1e-6)
  np.testing.assert_allclose(simper.label_distance(a, b, "sqrt"), np.sqrt(delta), atol=2e-6)
  with pytest.raises(ValueError, match="Unknown label_dist 'l3'"):
    simper.label_distance(a, b, "l3")


def test_learning_rate_drops_at_the_configured_epochs():
  from simper_jax import train  # pylint: disable=g-import-not-at-top
  from tiny import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config("/unused")
  config.learning_rate, config.lr_decay_epochs, config.lr_decay_factor = 1e-3, (2, 3), 0.1
  schedule = train.make_schedule(config, steps_per_epoch=10)
  lrs = [float(schedule(step)) for step in (0, 19, 20, 29, 30, 100)]
  np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)


@pytest.mark.parametrize("n", [8, 16, 50, 180])
def test_dft_as_matmul_is_the_fft(n):
  x = jax.random.normal(jax.random.key(0), (3, 5, n // 2 + 3))  # shorter and longer than n/2
  for length in (n // 2, n // 2 + 3):
    real, imag = similarity.rfft(x[..., :length], n, "matmul")
    spectrum = jnp.fft.rfft(x[..., :length], n=n)
    np.testing.assert_allclose(real, spectrum.real, atol=1e-4 * n)
    np.testing.assert_allclose(imag, spectrum.imag, atol=1e-4 * n)
  spectrum = jnp.fft.rfft(x, n=n)
  np.testing.assert_allclose(similarity.irfft(spectrum.real, spectrum.imag, n, "matmul"),
                             jnp.fft.irfft(spectrum, n=n), atol=1e-5 * n)


@pytest.mark.parametrize("name", ["max_xcorr", "npsd"])
def test_similarities_and_the_loss_are_the_same_with_either_dft(name):
  features = jax.random.normal(jax.random.key(0), (2, 8, 60))
  speeds = jax.random.uniform(jax.random.key(1), (2, 8), minval=0.5, maxval=2.0)
  a, b = features[0, :4], features[0, 4:]
  # Jitted, as in training: one compilation per function, not one per operation.
  sim = lambda dft: jax.jit(similarity.get(name, dft=dft))
  np.testing.assert_allclose(sim("matmul")(a, b), sim("fft")(a, b), rtol=1e-4, atol=1e-5)
  loss = lambda dft: jax.jit(jax.value_and_grad(lambda f: simper.simper_loss(
      f, speeds, similarity=name, dft=dft)))(features)
  (value_fft, grad_fft), (value_matmul, grad_matmul) = loss("fft"), loss("matmul")
  np.testing.assert_allclose(value_matmul, value_fft, rtol=1e-5)
  np.testing.assert_allclose(grad_matmul, grad_fft, rtol=1e-3, atol=1e-5)
  # The matmul path also runs in bfloat16 (a TPU's rfft does not), to bf16 precision.
  bf16 = sim("matmul")(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16))
  assert bf16.dtype == jnp.bfloat16
  np.testing.assert_allclose(bf16.astype(jnp.float32), sim("fft")(a, b), atol=0.05)


def test_an_unknown_dft_is_named():
  with pytest.raises(ValueError, match="Unknown dft 'dct'"):
    similarity.get("max_xcorr", dft="dct")
