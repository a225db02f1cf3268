"""Time series (simper_jax/data/timeseries.py, models/conv1d.py, the series augmentations, the
input-spectrum baselines): recordings in the formats they come in — CSV with and without a
header, TSV, Parquet, NPY/NPZ, EDF, WFDB — with irregular timestamps in every unit, duplicated
rows, missing values, short and long gaps; labels per segment or per sample; and every bad
input named in one line."""

import contextlib
import csv
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from configs import timeseries as ts_config
from simper_jax import augment
from simper_jax import errors
from simper_jax import evaluate
from simper_jax import models
from simper_jax import predict as predict_command
from simper_jax.data import pipeline
from simper_jax.data import synthetic_timeseries as syn
from simper_jax.data import timeseries as ts
from tiny import run_command_here
from tiny import run_main_here

SPEC = syn.SyntheticSpec(num_recordings=8, seconds=30.0)


def folder_config(folder, data_dir, **builder):
  """configs/timeseries.py:tiny reading `folder` (not its synthetic one)."""
  config = ts_config.get_config("tiny")
  config.data.synthetic = None
  config.data.manual_dir = str(folder)
  config.data.data_dir = str(data_dir)
  config.data.builder.group_by = ""  # the synthetic folder's; a test that wants one says so
  config.data.builder.source_rate = 0.0
  config.data.builder.update(builder)
  return config


def prepare(folder, data_dir, **builder):
  """The prepared builder of `folder` and its splits as lists of examples."""
  b = pipeline.get_builder(folder_config(folder, data_dir, **builder).data, log=print)
  sources = b.as_data_source()
  return b, {split: [sources[split][i] for i in range(len(sources[split]))]
             for split in ("train", "test")}


def text(value):
  return value.decode() if isinstance(value, bytes) else str(value)


def loaded(path, **fields):
  return ts.load_recording(str(path), ts.make_config(**fields))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  folder = tmp_path_factory.mktemp("series")
  syn.write(str(folder), SPEC)
  return folder


@pytest.fixture(scope="module")
def prepared(written, tmp_path_factory):
  """(builder, splits, what preparation printed)."""
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):  # the builder prints from its worker threads too
    builder, splits = prepare(written, tmp_path_factory.mktemp("tfds"), source_rate=50.0,
                              group_by="subject")
  return builder, splits, printed.getvalue()


def sine_csv(path, times, freq=1.5, header="time,a,b", scale=1.0):
  """A two-channel CSV of sines at `freq` Hz sampled at `times` (s), times × `scale`."""
  with open(path, "w") as f:
    if header:
      f.write(header + "\n")
    for t in times:
      f.write(f"{t * scale:.9g},{np.sin(2 * np.pi * freq * t):.6f},"
              f"{np.cos(2 * np.pi * freq * t):.6f}\n")


# --- Reading -----------------------------------------------------------------------------------
def test_every_format_of_the_synthetic_folder_is_read(prepared):
  _, splits, out = prepared
  ids = {text(e["video_id"]) for split in splits.values() for e in split}
  assert ids == {item["id"] for item in syn.recording_plan(SPEC)}
  assert "time 'timestamp' in ns" in out  # epoch nanoseconds
  assert "time 'time' in datetime" in out  # Parquet datetime64
  assert "time 'time' in ms" in out  # TSV milliseconds
  assert "time 50 Hz" in out  # the header-less logger dump, timed by source_rate
  assert "5 duplicate times dropped" in out and "rows with a missing value" in out
  assert "1 file that is not a recording, ignored (.txt)" in out
  example = splits["train"][0]
  assert example["video"].shape == (100, 1, 1, 3) and example["video"].dtype == np.float16


def test_irregular_times_are_resampled_linearly(tmp_path):
  rng = np.random.default_rng(0)
  times = np.cumsum(rng.uniform(0.005, 0.015, 2000))  # ~100 Hz, jittered
  sine_csv(tmp_path / "r.csv", times)
  recording = loaded(tmp_path / "r.csv", sample_rate=25.0)
  (start, values, _), = recording.segments
  grid = times[0] + start + np.arange(len(values)) / 25.0  # times count from the first sample
  expected = np.sin(2 * np.pi * 1.5 * grid)
  expected = (expected - expected.mean()) / expected.std()
  assert np.max(np.abs(values[:, 0] - expected)) < 0.02


