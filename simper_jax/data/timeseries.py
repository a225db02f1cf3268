"""Periodic time series from a folder of recordings: wearables, sensors, physiological records,
station data (docs/timeseries.md).

Every file under the folder (`data.manual_dir`), through its sub-folders, in a format below is
one recording; its id is its path relative to the folder without the extension, and labels,
splits and groups follow the same files as a folder of videos (`labels.csv`, `split.csv`,
`group_by`: video_folder.py's readers, used as they are).

  DIR/**/<name>.csv | .tsv      a table, with or without a header (pandas)
  DIR/**/<name>.parquet         a table (pyarrow)
  DIR/**/<name>.npy | .npz      arrays: [T] or [T, C], or an .npz of equal-length 1D arrays
  DIR/**/<name>.edf | .bdf      EDF/BDF: channel labels and sampling rates from the header
  DIR/**/<name>.hea (+ .dat)    a PhysioNet WFDB record (wfdb): names and rate from the header
  DIR/labels.csv                optional: recording,<label columns>[,start_s,end_s][,group]
  DIR/split.csv                 optional: recording,split (train or test)

What happens to a recording, in order (every count is said in the log, per file):
  1. Channels: `columns`, else every numeric column but the time and label columns.
  2. Time: the `time_column` (seconds, ms, µs, ns or datetimes — `time_unit`, or recognised
     from the values' median step) or a fixed `source_rate`; EDF/WFDB carry their rates.
     Rows with a duplicated time are dropped (the first kept); a time that goes backwards
     after that is an error naming the row.
  3. Gaps: a row with a missing value (NaN) is left out; gaps up to `max_gap_s` are bridged by
     linear interpolation, a longer gap splits the recording into segments, and no window
     crosses one.
  4. Resampling: each segment linearly onto a grid of `sample_rate` Hz.
  5. Normalization: each channel z-scored over the whole recording (a constant channel is an
     error naming it).
  6. Windows of `num_samples` every `train_stride` samples (training) or back to back (test).

A window is stored as a clip [num_samples, 1, 1, C] float16 — a video of 1×1 frames — so the
views, the methods, the loop and the readouts are those of videos (augment.name="series"
chooses the time-series augmentations; models/conv1d.py reads it).

Per-sample labels in the file (`label_column`): "signal" (a reference PPG or respiration
trace: each window's rate by the heart-rate protocol, `heart_rate` in bpm, and the trace as
`ppg`, so whole recordings are evaluated as the rPPG protocol does) or "counter" (a cumulative
step or repetition counter: each window's rate is its slope, `rate` in Hz).
"""

import dataclasses
import functools
import math
import os

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from simper_jax import heart_rate as hr
from simper_jax.data import common
from simper_jax.data import video_folder

TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t"}
EXTENSIONS = (".csv", ".tsv", ".parquet", ".npy", ".npz", ".edf", ".bdf", ".hea")
# Column names read as the time column when `time_column` is not given.
TIME_NAMES = ("time", "timestamp", "time_s", "t", "seconds", "datetime", "date", "ts")
TIME_UNITS = ("auto", "s", "ms", "us", "ns", "datetime")
_SECONDS_PER = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
LABEL_KINDS = ("signal", "counter")
LAYOUT = ("  DIR/**/<name>.<ext>   your recordings, in any sub-folders (" +
          ", ".join(EXTENSIONS) + "; a WFDB record is its .hea with its .dat)\n"
          "  DIR/labels.csv        optional: recording,<label columns>[,start_s,end_s]\n"
          "  DIR/split.csv         optional: recording,split (train or test)")


