"""Encoders and heads, looked up by name (big_vision style): `models.get("featurizer3d")`."""

import importlib

MODELS = ("featurizer3d", "tscan")


def get(name: str):
  """Returns the `Model` class of `simper_jax.models.<name>`."""
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; expected one of {MODELS}.")
  return importlib.import_module(f"simper_jax.models.{name}").Model
