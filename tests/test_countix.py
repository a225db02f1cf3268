"""Countix: the builder on tiny files in the real format, its errors, and the counting metrics."""

import csv
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from simper_jax import evaluate
from simper_jax.data import common
from simper_jax.data import countix
from simper_jax.data import synthetic_countix as syn
from tiny import run_main_here

SPEC = syn.SyntheticSpec(num_train=3, num_val=1, num_test=2, missing_per_split=1, height=48,
                         width=48)


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("countix_manual"))
  syn.write(directory, SPEC)
  return directory


def _prepare(manual_dir, data_dir, **fields):
  fields = {"image_size": 32, "num_frames": 48, "fps": 12.0, "num_workers": 2, **fields}
  builder = countix.Countix(config=countix.make_config(**fields), data_dir=str(data_dir),
                            file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir)))
  return builder


def _rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _copy(manual_dir, tmp_path):
  """A writable copy of the fixture's files."""
  import shutil  # pylint: disable=g-import-not-at-top
  target = tmp_path / "manual"
  shutil.copytree(manual_dir, target)
  return target


@pytest.fixture(scope="module")
def prepared(manual_dir, tmp_path_factory):
  return _prepare(manual_dir, tmp_path_factory.mktemp("countix_tfds"))


def test_one_example_per_row_with_both_namings_and_missing_videos_counted(prepared, manual_dir,
                                                                          capfd):
  names = os.listdir(os.path.join(manual_dir, "videos"))
  assert any(n.endswith(".mp4") for n in names)  # plain <id>.mp4
  assert any(countix._TRIMMED_NAME.match(os.path.splitext(n)[0]) for n in names)  # <id>_s_e.avi
  sources = prepared.as_data_source()
  # Two segments per written video; the "gone" video's rows are not examples.
  assert {split: len(s) for split, s in sources.items()} == {"train": 6, "validation": 2,
                                                             "test": 4}
  missing = _rows(os.path.join(prepared.data_dir, countix.MISSING_VIDEOS_FILE))
  assert len(missing) == 6 and all(r["video_id"].endswith("x_cx") for r in missing)
  assert {r["split"] for r in missing} == {"train", "validation", "test"}
  train_csv = _rows(os.path.join(manual_dir, "countix_train.csv"))
  for example in (sources["train"][i] for i in range(6)):
    row = train_csv[int(example["row"]) - 2]  # line 1 is the header
    assert example["video_id"].decode() == row["video_id"]
    assert example["count"] == float(row["count"])
    duration = float(row["repetition_end"]) - float(row["repetition_start"])
    assert example["frequency"] == pytest.approx(float(row["count"]) / duration, rel=1e-5)
    assert 0 < example["segment_frames"] <= 48


def test_segments_are_placed_in_time_under_both_namings(prepared):
  """Inside its segment the disc swings at the row's frequency, outside it rests: measured on
  the stored frames, for videos of each naming (a wrong clip offset fails this)."""
  test = prepared.as_data_source()["train"]
  checked = set()
  for example in (test[i] for i in range(len(test))):
    video = example["video"].astype(np.float64)
    start, length = int(example["segment_start"]), int(example["segment_frames"])
    motion = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))
    inside = motion[start:start + length - 1].mean()
    outside = np.concatenate([motion[:max(0, start - 1)], motion[start + length:]])
    if len(outside) > 4:
      assert inside > 4 * outside.mean()
    # The disc's position along its swing, from the difference to the median frame.
    mask = np.abs(video - np.median(video, axis=0)).sum(-1) > 40
    ys, xs = np.mgrid[:video.shape[1], :video.shape[2]]
    weight = mask.sum(axis=(1, 2)).clip(1)
    track = np.stack([(mask * xs).sum(axis=(1, 2)) / weight,
                      (mask * ys).sum(axis=(1, 2)) / weight], -1)[start:start + length]
    track = track - track.mean(0)
    axis = np.linalg.svd(track, full_matrices=False)[2][0]
    frequency = evaluate.fft_frequency((track @ axis)[None], 12.0, (0.3, 6.0))[0]
    assert frequency == pytest.approx(float(example["frequency"]), abs=0.35)
    checked.add(int(example["video_id"].decode()[4:7]) % 2 == 1)  # odd index: trimmed naming
  assert checked == {True, False}


def test_locate_reads_the_clip_offset_of_each_naming():
  row = countix.Row("f.csv", 7, "abc", "", 30.0, 32.0, 35.0, 4)
  trimmed = countix.VideoFile("abc_000030_000040.mp4", 30.0)
  plain = countix.VideoFile("abc.mp4", None)
  assert (countix.locate(row, [trimmed], "youtube").start, countix.locate(row, [trimmed],
                                                                          "youtube").end) == (2, 5)
  assert countix.locate(row, [plain], "youtube").start == 32.0
  assert countix.locate(row, [plain], "kinetics").start == 2.0
  assert countix.locate(row, [plain, trimmed], "youtube").path == trimmed.path  # preferred
  assert countix.locate(row, [], "youtube") is None
  with pytest.raises(common.DataError, match=r"f.csv, line 7: no kinetics_start"):
    countix.locate(countix.Row("f.csv", 7, "abc", "", None, 2.0, 5.0, 4), [plain], "kinetics")


