"""The methods (simper_jax/methods): losses against independent NumPy versions, their state
outside the optimizer, their views, the 1-NN readout and the training-split harmonic rule,
and every method end to end through the one loop."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naive
from simper_jax import checkpoint
from simper_jax import errors
from simper_jax import evaluate
from simper_jax import heart_rate
from simper_jax import methods
from simper_jax import run
from simper_jax import train
from simper_jax.data import pipeline
from simper_jax.methods import base
from simper_jax.methods import cvrl
from tiny import tiny_config


# ---------------------------------------------------------------------------------------------
# Losses against NumPy, written pair by pair from the papers' definitions.
# ---------------------------------------------------------------------------------------------
def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def numpy_nt_xent(z1, z2, temperature):
  """SimCLR eq. (1), averaged over all 2B anchors."""
  z = _unit(np.concatenate([z1, z2]).astype(np.float64))
  n = len(z1)
  total = 0.0
  for i in range(2 * n):
    positive = i + n if i < n else i - n
    others = [np.exp(z[i] @ z[k] / temperature) for k in range(2 * n) if k != i]
    total += -np.log(np.exp(z[i] @ z[positive] / temperature) / np.sum(others))
  return total / (2 * n)


def numpy_moco(q, k, queue, temperature):
  """MoCo eq. (1): the key is the positive, the queue the negatives."""
  q, k, queue = _unit(q.astype(np.float64)), _unit(k.astype(np.float64)), _unit(queue)
  total = 0.0
  for i in range(len(q)):
    logits = np.concatenate([[q[i] @ k[i]], queue @ q[i]]) / temperature
    total += -logits[0] + np.log(np.sum(np.exp(logits)))
  return total / len(q)


def test_nt_xent_matches_numpy_and_uses_every_clip_of_the_batch():
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(2, 8, 5)).astype(np.float32)
  for temperature in (0.1, 0.5):
    np.testing.assert_allclose(base.nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature),
                               numpy_nt_xent(z1, z2, temperature), rtol=1e-5)
  # Negatives span the batch: two halves scored apart give another number.
  halves = (numpy_nt_xent(z1[:4], z2[:4], 0.1) + numpy_nt_xent(z1[4:], z2[4:], 0.1)) / 2
  assert abs(float(base.nt_xent(jnp.asarray(z1), jnp.asarray(z2), 0.1)) - halves) > 1e-3


def test_moco_info_nce_with_a_queue_matches_numpy():
  rng = np.random.default_rng(1)
  q, k = rng.normal(size=(2, 4, 6)).astype(np.float32)
  queue = rng.normal(size=(12, 6)).astype(np.float32)
  np.testing.assert_allclose(base.info_nce_with_queue(q, k, queue, 0.2),
                             numpy_moco(q, k, queue, 0.2), rtol=1e-5)


def test_byol_normalized_mse_is_two_minus_two_cosine():
  rng = np.random.default_rng(2)
  p, z = rng.normal(size=(2, 5, 7))
  cosine = np.sum(_unit(p) * _unit(z), axis=-1)
  np.testing.assert_allclose(base.normalized_mse(jnp.asarray(p), jnp.asarray(z)),
                             np.mean(2 - 2 * cosine), rtol=1e-5)


def numpy_mlp(params, x):
  """Dense → BatchNorm (batch statistics, flax's eps 1e-5) → ReLU per hidden layer, Dense."""
  layers = sorted(k for k in params if k.startswith("Dense_"))
  for i, name in enumerate(layers):
    x = x @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])
    if i < len(layers) - 1:
      bn = params[f"BatchNorm_{i}"]
      x = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * np.asarray(bn["scale"]) + np.asarray(
          bn["bias"])
      x = np.maximum(x, 0)
  return x


