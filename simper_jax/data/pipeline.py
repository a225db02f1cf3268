"""From a TFDS builder to host batches: prepare once, read with grain, shard per process.

Video clips stay uint8 on the host (4× less host memory and transfer than float32) and time
series float16; the train step converts them on the device (`model_input`).
"""

import collections
import dataclasses
import importlib
import logging
import math
import os
import queue
import shutil
import threading
import time
from typing import Iterator

from array_record.python import array_record_module
import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from simper_jax import errors

DATASETS = {"rotating_digits": ("simper_jax.data.rotating_digits", "RotatingDigits"),
            "scamps": ("simper_jax.data.scamps", "Scamps"),
            "ubfc_rppg": ("simper_jax.data.ubfc_rppg", "UbfcRppg"),
            "pure": ("simper_jax.data.pure", "Pure"),
            "countix": ("simper_jax.data.countix", "Countix"),
            "lst": ("simper_jax.data.lst", "Lst"),
            "video_folder": ("simper_jax.data.video_folder", "VideoFolder"),
            "timeseries": ("simper_jax.data.timeseries", "Timeseries")}
# Colour channels of each dataset's clips, for code that needs shapes without preparing data.
CHANNELS = {"rotating_digits": 1, "scamps": 3, "ubfc_rppg": 3, "pure": 3, "countix": 3, "lst": 1,
            "video_folder": 3}
# Builder fields giving the clips' frames and side, where a dataset names them differently; a
# time series is a clip of 1×1 frames (side None), its channels its columns.
_SHAPE_FIELDS = {"lst": ("window_hours", "tile_size"), "timeseries": ("num_samples", None)}
# The module that writes each dataset's `config.data.synthetic` files in its real on-disk
# format: it has a SyntheticSpec dataclass and prepare(builder, name, spec).
SYNTHETIC = {"scamps": "simper_jax.data.synthetic_rppg",
             "ubfc_rppg": "simper_jax.data.synthetic_rppg",
             "pure": "simper_jax.data.synthetic_rppg",
             "countix": "simper_jax.data.synthetic_countix",
             "lst": "simper_jax.data.synthetic_lst",
             "video_folder": "simper_jax.data.synthetic_video_folder",
             "timeseries": "simper_jax.data.synthetic_timeseries"}


def clip_frames_field(data_config) -> str:
  """The config field that says how many frames a clip has (LST's are hours of maps)."""
  return "data.builder." + _SHAPE_FIELDS.get(data_config.name, ("num_frames", "image_size"))[0]


def clip_shape(data_config) -> tuple[int, int, int, int]:
  """(T, H, W, C) of the dataset's clips, from the config alone (nothing prepared). A time
  series has as many channels as `data.builder.columns` names (3 when it names none: the
  files decide, and only benchmarks need a number before reading them)."""
  frames, side = _SHAPE_FIELDS.get(data_config.name, ("num_frames", "image_size"))
  b = data_config.builder
  if side is None:
    return (b[frames], 1, 1, len(b.get("columns", ())) or 3)
  return (b[frames], b[side], b[side], CHANNELS[data_config.name])


def clip_dtype(data_config):
  """The dtype the dataset stores clips in: float16 for time series, else uint8 frames."""
  return np.float16 if data_config.name == "timeseries" else np.uint8


def model_input(video):
  """A batch of clips as the encoder reads them: uint8 pixels → float32 in [0, 1]; a float
  time series (already z-scored) → float32 as it is. Works on numpy and jax arrays."""
  if video.dtype == np.uint8:
    return video.astype(np.float32) / 255.0
  return video.astype(np.float32)


class _DropTfdsNoise(logging.Filter):
  """TFDS warnings that say nothing a user can act on, for the way we use TFDS: every
  config of ours is "custom" (named by its settings), and a dataset folder that is not
  prepared yet has no dataset_info.json by definition."""

  NOISE = ("Using custom data configuration", "Variant folder %s has no")

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(self.NOISE)


logging.getLogger("absl").addFilter(_DropTfdsNoise())