@pytest.mark.parametrize("scale, unit", [(1.0, "s"), (1e3, "ms"), (1e6, "us"), (1e9, "ns")])
def test_the_time_unit_is_recognised_from_the_values(tmp_path, scale, unit):
  times = 1_000.0 + np.arange(500) / 50.0  # 50 Hz, not starting at zero
  sine_csv(tmp_path / "r.csv", times, scale=scale)
  recording = loaded(tmp_path / "r.csv", sample_rate=50.0)
  assert recording.counts["time"] == f"'time' in {unit}"
  assert len(recording.segments) == 1 and len(recording.segments[0][1]) == 500


def test_a_given_unit_and_datetime_strings(tmp_path):
  times = np.arange(300) / 30.0
  sine_csv(tmp_path / "ms.csv", times, scale=1e3)
  # A 30-Hz recording in ms read as seconds: one sample per 33 "s", far past max_gap_s.
  as_seconds = loaded(tmp_path / "ms.csv", time_unit="s", max_gap_s=1.0)
  assert as_seconds.counts["segments"] == 0 or all(len(v) < 5 for _, v, _ in
                                                   as_seconds.segments)
  stamps = pd.Timestamp("2024-05-01 12:00:00") + pd.to_timedelta(times, unit="s")
  frame = pd.DataFrame({"datetime": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"),
                        "v": np.sin(2 * np.pi * times)})
  frame.to_csv(tmp_path / "dates.csv", index=False)
  recording = loaded(tmp_path / "dates.csv", sample_rate=30.0)
  assert recording.counts["time"] == "'datetime' in datetime"
  assert abs(len(recording.segments[0][1]) - 300) <= 1  # µs in the strings: the last may round


def test_zoned_times_across_a_clock_change_are_one_stretch(tmp_path):
  # 20 minutes at 10 Hz over the night Berlin's clocks go back (2023-10-29 03:00 CEST →
  # 02:00 CET): the wall clock repeats an hour; the instants do not.
  times = np.arange(0, 1200, 0.1)
  instants = pd.Timestamp("2023-10-29 00:50:00", tz="UTC") + pd.to_timedelta(times, unit="s")
  wave = np.sin(2 * np.pi * 0.8 * times)
  pd.DataFrame({"time": instants.tz_convert("Europe/Berlin"), "v": wave,
                "w": np.cos(times)}).to_parquet(tmp_path / "zoned.parquet")
  pd.DataFrame({"time": instants.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S.%f%z"),
                "v": wave, "w": np.cos(times)}).to_csv(tmp_path / "offsets.csv", index=False)
  for name in ("zoned.parquet", "offsets.csv"):
    recording = loaded(tmp_path / name, sample_rate=10.0)
    assert recording.counts["time"] == "'time' in datetime", name
    assert recording.counts["segments"] == 1 and recording.counts["duplicate_times"] == 0, name
    assert abs(len(recording.segments[0][1]) - len(times)) <= 1, name


def test_a_spreadsheet_export_with_a_bom_spaces_and_blank_lines(tmp_path):
  rows = [f" {t / 20:.2f}, {np.sin(t / 3):.4f} , {np.cos(t / 5):.4f}" for t in range(400)]
  rows[7] = " 0.35,  NaN , 0.5"  # a spelled-out missing value, padded
  rows[9] = " 0.45, , 0.5"  # an empty one
  rows.insert(200, "")  # a blank line
  (tmp_path / "x.csv").write_bytes(("\ufefftime, a, b\n" + "\n".join(rows) + "\n").encode())
  recording = loaded(tmp_path / "x.csv", sample_rate=20.0)
  assert recording.channels == ["a", "b"] and recording.counts["time"] == "'time' in s"
  assert recording.counts["rows"] == 400 and recording.counts["missing_rows"] == 2