def test_cvrl_loss_is_info_nce_of_the_projected_clip_pairs():
  config = tiny_config("unused", method="cvrl")
  method = cvrl.build(config)
  rng = np.random.default_rng(3)
  heads = jax.jit(method.init_heads, static_argnums=1)(jax.random.key(0), 8)
  signals = rng.normal(size=(4 * 2, 8)).astype(np.float32)  # 4 clips × 2 clips of the video
  encode = lambda params, stats, video: (jnp.asarray(signals), stats)
  views = jnp.zeros((4, 2, 8, 8, 8, 1))
  loss, _ = jax.jit(lambda heads: method.loss(
      {"encoder": {}, "heads": heads["params"]}, {"encoder": {}, "heads": heads["batch_stats"]},
      {}, encode, views, {}, None, 0))(heads)
  z = numpy_mlp(jax.device_get(heads["params"]["projector"]), signals.astype(np.float64))
  z = z.reshape(4, 2, -1)
  np.testing.assert_allclose(loss, numpy_nt_xent(z[:, 0], z[:, 1], config.cvrl.temperature),
                             rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# State outside the optimizer.
# ---------------------------------------------------------------------------------------------
def test_ema_and_byol_momentum_schedule():
  target, online = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, -2.0])}
  np.testing.assert_allclose(base.ema(target, online, 0.9)["w"], [1.2, 1.6], rtol=1e-6)
  assert float(base.cosine_momentum(0, 100, 0.996)) == pytest.approx(0.996)
  assert float(base.cosine_momentum(50, 100, 0.996)) == pytest.approx(0.998)
  assert float(base.cosine_momentum(100, 100, 0.996)) == pytest.approx(1.0)


def test_moco_queue_enqueues_in_order_and_wraps_around():
  queue, pointer = jnp.zeros((6, 2)), jnp.int32(0)
  batches = [jnp.full((2, 2), float(i)) for i in (1, 2, 3, 4)]
  for i, keys in enumerate(batches[:3]):
    queue, pointer = base.enqueue(queue, pointer, keys)
    assert int(pointer) == (2 * (i + 1)) % 6
  np.testing.assert_array_equal(queue[:, 0], [1, 1, 2, 2, 3, 3])
  queue, pointer = base.enqueue(queue, pointer, batches[3])  # overwrites the oldest
  np.testing.assert_array_equal(queue[:, 0], [4, 4, 2, 2, 3, 3])
  assert int(pointer) == 2


# ---------------------------------------------------------------------------------------------
# Views.
# ---------------------------------------------------------------------------------------------
def test_cvrl_interval_sampler_prefers_short_intervals():
  draws = jax.vmap(lambda k: cvrl.sample_interval(k, 90, 1.0))(
      jax.random.split(jax.random.key(0), 20000))
  counts, _ = np.histogram(np.asarray(draws), bins=6, range=(0, 90))
  assert np.all(np.diff(counts) < 0), counts  # decreasing
  # Linear density 2(1 − t/90)/90: a sixth of the range near 0 holds 11/36 of the mass.
  assert counts[0] / 20000 == pytest.approx(11 / 36, abs=0.02)
  uniform = jax.vmap(lambda k: cvrl.sample_interval(k, 90, 0.0))(
      jax.random.split(jax.random.key(1), 20000))
  assert np.histogram(np.asarray(uniform), bins=6, range=(0, 90))[0].std() < 150