def get_builder(data_config, log=None) -> tfds.core.DatasetBuilder:
  """Builds (once) and returns the TFDS builder described by `config.data`.

  Preparation writes array_record files under `data_dir` and is skipped when they exist.
  Nothing is downloaded: inputs that a user must supply are read from `manual_dir` (default
  `<data_dir>/downloads/manual/<dataset name>`). With `config.data.synthetic` set, files in
  the dataset's real format are generated into a temporary directory and read from there.
  A builder of the user's own folder (video_folder) prepares again when the folder changed.
  `log(message)` is told when preparation starts, why, and how long it took.

  Raises:
    DataError: prepared files that are missing or damaged (named, with how to redo them).
  """
  log = log or (lambda message: None)
  # Process 0 prepares first while the others wait, so hosts sharing data_dir (a bucket, NFS)
  # never write the same files at once. The others then build their builder, which reads the
  # split sizes from the prepared files; a host with its own local data_dir finds it empty
  # and prepares its own copy (the same deterministic files).
  barrier = lambda: multihost_utils.sync_global_devices(f"prepared {data_config.name}")
  if jax.process_index() > 0:
    barrier()
  make, manual_dir, synthetic_writer, spec = _recipe(data_config, log)
  builder = make()
  stale = builder.is_prepared() and hasattr(builder, "stale_reason") and builder.stale_reason()
  if stale:
    log(f"{manual_dir} changed since it was prepared ({stale}): preparing it again.")
    shutil.rmtree(os.fspath(builder.data_dir))
    builder = make()
  if not builder.is_prepared():
    log(f"Preparing {data_config.name} ({builder.builder_config.name}) in {builder.data_dir}; "
        f"once, later runs read it from there ...")
    started = time.time()
    tfds.disable_progress_bar()  # tqdm's cursor codes garble the log; we print our own lines
    _prepare(builder, data_config.name, manual_dir, synthetic_writer, spec)
    log(f"Prepared {data_config.name} in {time.time() - started:.0f} s: "
        + ", ".join(f"{split.num_examples} {name}"
                    for name, split in builder.info.splits.items()) + " clips.")
  check_prepared(builder)
  if jax.process_index() == 0 and jax.process_count() > 1:
    barrier()
  return builder


def _recipe(data_config, log):
  """(make() -> the builder, manual_dir, the synthetic writer or None, its spec) of
  `config.data`; writes a synthetic user-style folder (video_folder) if it is asked for and
  not yet there."""
  if data_config.name not in DATASETS:
    raise errors.ConfigError(f"Unknown dataset config.data.name={data_config.name!r}; "
                             f"expected one of {sorted(DATASETS)}.")
  module_name, class_name = DATASETS[data_config.name]
  module = importlib.import_module(module_name)
  data_dir = os.path.expanduser(data_config.data_dir or "~/tensorflow_datasets")
  builder_fields = data_config.builder.to_dict()
  synthetic, manual_dir = data_config.get("synthetic"), manual_dir_of(data_config)
  spec = synthetic_writer = None
  if synthetic is not None:
    if data_config.name not in SYNTHETIC:
      raise errors.ConfigError(f"config.data.synthetic is set, but {data_config.name} has no "
                               f"synthetic writer (those of {sorted(SYNTHETIC)} do).")
    synthetic_writer = importlib.import_module(SYNTHETIC[data_config.name])
    spec = synthetic_writer.SyntheticSpec(**synthetic.to_dict())
    # Synthetic sets are named by their settings, so they never share a directory with the
    # user's real data (or with each other).
    builder_fields["source"] = "synthetic-" + ",".join(
        f"{k}={v}" for k, v in dataclasses.asdict(spec).items())
  if hasattr(module, "source_of"):
    # A builder of the user's own folder (video_folder) is named by the folder, which it also
    # reads to know its label columns. Its synthetic set is such a folder, written once under
    # data_dir and then read like the user's.
    if synthetic_writer is not None:
      manual_dir = synthetic_writer.ensure_folder(data_dir, spec, log)
      synthetic_writer = None
    builder_fields["source"] = module.source_of(manual_dir)
  make = lambda: getattr(module, class_name)(config=module.make_config(**builder_fields),
                                             data_dir=data_dir, file_format="array_record")
  return make, manual_dir, synthetic_writer, spec


def with_label_key(config, log=None):
  """`config`, or a copy with `data.label_key` filled in where it is None and the dataset
  names a default (video_folder: the only numeric labels.csv column, else heart_rate from
  signals/): called before the workdir's config is compared, so a resumed run compares the
  label it trained on. Reads the folder's label files only; prepares nothing."""
  if config.data.get("label_key") is not None:
    return config
  make, _, _, _ = _recipe(config.data, log or (lambda message: None))
  builder = make()
  default = builder.default_label_key() if hasattr(builder, "default_label_key") else None
  if default is None:
    return config
  resolved = config.copy_and_resolve_references()
  resolved.data.label_key = default
  return resolved