def test_gaps_are_bridged_or_split_and_no_window_crosses_a_split(tmp_path):
  times = np.arange(0, 60, 0.02)
  keep = ~(((times > 10) & (times < 10.5)) | ((times > 30) & (times < 35)))  # 0.5 s, 5 s
  values = np.sin(2 * np.pi * 1.2 * times)
  values[100] = np.nan  # a missing value: left out, interpolated over
  frame = pd.DataFrame({"t": times[keep], "v": values[keep], "w": np.cos(times[keep])})
  frame.to_csv(tmp_path / "g.csv", index=False)
  recording = loaded(tmp_path / "g.csv", sample_rate=25.0, max_gap_s=1.0)
  assert recording.counts["segments"] == 2 and recording.counts["missing_rows"] == 1
  assert recording.counts["gaps_bridged"] == 2  # the 0.5-s gap and the NaN row
  (s0, v0, _), (s1, v1, _) = recording.segments
  assert s0 == 0.0 and abs(s1 - 35.0) < 0.03 and abs(len(v0) / 25.0 - 30.0) < 0.1
  examples = ts.make_windows(ts.make_config(sample_rate=25.0, num_samples=250,
                                            train_stride=50), [], "g", str(tmp_path / "g.csv"),
                             labels=None, stride=50)
  for e in examples:  # every window lies inside one segment
    start, end = float(e["start_s"]), float(e["start_s"]) + 10.0
    assert end <= 30.0 + 0.05 or start >= 35.0 - 0.05


def test_channels_are_z_scored_per_recording(written):
  recording = loaded(written / "site_a" / "p01" / "walk1.csv", sample_rate=25.0)
  everything = np.concatenate([v for _, v, _ in recording.segments])
  np.testing.assert_allclose(everything.mean(axis=0), 0.0, atol=1e-9)
  np.testing.assert_allclose(everything.std(axis=0), 1.0, atol=1e-9)


