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
    # No skipinitialspace (20 % of the read): numbers parse with spaces around them, and text
    # with spaces (" NaN ") is stripped by `_numbers`. The C parser skips a UTF-8 BOM itself.
    frame = pd.read_csv(path, sep=sep, header=None if headerless else 0)
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(path, {c: frame[c].to_numpy() for c in frame.columns},
                 first_line=1 if headerless else 2)
  if ext == ".parquet":
    frame = pd.read_parquet(path)
    return Table(path, {str(c): _as_array(frame[c]) for c in frame.columns}, first_line=0)
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


def _as_array(column: pd.Series) -> np.ndarray:
  """A column's values; zoned datetimes as UTC datetime64 (to_numpy would give an object
  array of Timestamps, 15× slower to read and to subtract, and ambiguous across DST)."""
  if isinstance(column.dtype, pd.DatetimeTZDtype):
    return column.dt.tz_convert(None).to_numpy()
  return column.to_numpy()


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
  """A column as float64 (no copy if it is one); empty strings and NaN are missing (NaN).

  Raises:
    DataError naming the file and line: a value that is not a number.
  """
  raw = table.columns[column]
  if raw.dtype.kind in "fiub":
    return np.asarray(raw, np.float64)
  text = pd.Series(raw).astype(str).str.strip()
  values = pd.to_numeric(text.where(~text.isin(("", "nan", "NaN", "NA"))), errors="coerce")
  bad = np.flatnonzero(values.isna().to_numpy() & ~text.isin(("", "nan", "NaN", "NA")).to_numpy())
  if bad.size:
    raise common.DataError(f"{_row(table, int(bad[0]))}: {column}={text.iloc[bad[0]]!r} is not "
                           f"a number.")
  return values.to_numpy(np.float64)


def _as_written(value) -> str:
  """A cell for a message: text quoted, numbers and dates as they print."""
  return repr(value) if isinstance(value, str) else str(value)


def _time_column(table: Table, config: TimeseriesConfig) -> str | None:
  if config.time_column:
    if config.time_column not in table.columns:
      raise common.DataError(f"{table.path}: no column {config.time_column!r} "
                             f"(data.builder.time_column); its columns: "
                             f"{', '.join(table.columns)}.")
    return config.time_column
  return next((c for c in table.columns if c.lower() in TIME_NAMES), None)


