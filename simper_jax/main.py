"""Entry point: python -m simper_jax.main --config=configs/rotating_digits.py:quick --workdir=DIR"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from simper_jax import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "train: train (resuming if possible) then evaluate; eval: evaluate "
                          "the latest checkpoint in --workdir.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    # Orbax and TFDS log every file operation at INFO; keep the console to our progress lines.
    logging.set_verbosity(logging.WARNING)
  if _MODE.value == "train":
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  else:
    train.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
