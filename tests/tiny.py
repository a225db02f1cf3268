"""What the tests share: the tiny RotatingDigits config, running the command line, copies of
shared runs. (Imported by conftest.py after it has set up JAX's environment.)"""

import contextlib
import os
import shutil
import subprocess
import sys

import jax

from configs import rotating_digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args, timeout=300) -> subprocess.CompletedProcess:
  """`python -m simper_jax.main ARGS` in the repository, output captured."""
  return subprocess.run([sys.executable, "-m", "simper_jax.main", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


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


def copy_of(workdir: str, parent) -> str:
  """A copy of a shared run's workdir (conftest's tiny_run, ...) under `parent`, for a test
  that writes into it."""
  return shutil.copytree(workdir, os.path.join(str(parent), os.path.basename(workdir)))


@contextlib.contextmanager
def xla_optimizations():
  """XLA's optimizations on for what is compiled inside, as in a user's run (conftest.py turns
  most of them off for the tests' tiny programs)."""
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", previous)
