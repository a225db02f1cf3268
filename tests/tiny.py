"""The tiny RotatingDigits config the training tests share."""

from configs import rotating_digits


def tiny_config(data_dir: str, **overrides):
  """configs/rotating_digits.py:tiny reading data from `data_dir`; `overrides` are dotted
  fields, e.g. tiny_config(d, num_steps=3, **{"model.dtype": "bfloat16"})."""
  config = rotating_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)
  return config
