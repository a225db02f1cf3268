"""SimPer pretraining, one readable loop (big_vision / Flax-examples style); evaluation of
the trained encoder is `simper_jax.run`.

Sections: config checks · mesh and data · model, optimizer and sharded state · the jitted
train step · checkpoint restore · the loop.
"""

import contextlib
import functools
import json
import os
import signal
import threading
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils
from tensorboardX import SummaryWriter

from simper_jax import augment
from simper_jax import checkpoint
from simper_jax import errors
from simper_jax import evaluate
from simper_jax import methods
from simper_jax import models
from simper_jax import rppg_methods
from simper_jax import sharding
from simper_jax import workdir as run_files
from simper_jax import similarity
from simper_jax import uncertainty
from simper_jax.data import pipeline
from simper_jax.models import featurizer3d


def log(message: str) -> None:
  """Progress goes to stdout, from process 0 only."""
  if jax.process_index() == 0:
    print(message, flush=True)


DEFAULT_MESH = (("data", -1),)


class Preempted(Exception):
  """SIGTERM or Ctrl-C arrived and a checkpoint of the step reached was saved; rerun to resume."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
    self.signum = signum


SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


@contextlib.contextmanager
def preemption_notice():
  """Yields `stop_signal(step) -> signal number or None`: which stop request has arrived.

  Cloud TPUs and batch schedulers send SIGTERM before they take a machine away, and a user
  presses Ctrl-C (SIGINT); the loop asks at each step boundary, so the checkpoint it then
  writes is a consistent one.
  - One process: our handlers note the signal. The first Ctrl-C is a request like SIGTERM; it
    puts Python's own handler back, so a second Ctrl-C interrupts at once (KeyboardInterrupt).
    Signal handlers can only be set from the main thread; elsewhere both keep their defaults.
  - Several processes (`jax.distributed`): SIGTERM may reach one host only, and every host
    must save the same step, so we ask JAX's preemption sync point, which the distributed
    runtime's own SIGTERM handler drives: it answers True on every host at the same step.
    Ctrl-C keeps its default there (it stops the process at once): hosts cannot agree on a
    step without a collective at every step.
  """
  if jax.process_count() > 1:
    yield lambda step: signal.SIGTERM if multihost_utils.reached_preemption_sync_point(step) \
        else None
    return
  if threading.current_thread() is not threading.main_thread():
    yield lambda step: None
    return
  received = []

  def on_sigterm(signum, frame):
    received.append(signum)

  def on_first_ctrl_c(signum, frame):
    received.append(signum)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("\nCtrl-C: saving a checkpoint at the end of this step, then stopping (Ctrl-C again "
          "before the save starts stops at once, losing the steps since the last checkpoint).",
          flush=True)

  handlers = {signal.SIGTERM: on_sigterm, signal.SIGINT: on_first_ctrl_c}
  if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # Started with Ctrl-C ignored (`nohup`, a background job of a script): keep it ignored,
    # as Python itself does.
    del handlers[signal.SIGINT]
  previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
  try:
    yield lambda step: received[0] if received else None
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)


@contextlib.contextmanager
def _ignoring_ctrl_c():
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)


NONFINITE_POLICIES = ("stop", "skip")  # config.nonfinite


@flax.struct.dataclass
class TrainState:
  """Everything a step changes. params and batch_stats are {'encoder': ..., 'heads': ...}
  (`load_encoder` reads the encoder's alone); extra is the method's state outside the
  optimizer (an EMA target, a queue; {} for SimPer)."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  extra: Any


# ---------------------------------------------------------------------------------------------
# Config checks: every mistake we can see before compiling anything.
# ---------------------------------------------------------------------------------------------
def check_config(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises errors.ConfigError naming the field, its value and what is expected."""
  def fail(field, expected):
    raise errors.ConfigError(f"config.{field}={_get(config, field)!r}: {expected}")

  if config.method not in methods.METHODS:
    fail("method", f"expected one of {methods.METHODS}.")
  if config.get("nonfinite", "stop") not in NONFINITE_POLICIES:
    fail("nonfinite", f"expected one of {NONFINITE_POLICIES}.")
  if config.augment.get("name", "video") not in augment.INVARIANTS:
    fail("augment.name", f"expected one of {tuple(augment.INVARIANTS)}.")
  # (low, high) pairs: a wrong length or a string would otherwise surface as an unpacking
  # error deep inside the step. The augmentation ranges are those of the config's family.
  for field, lowest, highest in (("simper.speed_range", 0, None), ("eval.band", 0, None),
                                 ("augment.crop_area", 0, 1), ("augment.crop_aspect", 0, None),
                                 ("augment.brightness", 0, None), ("augment.blur_sigma", 0, None),
                                 ("augment.scale", 0, None)):
    if field.startswith("augment.") and field.split(".")[1] not in config.augment:
      continue
    if not _is_range(_get(config, field), lowest, highest):
      fail(field, f"expected (low, high), two numbers with {lowest} < low <= high"
                  + (f" <= {highest}." if highest is not None else "."))
  methods.get(config.method).check_config(config, fail)
  train_fraction = config.data.get("train_fraction", 1.0)
  if not (isinstance(train_fraction, (int, float)) and 0 < train_fraction <= 1):
    fail("data.train_fraction", "expected the share of the training split to use, in (0, 1].")
  if not config.learning_rate > 0:
    fail("learning_rate", "expected a positive number.")
  if config.model.name not in models.MODELS:
    fail("model.name", f"expected one of {models.MODELS}.")
  if config.model.dtype not in ("float32", "bfloat16"):
    fail("model.dtype", "expected 'float32' or 'bfloat16'.")
  if config.model.get("conv_impl", "auto") not in featurizer3d.CONV_IMPLS:
    fail("model.conv_impl", "expected 'auto', 'xla' or 'im2col'.")
  accum = config.get("grad_accum_steps", 1)
  if not (isinstance(accum, int) and accum >= 1):
    fail("grad_accum_steps", "expected a positive integer.")
  if config.batch_size < 1 or config.batch_size % (num_devices * accum):
    fail("batch_size", f"expected a positive multiple of the {num_devices} devices"
                       + (f" × grad_accum_steps={accum} (each micro-batch is split over every "
                          f"device)." if accum > 1 else "."))
  if config.eval.batch_size < 1 or config.eval.batch_size % num_devices:
    fail("eval.batch_size", f"expected a positive multiple of the {num_devices} devices.")
  if config.get("num_steps") is None and config.num_epochs < 1:
    fail("num_epochs", "expected at least 1.")
  harmonic = config.eval.get("fft_harmonic")
  if harmonic is not None and not (isinstance(harmonic, (int, float)) and harmonic > 0):
    fail("eval.fft_harmonic", "expected a positive number, or None to choose it on the "
                              "training split.")
  if config.eval.knn_similarity not in similarity.SIMILARITIES:
    fail("eval.knn_similarity", f"expected one of {similarity.SIMILARITIES}.")
  if config.eval.probe_input not in ("spectrum", "signal"):
    fail("eval.probe_input", "expected 'spectrum' or 'signal'.")
  if config.eval.probe_l2 is not None and not config.eval.probe_l2 > 0:
    fail("eval.probe_l2", "expected a positive number, or None to cross-validate it.")
  if config.eval.get("protocol", "frequency") not in evaluate.PROTOCOLS:
    fail("eval.protocol", f"expected one of {evaluate.PROTOCOLS}.")
  classic = tuple(config.eval.get("classic_methods", ()))
  unknown = [name for name in classic if name not in rppg_methods.METHODS]
  if unknown:
    fail("eval.classic_methods", f"unknown {unknown}; expected names from "
         f"{tuple(rppg_methods.METHODS)}.")
  if classic and config.eval.get("protocol", "frequency") != "heart_rate":
    fail("eval.classic_methods", "the classic rPPG methods read heart rate from face video: "
         "they need eval.protocol='heart_rate'.")
  uncertainty.check_config(config.eval, fail)
  if config.data.get("subset") and config.data.get("train_fraction", 1.0) < 1:
    fail("data.subset", "a subset file names clips of the whole training split; it cannot be "
                        "combined with data.train_fraction < 1.")
  for fraction in config.eval.get("finetune_fractions", ()):
    if not 0 < fraction <= 1:
      fail("eval.finetune_fractions", "expected fractions of the labels in (0, 1].")
  if config.eval.get("finetune_fractions") and (
      config.eval.finetune_batch_size < 1 or config.eval.finetune_batch_size % num_devices):
    fail("eval.finetune_batch_size", f"expected a positive multiple of the {num_devices} "
                                     f"devices.")
  if config.model.name == "tscan":
    for field in (f"{config.method}.window", pipeline.clip_frames_field(config.data)):
      if _get(config, field) % config.model.frame_depth:
        fail(field, f"TS-CAN shifts frames in blocks of model.frame_depth="
                    f"{config.model.frame_depth}; expected a multiple of it.")


def compilation_cache_dir(config) -> str | None:
  """Where compiled programs are kept across runs: `config.compilation_cache_dir`, by default
  simper_jax/jax under the user's cache folder ($XDG_CACHE_HOME, else ~/.cache); None when
  `config.compilation_cache` is off."""
  if not config.get("compilation_cache", True):
    return None
  path = config.get("compilation_cache_dir") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "simper_jax", "jax")
  return os.path.expanduser(path)


def use_compilation_cache(config) -> None:
  """Turns on JAX's persistent compilation cache, so a rerun (a resume, an evaluation, the
  same config again) loads the train step instead of compiling it. JAX reads the setting when
  it first compiles, so it has to be set before anything in the process compiles; later
  changes to it are ignored by JAX, and so here."""
  path = compilation_cache_dir(config)
  if path is None or jax.config.jax_compilation_cache_dir:
    return
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  # Cache what takes a second or more to compile: the train and evaluation steps, not the
  # many small helpers.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  log(f"Compilation cache: {path} (config.compilation_cache=False turns it off).")


def check_feature_keys(config, builder) -> None:
  """The label and every per-clip field the evaluation reads exist in the prepared data."""
  features = sorted(builder.info.features.keys())
  fields = [("data.label_key", config.data.label_key)] * bool(config.data.label_key) + [
      ("eval.reference_keys", key) for key in config.eval.get("reference_keys", ())]
  for field, key in fields:
    if key not in features:
      raise errors.ConfigError(f"config.{field}: {config.data.name} has no field {key!r}; its "
                               f"fields are {features}.")


def _is_range(value, lowest: float, highest: float | None) -> bool:
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    return False
  if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
    return False
  return lowest < value[0] <= value[1] and (highest is None or value[1] <= highest)


def _get(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


# ---------------------------------------------------------------------------------------------
# Model, optimizer and the train step.
# ---------------------------------------------------------------------------------------------
def make_model(config: ml_collections.ConfigDict):
  return models.get(config.model.name)(**models.model_kwargs(config.model.to_dict()))


def init_train_state(key: jax.Array, model, tx, sample_shape, method) -> TrainState:
  """Fresh state for `model` and `method`'s heads on views of `sample_shape` [1, L, H, W, C]."""
  # The encoder draws from `key` itself, as it did before methods were pluggable, so a SimPer
  # run is the same run as before; heads and extra state draw from their own folds.
  heads_key, extra_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
  encoder = model.init(key, jnp.zeros(sample_shape, jnp.float32), train=False)
  heads = method.init_heads(heads_key, sample_shape[1])
  params = {"encoder": encoder["params"], "heads": heads["params"]}
  batch_stats = {"encoder": encoder.get("batch_stats", {}), "heads": heads["batch_stats"]}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=tx.init(params),
                    extra=method.init_extra(extra_key, params, batch_stats))