def test_arrays_edf_and_wfdb_give_their_channels_and_rates(tmp_path):
  import pyedflib  # pylint: disable=g-import-not-at-top
  import wfdb  # pylint: disable=g-import-not-at-top
  t64 = np.arange(64 * 20) / 64.0
  np.save(tmp_path / "a.npy", np.stack([np.sin(2 * np.pi * t64), np.cos(t64)], axis=1))
  np.savez(tmp_path / "b.npz", left=np.sin(2 * np.pi * t64), right=np.cos(2 * np.pi * t64))
  assert loaded(tmp_path / "a.npy", source_rate=64.0).channels == ["0", "1"]
  assert loaded(tmp_path / "b.npz", source_rate=64.0).channels == ["left", "right"]

  writer = pyedflib.EdfWriter(str(tmp_path / "c.edf"), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
  t32 = np.arange(32 * 20) / 32.0
  headers = [{"label": "PPG", "dimension": "au", "sample_frequency": 64, "physical_min": -2,
              "physical_max": 2, "digital_min": -32768, "digital_max": 32767},
             {"label": "ACC", "dimension": "g", "sample_frequency": 32, "physical_min": -2,
              "physical_max": 2, "digital_min": -32768, "digital_max": 32767}]
  writer.setSignalHeaders(headers)
  writer.writeSamples([np.sin(2 * np.pi * 1.25 * t64), np.cos(2 * np.pi * 0.5 * t32)])
  writer.close()
  table = ts.read_table(str(tmp_path / "c.edf"))
  assert list(table.columns) == ["PPG", "ACC"] and table.rate == 64.0
  np.testing.assert_allclose(table.columns["ACC"][:128], np.cos(2 * np.pi * 0.5 * t64[:128]),
                             atol=0.02)  # the 32-Hz channel on the 64-Hz grid

  wfdb.wrsamp("d", fs=125, units=["mV", "mV"], sig_name=["II", "V5"],
              p_signal=np.stack([np.sin(np.arange(2500) / 20), np.cos(np.arange(2500) / 20)], 1),
              fmt=["16", "16"], write_dir=str(tmp_path))
  recording = loaded(tmp_path / "d.hea", sample_rate=25.0)
  assert recording.channels == ["II", "V5"] and recording.counts["time"] == "125 Hz"
  assert abs(len(recording.segments[0][1]) - 500) <= 1  # 20 s at 25 Hz


# --- Labels ------------------------------------------------------------------------------------
def test_segment_labels_reach_the_windows_inside_them(written, prepared):
  _, splits, _ = prepared
  truth = syn.true_cadences(SPEC)
  unlabelled_id = syn.recording_plan(SPEC)[-1]["id"]
  half = SPEC.seconds / 2
  seen = 0
  for e in splits["train"] + splits["test"]:
    rid, start = text(e["video_id"]), float(e["start_s"])
    first, second = truth[rid]
    if rid == unlabelled_id or start < half < start + 4.0:
      assert np.isnan(e["cadence_hz"]), (rid, start)  # no row, or straddles the change
    elif start + 4.0 <= half:
      assert abs(e["cadence_hz"] - first) < 1e-3
      seen += 1
    elif start >= half:
      assert abs(e["cadence_hz"] - second) < 1e-3
      seen += 1
  assert seen > 10


def test_groups_and_split_csv_keep_their_sides(prepared):
  _, splits, _ = prepared
  side = {}
  for split, examples in splits.items():
    for e in examples:
      side.setdefault(text(e["group"]), set()).add(split)
  assert all(len(s) == 1 for s in side.values())  # a subject on one side
  plan = syn.recording_plan(SPEC)
  assert {text(e["video_id"]) for e in splits["test"]} >= {plan[2]["id"]}  # split.csv


def test_a_reference_trace_and_a_counter_label_every_window(tmp_path):
  times = np.arange(0, 40, 0.01)
  frame = pd.DataFrame({"time": times, "acc": np.sin(2 * np.pi * 1.1 * times)
                        + 0.1 * np.cos(7 * times),
                        "ppg": np.sin(2 * np.pi * 1.25 * times),  # 75 bpm
                        "steps": np.floor(1.8 * times)})  # a step counter at 1.8 Hz
  os.makedirs(tmp_path / "a")
  frame.to_csv(tmp_path / "a" / "r1.csv", index=False)
  frame.assign(ppg=np.sin(2 * np.pi * 1.5 * times)).to_csv(tmp_path / "a" / "r2.csv",
                                                            index=False)
  _, splits = prepare(tmp_path / "a", tmp_path / "d1", label_column="ppg", columns=("acc",),
                      num_samples=250, train_stride=125)
  rates = {text(e["video_id"]): e["heart_rate"] for s in splits.values() for e in s}
  assert abs(rates["r1"] - 75.0) < 4 and abs(rates["r2"] - 90.0) < 4  # protocol's bin width
  _, splits = prepare(tmp_path / "a", tmp_path / "d2", label_column="steps", label_kind="counter",
                      columns=("acc",), num_samples=250, train_stride=125)
  for e in splits["train"] + splits["test"]:
    assert abs(e["rate"] - 1.8) < 0.12  # a counter's slope over 10 s: ±1 step


# --- Bad input ---------------------------------------------------------------------------------
def bad(tmp_path, name, text_, **builder):
  """Prepares a folder of one good recording and `name` holding `text_`; the DataError."""
  folder = tmp_path / "f"
  os.makedirs(folder, exist_ok=True)
  sine_csv(folder / "good.csv", np.arange(0, 30, 0.02))
  with open(folder / name, "w") as f:
    f.write(text_)
  with pytest.raises(errors.DataError) as caught:
    prepare(folder, tmp_path / "d", **builder)
  return str(caught.value)


def series_text(rows, header="time,a,b"):
  return header + "\n" + "\n".join(rows) + "\n"


def test_no_recordings_says_where_it_looked(tmp_path):
  os.makedirs(tmp_path / "empty")
  (tmp_path / "empty" / "notes.txt").write_text("x")
  with pytest.raises(errors.DataNotFoundError, match=r"No recordings in .*empty.*\.csv"):
    prepare(tmp_path / "empty", tmp_path / "d")


def test_a_column_that_is_not_there_lists_the_columns(tmp_path):
  message = bad(tmp_path, "x.csv", series_text([f"{i / 50},1,2" for i in range(2000)]),
                columns=("a", "c"))
  assert "no column 'c' (data.builder.columns); its columns: time, a, b" in message


def test_a_non_numeric_value_is_named_with_its_line(tmp_path):
  rows = [f"{i / 50},{np.sin(i / 8):.3f},1" for i in range(2000)]
  rows[41] = "0.82,oops,1"
  message = bad(tmp_path, "x.csv", series_text(rows))
  assert "x.csv, line 43: a='oops' is not a number" in message


def test_a_time_going_backwards_is_named(tmp_path):
  rows = [f"{i / 50},{np.sin(i / 8):.3f},{np.cos(i / 8):.3f}" for i in range(2000)]
  rows[100], rows[101] = rows[101], rows[100]
  message = bad(tmp_path, "x.csv", series_text(rows))
  assert "x.csv, line 103: the time goes backwards" in message


def test_a_recording_shorter_than_a_window_is_named_or_skipped(tmp_path, capsys):
  short = series_text([f"{i / 50},{np.sin(i / 8):.3f},{np.cos(i / 8):.3f}" for i in range(40)])
  assert "x.csv: shorter than one window (100 samples at 25 Hz = 4 s)" in bad(
      tmp_path, "x.csv", short)
  folder = tmp_path / "f"
  for i in range(3):
    sine_csv(folder / f"good{i}.csv", np.arange(0, 30, 0.02))
  prepare(folder, tmp_path / "d2", on_bad_file="skip")
  assert "skipped" in capsys.readouterr().out


def test_a_label_column_without_numbers_and_a_constant_channel(tmp_path):
  rows = [f"{i / 50},{np.sin(i / 8):.3f},{np.cos(i / 8):.3f}," for i in range(2000)]
  (tmp_path / "x.csv").write_text(series_text(rows, "time,a,b,ppg"))
  with pytest.raises(errors.DataError, match="x.csv: the label column 'ppg' holds no number"):
    loaded(tmp_path / "x.csv", label_column="ppg")
  rows = [f"{i / 50},{np.sin(i / 8):.3f},3.5" for i in range(2000)]
  assert "the channel 'b' is constant (every value 3.5)" in bad(tmp_path / "two", "x.csv",
                                                                series_text(rows))


def test_no_time_column_and_no_rate_is_named(tmp_path):
  rows = [f"{np.sin(i / 8):.3f},{np.cos(i / 8):.3f}" for i in range(2000)]
  message = bad(tmp_path, "x.csv", series_text(rows, header="a,b"))
  assert "x.csv: no time column (its columns: a, b)" in message and "source_rate" in message


def test_the_command_line_names_a_missing_folder_and_exits_2(tmp_path):
  result = run_main_here("--config=configs/timeseries.py",
                         f"--config.data.manual_dir={tmp_path}/nothing",
                         f"--config.data.data_dir={tmp_path}/d", f"--workdir={tmp_path}/w")
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr and "does not exist" in result.stderr


# --- Augmentations, encoder, baselines ---------------------------------------------------------
def test_rotation_keeps_each_samples_norm_and_scaling_and_drift_keep_the_rhythm():
  t = np.arange(250) / 25.0
  series = np.stack([np.sin(2 * np.pi * 1.6 * t), 0.5 * np.cos(2 * np.pi * 1.6 * t),
                     0.2 * np.sin(2 * np.pi * 3.2 * t)], axis=1)[:, None, None, :]
  rotated = augment.series_invariant(jax.random.key(0), jnp.asarray(series), reverse_prob=0.0,
                                     scale=(1.0, 1.0), noise_std=0.0, drift_std=0.0,
                                     rotate3d=True)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(rotated)[:, 0, 0], axis=1),
                             np.linalg.norm(series[:, 0, 0], axis=1), rtol=1e-5)
  assert not np.allclose(np.asarray(rotated), series, atol=1e-3)  # it did rotate
  for seed in range(10):  # the default drift, a wide scale: the in-band peak stays at 1.6 Hz
    out = augment.series_invariant(jax.random.key(seed), jnp.asarray(series), scale=(0.5, 1.5),
                                   noise_std=0.0, drift_std=0.2)
    peak = evaluate.spectral_peak_frequency(np.asarray(out)[None, :, 0, 0], 25.0, (0.5, 5.0))
    assert abs(peak[0] - 1.6) < 0.05


