"""A synthetic folder of wrist-accelerometer walks, written the way such folders come
(`configs/timeseries.py` `synthetic` and `tiny`, tests): read by the real timeseries builder.

What it holds, under DIR:
  site_a/p01/walk1.csv ...   nested folders; the formats in turn: a CSV with a header and
      epoch-nanosecond times; a logger's header-less CSV (x,y,z at exactly `rate` Hz, no time
      column: the config's source_rate times it); a Parquet file with datetime64 times; a TSV
      with times in milliseconds from the start.
  labels.csv   recording,cadence_hz,start_s,end_s,subject: two segment rows per recording
      (the cadence changes halfway), some ids written with their extension; one recording
      without a row (unlabelled), one row naming a recording that is not there.
  split.csv    recording,split for two recordings.
  notes.txt    a file that is not a recording.

Each recording: tri-axial acceleration (g) of a wrist at a random orientation — gravity, an
arm swing at half the step cadence (one swing per stride) stronger than the step impacts at
the cadence, both with random harmonics, sensor noise and a slow drift — sampled with jittered
timestamps (±30 % of the nominal step), a few duplicated rows, rows with a missing value, a
0.4-s dropout that is interpolated and, in every other recording, a 5-s gap that splits it.
The arm swing makes the raw signal's strongest spectral peak the stride, not the step: the
input-spectrum baselines read half the cadence unless their harmonic says otherwise.
"""

import csv
import dataclasses
import os

import numpy as np
import pandas as pd

from simper_jax.data import common

SITES = ("site_a", "site_b")
EPOCH_NS = 1_700_000_000 * 10**9  # 2023-11-14: wall-clock nanoseconds, as phones log them
FORMATS = ("csv", "headerless", "parquet", "tsv")


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """What to write. Every recording is a pure function of (seed, index)."""
  num_recordings: int = 16
  seconds: float = 60.0  # each recording's length
  rate: float = 50.0  # nominal sampling rate, Hz
  cadence_range: tuple[float, float] = (1.4, 2.4)  # steps per second
  seed: int = 0


def recording_plan(spec: SyntheticSpec) -> list[dict]:
  """One dict per recording: id, format, subject, the two cadences, whether it has a long gap."""
  rng = np.random.default_rng(spec.seed)
  plan = []
  for i in range(spec.num_recordings):
    subject = f"p{i // 2 + 1:02d}"
    fmt = FORMATS[i % len(FORMATS)]
    cadences = tuple(float(c) for c in rng.uniform(*spec.cadence_range, size=2))
    plan.append({"id": f"{SITES[i // 2 % 2]}/{subject}/walk{i % 2 + 1}", "format": fmt,
                 "subject": subject, "cadences": cadences, "long_gap": i % 2 == 1, "index": i})
  return plan


def accelerometer(spec: SyntheticSpec, item: dict, times: np.ndarray) -> np.ndarray:
  """[N, 3] acceleration (g) at `times` (s) of one recording."""
  rng = np.random.default_rng([spec.seed, item["index"]])
  half = spec.seconds / 2
  cadence = np.where(times < half, *item["cadences"])
  # The step phase integrates the cadence, so the rhythm changes without a jump.
  dt = np.diff(times, prepend=times[0])
  phase = 2 * np.pi * np.cumsum(cadence * dt) + rng.uniform(0, 2 * np.pi)
  swing = rng.uniform(0.6, 1.0) * (np.sin(phase / 2) + 0.3 * np.sin(phase + 0.5))
  impact = rng.uniform(0.3, 0.5) * np.maximum(np.cos(phase), 0.0) ** 8
  drift = 0.1 * np.sin(2 * np.pi * times / rng.uniform(20, 40))
  local = np.stack([swing + drift, 0.6 * swing + impact, impact + 0.2 * drift], axis=1)
  gravity = rng.normal(size=3)
  gravity /= np.linalg.norm(gravity)
  q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # the wrist's orientation
  return local @ q.T + gravity + 0.05 * rng.normal(size=local.shape)


