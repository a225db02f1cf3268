"""Train-step throughput (clips/s) of a config on the devices present.

    python benchmarks/train_step_bench.py --config=configs/rotating_digits.py [--steps 10]

Times the full jitted step (augmentation of 2M views per clip on the device, featurizer
forward and backward, loss, Adam update) on random uint8 clips of the config's shape, on the
config's mesh (`config.mesh`, e.g. --config.mesh='(("data",-1),("fsdp",2))') and with its
`model.dtype` and `grad_accum_steps`, so no input pipeline is involved. Prints the median step
time, clips/s, and model FLOPs per step with the achieved FLOP/s as counted by XLA's cost
analysis (MFU needs the device's peak, which the script prints when it knows it).
"""

import functools
import time

from absl import app
from absl import flags
import jax
import numpy as np
import optax
from ml_collections import config_flags

from simper_jax import methods
from simper_jax import sharding
from simper_jax import train
from simper_jax.data import pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps (after one compile step).")
# Dense bf16 peak FLOP/s of accelerators we know, for MFU.
PEAK_FLOPS = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H200": 989e12, "TPU v4": 275e12,
              "TPU v5 lite": 197e12, "TPU v5p": 459e12}


def main(_):
  config = _CONFIG.value
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
  batch = {"video": jax.device_put(rng.integers(0, 256, clip_shape, dtype=np.uint8),
                                   batch_sharding),
           "label": jax.device_put(np.zeros(config.batch_size, np.float32), batch_sharding)}
  compiled = step.lower(state, batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0

  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  median = float(np.median(times))
  kind = devices[0].device_kind
  views = jax.eval_shape(method.make_views, jax.random.key(0),
                         jax.ShapeDtypeStruct(clip_shape[1:], np.float32))[0].shape[0]
  print(f"{config.method} on {config.model.name} ({config.model.dtype}), batch "
        f"{config.batch_size} clips × {views} views × {method.window} frames of "
        f"{clip_shape[2]}², on {len(devices)}× {kind}, mesh {dict(mesh.shape)}, "
        f"{config.get('grad_accum_steps', 1)} micro-batch(es)")
  print(f"  step time   {1e3 * median:9.1f} ms (median of {_STEPS.value})")
  print(f"  throughput  {config.batch_size / median:9.1f} clips/s")
  if flops:
    achieved = flops / median
    print(f"  XLA flops   {flops / 1e9:9.1f} GFLOP/step, {achieved / 1e12:.3f} TFLOP/s")
    if kind in PEAK_FLOPS:
      print(f"  MFU         {100 * achieved / (PEAK_FLOPS[kind] * len(devices)):9.2f} % "
            f"(of dense bf16 peak)")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
