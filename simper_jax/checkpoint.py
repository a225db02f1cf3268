"""Orbax checkpoints of the train state and the data iterator; `load_encoder` for downstream.

A checkpoint directory `workdir/checkpoints/<step>/` holds three items:
  state    the train state pytree (step, params and batch_stats — each {'encoder', 'heads'} —,
           opt_state, and the method's extra state: an EMA target, a queue)
  data     the grain iterator state, so a resumed run sees the same batches
  encoder  JSON: the encoder's registry name and constructor arguments, the method, and the
           FFT readout's settings
`load_encoder` needs only the last two pieces of information plus the params, so downstream
code gets a Flax module and its variables without this repo's training code or configs.
"""

import glob
import json
import os
import re
from typing import Any, Optional

from etils import epath
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from simper_jax import errors
from simper_jax import models
from simper_jax import workdir as run_files

ITEMS = ("state", "data", "encoder")
# Config fields that may change when a run resumes: they do not change what the saved state
# means. Anything else differing from the saved config.json is an error.
# The mesh and micro-batching say how a step is computed, not what the state is: a run may
# resume on a slice of another size or shape.
RESUMABLE_FIELDS = ("num_epochs", "num_steps", "log_every", "checkpoint_every",
                    "keep_checkpoints", "eval", "data.read_threads", "data.data_dir",
                    "data.manual_dir", "data.builder.num_workers", "mesh", "grad_accum_steps",
                    "compilation_cache", "compilation_cache_dir", "nonfinite",
                    "simper.dft")  # the same similarities to float rounding, computed otherwise


# Fields added to the configs after runs were saved: {dotted field: the value that reproduces
# what the code did before the field existed}. A saved config without one of them resumes
# with this value (and only with it).
ADDED_FIELDS = {"data.train_fraction": 1.0, "data.builder.train_bands": [],
                "nonfinite": "stop"}


def make_manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(save_interval_steps=1, max_to_keep=config.keep_checkpoints,
                                         create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               item_names=ITEMS, options=options)


def encoder_spec(config: ml_collections.ConfigDict) -> dict:
  """What `load_encoder` needs to rebuild the module: registry name and kwargs."""
  kwargs = {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in models.model_kwargs(config.model.to_dict()).items()}
  # The FFT readout's settings travel with the encoder, so downstream code reads frequencies
  # the way the evaluation did (`readout_settings`).
  return {"model": config.model.name, "kwargs": kwargs, "fps": config.data.fps,
          "band": list(config.eval.band), "fft_harmonic": config.eval.get("fft_harmonic"),
          "method": config.method}


class _IteratorState:
  """A data iterator's state, fixed now, in the form grain's checkpoint handler saves."""

  def __init__(self, state: dict):
    self._json = json.dumps(state, indent=4).encode()

  def get_state(self) -> bytes:
    return self._json


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iterator: Any,
         config: ml_collections.ConfigDict) -> None:
  """Saves asynchronously; call `manager.wait_until_finished()` before exiting.

  `data_iterator` is anything with grain's `get_state()` (a grain iterator, or
  `pipeline.DevicePrefetch`); its state is taken now, not when the save completes.
  """
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=grain.checkpoint.CheckpointSave(_IteratorState(data_iterator.get_state())),
      encoder=ocp.args.JsonSave(encoder_spec(config))))


DAMAGED_DIR = "checkpoints_damaged"  # beside checkpoints/: where unreadable steps are moved
# What Orbax, TensorStore and the JSON reader raise for a damaged step (truncated or missing
# file, invalid metadata), and `require_finite` for an array that decodes to NaN or inf.
DAMAGE_ERRORS = (ValueError, OSError, KeyError)


def require_finite(tree: Any, where: str) -> None:
  """Raises ValueError naming `where` when a float array of `tree` holds NaN or inf: a damaged
  file can also decode to garbage, and no trained state holds one (config.nonfinite never
  saves one)."""
  finite = jax.tree.map(lambda x: jnp.all(jnp.isfinite(x)) if jnp.issubdtype(
      x.dtype, jnp.inexact) else True, tree)
  if not all(bool(ok) for ok in jax.tree.leaves(finite)):
    raise ValueError(f"{where}: an array holds NaN or inf")


