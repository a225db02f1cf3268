"""Entry point: python -m simper_jax.main --config=configs/rotating_digits.py:quick [--workdir=DIR]"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from simper_jax import train
from simper_jax.data import common

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results; "
                               "default workdir/<config name>[_<variant>].")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "train: train (resuming if possible) then evaluate; eval: evaluate "
                          "the latest checkpoint in --workdir.")
flags.mark_flags_as_required(["config"])


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
  try:
    if _MODE.value == "train":
      print(f"Workdir: {workdir}", flush=True)
      train.train_and_evaluate(_CONFIG.value, workdir)
    else:
      train.evaluate_checkpoint(_CONFIG.value, workdir)
  except train.Preempted:
    # 128 + SIGTERM, as if the signal had ended the process: schedulers that requeue on a
    # non-zero exit do so, and the checkpoint is already safe.
    sys.exit(143)
  except common.DataError as e:
    # The user's data is missing or malformed: the message says what to fix; a traceback
    # would only bury it.
    print(f"\nError: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