def make_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The paper's step schedule: lr × decay_factor at each of `lr_decay_epochs`."""
  return optax.piecewise_constant_schedule(
      config.learning_rate,
      {int(e * steps_per_epoch): config.lr_decay_factor for e in config.lr_decay_epochs})


def make_encode(model, dropout_key: jax.Array):
  """`encode(encoder_params, encoder_batch_stats, video [n, L, H, W, C]) -> (feature signals
  [n, L], new batch_stats)` in training mode: what a method's loss calls the encoder through."""
  def encode(params, batch_stats, video):
    signals, updates = model.apply({"params": params, "batch_stats": batch_stats}, video,
                                   train=True, mutable=["batch_stats"],
                                   rngs={"dropout": dropout_key})
    return signals, updates.get("batch_stats", batch_stats)  # none in BN-free models
  return encode


def train_step(state: TrainState, batch: dict, *, model, tx, schedule, method, config,
               augment_key: jax.Array):
  """One optimizer step on a global batch, in `config.grad_accum_steps` micro-batches.

  The method (`simper_jax.methods`) makes the views and computes the loss; this function
  knows nothing of which method it runs.

  Args:
    state: the train state (donated), laid out by `sharding.state_shardings`.
    batch: {'video': uint8 [B, T, H, W, C] (float16 for a time series), 'label': [B], 'index': int32 [B], 'epoch': int32
      [B]}, B split over the mesh; `index` and `epoch` identify each example
      (`pipeline.train_iterator`).

  Returns:
    The new state and {'loss', 'learning_rate', 'finite'} scalars: `finite` is whether the
    loss and every gradient were finite. With config.nonfinite="skip" a step that was not
    leaves the state as it was (but the step count), so one bad batch cannot poison it.
  """
  batch_size = batch["video"].shape[0]
  step_key = jax.random.fold_in(augment_key, state.step)
  rows = jnp.arange(batch_size)

  def loss_and_grads(params, batch_stats, video, labels, epochs, indices, rows):
    """Loss, (batch_stats, aux_out) and gradients of one micro-batch of b clips."""
    # Each example's views are keyed by the example itself (its epoch and dataset index,
    # carried in the batch), not by the row it has in this batch: they do not depend on how
    # the batch is split over devices, hosts or micro-batches, nor on how a mesh orders them.
    example_keys = jax.vmap(lambda epoch, index: jax.random.fold_in(
        jax.random.fold_in(augment_key, epoch), index))(epochs, indices)
    views, aux = jax.vmap(method.make_views)(example_keys, pipeline.model_input(video))
    # Dropout draws from its own stream: fold_in(augment_key, step) (a parent shared with the
    # examples of epoch == step), then 2**32 - 1 - j for micro-batch j (whose first row is j),
    # which no dataset index reaches: never an example's key.
    dropout_key = jax.random.fold_in(step_key,
                                     jnp.uint32(2**32 - 1) - rows.min().astype(jnp.uint32))
    encode = make_encode(model, dropout_key)
    loss_fn = lambda params: method.loss(params, batch_stats, state.extra, encode, views, aux,
                                         labels, state.step)
    return jax.value_and_grad(loss_fn, has_aux=True)(params)

  accum = config.get("grad_accum_steps", 1)
  if accum == 1:
    (loss, (batch_stats, aux_out)), grads = loss_and_grads(
        state.params, state.batch_stats, batch["video"], batch["label"], batch["epoch"],
        batch["index"], rows)
  else:
    # Micro-batch j holds examples j, j + k, j + 2k, ... (k = accum): a reshape that keeps
    # each device's rows on that device, so every micro-batch is spread over all devices.
    def split(x):
      return jnp.swapaxes(x.reshape((batch_size // accum, accum) + x.shape[1:]), 0, 1)

    def unsplit(x):  # [accum, b, ...] back to example order [B, ...]
      return jnp.swapaxes(x, 0, 1).reshape((batch_size,) + x.shape[2:])

    def accumulate(carry, micro):
      loss_sum, grad_sum, batch_stats = carry
      (loss, (batch_stats, aux_out)), grads = loss_and_grads(state.params, batch_stats, *micro)
      return (loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads), batch_stats), aux_out

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (loss_sum, grad_sum, batch_stats), aux_outs = jax.lax.scan(
        accumulate, (jnp.zeros((), jnp.float32), zeros, state.batch_stats),
        tuple(split(x) for x in (batch["video"], batch["label"], batch["epoch"], batch["index"],
                                 rows)))
    # The loss is a mean over clips and micro-batches are equal-sized: the mean of the
    # micro-batch means (and of their gradients) is the full batch's.
    loss, grads = loss_sum / accum, jax.tree.map(lambda g: g / accum, grad_sum)
    aux_out = {"per_example": jax.tree.map(unsplit, aux_outs["per_example"]),
               "latest": jax.tree.map(lambda x: x[-1], aux_outs["latest"])}

  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  new_state = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats,
                         opt_state=opt_state,
                         extra=method.update_extra(state.extra, params, batch_stats, aux_out,
                                                   state.step))
  finite = jnp.isfinite(loss) & jnp.all(jnp.stack(
      [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
  if config.get("nonfinite", "stop") == "skip":
    # By hand, not optax.apply_if_finite: that keeps the params and optimizer state only,
    # while a non-finite forward pass also reaches BatchNorm's statistics and the method's
    # extra state (an EMA target, a queue of keys).
    kept = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = new_state.replace(
        params=kept(new_state.params, state.params),
        batch_stats=kept(new_state.batch_stats, state.batch_stats),
        opt_state=kept(new_state.opt_state, state.opt_state),
        extra=kept(new_state.extra, state.extra))
  return new_state, {"loss": loss, "learning_rate": schedule(state.step), "finite": finite}


# ---------------------------------------------------------------------------------------------
# Train and evaluate.
# ---------------------------------------------------------------------------------------------
def train(config: ml_collections.ConfigDict, workdir: str, devices=None):
  """Trains `config.method`, resuming from the latest checkpoint in `workdir` if there is one.

  Args:
    config: see configs/rotating_digits.py for every field.
    workdir: checkpoints/, tensorboard/, metrics.jsonl and config.json go here.
    devices: the devices of the mesh (`config.mesh`); None → all of `jax.devices()`, i.e.
      every device of every process.

  Returns:
    (state, history, context): the final TrainState; [(step, mean loss since the previous
    log line)] for the steps run in this call; and what evaluation needs (model, data
    sources, batch sharding).
  """
  with workdir_lock(workdir):
    return _train(config, workdir, devices)


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """The workdir's lock (`simper_jax.workdir.held`), taken by process 0 for the whole run,
  and a full disk met meanwhile said in one line (`workdir.disk_full_is_one_line`)."""
  with run_files.held(workdir, log=log, enabled=jax.process_index() == 0):
    with run_files.disk_full_is_one_line(workdir):
      yield


def _train(config, workdir, devices):
  # --- Mesh and data ---------------------------------------------------------------------------
  devices = list(devices or jax.devices())
  config = pipeline.with_label_key(config, log)
  check_config(config, len(devices))
  use_compilation_cache(config)
  mesh = sharding.make_mesh(config.get("mesh", DEFAULT_MESH), devices)
  checkpoint.check_workdir_config(workdir, config)
  replicated = sharding.replicated(mesh)
  batch_sharding = sharding.batch_sharding(mesh)

  builder = pipeline.get_builder(config.data, log=log)
  check_feature_keys(config, builder)
  data_fraction = config.data.get("train_fraction", 1.0)
  sources = pipeline.with_train_fraction(builder.as_data_source(), data_fraction, config.seed)
  train_source = sources["train"]
  if config.data.get("subset"):
    # Pretraining reads the clips a subset file keeps (simper_jax.select); the readouts are
    # still fitted on the whole training split. Checked before config.json is written: a
    # wrong file must not leave a workdir that refuses the corrected command.
    train_source = pipeline.subset_source(train_source, config.data.subset, builder)
  subset_share = len(train_source) / len(sources["train"])
  checkpoint.write_workdir_config(workdir, config)
  log(f"Workdir: {workdir}")
  if config.data.get("subset"):
    log(f"Subset {config.data.subset}: {len(train_source)} of the {len(sources['train'])} "
        f"training clips.")
  method_fraction = methods.train_fraction(config)  # the supervised reference's label_fraction
  if methods.needs_labels(config) and getattr(builder, "PARTLY_LABELLED", False):
    # A user's folder may label some clips only: a method that trains on labels reads those.
    train_source = pipeline.labelled(train_source, config.data.label_key, log)
  if method_fraction < 1:
    train_source = pipeline.Subset.of_fraction(train_source, method_fraction, config.seed)
  fraction = data_fraction * method_fraction * subset_share
  data_iterator = pipeline.train_iterator(
      train_source, global_batch_size=config.batch_size, seed=config.seed,
      label_key=config.data.label_key, read_threads=config.data.read_threads)
  steps_per_epoch = len(train_source) // config.batch_size
  total_steps = config.get("num_steps") or config.num_epochs * steps_per_epoch
  log(f"Data: {len(train_source)} training clips of {builder.info.features['video'].shape}"
      f"{f' ({100 * fraction:g} % of the split)' if fraction < 1 else ''}, {steps_per_epoch} "
      f"steps/epoch, {total_steps} steps on {len(devices)} {devices[0].platform} device(s) in "
      f"{jax.process_count()} process(es), mesh {dict(mesh.shape)}.")

  # --- Method, model, optimizer, sharded state -------------------------------------------------
  label_stats = (pipeline.label_stats(train_source, config.data.label_key, seed=config.seed)
                 if methods.needs_labels(config) else {})
  # Schedules (the learning rate's, BYOL's momentum) run over the nominal length in epochs:
  # num_steps, which cuts a run short or stops it to resume later, must not change them
  # (configs with num_epochs=0 are measured in num_steps alone).
  method = methods.get(config.method).build(
      config, total_steps=config.num_epochs * steps_per_epoch or total_steps, **label_stats)
  model = make_model(config)
  schedule = make_schedule(config, steps_per_epoch)
  tx = optax.adam(schedule)
  init_key, augment_key = jax.random.split(jax.random.key(config.seed))
  sample_shape = (1, method.window) + builder.info.features["video"].shape[1:]

  init_state = functools.partial(init_train_state, model=model, tx=tx, sample_shape=sample_shape,
                                 method=method)

  # Shardings come from the state's shapes: replicated on ('data',), split over 'fsdp'.
  abstract_state = jax.eval_shape(init_state, init_key)
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  abstract_state = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state,
      state_sharding)

  step_fn = jax.jit(
      functools.partial(train_step, model=model, tx=tx, schedule=schedule, method=method,
                        config=config, augment_key=augment_key),
      in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, replicated),
      donate_argnums=0, compiler_options=sharding.compiler_options(mesh.devices.flat))

  # --- Restore or init -------------------------------------------------------------------------
  manager = checkpoint.make_manager(workdir, config)
  started = time.time()
  state = None
  if manager.latest_step() is not None:
    state = checkpoint.restore(manager, abstract_state, data_iterator, log=log)
    if state is not None:
      log(f"Resumed from {workdir} at step {int(state.step)} ({time.time() - started:.1f} s).")
    else:
      log(f"No checkpoint in {workdir} can be read (each moved to "
          f"{checkpoint.DAMAGED_DIR}/): training starts again from step 0.")
  if jax.process_index() == 0:
    _truncate_metrics(workdir, int(state.step) if state is not None else 0)
  if state is None:
    state = jax.jit(init_state, out_shardings=state_sharding)(init_key)
    count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
    log(f"Initialized {config.method} with {config.model.name} "
        f"({count(state.params['encoder']):,} parameters; heads "
        f"{count(state.params['heads']):,}) in {time.time() - started:.1f} s.")

  # Compiled ahead of the loop, so the wait has its own line (minutes for the paper's
  # config on a CPU) and the step rates below measure steps only.
  if int(state.step) < total_steps:
    log("Compiling the train step ...")
    started = time.time()
    abstract_batch = {
        "video": jax.ShapeDtypeStruct((config.batch_size,) + builder.info.features["video"].shape,
                                      builder.info.features["video"].np_dtype,
                                      sharding=batch_sharding),
        "label": jax.ShapeDtypeStruct((config.batch_size,), np.float32, sharding=batch_sharding),
        **{key: jax.ShapeDtypeStruct((config.batch_size,), np.int32, sharding=batch_sharding)
           for key in ("index", "epoch")}}
    step_fn = step_fn.lower(abstract_state, abstract_batch).compile()
    log(f"Compiled the train step in {time.time() - started:.1f} s.")

  # --- The loop --------------------------------------------------------------------------------
  writer = SummaryWriter(f"{workdir}/tensorboard") if jax.process_index() == 0 else None
  step = int(state.step)
  # The event file is closed however training ends: a caller's process (a notebook, the
  # evaluation, a test) goes on without an open file and a writer thread per call.
  with contextlib.closing(writer) if writer else contextlib.nullcontext(), \
      preemption_notice() as stop_requested:
    # The next batches are laid out on the devices while the current step runs.
    batches = pipeline.DevicePrefetch(
        data_iterator, lambda host_batch: {
            k: jax.make_array_from_process_local_data(batch_sharding, v)
            for k, v in host_batch.items()})
    started = time.time()
    try:
      state, history = _loop(config, workdir, state, step, total_steps, step_fn, batches,
                             manager, writer, stop_requested)
    except Exception as e:
      # Saves still in flight settle first (complete, or fail too), so that what the error
      # says is safe (a full disk: "checkpoint N is complete") is what is on disk.
      if run_files.disk_full_path(e) is not None:
        run_files.silence_background_stderr()
      with contextlib.suppress(Exception):
        manager.wait_until_finished()
      raise
  manager.wait_until_finished()
  if int(state.step) > step:
    log(f"Trained steps {step + 1}–{int(state.step)} in {time.time() - started:.0f} s.")
  context = {"model": model, "sources": sources, "sharding": batch_sharding}
  return state, history, context


def _loop(config, workdir, state, step, total_steps, step_fn, batches, manager, writer,
          stop_requested):
  """Steps until `total_steps`, logging and checkpointing; raises Preempted on SIGTERM or
  the first Ctrl-C, after saving the step reached. `batches` is a `pipeline.DevicePrefetch`,
  whose state is that of the batches consumed (not of those read ahead)."""
  history, pending, window_start, window_step = [], [], time.time(), step
  skip = config.get("nonfinite", "stop") == "skip"
  skipped_total = 0
  while step < total_steps:
    state, metrics = step_fn(state, next(batches))
    step += 1
    pending.append(metrics)  # fetched only at log time, so the host does not stall the device

    logged = step % config.log_every == 0 or step == total_steps
    saved = step % config.checkpoint_every == 0 or step == total_steps
    if logged or (saved and not skip):
      # Before a checkpoint too: no checkpoint is ever written after a non-finite step.
      fetched = jax.device_get(pending)
      finite = np.array([bool(m["finite"]) for m in fetched])
      if not finite.all() and not skip:
        raise nonfinite_error(config, workdir, manager, first_step=step - len(fetched) + int(
            np.argmin(finite)) + 1, loss=float(fetched[int(np.argmin(finite))]["loss"]),
                              step=step)
    if logged:
      elapsed = time.time() - window_start
      steps_per_s = (step - window_step) / max(elapsed, 1e-9)
      losses = [float(m["loss"]) for m, ok in zip(fetched, finite) if ok]
      loss = float(np.mean(losses)) if losses else float("nan")
      skipped = int((~finite).sum())
      skipped_total += skipped
      learning_rate = float(fetched[-1]["learning_rate"])
      history.append((step, loss))
      eta = (total_steps - step) / max(steps_per_s, 1e-9)
      log(f"step {step:>6}/{total_steps} ({100 * step / total_steps:5.1f}%) | loss {loss:.4f} | "
          f"lr {learning_rate:.1e} | {steps_per_s:.2f} steps/s | "
          f"{steps_per_s * config.batch_size:.1f} clips/s | ETA {eta / 60:.1f} min"
          + (f" | skipped {skipped} non-finite step{'s' * (skipped > 1)} "
             f"({skipped_total} in all)" if skipped else ""))
      if writer:
        scalars = {"train/loss": loss, "train/learning_rate": learning_rate,
                   "perf/steps_per_s": steps_per_s,
                   "perf/clips_per_s": steps_per_s * config.batch_size}
        if skip:
          scalars["train/skipped_steps"] = skipped
        for name, value in scalars.items():
          writer.add_scalar(name, value, step)
        writer.flush()
        # The same points as JSON lines, for scripts and sweeps (full float precision).
        with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
          f.write(json.dumps({"step": step, **scalars}) + "\n")
      pending, window_start, window_step = [], time.time(), step

    if saved:
      checkpoint.save(manager, step, state, batches, config)
    stop_signal = stop_requested(step)
    if stop_signal and step < total_steps:
      # The save that was asked for is finished even if Ctrl-C comes again meanwhile (it
      # takes seconds): interrupted, it would leave only a temporary folder behind.
      with _ignoring_ctrl_c():
        if not saved:
          checkpoint.save(manager, step, state, batches, config)
        manager.wait_until_finished()
      log(f"{SIGNAL_NAMES.get(stop_signal, 'A stop signal')} received: saved a checkpoint at "
          f"step {step}/{total_steps}{' on every process' if jax.process_count() > 1 else ''}; "
          f"run the same command again to resume from it.")
      raise Preempted(stop_signal, step)
  return state, history


def nonfinite_error(config, workdir: str, manager, *, first_step: int, loss: float,
                    step: int) -> errors.RunError:
  """What the run says when config.nonfinite="stop" meets a non-finite step: where, what is
  safe, the usual causes, how to go on."""
  manager.wait_until_finished()
  last = manager.latest_step()
  safe = (f"the last good checkpoint is step {last} ({os.path.join(workdir, 'checkpoints', str(last))}"
          f"); steps {last + 1}–{first_step - 1} were finite but are not saved"
          if last is not None else "no checkpoint was saved before it")
  if last is not None and last == first_step - 1:
    safe = f"the last good checkpoint is step {last}, the step before it"
  return errors.RunError(
      f"The loss (or a gradient) was not finite at step {first_step} (loss {loss}); the run "
      f"stopped at step {step} with nothing saved after it (config.nonfinite='stop'): {safe}. "
      f"Usual causes: a learning rate too high (config.learning_rate={config.learning_rate}), "
      f"bfloat16 compute (config.model.dtype={config.model.get('dtype', 'float32')!r}), a clip "
      f"with no variation. Lower the rate, or set --config.nonfinite=skip to leave such steps "
      f"out, and run the same command again to resume"
      + (f" from step {last}." if last is not None else "."))


def _truncate_metrics(workdir: str, step: int) -> None:
  """Drops the lines of workdir/metrics.jsonl after `step`: a resumed run logs those steps
  again, and each step must appear once. A line cut by a crash or a full disk while it was
  written (it is appended a line at a time: rewriting the file at every log point would cost
  its whole size each time) is dropped too, with a line saying so."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  kept, cut = [], 0
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:
      cut += 1
      continue
    if record.get("step", step + 1) <= step:
      kept.append(line if line.endswith("\n") else line + "\n")
  if cut:
    log(f"{path}: {cut} line{'s' * (cut > 1)} cut short by an interrupted write, dropped.")
  if len(kept) != len(lines) or cut:
    run_files.write_atomic(path, "".join(kept))