def restore(manager: ocp.CheckpointManager, abstract_state: Any,
            data_iterator: grain.DatasetIterator, log=print) -> Any:
  """Restores the newest readable checkpoint into the shardings of `abstract_state` and moves
  the iterator to it; None when no checkpoint can be read.

  A step that cannot be read (a file truncated or missing, invalid metadata, a non-finite
  array) is moved to workdir/checkpoints_damaged/<step> — kept, never deleted — with a line
  naming the file, and the step before it is tried.

  The state is resharded onto whatever mesh `abstract_state` describes, and the run may
  resume with a different number of processes (a pod slice of another size): every process
  walks the same global batch order and keeps its own slice, so any process's saved iterator
  state (grain's process_<i>-of-<n>.json) is every process's. We read this process's file, or
  process 0's when this process count saved none.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state, iterator_state = _restore_step(manager, step, abstract_state)
    except errors.ConfigError:
      raise
    except DAMAGE_ERRORS as e:
      run_files.silence_background_stderr()
      moved = move_aside(str(manager.directory), step)
      log(f"The checkpoint of step {step} cannot be read ({damage(e, moved)}); moved it to "
          f"{moved} (kept, not deleted); trying the checkpoint before it.")
      manager.reload()
      continue
    data_iterator.set_state(iterator_state)
    data_iterator.start_prefetch()
    return state
  return None


def _restore_step(manager: ocp.CheckpointManager, step: int, abstract_state: Any):
  """(state, data-iterator state) of one step; raises what reading a damaged one raises."""
  step_dir = os.path.join(str(manager.directory), str(step))
  data_dir = os.path.join(step_dir, "data")
  own = os.path.join(data_dir, f"process_{jax.process_index()}-of-{jax.process_count()}.json")
  saved = [own] if os.path.exists(own) else sorted(
      glob.glob(os.path.join(data_dir, "process_0-of-*.json")))
  if not saved:
    raise FileNotFoundError(f"{data_dir}/process_0-of-N.json: no data-iterator state")
  saved_params = ocp.PyTreeCheckpointHandler().metadata(
      epath.Path(step_dir) / "state").tree.get("params", {})
  if "encoder" not in saved_params:
    raise errors.ConfigError(
        f"The checkpoint {step_dir} was written before methods were "
        f"pluggable (its params are the encoder's alone, with no 'encoder'/'heads' split), so "
        f"training cannot resume from it. Its encoder still loads with "
        f"simper_jax.checkpoint.load_encoder; train again in a new --workdir.")
  with open(saved[0]) as f:
    iterator_state = json.load(f)
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state))).state
  require_finite(state, f"{step_dir}/state")
  return state, iterator_state


def move_aside(checkpoints_dir: str, step: int) -> str:
  """Moves checkpoints/<step> to checkpoints_damaged/<step> (…-2, -3 if taken); its path."""
  target_dir = os.path.join(os.path.dirname(checkpoints_dir), DAMAGED_DIR)
  os.makedirs(target_dir, exist_ok=True)
  target, n = os.path.join(target_dir, str(step)), 1
  while os.path.exists(target):
    n += 1
    target = os.path.join(target_dir, f"{step}-{n}")
  os.replace(os.path.join(checkpoints_dir, str(step)), target)
  return target


def damage(error: BaseException, step_dir: str = "") -> str:
  """A few words on what could not be read: the file (and array) the error names, and the
  last clause of its message."""
  text = " ".join(str(error).split())
  paths = re.findall(r'"(/[^"]+)"', text) or ([error.filename] if getattr(
      error, "filename", None) else [])
  arrays = re.findall(r'reading "([^/"][^"]*)"', text)
  reason = text.rsplit(": ", 1)[-1] if paths and ": " in text else text
  if len(reason) > 100:
    reason = reason[:100].rsplit(" ", 1)[0] + " …"
  where = paths[0] if paths else step_dir
  if arrays:
    where += f", array {arrays[0].split('/')[0]}"
  return f"{where}: {reason}" if where else reason


def flatten_config(tree: dict, prefix: str = "") -> dict:
  """A config.json's nested dict as {'dotted.field': value}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten_config(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def latest_step(workdir: str) -> Optional[int]:
  """The newest checkpoint's step in `workdir`, or None; reads the folder, creates nothing."""
  steps = run_files.checkpoint_steps(workdir)
  return steps[-1] if steps else None


