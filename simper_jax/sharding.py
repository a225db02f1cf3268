"""The device mesh, how the train state is laid out on it, and host <-> global arrays.

The mesh is `config.mesh`, big_vision style: ((axis name, size), ...) with size -1 for "all
the remaining devices". Two axis names mean something:
  data   the batch is split over it; the train state is replicated along it.
  fsdp   the batch is split over it too, and every array of the train state (params, Adam
         moments, batch statistics) is split along one of its dimensions (ZeRO-3 / FSDP): each
         device holds 1/fsdp of the state and XLA gathers the parameters a layer needs.
These helpers work the same in one process and in many (`jax.distributed`).
"""

from typing import Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from simper_jax import errors

AXES = ("data", "fsdp")


def make_mesh(mesh_config: Sequence[Sequence], devices: Sequence[jax.Device]) -> Mesh:
  """The mesh of `devices` described by `config.mesh`, e.g. (("data", -1), ("fsdp", 2)).

  Raises:
    errors.ConfigError naming config.mesh when an axis is unknown or repeated, or the sizes do not
    multiply to the number of devices.
  """
  names = [str(name) for name, _ in mesh_config]
  sizes = [int(size) for _, size in mesh_config]

  def fail(expected):
    raise errors.ConfigError(f"config.mesh={tuple(map(tuple, mesh_config))!r}: {expected}")

  if not names or len(set(names)) != len(names) or set(names) - set(AXES):
    fail(f"expected distinct axes among {AXES}, e.g. (('data', -1),) or "
         f"(('data', -1), ('fsdp', 2)).")
  if sizes.count(-1) > 1 or any(s < 1 and s != -1 for s in sizes):
    fail("expected positive axis sizes, and at most one -1 (= the remaining devices).")
  known = int(np.prod([s for s in sizes if s != -1]))
  if len(devices) % known:
    fail(f"the axis sizes multiply to {known}, which does not divide the {len(devices)} "
         f"devices.")
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) != len(devices):
    fail(f"the axis sizes multiply to {int(np.prod(sizes))}, but there are {len(devices)} "
         f"devices; use -1 for one axis to take the rest.")
  # create_device_mesh orders devices by their physical links on TPU; elsewhere it reshapes.
  device_grid = mesh_utils.create_device_mesh(sizes, devices=list(devices),
                                              allow_split_physical_axes=True)
  return Mesh(device_grid, names)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over every axis of the mesh."""
  return NamedSharding(mesh, P(tuple(mesh.axis_names)))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def state_shardings(abstract_state, mesh: Mesh):
  """A NamedSharding for every leaf of `abstract_state` (from `jax.eval_shape`).

  Without an 'fsdp' axis everything is replicated. With one, each array is split along its
  largest dimension that the fsdp size divides (big_vision's rule); arrays with no such
  dimension (scalars, odd-sized biases) stay replicated.
  """
  fsdp = dict(zip(mesh.axis_names, mesh.devices.shape)).get("fsdp", 1)

  def leaf_sharding(leaf):
    shape = getattr(leaf, "shape", ())
    spec = [None] * len(shape)
    if fsdp > 1:
      divisible = [i for i, n in enumerate(shape) if n % fsdp == 0]
      if divisible:
        spec[max(divisible, key=lambda i: shape[i])] = "fsdp"
    return NamedSharding(mesh, P(*spec))

  return jax.tree.map(leaf_sharding, abstract_state)


def global_batch(host_batch: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array that every process holds in full (evaluation batches).

  Each process hands over only the rows its own devices hold, so this is right for any
  number of processes (unlike `device_put`, which needs one process).
  """
  return jax.make_array_from_callback(host_batch.shape, sharding, lambda index: host_batch[index])


def on_host_batches(jitted_fn, batch_sharding: NamedSharding):
  """`jitted_fn` of a global batch → a function of a host batch that every process holds in
  full, returning the whole result as numpy on every process (evaluation, prediction)."""
  return lambda host_batch: to_host(jitted_fn(global_batch(host_batch, batch_sharding)))


def to_host(array: jax.Array) -> np.ndarray:
  """The whole of a (possibly multi-process) global array, as numpy on every process."""
  if jax.process_count() == 1:
    return np.asarray(jax.device_get(array))
  return np.asarray(multihost_utils.process_allgather(array, tiled=True))


# XLA:CPU rewrites reductions over a dimension longer than 32 into reduce-windows ("tree
# reduction"), whose CPU kernel walks the window with the channels innermost: in the 3D-CNN's
# train step these were BatchNorm's statistics and their gradients, twelve reduce-windows
# taking ~2.1 s of a 4.8 s step (benchmarks/step_profile.py --trace, paper config, batch 1,
# 2 CPU cores); without the rewrite there are none, and the values are the same to float
# rounding (tests/test_featurizer.py). Other backends have their own reduction emitters and
# get no options.
CPU_COMPILER_OPTIONS = {"xla_disable_hlo_passes": "tree_reduction_rewriter"}


def compiler_options(devices: Sequence[jax.Device] | None = None) -> dict[str, str]:
  """XLA options for the jitted train and fine-tuning steps on `devices` (default: JAX's)."""
  devices = jax.devices() if devices is None else devices
  return dict(CPU_COMPILER_OPTIONS) if devices[0].platform == "cpu" else {}