@dataclasses.dataclass(eq=False)
class TimeseriesConfig(tfds.core.BuilderConfig):
  """How windows are made. The config name is derived from the fields (see `make_config`).

  Attributes:
    columns: the channels, by column name (header-less CSVs and arrays: "0", "1", ...);
      () → every numeric column but the time and label columns.
    time_column: the column of sample times; "" → one named as in TIME_NAMES, else none.
    time_unit: the time column's unit, "auto" (recognised from the values: datetimes, or the
      median step), "s", "ms", "us", "ns" or "datetime".
    source_rate: Hz of the files without a time column (arrays, a logger's header-less
      dump); files with one are timed by it. EDF and WFDB records carry their own rates.
    sample_rate: Hz every recording is resampled to.
    max_gap_s: gaps (missing rows, NaNs) up to this long are interpolated; longer ones split
      the recording.
    num_samples: T, samples per window.
    train_stride: samples between the starts of training windows.
    label_column: a per-sample label column in the files ("" → none); `label_kind` says what
      it holds: "signal" (a reference trace → `heart_rate`, bpm) or "counter" (a cumulative
      count → `rate`, Hz).
    label_kind: see label_column.
    test_fraction, group_by, labels: as for a folder of videos (video_folder.py).
    on_bad_file: "fatal" stops at a recording that cannot be used; "skip" reports it.
    num_workers: recordings prepared in parallel threads (not part of the name).
    source: the folder's absolute path (set by the pipeline).
  """
  columns: tuple = ()
  time_column: str = ""
  time_unit: str = "auto"
  source_rate: float = 0.0
  sample_rate: float = 25.0
  max_gap_s: float = 1.0
  num_samples: int = 250
  train_stride: int = 125
  label_column: str = ""
  label_kind: str = "signal"
  test_fraction: float = 0.2
  group_by: str = ""
  labels: bool = True
  on_bad_file: str = "fatal"
  num_workers: int = 4
  source: str = ""


def make_config(**fields) -> TimeseriesConfig:
  """A TimeseriesConfig named by its fields; a field that cannot work is a DataError."""
  for field, allowed in (("time_unit", TIME_UNITS), ("label_kind", LABEL_KINDS),
                         ("on_bad_file", common.BAD_INPUT_POLICIES)):
    if field in fields and fields[field] not in allowed:
      raise common.DataError(f"data.builder.{field}={fields[field]!r}; expected one of "
                             f"{allowed}.")
  for field in ("sample_rate", "num_samples", "train_stride", "max_gap_s"):
    if field in fields and not fields[field] > 0:
      raise common.DataError(f"data.builder.{field}={fields[field]!r}; expected a positive "
                             f"number.")
  if "test_fraction" in fields and not 0 < fields["test_fraction"] < 1:
    raise common.DataError(f"data.builder.test_fraction={fields['test_fraction']!r}; expected "
                           f"a share in (0, 1).")
  fields["columns"] = tuple(fields.get("columns", ()))
  return common.named_config(TimeseriesConfig, "{sample_rate:g}hz_{num_samples}s",
                             exclude=("num_workers",), **fields)


def source_of(manual_dir: str) -> str:
  """What `source` the pipeline gives a folder: its absolute path."""
  return os.path.abspath(os.path.expanduser(manual_dir))


# ---------------------------------------------------------------------------------------------
# The folder.
# ---------------------------------------------------------------------------------------------
def recording_id(relative_path: str) -> str:
  """"wrist/p01.csv" → "wrist/p01" (separators as '/')."""
  return os.path.splitext(relative_path.replace(os.sep, "/"))[0]


def normalize_id(text: str) -> str:
  """An id as a labels.csv or split.csv writes it: with or without its extension."""
  text = text.replace("\\", "/").strip("/")
  return recording_id(text) if os.path.splitext(text)[1].lower() in EXTENSIONS else text


def scan(folder: str) -> video_folder.Listing:
  """Every recording under `folder` by id, the other files, and the manifest.

  Raises:
    DataNotFoundError: the folder does not exist or holds no recording.
    DataError: two files with one id.
  """
  if not os.path.isdir(folder):
    raise common.DataNotFoundError(
        f"No recordings: the folder {folder or '(none given)'} does not exist. Give it with "
        f"--config.data.manual_dir=DIR:\n{LAYOUT}")
  recordings, ignored, manifest = {}, [], []
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(files):
      path = os.path.join(root, name)
      relative = os.path.relpath(path, folder)
      ext = os.path.splitext(name)[1].lower()
      if name.startswith(".") or relative in (video_folder.LABELS_FILE,
                                              video_folder.SPLIT_FILE):
        if not name.startswith("."):
          stat = os.stat(path)
          manifest.append((relative, stat.st_size, stat.st_mtime))
        continue
      if ext not in EXTENSIONS:
        if ext != ".dat":  # a WFDB record's samples, read with its .hea
          ignored.append(relative)
        continue
      rid = recording_id(relative)
      if rid in recordings:
        raise common.DataError(f"{folder}: two recordings have the id {rid!r} "
                               f"({os.path.relpath(recordings[rid], folder)} and {relative}); "
                               f"rename one.")
      recordings[rid] = path
      stat = os.stat(path)
      manifest.append((relative, stat.st_size, stat.st_mtime))
  if not recordings:
    raise common.DataNotFoundError(
        f"No recordings in {folder} or its sub-folders (files with the extensions "
        f"{', '.join(EXTENSIONS)}). Expected:\n{LAYOUT}")
  return video_folder.Listing(folder, recordings, ignored, manifest)


