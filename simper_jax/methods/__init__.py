"""Self-supervised methods (and the supervised reference), looked up by `config.method`.

One loop, many methods: `train.py` never branches on a method's name. Each module here builds a
`base.Method` — its views, heads, loss and any state it updates after the optimizer step —
from the config (`build(config, *, total_steps, label_mean, label_std)`), and checks its own
config block (`check_config(config, fail)`). A module may also define `train_fraction(config)`
(the share of the training split it reads; default 1) and `NEEDS_LABELS = True` (its loss reads
labels, standardized by statistics the loop estimates from the training split).
"""

import importlib

METHODS = ("simper", "simclr", "moco", "byol", "cvrl", "supervised")


def get(name: str):
  """The module `simper_jax.methods.<name>` (with `check_config` and `build`)."""
  if name not in METHODS:
    raise ValueError(f"Unknown method {name!r}; expected one of {METHODS}.")
  return importlib.import_module(f"simper_jax.methods.{name}")


def train_fraction(config) -> float:
  return getattr(get(config.method), "train_fraction", lambda config: 1.0)(config)


def needs_labels(config) -> bool:
  return getattr(get(config.method), "NEEDS_LABELS", False)