def check_prepared(builder: tfds.core.DatasetBuilder) -> None:
  """Opens every prepared array_record file and compares its record count with what TFDS
  wrote down, so that a truncated or deleted file (a full disk, an interrupted copy) is named
  here rather than failing inside a reader thread mid-run. Reads only the files' indexes."""
  for split_name, split in builder.info.splits.items():
    for path, expected in zip(split.filepaths, split.shard_lengths):
      path, problem = str(path), None
      if not os.path.exists(path):
        problem = "it does not exist"
      else:
        try:
          reader = array_record_module.ArrayRecordReader(path)
          found = reader.num_records()
          reader.close()
          if found != expected:
            problem = f"it holds {found} records where {expected} were written"
        except RuntimeError as error:
          problem = f"it cannot be read ({str(error).split(';')[0]})"
      if problem:
        raise errors.DataError(
            f"The prepared {split_name} file {path} is damaged: {problem}. Delete the folder "
            f"{builder.data_dir} and run again to prepare it anew.")


def manual_dir_of(data_config) -> str:
  """Where the user's files are: config.data.manual_dir, else TFDS's
  <data_dir>/downloads/manual/<dataset name>."""
  data_dir = os.path.expanduser(data_config.data_dir or "~/tensorflow_datasets")
  return os.path.expanduser(data_config.manual_dir or os.path.join(
      data_dir, "downloads", "manual", data_config.name))


def _prepare(builder, name: str, manual_dir: str, synthetic_writer, synthetic_spec) -> None:
  """Writes the builder's files (generated ones by `synthetic_writer` when a synthetic set is
  asked for, else from manual_dir)."""
  if synthetic_writer is not None:
    synthetic_writer.prepare(builder, name, synthetic_spec)
    return
  if hasattr(builder, "check_manual_dir"):
    builder.check_manual_dir(manual_dir)  # a clear error before TFDS starts anything
  # A builder may add DownloadConfig fields (video_folder: Beam's pipeline options).
  options = builder.download_options() if hasattr(builder, "download_options") else {}
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, **options))


def fraction_indices(num_examples: int, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.random.Generator]:
  """The one rule for "a fraction of the training split" (`data.train_fraction`, fine-tuning's
  labelled clips, the supervised reference's training clips): the first ceil(fraction · N)
  clips, at least one, of one permutation drawn by `seed`, sorted. The subsets are nested:
  with one seed, the 5 % clips are among the 10 %, and those among the 20 %, so a
  data-efficiency curve compares growing sets, not different draws.

  Returns:
    (indices, a generator seeded by `seed` and `fraction`: fine-tuning draws its batches from
    it, so each fraction's run has its own stream).
  """
  order = np.random.default_rng(seed).permutation(num_examples)
  count = max(1, math.ceil(fraction * num_examples))
  return np.sort(order[:count]), np.random.default_rng([seed, int(round(fraction * 1e6))])


def with_train_fraction(sources: dict, fraction: float, seed: int) -> dict:
  """`sources` with its 'train' split cut to `fraction_indices` (`data.train_fraction`): the
  clips pretraining reads and the labels every readout is fitted on."""
  if fraction >= 1:
    return sources
  return {**sources, "train": Subset.of_fraction(sources["train"], fraction, seed)}


