"""The tiny RotatingDigits config the training tests share."""

from configs import rotating_digits


def tiny_config(data_dir: str, **overrides):
  """configs/rotating_digits.py:tiny reading data from `data_dir`; `overrides` are dotted
  fields, e.g. tiny_config(d, num_steps=3, **{"model.dtype": "bfloat16"})."""
  config = rotating_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)
  return config


def signal_at_line(process, prefix: str, signum: int) -> list[str]:
  """Reads `process`'s (text, merged) output until a line starts with `prefix`, sends it
  `signum`, and returns every line it printed, to its end."""
  output = []
  for line in process.stdout:
    output.append(line)
    if line.startswith(prefix):
      process.send_signal(signum)
      break
  output.extend(process.stdout)
  return output
