"""A synthetic folder of wrist-accelerometer walks (or of finger-PPG recordings), written the
way such folders come (`configs/timeseries.py` `synthetic`, `synthetic_ppg` and `tiny`,
tests): read by the real timeseries builder.

kind="ppg" writes physiological records instead: half EDF+ (a PPG channel at 64 Hz and an
accelerometer channel at 32 Hz, as wearables' two sensors run at their own rates) and half
PhysioNet WFDB records (both at 64 Hz), labels.csv `heart_rate_hz` per half. The pulse has a
systolic peak and a dicrotic notch, a heart rate that wanders by a few per cent, breathing
that modulates its baseline and amplitude, and two 10-s stretches of walking whose motion
leaks into the PPG at the step cadence — in the heart-rate band, and stronger than the pulse.

What it holds, under DIR:
  site_a/p01/walk1.csv ...   nested folders; the formats in turn: a CSV with a header and
      epoch-nanosecond times; a logger's header-less CSV (x,y,z at exactly `rate` Hz, no time
      column: the config's source_rate times it); a Parquet file with zoned (Europe/Berlin)
      datetimes, as phone exports write them; a TSV
      with times in milliseconds from the start.
  labels.csv   recording,cadence_hz,start_s,end_s,subject: two segment rows per recording
      (the cadence changes halfway), some ids written with their extension; one recording
      without a row (unlabelled), one row naming a recording that is not there.
  split.csv    recording,split for two recordings.
  notes.txt    a file that is not a recording.

Each recording: tri-axial acceleration (g) of a wrist at a random orientation — gravity, an
arm swing at half the step cadence (one swing per stride) stronger than the step impacts at
the cadence, with random harmonics, a cadence that wanders by a few per cent, sensor noise and
a slow drift — sampled with jittered timestamps (±30 % of the nominal step), a few duplicated
rows, rows with a missing value, a 0.4-s dropout that is interpolated and, in every other
recording, a 5-s gap that splits it. What makes it hard, as real wrists are: a 12-s stretch in
which the hand carries something (the swing almost stops, only the step impacts remain, so
the strongest rhythm jumps from the stride to the step), and bursts of gestures (a few
seconds of large, smooth, aperiodic movement) on top of the walk. The swing makes the raw
signal's strongest spectral peak the stride, not the step, except while carrying: no single
harmonic of the input's spectrum reads every window right.
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
  kind: str = "walks"  # "walks" (wrist accelerometer) or "ppg" (EDF and WFDB records)
  heart_rate_range: tuple[float, float] = (0.9, 1.8)  # kind="ppg": Hz (54–108 bpm)


def recording_plan(spec: SyntheticSpec) -> list[dict]:
  """One dict per recording: id, format, subject, its two rates (cadences, or heart rates for
  kind="ppg"), whether it has a long gap."""
  rng = np.random.default_rng(spec.seed)
  plan = []
  ppg = spec.kind == "ppg"
  for i in range(spec.num_recordings):
    subject = f"p{i // 2 + 1:02d}"
    fmt = ("edf", "wfdb")[i % 2] if ppg else FORMATS[i % len(FORMATS)]
    cadences = tuple(float(c) for c in rng.uniform(
        *(spec.heart_rate_range if ppg else spec.cadence_range), size=2))
    name = f"night{i % 2 + 1}" if ppg else f"walk{i % 2 + 1}"
    plan.append({"id": f"{SITES[i // 2 % 2]}/{subject}/{name}", "format": fmt,
                 "subject": subject, "cadences": cadences, "long_gap": i % 2 == 1, "index": i})
  return plan


def accelerometer(spec: SyntheticSpec, item: dict, times: np.ndarray) -> np.ndarray:
  """[N, 3] acceleration (g) at `times` (s) of one recording."""
  rng = np.random.default_rng([spec.seed, item["index"]])
  half = spec.seconds / 2
  wander = 1 + 0.03 * np.sin(2 * np.pi * times / rng.uniform(8, 15) + rng.uniform(0, 6.3))
  cadence = np.where(times < half, *item["cadences"]) * wander
  # The step phase integrates the cadence, so the rhythm changes without a jump.
  dt = np.diff(times, prepend=times[0])
  phase = 2 * np.pi * np.cumsum(cadence * dt) + rng.uniform(0, 2 * np.pi)
  carry_start = rng.uniform(0, max(spec.seconds - 12.0, 0.0))
  carrying = (times >= carry_start) & (times < carry_start + 12.0)
  swing_gain = np.where(carrying, 0.08, rng.uniform(0.6, 1.0))
  swing = swing_gain * (np.sin(phase / 2) + 0.3 * np.sin(phase + 0.5))
  impact = rng.uniform(0.3, 0.5) * np.maximum(np.cos(phase), 0.0) ** 8
  drift = 0.1 * np.sin(2 * np.pi * times / rng.uniform(20, 40))
  gestures = np.zeros((len(times), 3))
  for centre in rng.uniform(0, spec.seconds, max(1, int(spec.seconds / 15))):
    envelope = np.exp(-0.5 * ((times - centre) / rng.uniform(0.8, 1.5)) ** 2)
    gestures += envelope[:, None] * rng.normal(0, 0.8, 3) * np.sin(
        2 * np.pi * rng.uniform(0.3, 0.8) * (times - centre))[:, None]
  local = np.stack([swing + drift, 0.6 * swing + impact, impact + 0.2 * drift], axis=1)
  local = local + gestures
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


def pulse_and_motion(spec: SyntheticSpec, item: dict, times: np.ndarray):
  """(PPG [N], accelerometer magnitude [N]) at `times` (s) of one kind="ppg" recording."""
  rng = np.random.default_rng([spec.seed, item["index"], 3])
  half = spec.seconds / 2
  wander = 1 + 0.03 * np.sin(2 * np.pi * times / rng.uniform(10, 20) + rng.uniform(0, 6.3))
  rate = np.where(times < half, *item["cadences"]) * wander
  dt = np.diff(times, prepend=times[0])
  phase = np.mod(2 * np.pi * np.cumsum(rate * dt) + rng.uniform(0, 2 * np.pi), 2 * np.pi)
  beat = np.exp(-((phase - 1.2) / 0.45) ** 2) + 0.4 * np.exp(-((phase - 3.0) / 0.6) ** 2)
  breath = np.sin(2 * np.pi * rng.uniform(0.2, 0.33) * times)
  ppg = beat * (1 + 0.2 * breath) + 0.3 * breath
  walking = np.zeros_like(times)
  for start in rng.uniform(0, spec.seconds - 10.0, 2):
    walking = np.maximum(walking, ((times >= start) & (times < start + 10.0)).astype(float))
  step = 2 * np.pi * rng.uniform(1.5, 2.2) * times
  motion = walking * (np.sin(step) + 0.5 * np.sin(2 * step + 1.0))
  ppg = ppg + 1.5 * motion + 0.05 * rng.normal(size=len(times))
  acc = 1.0 + 0.8 * motion + 0.02 * rng.normal(size=len(times))
  return ppg, acc


def _write_edf(path: str, signals: dict, rates: dict) -> None:
  import pyedflib  # pylint: disable=g-import-not-at-top
  writer = pyedflib.EdfWriter(path, len(signals), file_type=pyedflib.FILETYPE_EDFPLUS)
  headers = []
  for name, values in signals.items():
    # Whole numbers: EDF stores the physical range in 8 characters.
    low, high = float(np.floor(values.min())) - 1, float(np.ceil(values.max())) + 1
    headers.append({"label": name, "dimension": "au", "sample_frequency": rates[name],
                    "physical_min": low, "physical_max": high, "digital_min": -32768,
                    "digital_max": 32767, "transducer": "", "prefilter": ""})
  writer.setSignalHeaders(headers)
  writer.writeSamples(list(signals.values()))
  writer.close()


def write_recording(path: str, spec: SyntheticSpec, item: dict) -> None:
  """One recording in its format (see the module docstring)."""
  rng = np.random.default_rng([spec.seed, item["index"], 2])
  if item["format"] in ("edf", "wfdb"):
    seconds = int(spec.seconds)
    t64, t32 = np.arange(64 * seconds) / 64.0, np.arange(32 * seconds) / 32.0
    if item["format"] == "edf":
      _write_edf(path + ".edf", {"PPG": pulse_and_motion(spec, item, t64)[0],
                                 "ACC": pulse_and_motion(spec, item, t32)[1]},
                 {"PPG": 64, "ACC": 32})
    else:
      import wfdb  # pylint: disable=g-import-not-at-top
      ppg, acc = pulse_and_motion(spec, item, t64)
      wfdb.wrsamp(os.path.basename(path), fs=64, units=["au", "g"], sig_name=["PPG", "ACC"],
                  p_signal=np.stack([ppg, acc], axis=1), fmt=["16", "16"],
                  write_dir=os.path.dirname(path))
    return
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
    # Zoned local time, as phone and watch exports write it (a wall clock jumps at DST).
    frame.insert(0, "time", pd.to_datetime(EPOCH_NS + np.round(times * 1e9).astype(np.int64),
                                           utc=True).tz_convert("Europe/Berlin"))
    frame.to_parquet(path + ".parquet", index=False)
  else:
    frame.insert(0, "time", np.round(times * 1e3, 1))  # ms from the start
    frame.to_csv(path + ".tsv", sep="\t", index=False, float_format="%.5f")


EXTENSION = {"csv": ".csv", "headerless": ".csv", "parquet": ".parquet", "tsv": ".tsv",
             "edf": ".edf", "wfdb": ".hea"}


def write(folder: str, spec: SyntheticSpec) -> None:
  """The whole folder (see the module docstring)."""
  plan = recording_plan(spec)
  for item in plan:
    path = os.path.join(folder, *item["id"].split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_recording(path, spec, item)
  with open(os.path.join(folder, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    label = "heart_rate_hz" if spec.kind == "ppg" else "cadence_hz"
    writer.writerow(["recording", label, "start_s", "end_s", "subject"])
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
    f.write("Finger PPG, overnight.\n" if spec.kind == "ppg" else
            "Wrist recordings, walking outdoors.\n")


def true_cadences(spec: SyntheticSpec) -> dict:
  """{recording id: (cadence of the first half, of the second)}: what the generator used."""
  return {item["id"]: item["cadences"] for item in recording_plan(spec)}


def ensure_folder(data_dir: str, spec: SyntheticSpec, log) -> str:
  """The synthetic folder for `spec` under data_dir, written on first use."""
  return common.synthetic_folder(
      data_dir, "timeseries", spec, write, log,
      f"{spec.num_recordings} synthetic "
      + ("PPG recordings (EDF+ and WFDB" if spec.kind == "ppg" else
         f"wrist-accelerometer recordings (~{spec.rate:g} Hz; CSV, header-less CSV, Parquet, "
         f"TSV") + f"; {spec.seconds:g} s each; labels.csv, split.csv)")
