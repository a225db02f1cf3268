"""Encoders and heads, looked up by name (big_vision style): `models.get("featurizer3d")`."""

import importlib

# Model name -> module in simper_jax/models/.
_MODULES = {"featurizer3d": "featurizer3d", "tscan": "tscan", "resnet3d18": "resnet3d",
            "conv1d": "conv1d"}
MODELS = tuple(_MODULES)


def get(name: str):
  """Returns the `Model` class of the model called `name` (one of MODELS)."""
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; expected one of {MODELS}.")
  return importlib.import_module(f"simper_jax.models.{_MODULES[name]}").Model


def model_kwargs(model_config) -> dict:
  """The fields of `config.model` that the chosen model takes, as constructor arguments.

  A config may carry the fields of several encoders (the rPPG configs hold TS-CAN's and the
  3D-CNN's), so that `--config.model.name=...` switches encoders from the command line; each
  model takes only its own.
  """
  fields = getattr(get(model_config["name"]), "__dataclass_fields__", {})
  return {k: v for k, v in dict(model_config).items()
          if k != "name" and k in fields and k not in ("parent", "name")}