def test_cvrl_clips_are_cut_at_the_interval_with_one_spatial_draw_per_clip():
  # Frame t of the video shows the value t everywhere except one bright corner pixel: a crop
  # drawn per frame would move the corner from frame to frame.
  frames = np.tile((np.arange(40) / 40.0)[:, None, None, None], (1, 8, 8, 1))
  frames[:, 0, 0, 0] = 1.0
  augment = {"brightness": (1.0, 1.0), "blur_prob": 0.0}
  largest_weight = 0.0
  make = jax.jit(functools.partial(cvrl.make_views, window=10, power=1.0,
                                   augment_kwargs=augment))  # compiled once for the 20 draws
  for seed in range(20):
    views, aux = make(jax.random.key(seed), jnp.asarray(frames, jnp.float32))
    views = np.asarray(views)
    # Each output pixel is w·1 + (1 − w)·level, w the corner's weight in it: the same w in
    # every frame of a clip means the same crop and flip.
    level = views[:, :, 4:5, 4:5]
    weight = (views - level) / (1 - level)
    np.testing.assert_allclose(weight, np.repeat(weight[:, :1], 10, axis=1), atol=1e-4)
    largest_weight = max(largest_weight, float(weight.max()))
    # Each clip is 10 consecutive frames (no reversal in CVRL), 'interval' frames apart.
    levels = views[:, :, 4, 4, 0] * 40
    np.testing.assert_allclose(np.diff(levels, axis=1), 1.0, atol=1e-3)
    assert abs(round(levels[1, 0]) - round(levels[0, 0])) == int(aux["interval"])
  assert largest_weight > 0.05  # the corner is inside some crops: the check is not vacuous


# ---------------------------------------------------------------------------------------------
# Readouts.
# ---------------------------------------------------------------------------------------------
def test_one_nearest_neighbour_matches_brute_force():
  rng = np.random.default_rng(4)
  train_signals, test_signals = rng.normal(size=(37, 24)), rng.normal(size=(11, 24))
  labels = rng.uniform(0.5, 5.0, size=37)
  expected = [labels[np.argmax([naive.max_xcorr(t, s) for s in train_signals])]
              for t in test_signals]
  got = evaluate.nearest_neighbour(train_signals, labels, test_signals, memory=2000)  # 2 chunks
  np.testing.assert_allclose(got, expected)


def test_the_fft_harmonic_is_chosen_on_training_labels_not_test_ones():
  fps, t = 30.0, np.arange(300) / 30.0
  freqs = np.linspace(0.6, 2.4, 12)
  at_double = np.sin(2 * np.pi * 2 * freqs[:, None] * t)  # signals at 2f, labels f
  assert evaluate.choose_fft_harmonic(at_double, freqs, fps, (0.5, 5.0)) == 2
  # Test clips at the fundamental: had the choice looked at test labels, it would pick 1.
  results = evaluate.evaluate_signals(
      at_double, freqs, np.sin(2 * np.pi * freqs[:, None] * t), freqs, fps=fps,
      band=(0.5, 5.0), probe_input="spectrum", probe_l2=1.0, fft_harmonic=None)
  assert results["fft"]["harmonic"] == 2 and results["fft"]["mae"] > 0.2


def test_heart_rate_per_video_uses_each_videos_own_frame_rate():
  signals, ppg, ids, index, rates = [], [], [], [], []
  for video, (fps, bpm) in enumerate(((30.0, 72.0), (25.0, 96.0))):
    t = np.arange(2 * 300) / fps
    wave = np.sin(2 * np.pi * bpm / 60 * t).reshape(2, 300)
    signals += list(wave)
    ppg += list(wave)
    ids += [video, video]
    index += [0, 1]
    rates += [fps, fps]
  pred, true, *_ = heart_rate.per_video_heart_rates(np.array(signals), np.array(ppg), ids, index,
                                                   np.array(rates))
  np.testing.assert_allclose(pred, [72.0, 96.0], atol=1.8)  # one bin of a 20-s video
  np.testing.assert_allclose(pred, true)


# ---------------------------------------------------------------------------------------------
# Through the loop.
# ---------------------------------------------------------------------------------------------
# SimPer's run stays in the quick set (-m "not slow"); the other methods' are slow.
@pytest.mark.parametrize("method", [m if m == "simper" else pytest.param(m, marks=pytest.mark.slow)
                                    for m in methods.METHODS])