def test_channel_dropout_never_drops_every_channel():
  series = jnp.ones((50, 1, 1, 3))
  for seed in range(20):
    out = augment.series_invariant(jax.random.key(seed), series, channel_dropout=0.9,
                                   noise_std=0.0, drift_std=0.0, scale=(1.0, 1.0))
    assert np.abs(np.asarray(out)).sum() > 0


def test_the_1d_encoder_keeps_one_value_per_sample():
  module = models.get("conv1d")(widths=(4, 8), blocks=(1, 1), kernel=5)
  series = jnp.ones((2, 60, 3))
  variables = module.init(jax.random.key(0), series)
  assert module.apply(variables, series).shape == (2, 60)
  assert module.apply(variables, series[:, :, None, None, :]).shape == (2, 60)
  bf16 = models.get("conv1d")(widths=(4,), blocks=(1,), dtype="bfloat16")
  assert bf16.apply(bf16.init(jax.random.key(0), series), series).dtype == jnp.float32


def test_the_input_baselines_read_the_inputs_rhythm():
  t = np.arange(250) / 25.0
  freqs = np.array([0.8, 1.3, 2.1])
  inputs = np.stack([np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)
                     for f in freqs])  # [3, T, 2]
  np.testing.assert_allclose(evaluate.spectral_peak_frequency(inputs, 25.0, (0.5, 4.0)), freqs,
                             atol=0.03)
  np.testing.assert_allclose(evaluate.autocorrelation_frequency(inputs, 25.0, (0.5, 4.0)),
                             freqs, atol=0.05)
  # A rhythm at half the target (a stride, two steps): harmonic 0.5 reads the target.
  np.testing.assert_allclose(
      evaluate.spectral_peak_frequency(inputs, 25.0, (1.0, 8.0), harmonic=0.5), 2 * freqs,
      atol=0.06)