@pytest.mark.parametrize("column, value, expected", [
    ("repetition_start", "soon", r"line 3: repetition_start='soon'; expected a number"),
    ("count", "0", r"line 3: count=0; expected a whole number of repetitions, at least 1"),
    ("repetition_end", "0.1", r"line 3: repetition_end=0.1 is not after repetition_start"),
])
def test_a_bad_row_names_file_and_line(manual_dir, tmp_path, column, value, expected):
  manual = _copy(manual_dir, tmp_path)
  path = manual / "countix_val.csv"
  rows = _rows(path)
  rows[1][column] = value
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with pytest.raises(common.DataError, match=expected) as error:
    _prepare(manual, tmp_path / "tfds")
  assert "countix_val.csv" in str(error.value)
  assert not (tmp_path / "tfds" / "countix").exists() or not any(
      (tmp_path / "tfds" / "countix").rglob("dataset_info.json"))  # nothing left as prepared


def test_columns_are_read_by_header_name_and_only_used_ones_required(manual_dir, tmp_path):
  manual = _copy(manual_dir, tmp_path)
  path = manual / "countix_test.csv"
  rows = _rows(path)
  # Another column order, extra columns, no class/kinetics columns: still read.
  columns = ["count", "extra", "repetition_end", "video_id", "repetition_start"]
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r, "extra": "?"} for r in rows)
  assert len(countix.read_annotations(str(path))) == len(rows)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, ["video_id", "repetition_start", "repetition_end"],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  with pytest.raises(common.DataError, match=r"countix_test.csv: no column count .*expected a "
                                             r"Countix CSV"):
    countix.read_annotations(str(path))


def test_times_outside_the_video_are_fatal_or_skipped(manual_dir, tmp_path, capfd):
  manual = _copy(manual_dir, tmp_path)
  path = manual / "countix_train.csv"
  rows = _rows(path)
  rows[0]["repetition_end"] = str(float(rows[0]["repetition_start"]) + 30)  # past a 10-s clip
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with pytest.raises(common.DataError, match=r"countix_train.csv, line 2: the segment .* which "
                                             r"is 10.00 s long"):
    _prepare(manual, tmp_path / "tfds")
  builder = _prepare(manual, tmp_path / "tfds_skip", on_bad_video="skip")
  assert len(builder.as_data_source()["train"]) == 5
  assert "skipped 1 of 6 rows" in capfd.readouterr().out


def test_a_video_that_does_not_decode_is_fatal_or_skipped(manual_dir, tmp_path):
  manual = _copy(manual_dir, tmp_path)
  video = sorted(p for p in (manual / "videos").iterdir() if p.name.startswith("syn2"))[0]
  video.write_bytes(b"not a video" * 100)
  with pytest.raises(common.DataError, match=os.path.basename(str(video))):
    _prepare(manual, tmp_path / "tfds")
  builder = _prepare(manual, tmp_path / "tfds_skip", on_bad_video="skip")
  assert len(builder.as_data_source()["test"]) == 2


def test_missing_directory_or_files_are_named(manual_dir, tmp_path):
  with pytest.raises(common.DataNotFoundError, match="does not exist"):
    _prepare(tmp_path / "nowhere", tmp_path / "tfds")
  manual = _copy(manual_dir, tmp_path)
  os.remove(manual / "countix_val.csv")
  with pytest.raises(common.DataNotFoundError, match=r"has no countix_val.csv"):
    _prepare(manual, tmp_path / "tfds")


def test_counting_metrics_on_a_hand_worked_case():
  # Predicted counts round(f × d) = round(4.4, 6, 5.2) = 4, 6, 5 against 4, 5, 8: errors 0, 1, 3.
  metrics = evaluate.counting_metrics(np.array([1.1, 2.0, 0.52]), np.array([4.0, 3.0, 10.0]),
                                      np.array([4, 5, 8]))
  assert metrics["count_mae"] == pytest.approx((0 + 1 / 5 + 3 / 8) / 3)
  assert metrics["obo"] == pytest.approx(2 / 3)


def test_segment_fft_reads_only_the_segment():
  fps, t = 10.0, np.arange(64) / 10.0
  signals = 3 * np.sin(2 * np.pi * 0.5 * t)[None].repeat(2, 0)  # a strong 0.5 Hz outside
  signals[:, 20:52] = np.sin(2 * np.pi * 2.0 * t[20:52])  # a weaker 2 Hz inside the segment
  starts, lengths = np.array([20, 0]), np.array([32, 64])
  found = evaluate.segment_fft_frequency(signals, starts, lengths, fps, (0.2, 4.5))
  assert found[0] == pytest.approx(2.0, abs=0.1)
  short = evaluate.segment_fft_frequency(signals[:1], np.array([20]), np.array([4]), fps,
                                         (0.2, 4.5))  # too short: the whole window
  assert short[0] == pytest.approx(evaluate.fft_frequency(signals[:1], fps, (0.2, 4.5))[0])


@pytest.mark.slow  # two processes of the command line
def test_command_line_bad_row_and_missing_data_exit_2_without_traceback(manual_dir, tmp_path):
  manual = _copy(manual_dir, tmp_path)
  path = manual / "countix_train.csv"
  text = path.read_text().splitlines()
  cells = text[3].split(",")
  cells[-1] = "0"  # line 4: a count of 0
  text[3] = ",".join(cells)
  path.write_text("\n".join(text) + "\n")
  result = run_main_here("--config=configs/countix.py", f"--config.data.manual_dir={manual}",
                    f"--config.data.data_dir={tmp_path / 'tfds'}",
                    f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr + result.stdout
  assert f"Error: {path}, line 4: count=0; expected a whole number" in result.stderr
  assert not (tmp_path / "work").exists() and not (tmp_path / "tfds" / "countix").exists()
