"""Entry point: python -m simper_jax.main --config=configs/rotating_digits.py:quick [--workdir=DIR]

Several processes (one per host of a TPU pod slice or GPU cluster) run the same command and
join through `jax.distributed`: add --multihost where JAX finds the cluster by itself (Cloud
TPU, Slurm, Open MPI), or give --coordinator_address, --num_processes and --process_id.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from simper_jax import errors
from simper_jax import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results; "
                               "default workdir/<config name>[_<variant>].")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "train: train (resuming if possible) then evaluate; eval: evaluate "
                          "the latest checkpoint in --workdir.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Join the other processes of this run with jax.distributed, which "
    "finds the cluster by itself on Cloud TPU pods, Slurm and Open MPI.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for clusters JAX does not detect "
    "(e.g. several GPU hosts); needs --num_processes and --process_id.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 first.")
flags.mark_flags_as_required(["config"])


def initialize_distributed() -> None:
  """Calls jax.distributed.initialize when this process is one of several."""
  explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if any(v is not None for v in explicit):
    if any(v is None for v in explicit):
      raise app.UsageError("--coordinator_address, --num_processes and --process_id go "
                           "together; give all three (or --multihost on a cluster JAX detects).")
    if not 0 <= _PROCESS_ID.value < _NUM_PROCESSES.value:
      raise app.UsageError(f"--process_id={_PROCESS_ID.value} must be in "
                           f"[0, --num_processes={_NUM_PROCESSES.value}).")
    jax.distributed.initialize(*explicit)
  elif _MULTIHOST.value:
    jax.distributed.initialize()


def default_workdir() -> str:
  """workdir/scamps_synthetic for --config=configs/scamps.py:synthetic, etc."""
  path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("workdir", "_".join([stem] + [v for v in arg.split(",") if v]))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    # Orbax and TFDS log every file operation at INFO; keep the console to our progress lines.
    logging.set_verbosity(logging.WARNING)
  workdir = _WORKDIR.value or default_workdir()
  initialize_distributed()
  try:
    if _MODE.value == "train":
      train.log(f"Workdir: {workdir}")
      train.train_and_evaluate(_CONFIG.value, workdir)
    else:
      train.evaluate_checkpoint(_CONFIG.value, workdir)
  except train.Preempted:
    # 128 + SIGTERM, as if the signal had ended the process: schedulers that requeue on a
    # non-zero exit do so, and the checkpoint is already safe.
    sys.exit(143)
  except (errors.ConfigError, errors.DataError) as e:
    # A config value or the user's data is wrong: the message says what to fix; a traceback
    # would only bury it.
    print(f"\nError: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