# --- predict --series --------------------------------------------------------------------------
def predict(*args):
  """`python -m simper_jax.predict ARGS`, run in this process (test_predict.py starts the
  command itself)."""
  return run_command_here(predict_command, *args)


def test_predict_reads_a_recordings_rate_per_window_and_over_a_folder(tmp_path):
  times = np.arange(0, 40, 0.02)
  os.makedirs(tmp_path / "in" / "sub")
  sine_csv(tmp_path / "in" / "sub" / "a.csv", times, freq=1.7)
  sine_csv(tmp_path / "in" / "b.csv", times[:200], freq=1.0)  # 4 s: shorter than a window
  result = predict(f"--series={tmp_path}/in/sub/a.csv", "--method=spectral_peak",
                   f"--output={tmp_path}/out")
  assert result.returncode == 0, result.stderr
  with open(tmp_path / "out" / "a.rate.csv") as f:
    windows = list(csv.DictReader(f))
  assert len(windows) == 31 and all(abs(float(w["rate_hz"]) - 1.7) < 0.05 for w in windows)
  assert os.path.exists(tmp_path / "out" / "a.rate.png")
  result = predict(f"--series={tmp_path}/in", "--method=autocorrelation",
                   f"--output={tmp_path}/out2")
  assert result.returncode == 2  # b.csv failed; a.csv was still read
  with open(tmp_path / "out2" / "rates.csv") as f:
    rows = {r["recording"]: r for r in csv.DictReader(f)}
  assert abs(float(rows["sub/a.csv"]["rate_hz"]) - 1.7) < 0.05
  assert "no gap-free stretch as long as one window" in rows["b.csv"]["error"]


@pytest.mark.parametrize("args, message", [
    (["--method=pos"], "--method=pos reads a face video's colour"),
    (["--method=spectral_peak", "--band=3,1"], "--band=3,1: expected low,high"),
    (["--workdir=/nowhere"], "--workdir=/nowhere: no config.json there"),
])
def test_predict_series_mistakes_are_one_line(tmp_path, args, message):
  sine_csv(tmp_path / "a.csv", np.arange(0, 20, 0.02))
  result = predict(f"--series={tmp_path}/a.csv", *args)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert message in result.stderr, result.stderr


