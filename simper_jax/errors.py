"""Errors that are the user's to fix: main prints their message alone (no traceback), exit 2."""

from simper_jax.data.common import DataError  # noqa: F401  (re-exported: data files)


class ConfigError(ValueError):
  """A config value cannot work (with these devices, this workdir, ...); the message names the
  field, its value and what is expected."""
