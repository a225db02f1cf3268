"""config.mesh (data / fsdp), gradient accumulation and bf16 compute on 8 host devices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import scamps
from simper_jax import methods
from simper_jax import sharding
from simper_jax import train
from tiny import tiny_config


def test_fsdp_shards_the_state_and_gives_the_same_loss(data_dir, tmp_path):
  state, data_only, _ = train.train(tiny_config(data_dir, num_steps=3), str(tmp_path / "data"))
  mesh = (("data", 4), ("fsdp", 2))
  fsdp_state, fsdp, _ = train.train(tiny_config(data_dir, num_steps=3, mesh=mesh),
                                    str(tmp_path / "fsdp"))
  np.testing.assert_allclose([l for _, l in fsdp], [l for _, l in data_only], rtol=1e-5)
  # Conv_0's kernel [5, 3, 3, 1, 2] is split in two along its last (only even) dimension;
  # its Adam moments alike; a [1]-sized bias cannot be split and stays replicated.
  kernel = fsdp_state.params["encoder"]["Conv_0"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, None, None, None, "fsdp")
  assert kernel.addressable_shards[0].data.shape == (5, 3, 3, 1, 1)
  adam = fsdp_state.opt_state[0]
  assert adam.mu["encoder"]["Conv_0"]["kernel"].sharding.spec == kernel.sharding.spec
  assert fsdp_state.params["encoder"]["Conv_1"]["bias"].sharding.is_fully_replicated
  assert state.params["encoder"]["Conv_0"]["kernel"].sharding.is_fully_replicated  # ('data',) mesh
  # The split kernel ends where the replicated one does (leaves whose gradient is only
  # rounding noise may not: see NOISE_DRIVEN in test_multihost.py).
  np.testing.assert_allclose(np.asarray(kernel),
                             np.asarray(state.params["encoder"]["Conv_0"]["kernel"]),
                             rtol=1e-5, atol=1e-6)


def test_state_shardings_pick_the_largest_divisible_dimension():
  mesh = sharding.make_mesh((("data", 2), ("fsdp", 4)), jax.devices())
  shapes = {"a": jax.ShapeDtypeStruct((8, 12), jnp.float32),
            "b": jax.ShapeDtypeStruct((3, 5), jnp.float32),
            "c": jax.ShapeDtypeStruct((), jnp.int32)}
  specs = jax.tree.map(lambda s: s.spec, sharding.state_shardings(shapes, mesh))
  P = jax.sharding.PartitionSpec
  assert specs == {"a": P(None, "fsdp"), "b": P(None, None), "c": P()}


@pytest.mark.parametrize("mesh, message", [
    ((("data", 3),), r"the axis sizes multiply to 3, which does not divide the 8 devices"),
    ((("data", 2), ("fsdp", 2)), r"multiply to 4, but there are 8 devices"),
    ((("model", -1),), r"expected distinct axes among \('data', 'fsdp'\)"),
    ((("data", -1), ("fsdp", -1)), r"at most one -1"),
])
def test_a_mesh_that_does_not_fit_the_devices_is_named(data_dir, tmp_path, mesh, message):
  with pytest.raises(ValueError, match=r"config.mesh=.*" + message):
    train.train(tiny_config(data_dir, mesh=mesh), str(tmp_path / "bad"))


def test_batch_must_divide_over_devices_and_micro_batches(data_dir, tmp_path):
  with pytest.raises(ValueError, match=r"batch_size=8: expected a positive multiple of the 8 "
                                       r"devices × grad_accum_steps=2"):
    train.train(tiny_config(data_dir, grad_accum_steps=2), str(tmp_path / "bad"))


def _loss_and_gradient(config, frame_shape):
  """`f(batch) -> (loss, gradient pytree)`: the jitted train step of `config` on batches of
  clips of `frame_shape` [H, W, C], from a fixed init, with plain SGD at lr 1 so that the
  parameter change is minus the gradient. Compiled once, for every batch of the test."""
  model = train.make_model(config)
  tx = optax.sgd(1.0)
  method = methods.get(config.method).build(config, total_steps=10)
  sample_shape = (1, method.window) + tuple(frame_shape)
  state = jax.jit(lambda key: train.init_train_state(key, model, tx, sample_shape, method))(
      jax.random.key(0))
  step = jax.jit(functools.partial(train.train_step, model=model, tx=tx,
                                   schedule=optax.constant_schedule(1.0), method=method,
                                   config=config, augment_key=jax.random.key(1)))
  change = jax.jit(lambda old, new: jax.tree.map(jnp.subtract, old, new))

  def loss_and_gradient(batch):
    new_state, metrics = step(state, batch)
    return float(metrics["loss"]), change(state.params, new_state.params)
  return loss_and_gradient


def _random_batch(rng, video_shape):
  n = video_shape[0]
  return {"video": rng.integers(0, 256, video_shape, dtype=np.uint8),
          "label": np.zeros(n, np.float32), "index": rng.permutation(1000)[:n].astype(np.int32),
          "epoch": rng.integers(0, 3, n).astype(np.int32)}


def test_views_follow_the_example_not_its_row_in_the_batch():
  # The same examples in another order (as another mesh's device order would place them):
  # each keeps its views, so the loss and gradient are the same. Keyed by the row, they differ.
  config = scamps.get_config("tiny")
  config.model.dropout = (0.0, 0.0)
  batch = _random_batch(np.random.default_rng(0), (8, 60, 12, 12, 3))
  loss_and_gradient = _loss_and_gradient(config, (12, 12, 3))
  loss, grads = loss_and_gradient(batch)
  order = np.array([3, 0, 6, 1, 7, 2, 5, 4])
  permuted_loss, permuted_grads = loss_and_gradient(
      {key: value[order] for key, value in batch.items()})
  np.testing.assert_allclose(permuted_loss, loss, rtol=1e-5)
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads))
  for a, b in zip(jax.tree.leaves(permuted_grads), jax.tree.leaves(grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)
  # And another epoch of the same examples gets other views.
  other_epoch, _ = loss_and_gradient({**batch, "epoch": batch["epoch"] + 1})
  assert abs(other_epoch - loss) > 1e-4


def test_gradient_accumulation_equals_the_whole_batch():
  # TS-CAN without dropout has no batch coupling (no BatchNorm), so k micro-batches give the
  # full batch's loss and gradient exactly, up to summation order.
  config = scamps.get_config("tiny")
  config.model.dropout = (0.0, 0.0)
  rng = np.random.default_rng(0)
  batch = _random_batch(rng, (8, 60, 12, 12, 3))
  loss_1, grads_1 = _loss_and_gradient(config, (12, 12, 3))(batch)
  config.grad_accum_steps = 4
  loss_4, grads_4 = _loss_and_gradient(config, (12, 12, 3))(batch)
  np.testing.assert_allclose(loss_4, loss_1, rtol=1e-5)
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_1))
  assert scale > 1e-4  # a real gradient, not a vacuous comparison
  for a, b in zip(jax.tree.leaves(grads_4), jax.tree.leaves(grads_1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_bfloat16_compute_keeps_float32_params_and_the_float32_losses(data_dir, tmp_path):
  state, history, _ = train.train(tiny_config(data_dir, num_steps=3,
                                              **{"model.dtype": "bfloat16"}),
                                  str(tmp_path / "bf16"))
  _, f32_history, _ = train.train(tiny_config(data_dir, num_steps=3), str(tmp_path / "f32"))
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
  # bf16 has an 8-bit mantissa: the loss agrees with float32 to about 1 %.
  np.testing.assert_allclose([l for _, l in history], [l for _, l in f32_history], rtol=2e-2)


def test_a_run_resumes_on_another_mesh(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  _, straight, _ = train.train(tiny_config(data_dir, num_steps=4), str(tmp_path / "straight"))
  train.train(tiny_config(data_dir, num_steps=2), workdir)  # ('data', 8)
  state, resumed, _ = train.train(
      tiny_config(data_dir, num_steps=4, mesh=(("data", 4), ("fsdp", 2))), workdir)
  assert [s for s, _ in resumed] == [3, 4]
  np.testing.assert_allclose([l for _, l in resumed], [l for _, l in straight[2:]], rtol=1e-5)
  # Saved replicated, restored split over 'fsdp'.
  assert state.params["encoder"]["Conv_0"]["kernel"].sharding.spec == jax.sharding.PartitionSpec(
      None, None, None, None, "fsdp")