# ---------------------------------------------------------------------------------------------
# Reading one file into (times or None, {column: values}, fixed rate or None).
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Table:
  """A file as read: its columns (numeric arrays, or the raw time column), and the rate its
  header declares (EDF, WFDB, or None)."""
  path: str
  columns: dict
  rate: float | None = None
  first_line: int = 2  # the file line of row 0 (1-based), for messages; 0 → not a text file


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def read_table(path: str) -> Table:
  """The file at `path` as a Table. CSV/TSV: a first line whose every field is a number is
  data, not a header (columns then named "0", "1", ...).

  Raises:
    DataError naming the file: it cannot be read, or an array has more than 2 dimensions.
  """
  ext = os.path.splitext(path)[1].lower()
  if ext in TABLE_SEPARATORS:
    sep = TABLE_SEPARATORS[ext]
    with open(path, encoding="utf-8-sig") as f:
      first = next((line for line in f if line.strip()), "")
    headerless = bool(first) and all(_is_number(v) for v in first.strip().split(sep) if v)
    # pandas' C parser makes numeric columns float/int at once; a column with anything else in
    # it comes out as text, and `_numbers` names the first value that is not a number.
    frame = pd.read_csv(path, sep=sep, header=None if headerless else 0,
                        skipinitialspace=True, encoding="utf-8-sig", skip_blank_lines=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(path, {c: frame[c].to_numpy() for c in frame.columns},
                 first_line=1 if headerless else 2)
  if ext == ".parquet":
    frame = pd.read_parquet(path)
    return Table(path, {str(c): frame[c].to_numpy() for c in frame.columns}, first_line=0)
  if ext in (".npy", ".npz"):
    loaded = np.load(path, allow_pickle=False)
    arrays = dict(loaded) if ext == ".npz" else {"": loaded}
    if len(arrays) == 1 and next(iter(arrays.values())).ndim == 2:
      (array,) = arrays.values()
      arrays = {str(i): array[:, i] for i in range(array.shape[1])}
    elif len(arrays) == 1:
      arrays = {"0": next(iter(arrays.values()))}
    bad = [k for k, v in arrays.items() if v.ndim != 1]
    if bad:
      raise common.DataError(f"{path}: array {bad[0]!r} has shape {arrays[bad[0]].shape}; "
                             f"expected [T] or [T, C] samples (an .npz: 1D arrays of one length).")
    return Table(path, arrays, first_line=0)
  if ext in (".edf", ".bdf"):
    return _read_edf(path)
  if ext == ".hea":
    return _read_wfdb(path)
  raise common.DataError(f"{path}: not a recording ({', '.join(EXTENSIONS)}).")


def _on_one_grid(path: str, signals: dict, rates: dict) -> Table:
  """Channels at different rates (EDF allows it) put on the fastest one's sample times."""
  top = max(rates.values())
  length = min(len(signals[name]) / rates[name] for name in signals)  # seconds all cover
  times = np.arange(int(length * top)) / top
  columns = {name: np.interp(times, np.arange(len(v)) / rates[name], v)
             if rates[name] != top else np.asarray(v[:len(times)], np.float64)
             for name, v in signals.items()}
  return Table(path, columns, rate=top, first_line=0)


def _read_edf(path: str) -> Table:
  import pyedflib  # pylint: disable=g-import-not-at-top
  reader = pyedflib.EdfReader(path)
  try:
    names = [label.strip() or str(i) for i, label in enumerate(reader.getSignalLabels())]
    signals = {name: reader.readSignal(i) for i, name in enumerate(names)}
    rates = {name: float(reader.getSampleFrequency(i)) for i, name in enumerate(names)}
  finally:
    reader.close()
  return _on_one_grid(path, signals, rates)


def _read_wfdb(path: str) -> Table:
  import wfdb  # pylint: disable=g-import-not-at-top
  record = wfdb.rdrecord(os.path.splitext(path)[0])
  names = [n or str(i) for i, n in enumerate(record.sig_name)]
  return Table(path, {n: record.p_signal[:, i] for i, n in enumerate(names)},
               rate=float(record.fs), first_line=0)


# ---------------------------------------------------------------------------------------------
# From a table to resampled, normalized segments.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Recording:
  """A recording ready to window: segments [(start_s, values [n, C] z-scored, label [n] or
  None)], times from the recording's first sample; the channel names; what was done."""
  path: str
  channels: list
  segments: list
  counts: dict


def _row(table: Table, index: int) -> str:
  """"file, line N" (text files) or "file, row N" of row `index`."""
  if table.first_line:
    return f"{table.path}, line {index + table.first_line}"
  return f"{table.path}, row {index}"


def _numbers(table: Table, column: str) -> np.ndarray:
  """A column as float64; empty strings and NaN are missing (NaN).

  Raises:
    DataError naming the file and line: a value that is not a number.
  """
  raw = table.columns[column]
  if raw.dtype.kind in "fiub":
    return raw.astype(np.float64)
  text = pd.Series(raw).astype(str).str.strip()
  values = pd.to_numeric(text.where(~text.isin(("", "nan", "NaN", "NA"))), errors="coerce")
  bad = np.flatnonzero(values.isna().to_numpy() & ~text.isin(("", "nan", "NaN", "NA")).to_numpy())
  if bad.size:
    raise common.DataError(f"{_row(table, int(bad[0]))}: {column}={text.iloc[bad[0]]!r} is not "
                           f"a number.")
  return values.to_numpy(np.float64)


def _time_column(table: Table, config: TimeseriesConfig) -> str | None:
  if config.time_column:
    if config.time_column not in table.columns:
      raise common.DataError(f"{table.path}: no column {config.time_column!r} "
                             f"(data.builder.time_column); its columns: "
                             f"{', '.join(table.columns)}.")
    return config.time_column
  return next((c for c in table.columns if c.lower() in TIME_NAMES), None)


def times_in_seconds(table: Table, column: str, unit: str) -> tuple[np.ndarray, str]:
  """(seconds [N] from the column's first value, the unit used) of a time column; NaN where
  a row has no time. `unit="auto"`: datetimes if the values parse as dates, else by the
  median step between rows — ≤ 1 s, s; ≤ 1000, ms; ≤ 1e6, µs; larger, ns (the steps of
  1 Hz–1 kHz recordings in each unit)."""
  raw = table.columns[column]
  is_datetime = np.issubdtype(raw.dtype, np.datetime64)
  if unit == "datetime" or (unit == "auto" and not is_datetime and raw.dtype.kind in "OUS"
                            and not _is_number(str(raw[0]).strip())):
    is_datetime = True
  if is_datetime:
    stamps = pd.to_datetime(pd.Series(raw), errors="coerce", utc=True)
    if stamps.isna().all():
      raise common.DataError(f"{table.path}: the time column {column!r} holds no dates or "
                             f"numbers (first value {raw[0]!r}).")
    # By differences, not int64 counts: pandas keeps datetimes in ns, µs or s as parsed.
    seconds = (stamps - stamps.min()).dt.total_seconds().to_numpy(np.float64)
    return seconds, "datetime"
  values = _numbers(table, column)
  if unit == "auto":
    steps = np.diff(values[np.isfinite(values)])
    step = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
    unit = "s" if step <= 1.0 else "ms" if step <= 1e3 else "us" if step <= 1e6 else "ns"
  seconds = (values - np.nanmin(values)) * _SECONDS_PER[unit]
  return seconds, unit


def load_recording(path: str, config: TimeseriesConfig) -> Recording:
  """Reads, cleans, resamples and normalizes one file (the module docstring's steps 1–5).

  Raises:
    DataError naming the file (and line or column): see the module docstring.
  """
  table = read_table(path)
  time_column = None if table.rate else _time_column(table, config)
  label = config.label_column or None
  if label and label not in table.columns:
    raise common.DataError(f"{path}: no column {label!r} (data.builder.label_column); its "
                           f"columns: {', '.join(table.columns)}.")
  if config.columns:
    missing = [c for c in config.columns if c not in table.columns]
    if missing:
      raise common.DataError(f"{path}: no column {missing[0]!r} (data.builder.columns); its "
                             f"columns: {', '.join(table.columns)}.")
    channels = list(config.columns)
  else:
    candidates = [c for c in table.columns if c not in (time_column, label)]
    channels = [c for c in candidates
                if table.columns[c].dtype.kind in "fiub"
                or _is_number(str(next((v for v in table.columns[c] if str(v).strip()), "x")))]
    if not channels:
      raise common.DataError(f"{path}: no numeric column to read (its columns: "
                             f"{', '.join(table.columns)}); name them with "
                             f"data.builder.columns.")
  values = np.stack([_numbers(table, c) for c in channels], axis=1)  # [N, C]
  label_values = _numbers(table, label) if label else None
  counts = {"rows": len(values), "duplicate_times": 0, "missing_rows": 0, "gaps_bridged": 0,
            "segments": 0, "short_segments": 0}
  rate = table.rate or (config.source_rate if time_column is None and config.source_rate > 0
                        else None)
  if time_column is None and rate is None:
    raise common.DataError(f"{path}: no time column (its columns: {', '.join(table.columns)});"
                           f" name it with data.builder.time_column, or give the sampling rate"
                           f" with data.builder.source_rate=HZ.")
  if rate is not None:
    times, counts["time"] = np.arange(len(values)) / rate, f"{rate:g} Hz"
  else:
    times, unit = times_in_seconds(table, time_column, config.time_unit)
    counts["time"] = f"{time_column!r} in {unit}"
    keep = np.isfinite(times)
    counts["missing_rows"] += int((~keep).sum())
    times, values = times[keep], values[keep]
    label_values = label_values[keep] if label_values is not None else None
    index = np.flatnonzero(keep)
    repeated = np.concatenate([[False], np.diff(times) == 0])
    counts["duplicate_times"] = int(repeated.sum())
    times, values, index = times[~repeated], values[~repeated], index[~repeated]
    label_values = label_values[~repeated] if label_values is not None else None
    backwards = np.flatnonzero(np.diff(times) < 0)
    if backwards.size:
      row = int(index[backwards[0] + 1])
      raise common.DataError(f"{_row(table, row)}: the time goes backwards "
                             f"({time_column}={table.columns[time_column][row]!r} after "
                             f"{table.columns[time_column][index[backwards[0]]]!r}); the time "
                             f"column must increase.")
  if label_values is not None and not np.isfinite(label_values).any():
    raise common.DataError(f"{path}: the label column {label!r} holds no number.")
  finite = np.all(np.isfinite(values), axis=1)
  counts["missing_rows"] += int((~finite).sum())
  times, values = times[finite], values[finite]
  label_values = label_values[finite] if label_values is not None else None
  segments = []
  if len(times):
    steps = np.diff(times)
    cuts = np.flatnonzero(steps > config.max_gap_s)
    nominal = np.median(steps) if len(steps) else 0.0
    counts["gaps_bridged"] = int(((steps > 1.5 * nominal) & (steps <= config.max_gap_s)).sum())
    for part in np.split(np.arange(len(times)), cuts + 1):
      t = times[part]
      n = int(math.floor((t[-1] - t[0]) * config.sample_rate)) + 1
      grid = t[0] + np.arange(n) / config.sample_rate
      resampled = np.stack([np.interp(grid, t, values[part, c]) for c in range(len(channels))],
                           axis=1)
      label_grid = None
      if label_values is not None:
        ok = np.isfinite(label_values[part])
        label_grid = (np.interp(grid, t[ok], label_values[part][ok]) if ok.sum() >= 2
                      else np.full(n, np.nan))
      segments.append((float(t[0]), resampled, label_grid))
  counts["segments"] = len(segments)
  if segments:
    everything = np.concatenate([v for _, v, _ in segments])
    mean, std = everything.mean(axis=0), everything.std(axis=0)
    flat = np.flatnonzero(~(std > 1e-12 * np.maximum(1.0, np.abs(mean))))
    if flat.size:
      raise common.DataError(f"{path}: the channel {channels[flat[0]]!r} is constant (every "
                             f"value {mean[flat[0]]:g}); leave it out with "
                             f"data.builder.columns.")
    segments = [(start, (v - mean) / std, lab) for start, v, lab in segments]
  return Recording(path, channels, segments, counts)


def describe(recording: Recording) -> str:
  """What was done to a recording, in a few words, for the log."""
  c = recording.counts
  parts = [f"{len(recording.channels)} channels ({', '.join(recording.channels)})",
           f"time {c['time']}"]
  for key, words in (("duplicate_times", "duplicate times dropped"),
                     ("missing_rows", "rows with a missing value"),
                     ("gaps_bridged", "gaps interpolated"),
                     ("short_segments", "segments shorter than a window")):
    if c.get(key):
      parts.append(f"{c[key]} {words}")
  if c["segments"] > 1:
    parts.append(f"{c['segments']} segments (split at gaps over the limit)")
  return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Windows.
# ---------------------------------------------------------------------------------------------
def window_label_fields(config: TimeseriesConfig, label: np.ndarray) -> dict:
  """The per-window fields of a per-sample label column: a reference trace's `ppg` and
  `heart_rate` (bpm, by the heart-rate protocol), or a counter's `rate` (Hz: its slope)."""
  if config.label_kind == "signal":
    if not np.all(np.isfinite(label)):
      return {"ppg": np.zeros(len(label), np.float32), "heart_rate": np.float32(np.nan)}
    bpm = hr.heart_rate(label[None].astype(np.float64), config.sample_rate)[0]
    return {"ppg": label.astype(np.float32), "heart_rate": np.float32(bpm)}
  duration = (len(label) - 1) / config.sample_rate
  return {"rate": np.float32((label[-1] - label[0]) / duration)}


def make_windows(config: TimeseriesConfig, columns: list, rid: str, path: str, *,
                 labels, stride: int) -> list[dict]:
  """The examples of every window of one recording (the module docstring's step 6).

  Raises:
    DataError: the recording is shorter than one window.
  """
  recording = load_recording(path, config)
  whole = labels.whole.get(rid, {}) if labels else {}
  segments = labels.segments.get(rid, []) if labels else []
  group = labels.groups.get(rid, rid) if labels and config.group_by else rid
  examples, index = [], 0
  for start_s, values, label in recording.segments:
    starts = video_folder.clip_starts(len(values), config.num_samples, stride)
    if not starts:
      recording.counts["short_segments"] += 1
      continue
    offset = round(start_s * config.sample_rate)
    per_window = video_folder.clip_labels([offset + s for s in starts], config.num_samples,
                                          config.sample_rate, columns, whole, segments)
    for k, s in enumerate(starts):
      window = values[s:s + config.num_samples]
      example = {"video": window.astype(np.float16)[:, None, None, :], "video_id": rid,
                 "clip_index": index, "start_s": np.float32(start_s + s / config.sample_rate),
                 "fps": np.float32(config.sample_rate), "group": group,
                 **{c: per_window[c][k] for c in columns}}
      if label is not None:
        example.update(window_label_fields(config, label[s:s + config.num_samples]))
      examples.append(example)
      index += 1
  if not examples:
    raise common.DataError(
        f"{path}: shorter than one window ({config.num_samples} samples at "
        f"{config.sample_rate:g} Hz = {config.num_samples / config.sample_rate:g} s) in every "
        f"segment; {describe(recording)}.")
  print(f"[timeseries] {rid}: {describe(recording)}.", flush=True)
  return examples


class Timeseries(common.Builder):
  """Windows of the recordings under a folder, with the labels its CSVs give (if any)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [TimeseriesConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT
  PARTLY_LABELLED = True  # a window may have no label (NaN): see train.train

  def _labels_path(self) -> str | None:
    path = os.path.join(self.builder_config.source, video_folder.LABELS_FILE)
    return path if os.path.isfile(path) else None

  def label_columns(self) -> list:
    """The numeric labels.csv columns (read from the file: features are known before
    preparing)."""
    if not hasattr(self, "_columns"):
      path = self._labels_path()
      self._columns = (video_folder.read_labels(path, None, self.builder_config.group_by,
                                                normalize=normalize_id).columns
                       if path and self.builder_config.labels else [])
    return self._columns

  def _channels(self) -> list:
    """The channel names: data.builder.columns, else those of the first recording."""
    if not hasattr(self, "_channel_names"):
      c = self.builder_config
      if c.columns:
        self._channel_names = list(c.columns)
      else:
        listing = scan(c.source)
        first = listing.videos[sorted(listing.videos)[0]]
        self._channel_names = load_recording(first, c).channels
    return self._channel_names

  def default_label_key(self) -> str | None:
    """The only numeric labels.csv column, else the label column's field (`heart_rate` or
    `rate`), else None (unlabelled).

    Raises:
      DataError: several numeric columns (data.label_key must choose).
    """
    columns = self.label_columns()
    if len(columns) > 1:
      raise common.DataError(
          f"{self._labels_path()} has {len(columns)} numeric columns ({', '.join(columns)}); "
          f"choose the label with --config.data.label_key=NAME.")
    if columns:
      return columns[0]
    c = self.builder_config
    if c.label_column and c.labels:
      return "heart_rate" if c.label_kind == "signal" else "rate"
    return None

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    channels = len(self._channels())
    features = {
        # Stored as raw bytes: TFDS would otherwise write each float as a protobuf float,
        # which made encoding the windows most of the preparation time.
        "video": tfds.features.Tensor(shape=(c.num_samples, 1, 1, channels), dtype=np.float16,
                                      encoding=tfds.features.Encoding.BYTES,
                                      doc="z-scored channels at config.sample_rate"),
        "video_id": tfds.features.Text(doc="the recording's path, no extension"),
        "clip_index": tfds.features.Scalar(dtype=np.int32, doc="place among its windows"),
        "start_s": tfds.features.Scalar(dtype=np.float32, doc="from the recording's start"),
        "fps": tfds.features.Scalar(dtype=np.float32, doc="samples per second"),
        "group": tfds.features.Text(doc="the group_by value, or the recording id"),
    }
    features.update({column: tfds.features.Scalar(dtype=np.float32, doc="labels.csv; NaN: none")
                     for column in self.label_columns()})
    if c.label_column and c.labels:
      if c.label_kind == "signal":
        features["ppg"] = tfds.features.Tensor(shape=(c.num_samples,), dtype=np.float32,
                                               encoding=tfds.features.Encoding.BYTES,
                                               doc="the label column's trace")
        features["heart_rate"] = tfds.features.Scalar(dtype=np.float32, doc="bpm, of ppg")
      else:
        features["rate"] = tfds.features.Scalar(dtype=np.float32, doc="counter slope, Hz")
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=tfds.features.FeaturesDict(features))

  def stale_reason(self) -> str | None:
    """Why the prepared data no longer matches the folder, or None (as video_folder)."""
    return video_folder.stale_reason_of(os.fspath(self.data_dir),
                                        lambda: scan(self.builder_config.source).manifest)

  def check_manual_dir(self, manual_dir) -> video_folder.Listing:
    """The folder's listing, its label files read and checked."""
    listing = scan(os.fspath(manual_dir) if manual_dir else "")
    self._plan(listing)
    return listing

  def _plan(self, listing):
    """({split: [recording ids]}, labels or None), every label file read and checked."""
    c = self.builder_config
    by_split, labels, self._missing = video_folder.plan_folder(
        listing, self._labels_path(), c.group_by, c.test_fraction, normalize=normalize_id)
    return by_split, labels if c.labels else None

  def _split_generators(self, dl_manager):
    listing = scan(os.fspath(getattr(dl_manager, "_manual_dir", None) or
                             self.builder_config.source))
    by_split, labels = self._plan(listing)
    note = video_folder.describe_ignored(listing.ignored, "recordings")
    print(f"[timeseries] {len(listing.videos)} recordings in {listing.folder} and its "
          f"sub-folders{'; ' + note if note else ''}.", flush=True)
    video_folder.write_manifest_and_missing(os.fspath(self.data_dir), listing, self._missing,
                                            "recording", "timeseries")
    for split in video_folder.SPLITS:
      if not by_split[split]:
        raise common.DataError(f"{listing.folder}: no recording in the {split!r} split; a "
                               f"split needs at least one (2 or more recordings, or a "
                               f"{video_folder.SPLIT_FILE}).")
      print(f"[timeseries {split}] {len(by_split[split])} recordings", flush=True)
    return {split: self._generate_examples(split, by_split[split], listing, labels)
            for split in video_folder.SPLITS}

  def _generate_examples(self, split: str, ids: list, listing, labels):
    c = self.builder_config
    stride = c.train_stride if split == "train" else c.num_samples
    make = functools.partial(make_windows, c, self.label_columns() if labels else [],
                             labels=labels, stride=stride)
    return common.clips_of_videos(
        ids, lambda rid: make(rid, listing.videos[rid]), name=f"timeseries {split}",
        video_id=lambda rid: rid, describe=lambda rid: listing.videos[rid],
        clip_key=lambda rid, example: f"{rid}#{int(example['clip_index']):06d}",
        num_workers=c.num_workers, on_bad=c.on_bad_file)
