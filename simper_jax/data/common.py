"""What every builder shares: a quiet base class, named configs and the errors users see."""

import dataclasses
import hashlib

import tensorflow_datasets as tfds


class Builder(tfds.core.GeneratorBasedBuilder):
  """Base of our builders. They download nothing (they generate data or read the user's
  files), so TFDS's "Downloading and preparing dataset Unknown size ..." banner would only
  mislead; the pipeline prints what is prepared, where, and how long it took instead.
  Abstract (no _info etc.), so TFDS does not register it as a dataset."""

  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass


class DataError(ValueError):
  """A user-supplied file is missing or malformed; the message names it and the expectation."""


class DataNotFoundError(DataError, FileNotFoundError):
  """The data directory is missing or holds none of the expected files."""


def named_config(config_cls, prefix: str, exclude=(), **fields):
  """A BuilderConfig whose name is `prefix` + a digest of its fields.

  Two settings never share a prepared directory, and the name still reads as what it is.
  Fields in `exclude` (e.g. worker counts) do not change the prepared data, so they are
  not part of the name.
  """
  probe = config_cls(name="probe", **fields)
  base_fields = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
  values = {f.name: getattr(probe, f.name) for f in dataclasses.fields(config_cls)
            if f.name not in base_fields and f.name not in exclude}
  digest = hashlib.sha1(repr(sorted(values.items())).encode()).hexdigest()[:8]
  return config_cls(name=f"{prefix.format(**values)}_{digest}", description=repr(values),
                    **fields)
