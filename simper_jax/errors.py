"""Errors that are the user's to fix: main prints their message alone (no traceback), exit 2.

The bottom floor: it imports nothing of the package (nor of the libraries), so that every
module can raise these and main can catch them without loading the rest."""


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
