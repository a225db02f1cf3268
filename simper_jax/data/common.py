"""What every builder shares: a quiet base class, named configs and the errors users see."""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import Callable, Iterator

import tensorflow_datasets as tfds

# The builders raise common.DataError / common.DataNotFoundError; they live in errors.py.
from simper_jax.errors import DataError, DataNotFoundError  # noqa: F401


class Builder(tfds.core.GeneratorBasedBuilder):
  """Base of our builders. They download nothing (they generate data or read the user's
  files), so TFDS's "Downloading and preparing dataset Unknown size ..." banner would only
  mislead; the pipeline prints what is prepared, where, and how long it took instead.
  Abstract (no _info etc.), so TFDS does not register it as a dataset."""

  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass


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


BAD_INPUT_POLICIES = ("fatal", "skip")


def prepare_in_threads(items: list, prepare: Callable, *, num_workers: int, on_bad: str,
                       describe: Callable) -> Iterator[tuple]:
  """Yields (item, prepare(item)) in order, `num_workers` items at a time in threads (OpenCV,
  h5py and netCDF release the GIL while decoding).

  An item that cannot be used raises a DataError naming it (`describe(item)`: its file), or,
  with `on_bad="skip"`, is yielded as (item, the error's message) so the caller can report it
  and go on.
  """
  def guarded(item):
    try:
      return prepare(item)
    except DataError as e:
      error = e
    except Exception as e:  # pylint: disable=broad-except
      error = DataError(f"{describe(item)}: could not be read ({type(e).__name__}: {e}).")
      error.__cause__ = e
    if on_bad == "skip":
      return str(error)
    raise error

  pool = concurrent.futures.ThreadPoolExecutor(max(1, num_workers))
  try:
    yield from zip(items, pool.map(guarded, items))
  finally:
    pool.shutdown(wait=False, cancel_futures=True)


def clips_of_videos(videos: list, make_clips: Callable, *, name: str, video_id: Callable,
                    describe: Callable, clip_key: Callable, num_workers: int,
                    on_bad: str) -> Iterator[tuple]:
  """(key, example) of every clip of `videos`, each video made into its clips by
  `make_clips(video)` in parallel threads (`prepare_in_threads`), with a progress line per
  video ("[name] i/n id: k clips (s)") and, with `on_bad="skip"`, a line per video skipped and
  a summary of them.

  Raises:
    DataError: no video gave a clip (naming `name`), or a bad video under `on_bad="fatal"`.
  """
  started, skipped, num_clips = time.time(), [], 0
  prepared = prepare_in_threads(videos, make_clips, num_workers=num_workers, on_bad=on_bad,
                                describe=describe)
  for i, (video, result) in enumerate(prepared, 1):
    if isinstance(result, str):
      skipped.append(video_id(video))
      print(f"[{name}] {i}/{len(videos)} skipped {result}", flush=True)
      continue
    for example in result:
      yield clip_key(video, example), example
    num_clips += len(result)
    print(f"[{name}] {i}/{len(videos)} {video_id(video)}: {len(result)} clips "
          f"({time.time() - started:.0f} s)", flush=True)
  if not num_clips:
    raise DataError(f"[{name}] no usable video ({len(skipped)} skipped).")
  if skipped:
    print(f"[{name}] skipped {len(skipped)} of {len(videos)} videos (on_bad_video='skip'): "
          f"{', '.join(skipped)}", flush=True)


def synthetic_folder(data_dir: str, name: str, spec, write: Callable, log: Callable,
                     what: str) -> str:
  """The synthetic folder `data_dir/<name>_synthetic/<digest of spec>`, written by
  `write(folder, spec)` on first use into a temporary folder renamed when complete (so an
  interrupted write is never read); `log` says so, `what` describing its contents."""
  digest = hashlib.sha1(json.dumps(dataclasses.asdict(spec), sort_keys=True).encode()
                        ).hexdigest()[:8]
  folder = os.path.join(data_dir, f"{name}_synthetic", digest)
  if not os.path.isdir(folder):
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    log(f"Writing {what} to {folder} ...")
    partial = tempfile.mkdtemp(prefix=digest + ".", dir=os.path.dirname(folder))
    try:
      write(partial, spec)
      os.rename(partial, folder)
    except OSError:
      if not os.path.isdir(folder):  # not another process finishing the same folder first
        raise
    finally:
      shutil.rmtree(partial, ignore_errors=True)
  return folder