def test_each_method_end_to_end_and_load_encoder_returns_only_the_encoder(method, data_dir,
                                                                           tmp_path):
  workdir = str(tmp_path / method)
  config = tiny_config(data_dir, method=method, num_steps=2)
  results = run.train_and_evaluate(config, workdir)
  assert {"fft", "1nn", "linear_probe"} <= set(results)
  with open(os.path.join(workdir, "results.json")) as f:
    assert json.load(f)["method"] == method
  module, variables = checkpoint.load_encoder(workdir)
  encoder_only = jax.eval_shape(lambda: train.make_model(config).init(
      jax.random.key(0), jnp.zeros((1, 8, 8, 8, 1)), train=False))
  assert jax.tree.structure(variables) == jax.tree.structure(encoder_only)
  assert module.apply(variables, np.zeros((1, 24, 8, 8, 1), np.float32)).shape == (1, 24)


@pytest.mark.slow  # two runs through the loop each, and a checkpoint
@pytest.mark.parametrize("method", ["moco", "byol"])
def test_stop_and_resume_equals_an_uninterrupted_run_with_queue_and_target(method, data_dir,
                                                                            tmp_path):
  straight, _, _ = train.train(tiny_config(data_dir, method=method, num_steps=4),
                               str(tmp_path / "straight"))
  workdir = str(tmp_path / "resumed")
  train.train(tiny_config(data_dir, method=method, num_steps=2), workdir)
  resumed, _, _ = train.train(tiny_config(data_dir, method=method, num_steps=4), workdir)
  assert jax.tree.structure(resumed.extra) == jax.tree.structure(straight.extra)
  assert jax.tree.leaves(straight.extra)  # there is state outside the optimizer to compare
  for a, b in zip(jax.tree.leaves(jax.device_get((resumed.params, resumed.extra))),
                  jax.tree.leaves(jax.device_get((straight.params, straight.extra)))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # two runs (test_train checks SimPer's on one and eight devices)
def test_simclr_loss_is_the_same_on_one_and_eight_devices(data_dir, tmp_path):
  config = tiny_config(data_dir, method="simclr", num_steps=2)
  _, one, _ = train.train(config, str(tmp_path / "one"), devices=jax.devices()[:1])
  _, eight, _ = train.train(config, str(tmp_path / "eight"))
  np.testing.assert_allclose([l for _, l in one], [l for _, l in eight], rtol=1e-5)


def test_supervised_trains_on_its_label_fraction(data_dir, tmp_path, capsys):
  config = tiny_config(data_dir, method="supervised", num_steps=1,
                       **{"supervised.label_fraction": 0.5})
  train.train(config, str(tmp_path / "half"))
  assert "Data: 8 training clips of (24, 8, 8, 1) (50 % of the split)" in capsys.readouterr().out
  subset = pipeline.Subset.of_fraction(list(range(16)), 0.5, seed=0)
  assert len(subset) == 8 and list(subset.indices) == sorted(set(subset.indices))


@pytest.mark.parametrize("override, message", [
    ({"method": "swav"}, r"config.method='swav': expected one of \('simper', 'simclr', 'moco', "
                         r"'byol', 'cvrl', 'supervised'\)"),
    ({"method": "moco", "moco.queue_size": 20},
     r"config.moco.queue_size=20: expected a positive multiple of the global batch"),
    ({"method": "moco", "moco.momentum": 1.0}, r"config.moco.momentum=1.0: expected a momentum "
                                               r"in \[0, 1\)"),
    ({"method": "byol", "byol.base_momentum": -0.1}, r"config.byol.base_momentum=-0.1"),
    ({"method": "simclr", "batch_size": 1}, r"config.batch_size=1: SimCLR's negatives are the "
                                            r"other clips"),
    ({"method": "cvrl", "batch_size": 1}, r"config.batch_size=1: CVRL's negatives"),
    ({"method": "supervised", "data.label_key": ""}, r"config.data.label_key='': the supervised "
                                                     r"method trains on labels"),
])
def test_method_fields_that_cannot_work_are_named(override, message, data_dir, tmp_path):
  with pytest.raises(errors.ConfigError, match=message):
    train.train(tiny_config(data_dir, **override), str(tmp_path / "bad"))


def test_a_workdir_of_another_method_is_refused(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train.train(tiny_config(data_dir, num_steps=1), workdir)
  with pytest.raises(errors.ConfigError, match=r"method: saved 'simper', now 'byol'"):
    train.train(tiny_config(data_dir, method="byol", num_steps=2), workdir)


def test_a_checkpoint_from_before_methods_loads_but_does_not_resume(data_dir, tmp_path):
  """The old layout: params and batch_stats were the encoder's alone."""
  workdir = str(tmp_path / "old")
  config = tiny_config(data_dir, num_steps=1)
  state, _, ctx = train.train(config, workdir)
  old = {"step": state.step, "params": state.params["encoder"],
         "batch_stats": state.batch_stats["encoder"], "opt_state": {}}
  manager = checkpoint.make_manager(workdir, config)
  source = ctx["sources"]["train"]
  iterator = pipeline.train_iterator(source, global_batch_size=8, seed=0,
                                     label_key="frequency")
  checkpoint.save(manager, 5, old, iterator, config)
  manager.wait_until_finished()
  _, variables = checkpoint.load_encoder(workdir)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(jax.device_get(
      {"params": old["params"], "batch_stats": old["batch_stats"]}))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(errors.ConfigError, match="written before methods were pluggable"):
    train.train(tiny_config(data_dir, num_steps=6), workdir)


@pytest.mark.slow  # a run through the loop
def test_moco_with_gradient_accumulation_enqueues_every_key_of_the_batch(data_dir, tmp_path):
  # 2 micro-batches of 4 on 4 devices: the keys of both go into the queue, in example order.
  config = tiny_config(data_dir, method="moco", num_steps=1, grad_accum_steps=2)
  state, _, _ = train.train(config, str(tmp_path / "accum"), devices=jax.devices()[:4])
  whole, _, _ = train.train(tiny_config(data_dir, method="moco", num_steps=1),
                            str(tmp_path / "whole"), devices=jax.devices()[:4])
  assert int(state.extra["pointer"]) == int(whole.extra["pointer"]) == 8
  queue, whole_queue = np.asarray(state.extra["queue"]), np.asarray(whole.extra["queue"])
  # The encoder's BatchNorm sees each micro-batch alone, so keys differ a little; each row
  # must still be the key of the same clip (nearest row of the whole-batch run).
  similarity = queue[:8] @ whole_queue[:8].T
  np.testing.assert_array_equal(np.argmax(similarity, axis=1), np.arange(8))


def test_load_encoder_returns_the_trained_params_and_batchnorm_statistics(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  state, _, _ = train.train(tiny_config(data_dir, num_steps=2), workdir)
  _, variables = checkpoint.load_encoder(workdir)
  trained = {"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]}
  assert jax.tree.structure(variables) == jax.tree.structure(trained)
  for loaded, kept in zip(jax.tree.leaves(variables), jax.tree.leaves(trained)):
    np.testing.assert_array_equal(loaded, np.asarray(kept))
  # The statistics moved away from their initial values (mean 0, var 1): a real comparison.
  assert any(np.abs(np.asarray(v)).max() > 0 for v in
             jax.tree.leaves(variables["batch_stats"]))


def test_simper_views_are_independent_draws():
  """View i of the first half and view i of the second share their speed but not their
  window or augmentation; two clips (two keys) get different speeds."""
  from simper_jax.methods import simper  # pylint: disable=g-import-not-at-top
  clip = jax.random.uniform(jax.random.key(0), (40, 12, 12, 1))
  make = jax.jit(functools.partial(simper.make_views, num_speeds=4, speed_range=(0.5, 2.0),
                                   window=16))
  views, speeds = make(jax.random.key(1), clip)
  np.testing.assert_array_equal(speeds[:4], speeds[4:])
  for i in range(4):
    assert not np.allclose(views[i], views[4 + i]), f"views {i} and {4 + i} are the same draw"
  _, other_speeds = make(jax.random.key(2), clip)
  assert not np.allclose(speeds, other_speeds)