def sample_times(spec: SyntheticSpec, item: dict) -> np.ndarray:
  """Jittered sample times (s) with a 0.4-s dropout, and a 5-s gap for `long_gap`."""
  rng = np.random.default_rng([spec.seed, item["index"], 1])
  step = 1.0 / spec.rate
  times = np.cumsum(step * rng.uniform(0.7, 1.3, int(spec.seconds * spec.rate)))
  times = times[times < spec.seconds]
  drop = (times > 10.0) & (times < 10.4)
  if item["long_gap"]:
    drop |= (times > 40.0) & (times < 45.0)
  return times[~drop]


def write_recording(path: str, spec: SyntheticSpec, item: dict) -> None:
  """One recording in its format (see the module docstring)."""
  rng = np.random.default_rng([spec.seed, item["index"], 2])
  if item["format"] == "headerless":
    times = np.arange(int(spec.seconds * spec.rate)) / spec.rate
    values = accelerometer(spec, item, times)
    np.savetxt(path + ".csv", values, delimiter=",", fmt="%.5f")
    return
  times = sample_times(spec, item)
  values = accelerometer(spec, item, times)
  frame = pd.DataFrame(values, columns=["x", "y", "z"])
  frame.loc[rng.choice(len(frame), 3, replace=False), "y"] = np.nan  # missing values
  repeat = np.sort(rng.choice(len(frame), 5, replace=False))  # duplicated rows, as loggers do
  order = np.sort(np.concatenate([np.arange(len(frame)), repeat]))
  frame, times = frame.iloc[order].reset_index(drop=True), times[order]
  if item["format"] == "csv":
    frame.insert(0, "timestamp", EPOCH_NS + np.round(times * 1e9).astype(np.int64))
    frame.to_csv(path + ".csv", index=False, float_format="%.5f")
  elif item["format"] == "parquet":
    frame.insert(0, "time", pd.to_datetime(EPOCH_NS + np.round(times * 1e9).astype(np.int64)))
    frame.to_parquet(path + ".parquet", index=False)
  else:
    frame.insert(0, "time", np.round(times * 1e3, 1))  # ms from the start
    frame.to_csv(path + ".tsv", sep="\t", index=False, float_format="%.5f")


EXTENSION = {"csv": ".csv", "headerless": ".csv", "parquet": ".parquet", "tsv": ".tsv"}


def write(folder: str, spec: SyntheticSpec) -> None:
  """The whole folder (see the module docstring)."""
  plan = recording_plan(spec)
  for item in plan:
    path = os.path.join(folder, *item["id"].split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_recording(path, spec, item)
  with open(os.path.join(folder, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["recording", "cadence_hz", "start_s", "end_s", "subject"])
    half = spec.seconds / 2
    for item in plan[:-1]:  # the last recording has no row: unlabelled
      rid = item["id"] + (EXTENSION[item["format"]] if item["index"] % 3 == 0 else "")
      for (start, end), cadence in zip(((0.0, half), (half, spec.seconds)), item["cadences"]):
        writer.writerow([rid, f"{cadence:.4f}", f"{start:g}", f"{end:g}", item["subject"]])
    writer.writerow(["site_a/p99/lost", "1.8", "", "", "p99"])  # its file never arrived
  with open(os.path.join(folder, "split.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["recording", "split"])
    writer.writerow([plan[0]["id"], "train"])
    writer.writerow([plan[2]["id"], "test"])
  with open(os.path.join(folder, "notes.txt"), "w") as f:
    f.write("Wrist recordings, walking outdoors.\n")


def true_cadences(spec: SyntheticSpec) -> dict:
  """{recording id: (cadence of the first half, of the second)}: what the generator used."""
  return {item["id"]: item["cadences"] for item in recording_plan(spec)}


def ensure_folder(data_dir: str, spec: SyntheticSpec, log) -> str:
  """The synthetic folder for `spec` under data_dir, written on first use."""
  return common.synthetic_folder(
      data_dir, "timeseries", spec, write, log,
      f"{spec.num_recordings} synthetic wrist-accelerometer recordings ({spec.seconds:g} s at "
      f"~{spec.rate:g} Hz; CSV, header-less CSV, Parquet, TSV; labels.csv, split.csv)")
