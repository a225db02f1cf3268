"""Train-step throughput (clips/s) of a config on the devices present.

    python benchmarks/train_step_bench.py --config=configs/rotating_digits.py [--steps 10]

Times the full jitted step (augmentation of 2M views per clip on the device, featurizer
forward and backward, loss, Adam update) on random uint8 clips of the config's shape, on the
config's mesh (`config.mesh`, e.g. --config.mesh='(("data",-1),("fsdp",2))') and with its
`model.dtype` and `grad_accum_steps`, so no input pipeline is involved. Prints the median step
time, clips/s, the analytic model FLOPs per step (`model_flops`) with the FLOP/s they give,
XLA's own count for comparison, and MFU (analytic FLOP/s ÷ the device's peak) on devices whose
peak it knows.
"""

import functools
import time

from absl import app
from absl import flags
import jax
from jax.extend import core as jax_core
import numpy as np
import optax
from ml_collections import config_flags

from simper_jax import methods
from simper_jax import sharding
from simper_jax import train
from simper_jax.data import pipeline

CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
STEPS = flags.DEFINE_integer("steps", 10, "Timed steps (after one compile step).")
# Dense bf16 peak FLOP/s of accelerators we know, for MFU.
PEAK_FLOPS = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H200": 989e12, "TPU v4": 275e12,
              "TPU v5 lite": 197e12, "TPU v5p": 459e12}


def _conv_and_matmul_flops(jaxpr) -> float:
  """2 × multiply-adds of every convolution and matmul in a jaxpr, sub-jaxprs included."""
  total = 0.0
  for eqn in jaxpr.eqns:
    out = eqn.outvars[0].aval.shape
    if eqn.primitive.name == "conv_general_dilated":
      kernel = eqn.invars[1].aval.shape
      out_features = kernel[eqn.params["dimension_numbers"].rhs_spec[0]]
      total += 2.0 * np.prod(out) * np.prod(kernel) / out_features
    elif eqn.primitive.name == "dot_general":
      (contracting, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2.0 * np.prod(out) * np.prod([lhs[d] for d in contracting])
    for sub in jax_core.jaxprs_in_params(eqn.params):  # pjit, custom_jvp, scan, ...
      total += _conv_and_matmul_flops(sub)
  return total


def model_flops(model, variables, views_shape) -> float:
  """Analytic model FLOPs of one train step on views [V, L, H, W, C]: 3 × the forward pass's
  convolution and matmul FLOPs (the backward pass costs two forwards: gradients of the inputs
  and of the weights), the usual MFU convention. Counted from the model's math, so the same
  whichever way XLA computes a layer (im2col, cuDNN, padding)."""
  forward = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                    rngs={"dropout": jax.random.key(0)}))(
      variables, jax.ShapeDtypeStruct(views_shape, np.float32))
  return 3.0 * _conv_and_matmul_flops(forward.jaxpr)


def build_step(config):
  """(jitted train step, state, batch, model FLOPs per step, description) for `config`, on
  random clips as the dataset stores them (uint8 frames, float16 series), laid out on the
  config's mesh over all devices."""
  devices = jax.devices()
  train.check_config(config, len(devices))
  mesh = sharding.make_mesh(config.get("mesh", train.DEFAULT_MESH), devices)
  batch_sharding = sharding.batch_sharding(mesh)
  clip_shape = (config.batch_size,) + pipeline.clip_shape(config.data)

  model = train.make_model(config)
  schedule = train.make_schedule(config, steps_per_epoch=1000)
  tx = optax.adam(schedule)
  label_stats = {"label_mean": 0.0, "label_std": 1.0} if methods.needs_labels(config) else {}
  method = methods.get(config.method).build(config, total_steps=1000, **label_stats)
  sample_shape = (1, method.window) + clip_shape[2:]
  init = functools.partial(train.init_train_state, model=model, tx=tx,
                           sample_shape=sample_shape, method=method)
  state_sharding = sharding.state_shardings(jax.eval_shape(init, jax.random.key(0)), mesh)
  state = jax.jit(init, out_shardings=state_sharding)(jax.random.key(0))
  step = jax.jit(functools.partial(train.train_step, model=model, tx=tx, schedule=schedule,
                                   method=method, config=config, augment_key=jax.random.key(1)),
                 in_shardings=(state_sharding, batch_sharding), donate_argnums=0,
                 compiler_options=sharding.compiler_options(devices))
  rng = np.random.default_rng(0)
  clips = (rng.integers(0, 256, clip_shape, dtype=np.uint8)
           if pipeline.clip_dtype(config.data) == np.uint8
           else rng.normal(size=clip_shape).astype(np.float16))  # z-scored series
  batch = {"video": jax.device_put(clips, batch_sharding),
           "label": jax.device_put(np.zeros(config.batch_size, np.float32), batch_sharding),
           "index": jax.device_put(np.arange(config.batch_size, dtype=np.int32), batch_sharding),
           "epoch": jax.device_put(np.zeros(config.batch_size, np.int32), batch_sharding)}
  views = jax.eval_shape(jax.vmap(method.make_views), jax.random.split(jax.random.key(0),
                                                                       config.batch_size),
                         jax.ShapeDtypeStruct(clip_shape, np.float32))[0].shape
  views_shape = (views[0] * views[1],) + views[2:]
  flops = model_flops(model, {"params": state.params["encoder"],
                              "batch_stats": state.batch_stats}, views_shape)
  description = (f"{config.method} on {config.model.name} ({config.model.dtype}), batch "
                 f"{config.batch_size} clips × {views[1]} views × {views[2]} frames of "
                 f"{views[3]}², on {len(devices)}× {devices[0].device_kind}, mesh "
                 f"{dict(mesh.shape)}, {config.get('grad_accum_steps', 1)} micro-batch(es)")
  return step, state, batch, flops, description


def median_step_seconds(step, state, batch, steps: int) -> float:
  """One untimed step (compiles), then the median wall time of `steps` steps, in seconds."""
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(_):
  config = CONFIG.value
  step, state, batch, flops, description = build_step(config)
  devices = jax.devices()
  cost = step.lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = float(cost.get("flops", 0.0)) if cost else 0.0

  median = median_step_seconds(step, state, batch, STEPS.value)
  kind = devices[0].device_kind
  print(description)
  print(f"  step time   {1e3 * median:9.1f} ms (median of {STEPS.value})")
  print(f"  throughput  {config.batch_size / median:9.2f} clips/s")
  achieved = flops / median
  print(f"  model FLOPs {flops / 1e9:9.1f} GFLOP/step (analytic), {achieved / 1e9:.1f} GFLOP/s")
  if xla_flops:
    print(f"  XLA FLOPs   {xla_flops / 1e9:9.1f} GFLOP/step (XLA's cost analysis, for comparison)")
  if kind in PEAK_FLOPS:
    print(f"  MFU         {100 * achieved / (PEAK_FLOPS[kind] * len(devices)):9.2f} % "
          f"(of dense bf16 peak)")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