def check_workdir_config(workdir: str, config: ml_collections.ConfigDict, *,
                         evaluating: bool = False) -> None:
  """Checks that a run resuming in (or evaluating) `workdir` uses the config saved there.

  Writes nothing: `write_workdir_config` saves it once the run has its data, so that a run
  stopped by a mistake leaves no config.json that would refuse the corrected command.

  Raises:
    errors.ConfigError naming every field that differs, when `workdir` was made by another
    config; or when `workdir` is a file.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(f"--workdir={workdir} is a file; expected a directory (it is "
                             f"created if it does not exist).")
  path = os.path.join(workdir, "config.json")
  current = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    old, new = flatten_config(saved), flatten_config(current)
    # A field added after the run was made means, when absent, what the code did before it.
    old = {**{k: v for k, v in ADDED_FIELDS.items() if k in new}, **old}
    resumable = lambda k: any(k == f or k.startswith(f + ".") for f in RESUMABLE_FIELDS)
    differing = sorted(k for k in set(old) | set(new)
                       if not resumable(k) and old.get(k, "<absent>") != new.get(k, "<absent>"))
    if differing:
      details = "; ".join(f"{k}: saved {old.get(k, '<absent>')!r}, now {new.get(k, '<absent>')!r}"
                          for k in differing[:10])
      consequence = ("Evaluating it with this config would file results of one setting "
                     "under another. Evaluate it with" if evaluating else
                     "Resuming would mix two experiments. Use a new --workdir, or")
      raise errors.ConfigError(
          f"The workdir {workdir} holds a run of a different config ({details}). "
          f"{consequence} the config saved in {path}.")


def write_workdir_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Saves workdir/config.json (process 0) unless it is there already."""
  path = os.path.join(workdir, "config.json")
  if jax.process_index() == 0 and not os.path.exists(path):
    # Written whole, then renamed: another process of this run may be reading it right now.
    os.makedirs(workdir, exist_ok=True)
    run_files.write_atomic(path, json.dumps(json.loads(config.to_json_best_effort()), indent=2))


def load_encoder(path: str, step: Optional[int] = None):
  """Loads a trained encoder for downstream JAX code.

  Args:
    path: a workdir, its `checkpoints/` folder, or one checkpoint's `checkpoints/<step>/`.
    step: which checkpoint under `path`; None → the latest (ignored for a step folder).

  Returns:
    (module, variables): `module.apply(variables, video)` maps video [N, L, H, W, C] in
    [0, 1] to feature signals [N, L]. Arrays are restored to host numpy, ready for any device.
  """
  step_dir = _step_dir(path, step)
  spec = _encoder_spec(step_dir)
  module = models.get(spec["model"])(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in spec["kwargs"].items()})
  # Restore only what the encoder needs, as host numpy: independent of the mesh or the
  # number of hosts that wrote the checkpoint, and skipping the optimizer state. The item's
  # handler is called directly: a Checkpointer would look for a step-level metadata file
  # inside the item's folder and warn on every load that it is not there.
  state_dir = os.path.join(step_dir, "state")
  handler = ocp.PyTreeCheckpointHandler()
  tree = handler.metadata(epath.Path(state_dir)).tree
  # Since methods became pluggable, params and batch_stats are {'encoder', 'heads'}; before,
  # they were the encoder's alone. Both load; only the encoder's part is read.
  split = "encoder" in tree.get("params", {})
  wanted = {k: (tree[k]["encoder"] if split else tree[k]) for k in ("params", "batch_stats")
            if k in tree and (not split or "encoder" in tree[k])}
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
  item = {k: {"encoder": v} for k, v in wanted.items()} if split else wanted
  args = {k: {"encoder": v} for k, v in restore_args.items()} if split else restore_args
  state = handler.restore(
      epath.Path(state_dir),
      args=ocp.args.PyTreeRestore(item=item, restore_args=args, partial_restore=True))
  state = {k: v["encoder"] for k, v in state.items()} if split else state
  variables = {k: state[k] for k in ("params", "batch_stats") if k in state and state[k]}
  return module, variables