@pytest.mark.slow  # a whole run: train, evaluate, write results; then predict with it
def test_a_tiny_run_reports_the_input_baselines_and_predict_reads_its_encoder(tmp_path):
  run = run_main_here("--config=configs/timeseries.py:tiny",
                      f"--config.data.data_dir={tmp_path}/d", f"--workdir={tmp_path}/w")
  assert run.returncode == 0, run.stderr[-2000:]
  with open(tmp_path / "w" / "results.json") as f:
    test = json.load(f)["test"]
  assert {"fft", "1nn", "linear_probe", "train_mean", "spectral_peak",
          "autocorrelation"} <= set(test)
  assert test["spectral_peak"]["harmonic"] in (0.5, 1, 2, 3)
  folder = next((tmp_path / "d" / "timeseries_synthetic").iterdir())
  result = predict(f"--series={folder}", f"--workdir={tmp_path}/w", "--source_rate=50",
                   "--window_seconds=4", f"--output={tmp_path}/out")
  assert result.returncode == 0, result.stderr
  with open(tmp_path / "out" / "rates.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 8 and all(float(r["rate_hz"]) > 0 for r in rows)


def test_the_synthetic_ppg_records_are_read_from_edf_and_wfdb(tmp_path):
  spec = syn.SyntheticSpec(num_recordings=4, seconds=30.0, kind="ppg")
  syn.write(str(tmp_path / "ppg"), spec)
  names = sorted(os.path.relpath(os.path.join(r, f), tmp_path / "ppg")
                 for r, _, fs in os.walk(tmp_path / "ppg") for f in fs)
  assert "site_a/p01/night1.edf" in names and "site_a/p01/night2.hea" in names
  assert "site_a/p01/night2.dat" in names
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    _, splits = prepare(tmp_path / "ppg", tmp_path / "d", group_by="subject")
  assert "2 channels (PPG, ACC); time 64 Hz" in printed.getvalue()
  truth = syn.true_cadences(spec)
  for e in splits["train"] + splits["test"]:
    first, second = truth[text(e["video_id"])]
    if float(e["start_s"]) + 4.0 <= 15.0 and not np.isnan(e["heart_rate_hz"]):
      assert abs(e["heart_rate_hz"] - first) < 1e-3


def test_a_named_time_column_and_a_missing_one(tmp_path):
  times = 5.0 + np.arange(0, 20, 0.04)
  frame = pd.DataFrame({"elapsed": times, "acc": np.sin(2 * np.pi * times), "t": 0.0})
  frame.to_csv(tmp_path / "r.csv", index=False)  # "t" looks like a time column but is not
  recording = loaded(tmp_path / "r.csv", time_column="elapsed", columns=("acc",))
  assert recording.counts["time"] == "'elapsed' in s" and recording.channels == ["acc"]
  assert abs(len(recording.segments[0][1]) / 25.0 - 20.0) < 0.1
  with pytest.raises(errors.DataError, match=r"r.csv: no column 'stamp' \(data.builder"
                                             r".time_column\); its columns: elapsed, acc, t"):
    loaded(tmp_path / "r.csv", time_column="stamp")


@pytest.mark.slow  # two short trainings on 8 host devices
def test_the_1d_encoder_trains_under_fsdp_with_the_same_losses(tmp_path):
  from simper_jax import train  # pylint: disable=g-import-not-at-top
  def config(mesh):
    c = ts_config.get_config("tiny")
    c.data.data_dir = str(tmp_path / "d")
    c.model.widths = (8, 16)
    c.model.blocks = (1, 1)
    c.mesh = mesh
    c.eval.figures = False
    return c
  _, data_only, _ = train.train(config((("data", -1),)), str(tmp_path / "data"))
  state, fsdp, _ = train.train(config((("data", 4), ("fsdp", 2))), str(tmp_path / "fsdp"))
  np.testing.assert_allclose([l for _, l in fsdp], [l for _, l in data_only], rtol=1e-5)
  leaves = jax.tree.leaves(state.params["encoder"])
  assert any(not leaf.sharding.is_fully_replicated for leaf in leaves)  # the state is split