def data_config_of_run(config: dict):
  """A run's config.json `data` block as the ConfigDict `get_builder` takes: JSON turned the
  configs' tuples into lists, and a builder config's name is a digest of its values' repr,
  so they become tuples again (else the run's prepared data would not be found)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  as_tuples = lambda v: (tuple(as_tuples(x) for x in v) if isinstance(v, list) else
                         {k: as_tuples(x) for k, x in v.items()} if isinstance(v, dict) else v)
  return ml_collections.ConfigDict(as_tuples(config["data"]))


FINGERPRINT_CLIPS = 16  # evenly spaced training clips whose bytes identify a prepared split


def subset_identity(builder, source) -> dict:
  """What a subset file (`simper_jax.select`) is made for: {'dataset', 'prepared' (the
  builder config's name), 'version', 'train_clips', 'fingerprint' (a digest of the count and
  the bytes of FINGERPRINT_CLIPS evenly spaced clips)}."""
  import hashlib  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256(str(len(source)).encode())
  for i in np.unique(np.linspace(0, len(source) - 1, FINGERPRINT_CLIPS).astype(int)):
    digest.update(np.ascontiguousarray(source[int(i)]["video"]).tobytes())
  config = getattr(builder, "builder_config", None)
  return {"dataset": builder.name, "prepared": config.name if config else "",
          "version": str(builder.version), "train_clips": len(source),
          "fingerprint": digest.hexdigest()[:16]}


def subset_source(source, path: str, builder) -> "Subset":
  """The training clips a subset file (`data.subset`, written by `simper_jax.select`) keeps.

  Raises:
    ConfigError naming data.subset: no such file, not a subset file, or made for other
    prepared data (each field that differs said), or indices outside the split.
  """
  import json  # pylint: disable=g-import-not-at-top
  try:
    with open(path) as f:
      subset = json.load(f)
    indices = subset["indices"]
  except FileNotFoundError:
    raise errors.ConfigError(f"data.subset={path}: no such file (write one with python -m "
                             f"simper_jax.select).") from None
  except (ValueError, KeyError, TypeError) as e:
    raise errors.ConfigError(f"data.subset={path}: not a subset file of simper_jax.select "
                             f"({type(e).__name__}: {e}).") from None
  identity = subset_identity(builder, source)
  differ = [f"{key} {subset.get(key)!r} (this run's: {value!r})"
            for key, value in identity.items() if subset.get(key) != value]
  if differ:
    raise errors.ConfigError(f"data.subset={path} was made for other prepared data: "
                             f"{'; '.join(differ)}. Select again with this run's data.")
  indices = np.asarray(indices, int)
  if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(source) or len(
      np.unique(indices)) != len(indices):
    raise errors.ConfigError(f"data.subset={path}: expected distinct indices in [0, "
                             f"{len(source)}) of the training split.")
  return Subset(source, np.sort(indices))


def labelled(source, label_key: str, log=None):
  """The examples of `source` whose `label_key` is a number (not NaN), in order; `source`
  itself when all are. Reads every example once."""
  labels = np.array([float(source[i][label_key]) for i in range(len(source))])
  finite = np.isfinite(labels)
  if finite.all():
    return source
  if not finite.any():
    raise errors.DataError(f"No training clip has a label {label_key!r}; this method trains "
                           f"on labels.")
  if log:
    log(f"{int((~finite).sum())} of {len(labels)} training clips have no {label_key!r}: this "
        f"method trains on the other {int(finite.sum())}.")
  return Subset(source, np.flatnonzero(finite))


class Subset:
  """A random-access view of some examples of a data source, in their original order."""

  def __init__(self, source, indices):
    self.source, self.indices = source, [int(i) for i in indices]

  @classmethod
  def of_fraction(cls, source, fraction: float, seed: int) -> "Subset":
    """The examples `fraction_indices` chooses."""
    return cls(source, fraction_indices(len(source), fraction, seed)[0])

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index):
    return self.source[self.indices[index]]

  def __getitems__(self, indices):
    return self.source.__getitems__([self.indices[i] for i in indices])


def label_stats(source, label_key: str, seed: int, max_examples: int = 512) -> dict:
  """{'label_mean', 'label_std'} of the training labels, from at most `max_examples` clips
  chosen by `seed` (reading a whole large split only for two numbers would take minutes)."""
  order = np.random.default_rng(seed).permutation(len(source))[:max_examples]
  labels = np.asarray([example[label_key] for example in
                       source.__getitems__([int(i) for i in order])], np.float64)
  return {"label_mean": float(labels.mean()), "label_std": float(labels.std()) or 1.0}


def _stack_batch(examples: list, label_key: str | None) -> dict:
  """Examples -> {'video': [b, T, H, W, C] (uint8 frames, or float16 series), 'label': f32
  [b]} (NaN without a label_key: an unlabelled folder)."""
  stack = lambda key, dtype: np.asarray(np.stack([example[key] for example in examples]), dtype)
  labels = (stack(label_key, np.float32) if label_key
            else np.full(len(examples), np.nan, np.float32))
  return {"video": stack("video", None), "label": labels}


def _read_examples(source, indices) -> list:
  """source[i] for each i, in one batched read where the source has one (TFDS, ArrayRecord)."""
  indices = [int(i) for i in indices]
  if hasattr(source, "__getitems__"):
    return list(source.__getitems__(indices))
  return [source[i] for i in indices]


def _read_batch(source, label_key: str):
  """(epochs [b], dataset indices [b]) -> the training batch of those examples."""
  def fn(epochs_and_indices) -> dict:
    epochs, indices = epochs_and_indices
    return {**_stack_batch(_read_examples(source, indices), label_key),
            "index": np.asarray(indices, np.int32), "epoch": np.asarray(epochs, np.int32)}
  return fn


def train_iterator(source, *, global_batch_size: int, seed: int, label_key: str,
                   read_threads: int = 2) -> grain.DatasetIterator:
  """An endless, checkpointable iterator of this process's share of each global batch.

  Each epoch is shuffled differently (deterministically from `seed`); batches run on across
  epoch boundaries, so no example is dropped. Yields {'video': uint8 [b, T, H, W, C],
  'label': f32 [b], 'index': int32 [b], 'epoch': int32 [b]} with b = global_batch_size /
  process_count: `index` is each example's index in `source` and `epoch` the pass over it
  that the example belongs to, which the train step folds into the example's augmentation key
  (so the key travels with the example, whatever device or row it lands on). Its state goes
  into every checkpoint.
  """
  num_processes = jax.process_count()
  if global_batch_size % num_processes:
    raise errors.ConfigError(f"config.batch_size={global_batch_size} is not divisible by the "
                             f"number of processes ({num_processes}).")
  if len(source) < global_batch_size:
    raise errors.ConfigError(f"The training split has {len(source)} examples, fewer than one "
                             f"batch (config.batch_size={global_batch_size}).")
  # Global batch k is examples [kG, (k+1)G) of the shuffled, repeated stream; process p's
  # share is its p-th block of G/P examples, i.e. block kP + p of the stream cut into blocks
  # of G/P. A strided slice of those blocks reads only this process's examples, and the
  # examples (and their global indices) do not depend on the number of processes — unlike
  # sharding the dataset itself per process. The iterator's state (k) is then the same on
  # every process, whatever their number. The stream shuffles indices, and a batch reads its
  # examples at the end, so each example comes with its index and epoch.
  local = global_batch_size // num_processes
  num_examples = len(source)
  dataset = (grain.MapDataset.range(num_examples)
             .shuffle(seed=seed)
             .repeat()  # reseeds the shuffle each epoch
             .map_with_index(lambda position, index: (position // num_examples, index))
             .batch(local, drop_remainder=True)
             [jax.process_index()::num_processes]
             .map(_read_batch(source, label_key))
             .to_iter_dataset(grain.ReadOptions(num_threads=read_threads,
                                                prefetch_buffer_size=2)))
  return iter(dataset)


class DevicePrefetch:
  """Double-buffering: the device batches of a host iterator, holding `size` of them (the
  one being consumed and `size - 1` laid out ahead), so a batch's transfer overlaps the
  running step.

  The train loop consumes it in place of the grain iterator: `get_state()` is the grain
  iterator's state after the last batch *yielded*, not after those read ahead, so a checkpoint
  resumes at the first batch not yet used (which an iterator that reads ahead cannot say of
  itself: hence this small class).
  """

  def __init__(self, host_iterator, to_device, size: int = 2):
    self._host_iterator, self._to_device, self._size = host_iterator, to_device, size
    self._ahead = collections.deque()  # (device batch, host iterator state after it)
    self._state = host_iterator.get_state()

  def __iter__(self):
    return self

  def __next__(self):
    while len(self._ahead) < self._size:
      host_batch = next(self._host_iterator)
      self._ahead.append((self._to_device(host_batch), self._host_iterator.get_state()))
    batch, self._state = self._ahead.popleft()
    return batch

  def get_state(self) -> dict:
    return self._state


def eval_batches(source, *, batch_size: int, label_key: str, keys=()) -> Iterator[dict]:
  """Every example of `source` once, in order, in batches padded to `batch_size`.

  Yields {'video': uint8 [batch_size, ...], 'label': f32 [batch_size], each of `keys`
  [batch_size, ...], 'mask': bool [batch_size]}; padded rows repeat the last example and have
  mask False. A fixed batch shape means one compilation for the whole split.
  """
  for begin in range(0, len(source), batch_size):
    indices = list(range(begin, min(begin + batch_size, len(source))))
    examples = _read_examples(source, indices)
    batch = _stack_batch(examples, label_key)
    batch.update({key: np.asarray([_decode(ex[key]) for ex in examples]) for key in keys})
    pad = batch_size - len(indices)
    mask = np.arange(batch_size) < len(indices)
    yield {**{k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in batch.items()},
           "mask": mask}


def prefetch(iterator, size: int = 1) -> Iterator:
  """The items of `iterator`, with up to `size` of them read ahead in a background thread.

  Written by hand (a thread and a bounded queue) because the evaluation batches are a plain
  Python generator over random-access reads, not a grain pipeline; an exception in the reader
  is raised here, in the consumer.
  """
  items = queue.Queue(maxsize=size)
  done = object()

  def read():
    try:
      for item in iterator:
        items.put(item)
    except BaseException as error:  # pylint: disable=broad-except
      items.put(error)
    items.put(done)

  threading.Thread(target=read, daemon=True).start()
  while (item := items.get()) is not done:
    if isinstance(item, BaseException):
      raise item
    yield item


def _decode(value):
  return value.decode() if isinstance(value, bytes) else value