def readout_settings(path: str, step: Optional[int] = None) -> dict:
  """How the run's FFT readout reads a target frequency off a feature signal.

  Args:
    path, step: as for `load_encoder`.

  Returns:
    dict: the keyword arguments of `simper_jax.evaluate.fft_frequency` — 'fps' (frames per
    second), 'band' ((low, high), the target band in Hz) and 'harmonic' (the multiple of the
    target frequency at which the feature signal oscillates).
  """
  step_dir = _step_dir(path, step)
  spec = _encoder_spec(step_dir)
  if "band" not in spec:
    raise ValueError(f"The checkpoint under {path} predates stored readout settings; read "
                     f"eval.band and eval.fft_harmonic from its workdir's config.json.")
  harmonic = spec["fft_harmonic"]
  if harmonic is None:
    # Chosen on the training split by the evaluation (eval.fft_harmonic=None), which wrote it
    # to the workdir's results.json.
    results = os.path.join(os.path.dirname(os.path.dirname(step_dir)), "results.json")
    if not os.path.exists(results):
      raise ValueError(f"The run under {path} chooses its FFT harmonic when it is evaluated, "
                       f"and {results} does not exist yet: evaluate it first (--mode=eval).")
    with open(results) as f:
      harmonic = json.load(f)["fft_harmonic"]
  return {"fps": spec["fps"], "band": tuple(spec["band"]), "harmonic": harmonic}


def _step_dir(path: str, step: Optional[int]) -> str:
  """One checkpoint's folder from a workdir, its checkpoints/ folder or a step folder."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isdir(os.path.join(path, "checkpoints")):
    path = os.path.join(path, "checkpoints")
  if os.path.isfile(os.path.join(path, "encoder", "metadata")) or os.path.isdir(
      os.path.join(path, "state")):
    return path
  steps = run_files.checkpoint_steps(path, checkpoints_dir=True)
  if not steps:
    raise FileNotFoundError(f"No checkpoint under {path}: expected a workdir, its "
                            f"checkpoints/ folder or a checkpoints/<step>/ folder.")
  if step is not None and step not in steps:
    raise FileNotFoundError(f"No checkpoint for step {step} under {path}; found {steps}.")
  return os.path.join(path, str(step if step is not None else steps[-1]))


def _encoder_spec(step_dir: str) -> dict:
  return ocp.JsonCheckpointHandler().restore(epath.Path(step_dir) / "encoder")


def load_run(workdir: str, accepts, what: str):
  """(config.json as a dict, encoder module, its variables, its FFT readout settings) of a
  trained run, checked by `accepts(config) -> bool` (`what` it must be, for the message).
  For `python -m simper_jax.predict --workdir=...`.

  Raises:
    errors.InputError naming --workdir: no config.json, a run of another kind, no readable
    encoder.
  """
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise errors.InputError(f"--workdir={workdir}: no config.json there; expected the workdir of a "
                     f"trained run.")
  with open(config_path) as f:
    config = json.load(f)
  if not accepts(config):
    raise errors.InputError(f"--workdir={workdir}: a run of data.name={config['data']['name']!r} "
                     f"with eval.protocol={config.get('eval', {}).get('protocol', 'frequency')!r}"
                     f"; this needs {what}.")
  try:
    module, variables = load_encoder(workdir)
    settings = readout_settings(workdir)
  except (FileNotFoundError, ValueError) as e:
    raise errors.InputError(f"--workdir={workdir}: {e}") from e
  return config, module, variables, settings