def _median_step(values: np.ndarray) -> float:
  """The median of the positive steps between finite values (1.0 if there is none), over at
  most ~65k evenly spaced steps: it picks a unit and a nominal step, where a sample's median
  is as good as the whole's and a full one cost more than resampling a long file."""
  every = max(1, (len(values) - 1) // 65536)
  steps = values[1::every] - values[:-1:every]  # step k is values[1 + k·every] - values[k·every]
  steps = steps[steps > 0]  # NaN compares False: steps next to a missing time drop out
  return float(np.median(steps)) if steps.size else 1.0


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
    if raw.dtype.kind != "M":  # text: parsed by pandas, offsets (+02:00) to UTC
      raw = pd.to_datetime(pd.Series(raw), errors="coerce", utc=True).dt.tz_convert(None)
      raw = raw.to_numpy("datetime64[ns]")
    missing = np.isnat(raw)
    if missing.all():
      raise common.DataError(f"{table.path}: the time column {column!r} holds no dates or "
                             f"numbers (first value {table.columns[column][0]!r}).")
    # In numpy, not pandas' total_seconds (5× slower on a long file); NaT → NaN.
    nanoseconds = raw.astype("datetime64[ns]").view(np.int64)
    seconds = (nanoseconds - nanoseconds[~missing].min()).astype(np.float64) * 1e-9
    seconds[missing] = np.nan
    return seconds, "datetime"
  if raw.dtype.kind in "iu":
    # Integers (epoch ns, ms) made relative before float64: 1.7e18 ns would lose ~256 ns.
    values = (raw - raw.min()).astype(np.float64)
  else:
    values = _numbers(table, column)
    values = values - np.nanmin(values)
  if unit == "auto":
    step = _median_step(values)
    unit = "s" if step <= 1.0 else "ms" if step <= 1e3 else "us" if step <= 1e6 else "ns"
  if unit != "s":
    values *= _SECONDS_PER[unit]
  return values, unit


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
  # Channel-major [C, N] from here on: every pass below (masks, interpolation, statistics)
  # runs over contiguous rows, which made this step ~2× faster than [N, C] on long files.
  values = np.stack([_numbers(table, c) for c in channels])
  label_values = _numbers(table, label) if label else None
  counts = {"rows": values.shape[1], "duplicate_times": 0, "missing_rows": 0,
            "gaps_bridged": 0, "segments": 0, "short_segments": 0}
  rate = table.rate or (config.source_rate if time_column is None and config.source_rate > 0
                        else None)
  if time_column is None and rate is None:
    raise common.DataError(f"{path}: no time column (its columns: {', '.join(table.columns)});"
                           f" name it with data.builder.time_column, or give the sampling rate"
                           f" with data.builder.source_rate=HZ.")
  # Rows are dropped by one mask, applied once: each drop copies every channel.
  keep = np.ones(values.shape[1], bool)
  if rate is not None:
    times, counts["time"] = np.arange(values.shape[1]) / rate, f"{rate:g} Hz"
  else:
    times, unit = times_in_seconds(table, time_column, config.time_unit)
    counts["time"] = f"{time_column!r} in {unit}"
    keep = np.isfinite(times)
    counts["missing_rows"] += int(np.count_nonzero(~keep))
    rows = np.flatnonzero(keep)  # the file rows that have a time, in order
    steps = np.diff(times if len(rows) == len(times) else times[rows])
    if (steps <= 0).any():
      repeated = np.concatenate([[False], steps == 0])  # the first of equal times is kept
      counts["duplicate_times"] = int(np.count_nonzero(repeated))
      keep[rows[repeated]] = False
      rows = rows[~repeated]
      backwards = np.flatnonzero(np.diff(times[rows]) < 0)
      if backwards.size:
        row, before = int(rows[backwards[0] + 1]), int(rows[backwards[0]])
        written = table.columns[time_column]
        raise common.DataError(f"{_row(table, row)}: the time goes backwards "
                               f"({time_column}={_as_written(written[row])} after "
                               f"{_as_written(written[before])}); the time column must "
                               f"increase.")
  if label_values is not None and not np.isfinite(label_values[keep]).any():
    raise common.DataError(f"{path}: the label column {label!r} holds no number.")
  finite = np.isfinite(values).all(axis=0)
  counts["missing_rows"] += int(np.count_nonzero(keep & ~finite))
  keep &= finite
  if not keep.all():  # np.compress: 5× faster than values[:, keep] on [C, N]
    times, values = times[keep], np.compress(keep, values, axis=1)
    label_values = None if label_values is None else label_values[keep]
  segments = []
  if len(times):
    steps = np.diff(times)
    cuts = np.flatnonzero(steps > config.max_gap_s)
    nominal = 1.0 / rate if rate else _median_step(times)
    counts["gaps_bridged"] = int(np.count_nonzero((steps > 1.5 * nominal)
                                                  & (steps <= config.max_gap_s)))
    for first, last in zip(np.concatenate([[0], cuts + 1]),
                           np.concatenate([cuts, [len(times) - 1]])):
      t = times[first:last + 1]
      n = int(math.floor((t[-1] - t[0]) * config.sample_rate)) + 1
      grid = t[0] + np.arange(n) / config.sample_rate
      resampled = np.stack([np.interp(grid, t, v[first:last + 1]) for v in values])  # [C, n]
      label_grid = None
      if label_values is not None:
        part = label_values[first:last + 1]
        ok = np.isfinite(part)
        label_grid = (np.interp(grid, t[ok], part[ok]) if ok.sum() >= 2
                      else np.full(n, np.nan))
      segments.append((float(t[0]), resampled, label_grid))
  counts["segments"] = len(segments)
  if segments:
    everything = (segments[0][1] if len(segments) == 1
                  else np.concatenate([v for _, v, _ in segments], axis=1))
    mean, std = everything.mean(axis=1), everything.std(axis=1)
    flat = np.flatnonzero(~(std > 1e-12 * np.maximum(1.0, np.abs(mean))))
    if flat.size:
      raise common.DataError(f"{path}: the channel {channels[flat[0]]!r} is constant (every "
                             f"value {mean[flat[0]]:g}); leave it out with "
                             f"data.builder.columns.")
    for _, v, _ in segments:  # in place: these arrays are ours
      v -= mean[:, None]
      v /= std[:, None]
    segments = [(start, v.T, lab) for start, v, lab in segments]  # [n, C] views
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
  """The per-window fields of windows [W, T] of a per-sample label column: a reference
  trace's `ppg` [W, T] and `heart_rate` [W] (bpm, by the heart-rate protocol; NaN where the
  trace has a gap), or a counter's `rate` [W] (Hz: its slope)."""
  if config.label_kind == "signal":
    whole = np.all(np.isfinite(label), axis=1)
    bpm = np.full(len(label), np.nan, np.float32)
    if whole.any():
      bpm[whole] = hr.heart_rate(label[whole].astype(np.float64), config.sample_rate)
    return {"ppg": np.where(whole[:, None], label, 0.0).astype(np.float32), "heart_rate": bpm}
  duration = (label.shape[1] - 1) / config.sample_rate
  return {"rate": ((label[:, -1] - label[:, 0]) / duration).astype(np.float32)}


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
  t, fps = config.num_samples, np.float32(config.sample_rate)
  for start_s, values, label in recording.segments:
    starts = video_folder.clip_starts(len(values), t, stride)
    if not starts:
      recording.counts["short_segments"] += 1
      continue
    offset = round(start_s * config.sample_rate)
    per_window = video_folder.clip_labels([offset + s for s in starts], t,
                                          config.sample_rate, columns, whole, segments)
    # Cast once per segment, not per window: each window below is a view of it. Column by
    # column: a cast of the transposed [C, n] in one call was 3× slower.
    clips = np.empty((len(values), 1, 1, values.shape[1]), np.float16)  # [n, 1, 1, C]
    for c in range(values.shape[1]):
      clips[:, 0, 0, c] = values[:, c]
    label_fields = (window_label_fields(config, np.stack([label[s:s + t] for s in starts]))
                    if label is not None else {})
    start_times = (start_s + np.asarray(starts) / config.sample_rate).astype(np.float32)
    for k, s in enumerate(starts):
      examples.append({"video": clips[s:s + t], "video_id": rid, "clip_index": index,
                       "start_s": start_times[k], "fps": fps, "group": group,
                       **{c: per_window[c][k] for c in columns},
                       **{key: v[k] for key, v in label_fields.items()}})
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
