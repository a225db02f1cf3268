"""Errors that are the user's to fix: main prints their message alone (no traceback), exit 2.

The bottom floor: it imports nothing of the package (nor of the libraries), so that every
module can raise these and main can catch them without loading the rest."""

import sys


class DataError(ValueError):
  """A user-supplied file is missing or malformed; the message names it and the expectation."""


class DataNotFoundError(DataError, FileNotFoundError):
  """The data directory is missing or holds none of the expected files."""


class ConfigError(ValueError):
  """A config value cannot work (with these devices, this workdir, ...); the message names the
  field, its value and what is expected."""


class RunError(RuntimeError):
  """A fault the run met that the user resolves (the workdir is in use, the disk is full, the
  loss diverged); the message says what happened, what is safe, and how to go on."""


class InputError(ValueError):
  """predict: a video or recording that cannot be used, or flags that do not fit together;
  the message names which."""


def fail(message: str):
  """A command-line mistake: one line on stderr ("Error: ..."), exit status 2, no traceback."""
  print(f"Error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def parse_flags(argv: list, flag_values) -> list:
  """absl's parsing for a command whose flags need no checks beyond absl's own: a mistake (an
  unknown flag, a value not in its list) is `fail`'s one line and exit 2, not absl's exit 1."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flag_values(argv)
  except flags.Error as e:
    fail(f"{e}; see --help.")
