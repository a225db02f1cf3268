"""Where a train step's time goes: each part of SimPer's step timed alone, forward and backward.

    python benchmarks/step_profile.py --config=configs/rotating_digits.py [--config.batch_size=1]

Times, on random clips of the config's shape: the view making (speed resampling and the
invariant augmentations of 2M views per clip), each layer of the featurizer (forward, and
forward + backward of a sum of its outputs, with respect to its input and parameters), and
the loss on random feature signals (value and gradient). The parts overlap nothing: their sum
is close to, not exactly, the whole step (XLA fuses across them). With --trace=DIR, it also
writes a jax.profiler trace of three whole train steps there (for TensorBoard's or Perfetto's
viewer) and prints the XLA operations that took the most time per step, from that trace.
"""

import collections
import glob
import gzip
import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from simper_jax import methods
from simper_jax import sharding
from simper_jax.data import pipeline
from simper_jax.methods import simper
from simper_jax.models import featurizer3d
import train_step_bench  # benchmarks/, beside this script

_CONFIG = train_step_bench.CONFIG  # one --config flag for both scripts
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per part (median reported).")
_TRACE = flags.DEFINE_string("trace", None, "Also trace three whole steps into this folder.")
_TOP = flags.DEFINE_integer("top", 12, "XLA operations listed from the trace.")
TRACED_STEPS = 3


def trace_whole_step(config, folder: str) -> None:
  """Traces whole train steps and prints the XLA operations (thunks) that took longest."""
  step, state, batch, _, description = train_step_bench.build_step(config)
  state, metrics = step(state, batch)  # compile outside the trace
  jax.block_until_ready(metrics)
  with jax.profiler.trace(folder, create_perfetto_trace=True):
    started = time.perf_counter()
    for _ in range(TRACED_STEPS):
      state, metrics = step(state, batch)
      jax.block_until_ready(metrics)
    step_ms = 1e3 * (time.perf_counter() - started) / TRACED_STEPS
  [path] = sorted(glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True),
                  key=os.path.getmtime)[-1:]
  with gzip.open(path) as f:
    events = json.load(f)["traceEvents"]
  per_step = collections.Counter()
  for event in events:
    # Complete events of the XLA executor's thunks; Python frames ("$...") and the executor's
    # own spans are containers of these, not operations.
    name = event.get("name", "")
    if event.get("ph") == "X" and not name.startswith(("$", "ThunkExecutor", "PjRt")):
      per_step[name] += event["dur"] / 1e3 / TRACED_STEPS
  print(f"\nWhole step, {description}; trace in {path}.\n{step_ms:.0f} ms per traced step; "
        f"the XLA operations that took longest:")
  for name, ms in per_step.most_common(_TOP.value):
    print(f"  {ms:9.1f} ms  {name}")
  print(f"  (all traced operations: {sum(per_step.values()):.0f} ms per step. Convolutions and "
        f"matmuls that XLA:CPU runs on its intra-op thread pool are not among them, and "
        f"independent operations can overlap, so the two totals need not add up.)")


def _median_ms(fn, *args) -> float:
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def main(_):
  config = _CONFIG.value
  if config.model.name != "featurizer3d":
    raise app.UsageError("step_profile.py breaks down the 3D-CNN featurizer's step.")
  method = methods.get(config.method).build(config, total_steps=1000)
  clips = jax.random.uniform(jax.random.key(0),
                             (config.batch_size,) + pipeline.clip_shape(config.data))
  keys = jax.random.split(jax.random.key(1), config.batch_size)
  options = sharding.compiler_options()  # as the train step is compiled
  make_views = jax.jit(jax.vmap(method.make_views), compiler_options=options)
  views, aux = make_views(keys, clips)
  views = views.reshape((-1,) + views.shape[2:])
  rows = [("views (speeds + augmentations)", _median_ms(make_views, keys, clips), None)]

  m = config.model
  dtype = jnp.dtype(m.dtype)
  x = jnp.transpose(views.astype(dtype), featurizer3d.TIME_MINOR)  # the model's layout
  for i, width in enumerate(m.widths):
    conv = featurizer3d.Conv3D(width, (m.temporal_kernel, 3, 3), dtype=dtype,
                               impl=m.get("conv_impl", "auto"))
    conv_name = (f"conv {i} ({x.shape[-1]}→{width}, {m.temporal_kernel}×3×3) on "
                 f"{x.shape[1]}×{x.shape[2]}")
    variables = conv.init(jax.random.key(2), x)
    y = conv.apply(variables, x)
    norm = featurizer3d.nn.BatchNorm(use_running_average=False, momentum=0.99, epsilon=1e-3,
                                     dtype=dtype)
    norm_vars = norm.init(jax.random.key(3), y)
    for name, fn, args in (
        (conv_name, lambda v, x: conv.apply(v, x), (variables, x)),
        (f"batchnorm {i} + relu", lambda v, y: jax.nn.relu(
            norm.apply(v, y, mutable=["batch_stats"])[0]), (norm_vars, y)),
        (f"max-pool {i}", lambda _, y: featurizer3d.spatial_max_pool(y), (None, y))):
      forward = jax.jit(fn, compiler_options=options)
      both = jax.jit(jax.grad(lambda v, x: jnp.sum(fn(v, x).astype(jnp.float32)),
                              argnums=(0, 1) if name.startswith(("conv", "batch")) else 1),
                     compiler_options=options)
      rows.append((name, _median_ms(forward, *args), _median_ms(both, *args)))
    x = featurizer3d.spatial_max_pool(y)
  signals = jax.random.normal(jax.random.key(4), views.shape[:2])
  per_clip = signals.reshape(config.batch_size, -1, signals.shape[-1])
  if config.method == "simper":
    s = config.simper
    loss = jax.jit(jax.value_and_grad(lambda f: simper.simper_loss(
        f, aux, similarity=s.similarity, label_dist=s.label_dist,
        label_temperature=s.label_temperature, feature_temperature=s.feature_temperature,
        fps=config.data.fps)))
    rows.append(("loss (value and gradient)", _median_ms(loss, per_clip), None))
  total_views = views.shape[0]
  print(f"{config.method} step parts, batch {config.batch_size} clips × "
        f"{total_views // config.batch_size} views of {views.shape[1:]}, {m.dtype}, conv_impl="
        f"{m.get('conv_impl', 'auto')}, on {jax.devices()[0].device_kind} (median of "
        f"{_REPEATS.value}):")
  print(f"  {'part':<44}{'forward ms':>12}{'fwd+bwd ms':>12}")
  for name, forward, both in rows:
    print(f"  {name:<44}{forward:>12.1f}{'' if both is None else f'{both:12.1f}'}")
  if _TRACE.value:
    trace_whole_step(config, _TRACE.value)


if __name__ == "__main__":
  app.run(main)
