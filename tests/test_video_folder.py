"""Your own videos (simper_jax/data/video_folder.py): a folder searched recursively, frames
resampled by timestamps, optional labels (per video, per segment, from reference signals),
splits by video and group, stale folders prepared again, and every bad input named in one
line. The folders are written the way such folders come (synthetic_video_folder: nested
sub-folders, four containers at four frame rates, ids with and without extensions, a
header-less signal, files that are not videos)."""

import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from configs import videos
from simper_jax import errors
from simper_jax import run
from simper_jax import train
from simper_jax.data import pipeline
from simper_jax.data import synthetic_video_folder as syn
from simper_jax.data import video as video_io
from simper_jax.data import video_folder as vf
from tiny import run_main_here

SPEC = syn.SyntheticSpec(num_videos=8, seconds=8.0, height=32, width=40)


def folder_config(folder, data_dir, **builder):
  """configs/videos.py:tiny reading the user's folder `folder` (not its synthetic one)."""
  config = videos.get_config("tiny")
  config.data.synthetic = None
  config.data.manual_dir = str(folder)
  config.data.data_dir = str(data_dir)
  config.data.builder.update(builder)
  return config


def prepare(folder, data_dir, **builder):
  """The prepared builder of `folder`, and its two splits as lists of examples."""
  b = pipeline.get_builder(folder_config(folder, data_dir, **builder).data, log=print)
  sources = b.as_data_source()
  return b, {split: [sources[split][i] for i in range(len(sources[split]))]
             for split in ("train", "test")}


def text(value):
  return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  """(folder, truth) of the synthetic folder, written once; tests that change it copy it."""
  folder = tmp_path_factory.mktemp("videos")
  return folder, syn.write(str(folder), SPEC)


@pytest.fixture(scope="module")
def prepared(written, tmp_path_factory):
  folder, _ = written
  return prepare(folder, tmp_path_factory.mktemp("tfds"), group_by="subject")


def copy_folder(written, tmp_path):
  return shutil.copytree(written[0], tmp_path / "videos")


# ---------------------------------------------------------------------------------------------
# The folder as it comes.
# ---------------------------------------------------------------------------------------------
def test_every_video_under_the_folder_by_its_relative_path(written, prepared, capfd):
  _, truth = written
  _, splits = prepared
  ids = {text(ex["video_id"]) for split in splits.values() for ex in split}
  assert ids == set(truth)  # nested sub-folders, four containers, ids without extensions
  assert all("/" in vid for vid in ids)
  listing = vf.scan(str(written[0]))
  assert sorted(listing.ignored) == ["notes.txt", "site_a/README.md"]
  assert vf.describe_ignored(listing.ignored) == ("2 files that are not videos, ignored (.md, "
                                                  ".txt)")


def test_frames_are_resampled_to_the_clip_rate_whatever_the_source_rate(written, prepared):
  """8 s at 24, 25, 30 or 60 fps → 64 frames at 8 fps → training clips of 24 every 12."""
  _, truth = written
  _, splits = prepared
  per_video = {}
  for split, examples in splits.items():
    for ex in examples:
      per_video.setdefault(text(ex["video_id"]), []).append((split, int(ex["clip_index"]),
                                                             float(ex["start_s"])))
  assert {truth[v]["fps"] for v in per_video} == {24.0, 25.0, 30.0, 60.0}
  for vid, clips in per_video.items():
    split = clips[0][0]
    starts = sorted(s for _, _, s in clips)
    # train: starts every 12 frames (1.5 s); test: every clip's length, 24 frames (3 s)
    expected = [0.0, 1.5, 3.0, 4.5] if split == "train" else [0.0, 3.0]
    np.testing.assert_allclose(starts, expected, atol=1e-6, err_msg=vid)


def write_clock(path, fourcc, fps, seconds=4.0, size=(24, 16)):
  """A video whose frame shown at time t has brightness 20 + 50·t (t in s)."""
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
  for k in range(int(seconds * fps)):
    writer.write(np.full((size[1], size[0], 3), 20 + 50 * k / fps, np.uint8))
  writer.release()


@pytest.mark.parametrize("name, fourcc, fps", [("a.mkv", "FFV1", 60.0), ("b.avi", "MJPG", 25.0),
                                               ("c.mp4", "mp4v", 24.0)])
def test_resampling_follows_the_timestamps(tmp_path, name, fourcc, fps):
  write_clock(tmp_path / name, fourcc, fps)
  config = vf.make_config(fps=10.0, image_size=8, num_frames=8, crop="none")
  frames, duration = vf.read_frames(str(tmp_path / name), config)
  assert duration == pytest.approx(4.0, abs=1e-3)
  times = np.arange(len(frames)) / 10.0
  assert len(frames) == int(np.floor((4.0 - 1 / fps) * 10 + 1e-6)) + 1
  # Lossless FFV1 to a grey level; the lossy codecs to a few.
  np.testing.assert_allclose(frames[:, 4, 4, 0], 20 + 50 * times, atol=1.0 if fourcc == "FFV1"
                             else 4.0)


def write_variable_rate_clock(path, codec: str) -> np.ndarray:
  """A grey level rising 50 per second, written with PyAV at the times a phone camera under
  load records: ~30 fps with ±20 % jitter and two stretches of dropped frames (200 and
  150 ms). Returns the frame times."""
  av = pytest.importorskip("av")
  import fractions  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  times = np.cumsum(rng.uniform(0.8, 1.2, 120) / 30)
  times = times - times[0]
  times[40:] += 0.2
  times[80:] += 0.15
  container = av.open(str(path), mode="w")
  stream = container.add_stream(codec, rate=30)
  stream.width = stream.height = 32
  stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
  stream.time_base = fractions.Fraction(1, 1000)
  for t in times:
    frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 + 50 * t, np.uint8),
                                       format="rgb24")
    frame.pts, frame.time_base = int(round(t * 1000)), fractions.Fraction(1, 1000)
    for packet in stream.encode(frame):
      container.mux(packet)
  for packet in stream.encode():
    container.mux(packet)
  container.close()
  return times


@pytest.mark.parametrize("name, codec", [("vfr.mkv", "ffv1"), ("vfr.webm", "libvpx")])
def test_a_variable_rate_video_with_dropped_frames_keeps_its_timing(tmp_path, name, codec):
  """Frames are placed by their timestamps, not their count: counting frames at 30 fps would
  put every frame after the first gap 0.2 s early (10 grey levels). OpenCV reports a
  timestamp rounded to the declared rate's grid (±1/60 s: < 1 grey level)."""
  times = write_variable_rate_clock(tmp_path / name, codec)
  config = vf.make_config(fps=10.0, image_size=8, num_frames=8, crop="none")
  frames, duration = vf.read_frames(str(tmp_path / name), config)
  assert duration == pytest.approx(times[-1] + 1 / 30, abs=1 / 30)
  assert abs(len(frames) - (int(np.floor(times[-1] * 10)) + 1)) <= 1  # the last stamp, ±1/60 s
  new_times = np.minimum(np.arange(len(frames)) / 10, times[-1])  # held after the last frame
  np.testing.assert_allclose(frames[:, 4, 4, 0], 20 + 50 * new_times, atol=2.5)


def test_a_raw_stream_needs_its_frame_rate(tmp_path):
  write_clock(tmp_path / "raw.mjpeg", "MJPG", 30.0)  # OpenCV reports 25 fps for it: wrong
  config = vf.make_config(fps=10.0, image_size=8, num_frames=8, crop="none")
  with pytest.raises(errors.DataError, match=r"raw.mjpeg: a raw stream, which declares no frame "
                                             r"rate; give it with data.builder.source_fps"):
    vf.read_frames(str(tmp_path / "raw.mjpeg"), config)
  frames, duration = vf.read_frames(str(tmp_path / "raw.mjpeg"), vf.make_config(
      fps=10.0, image_size=8, num_frames=8, crop="none", source_fps=30.0))
  assert duration == pytest.approx(4.0, abs=0.05)
  np.testing.assert_allclose(frames[:, 4, 4, 0], 20 + 50 * np.arange(len(frames)) / 10,
                             atol=4.0)


def test_the_centre_crop_is_the_largest_centred_square():
  frame = np.zeros((30, 50, 3), np.uint8)
  assert video_io.centre_box(frame) == (0, 30, 10, 40)
  assert video_io.centre_box(frame.transpose(1, 0, 2)) == (10, 40, 0, 30)


# ---------------------------------------------------------------------------------------------
# Labels.
# ---------------------------------------------------------------------------------------------
def test_labels_per_video_and_per_segment_and_none(written, prepared):
  _, truth = written
  builder, splits = prepared
  assert "rate_hz" in builder.info.features and builder.default_label_key() == "rate_hz"
  plan = syn.video_plan(SPEC)
  unlabelled = plan[-2]["id"]  # the video labels.csv has no row for
  by_video = {}
  for examples in splits.values():
    for ex in examples:
      by_video.setdefault(text(ex["video_id"]), []).append(ex)
  for vid, examples in by_video.items():
    rates = truth[vid]["rates"]
    for ex in examples:
      first, last = float(ex["start_s"]), float(ex["start_s"]) + 23 / 8
      label = float(ex["rate_hz"])
      if vid == unlabelled:
        assert np.isnan(label), vid
      elif len(rates) == 1:  # a whole-video row (some written with the extension)
        assert label == pytest.approx(rates[0], abs=1e-4), vid
      elif last < SPEC.seconds / 2:
        assert label == pytest.approx(rates[0], abs=1e-4), (vid, first)
      elif first >= SPEC.seconds / 2:
        assert label == pytest.approx(rates[1], abs=1e-4), (vid, first)
      else:  # straddles the two segments: no single rate
        assert np.isnan(label), (vid, first)
  assert any(len(truth[v]["rates"]) == 2 for v in by_video)  # the segments were exercised


def test_a_row_for_a_video_that_is_not_there_is_listed(prepared, capfd):
  builder, _ = prepared
  with open(os.path.join(builder.data_dir, vf.MISSING_VIDEOS_FILE)) as f:
    rows = list(csv.DictReader(f))
  assert rows == [{"file": "labels.csv", "line": str(len(open(
      os.path.join(builder.builder_config.source, "labels.csv")).read().splitlines())),
                   "video": "site_b/p99/gone7"}]


def test_signals_give_each_clip_its_reference_and_heart_rate(written, prepared):
  _, truth = written
  _, splits = prepared
  checked = 0
  for ex in splits["train"] + splits["test"]:
    rates = truth[text(ex["video_id"])]["rates"]
    if len(rates) == 1 and np.isfinite(ex["heart_rate"]):
      # A 3-s clip: the protocol's periodogram has bins of 60·8/32 = 15 bpm; one bin apart.
      assert float(ex["heart_rate"]) == pytest.approx(60 * rates[0], abs=15.0)
      assert ex["ppg"].shape == (24,) and np.ptp(ex["ppg"]) > 1.0  # the swing, ±1
      checked += 1
  assert checked >= 10


def test_a_clip_the_signal_does_not_cover_has_no_heart_rate(written, tmp_path):
  """A reference that stops after 4 s of an 8-s video: the clips past it get NaN, not a rate
  read off the signal held flat."""
  folder = copy_folder(written, tmp_path)
  vid = syn.video_plan(SPEC)[0]["id"]
  path = folder / "signals" / f"{vid}.csv"
  lines = path.read_text().splitlines()
  path.write_text("\n".join([lines[0]] + [l for l in lines[1:] if float(l.split(",")[0]) < 4.0]))
  _, splits = prepare(folder, tmp_path / "tfds")
  clips = sorted((float(ex["start_s"]), float(ex["heart_rate"])) for s in splits.values()
                 for ex in s if text(ex["video_id"]) == vid)
  assert [np.isfinite(rate) for _, rate in clips] == [start + 23 / 8 <= 4.0 for start, _ in clips]
  assert any(np.isfinite(rate) for _, rate in clips) and not all(
      np.isfinite(rate) for _, rate in clips)


def test_a_header_less_signal_and_irregular_samples_are_read(tmp_path):
  path = tmp_path / "s.csv"
  path.write_text("0.00,1.0\n0.03,2.0\n0.03,2.5\n0.01,0.5\n0.05,3\n")
  times, values = vf.read_signal(str(path))
  np.testing.assert_allclose(times, [0.0, 0.01, 0.03, 0.05])  # sorted, the repeat dropped
  np.testing.assert_allclose(values, [1.0, 0.5, 2.0, 3.0])
  path.write_text("time_s,value\n0,1\n0.1,x\n")
  with pytest.raises(errors.DataError, match=r"s.csv, line 3: '0.1,x'; expected two numbers"):
    vf.read_signal(str(path))


def test_several_numeric_columns_need_a_label_key(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  with open(folder / "labels.csv") as f:
    rows = list(csv.reader(f))
  rows = [rows[0] + ["breaths"]] + [row + ["3"] for row in rows[1:]]
  with open(folder / "labels.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
  config = folder_config(folder, tmp_path / "tfds")
  with pytest.raises(errors.DataError, match=r"labels.csv has 2 numeric columns \(rate_hz, "
                                             r"breaths\); choose the label with "
                                             r"--config.data.label_key=NAME"):
    pipeline.with_label_key(config)
  config.data.label_key = "count"
  assert pipeline.with_label_key(config) is config


# ---------------------------------------------------------------------------------------------
# Splits.
# ---------------------------------------------------------------------------------------------
def test_splits_are_by_video_and_group_and_follow_split_csv(written, prepared):
  _, truth = written
  _, splits = prepared
  split_of = {}
  for split, examples in splits.items():
    for ex in examples:
      assert split_of.setdefault(text(ex["video_id"]), split) == split  # never by clip
  subjects = {}
  for vid, split in split_of.items():
    subjects.setdefault(truth[vid]["subject"], set()).add(split)
  assert all(len(s) == 1 for s in subjects.values()), subjects  # a subject on one side
  plan = syn.video_plan(SPEC)
  assert split_of[plan[0]["id"]] == split_of[plan[1]["id"]] == "train"  # split.csv: p01
  assert split_of[plan[2]["id"]] == split_of[plan[3]["id"]] == "test"  # split.csv: p02


def test_the_hash_split_is_deterministic_and_stable_when_videos_are_added():
  ids = [f"v{i}" for i in range(40)]
  first = vf.assign_splits(ids, {}, {}, 0.25)
  assert first == vf.assign_splits(list(reversed(ids)), {}, {}, 0.25)
  assert 4 <= sum(s == "test" for s in first.values()) <= 16
  more = vf.assign_splits(ids + [f"w{i}" for i in range(10)], {}, {}, 0.25)
  assert all(more[v] == first[v] for v in ids)  # a video keeps its split
  # Too few videos for the share: still one on each side.
  assert sorted(vf.assign_splits(["a", "b"], {}, {}, 0.01).values()) == ["test", "train"]


# ---------------------------------------------------------------------------------------------
# A changed folder.
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # Beam's worker processes
def test_beam_prepares_the_examples_the_plain_path_does(written, prepared, tmp_path, capfd):
  """data.builder.beam=True: Beam's DirectRunner with 2 worker processes writes the same
  examples (TFDS orders both by the hash of their keys)."""
  pytest.importorskip("apache_beam")
  _, plain = prepared
  capfd.readouterr()
  builder, beam = prepare(written[0], tmp_path / "tfds", group_by="subject", beam=True,
                          num_workers=2)
  assert "[video_folder train] 1/6" not in capfd.readouterr().out  # not the threads' path
  assert builder.download_options()["beam_options"].get_all_options()[
      "direct_num_workers"] == 2
  for split in ("train", "test"):
    assert [text(ex["video_id"]) for ex in beam[split]] == [
        text(ex["video_id"]) for ex in plain[split]]
    for a, b in zip(plain[split], beam[split]):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_changed_folder_is_prepared_again_and_says_why(written, tmp_path, capsys):
  folder = copy_folder(written, tmp_path)
  prepare(folder, tmp_path / "tfds")
  capsys.readouterr()
  prepare(folder, tmp_path / "tfds")
  assert "Preparing" not in capsys.readouterr().out  # unchanged: read as prepared
  shutil.copy(folder / "site_a" / "p01" / "rest0.avi", folder / "site_a" / "p01" / "extra.avi")
  builder, splits = prepare(folder, tmp_path / "tfds")
  out = capsys.readouterr().out
  assert f"{folder} changed since it was prepared (1 added (site_a/p01/extra.avi))" in out
  assert "site_a/p01/extra" in {text(ex["video_id"]) for s in splits.values() for ex in s}
  # labels.csv edited: its size changes.
  with open(folder / "labels.csv", "a") as f:
    f.write("site_a/p01/extra,1.5,,,p01\n")
  _, splits = prepare(folder, tmp_path / "tfds")
  assert "(1 changed (labels.csv))" in capsys.readouterr().out
  extra = [ex for s in splits.values() for ex in s if text(ex["video_id"]) == "site_a/p01/extra"]
  assert extra and all(float(ex["rate_hz"]) == 1.5 for ex in extra)


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file (and line) or field.
# ---------------------------------------------------------------------------------------------
def edit_labels(folder, line: int, row: list):
  """Replaces line `line` (1 = the header) of folder/labels.csv with `row`."""
  with open(folder / "labels.csv") as f:
    rows = list(csv.reader(f))
  rows[line - 1] = row
  with open(folder / "labels.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)


@pytest.mark.parametrize("row, message", [
    (["site_a/p01/rest0", "fast", "", "", "p01"],
     r"labels.csv, line 2: rate_hz='fast'; expected a number"),
    (["site_a/p01/rest0", "1.0", "5", "2", "p01"], r"labels.csv, line 2: end_s=2 is not after "
                                                   r"start_s=5"),
    (["site_a/p01/rest0", "1.0", "5", "", "p01"], r"labels.csv, line 2: start_s='5', end_s=''; "
                                                  r"a segment needs both"),
])
def test_a_bad_labels_row_is_named_with_its_line(written, tmp_path, row, message):
  folder = copy_folder(written, tmp_path)
  edit_labels(folder, 2, row)
  with pytest.raises(errors.DataError, match=message):
    prepare(folder, tmp_path / "tfds")


@pytest.mark.parametrize("header, row, message", [
    (["video", "count", "start_s", "end_s"], ["site_a/p01/rest0", "0", "1", "4"],
     r"labels.csv, line 2: count='0'; a repetition count is a positive number"),
    (["video", "count", "frequency"], ["site_a/p01/rest0", "3", "1.0"],
     r"labels.csv: the column 'frequency' has a name the builder writes itself"),
])
def test_a_bad_count_is_named(written, tmp_path, header, row, message):
  folder = copy_folder(written, tmp_path)
  with open(folder / "labels.csv", "w", newline="") as f:
    csv.writer(f).writerows([header, row])
  with pytest.raises(errors.DataError, match=message):
    prepare(folder, tmp_path / "tfds", group_by="")


def test_counts_give_every_clip_the_counting_protocol_fields(written, tmp_path):
  """A count of a whole video, of a segment longer than a clip, and of one shorter (which gets
  a clip centred on it, the frames inside marked, as Countix's windows)."""
  folder = copy_folder(written, tmp_path)
  plan = syn.video_plan(SPEC)
  whole, segmented = plan[0], plan[1]  # one rate each
  long_count, short_count = int(segmented["rates"][0] * 6), int(segmented["rates"][0] * 1.5)
  with open(folder / "labels.csv", "w", newline="") as f:
    f.write("video,count,start_s,end_s\n"
            f"{whole['id']},{int(whole['rates'][0] * 8)},,\n"
            f"{segmented['id']}{segmented['ext']},{long_count},0,6\n"
            f"{segmented['id']},{short_count},6.5,8\n")
  builder, splits = prepare(folder, tmp_path / "tfds", group_by="")
  assert builder.default_label_key() == "frequency"
  examples = {}
  for ex in splits["train"] + splits["test"]:
    examples.setdefault(text(ex["video_id"]), []).append(ex)
  for ex in examples[whole["id"]]:  # the whole video's count over its 8 s
    assert (float(ex["count"]), float(ex["duration"])) == (int(whole["rates"][0] * 8), 8.0)
    assert float(ex["frequency"]) == pytest.approx(int(whole["rates"][0] * 8) / 8)
    assert (int(ex["segment_start"]), int(ex["segment_frames"])) == (0, 24)
  seen = set()
  for ex in examples[segmented["id"]]:
    first = int(round(float(ex["start_s"]) * 8))  # 8 fps, 24-frame clips, 64 frames
    fields = (float(ex["count"]), float(ex["duration"]), int(ex["segment_start"]),
              int(ex["segment_frames"]))
    if first + 23 < 48:  # inside 0–6 s
      assert fields == (long_count, 6.0, 0, 24), first
      seen.add("long")
    elif first == 40:  # the clip centred on 6.5–8 s, moved to end with the video
      assert fields == (short_count, 1.5, 12, 12), first
      seen.add("short")
    else:
      assert np.isnan(fields[0]) and np.isnan(float(ex["frequency"])), first
  assert seen == {"long", "short"}
  others = [ex for vid, exs in examples.items() if vid not in (whole["id"], segmented["id"])
            for ex in exs]
  assert others and all(np.isnan(float(ex["count"])) for ex in others)


def test_a_segment_beyond_its_video_is_named_with_its_line(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  edit_labels(folder, 2, ["site_a/p01/rest0", "1.0", "2", "30", "p01"])
  with pytest.raises(errors.DataError, match=r"labels.csv, line 2: the segment 2–30 s is beyond "
                                             r".*rest0.avi, which is 8.00 s long"):
    prepare(folder, tmp_path / "tfds")


def test_an_empty_folder_says_where_it_looked_and_what_counts(tmp_path):
  (tmp_path / "empty" / "sub").mkdir(parents=True)
  (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
  with pytest.raises(errors.DataNotFoundError,
                     match=r"No video in .*empty or its sub-folders \(1 other files\); "
                           r"expected files ending in one of .avi, .mp4"):
    vf.scan(str(tmp_path / "empty"))
  with pytest.raises(errors.DataNotFoundError, match=r"nowhere does not exist"):
    vf.scan(str(tmp_path / "nowhere"))


def test_two_files_with_one_id_are_named(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  shutil.copy(folder / "site_a" / "p01" / "rest0.avi", folder / "site_a" / "p01" / "rest0.mp4")
  with pytest.raises(errors.DataError, match=r"rest0.avi and .*rest0.mp4 have the same id "
                                             r"'site_a/p01/rest0'"):
    vf.scan(str(folder))


def test_a_bad_video_is_named_or_skipped(written, tmp_path, capsys):
  folder = copy_folder(written, tmp_path)
  (folder / "site_a" / "broken.mp4").write_bytes(b"\x00" * 2048)
  with pytest.raises(errors.DataError, match=r"broken.mp4: (OpenCV cannot decode it|could not "
                                             r"be read|OpenCV opens it but decodes no frame)"):
    prepare(folder, tmp_path / "tfds")
  capsys.readouterr()
  _, splits = prepare(folder, tmp_path / "tfds", on_bad_video="skip")
  out = capsys.readouterr().out
  assert "skipped" in out and "broken.mp4" in out
  assert "site_a/broken" not in {text(ex["video_id"]) for s in splits.values() for ex in s}


def test_a_video_shorter_than_a_clip_is_named(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  write_clock(folder / "site_a" / "short.mkv", "FFV1", 30.0, seconds=2.0)
  with pytest.raises(errors.DataError, match=r"short.mkv: 2.00 s, 16 frames at 8 fps, fewer "
                                             r"than one clip of 24 frames"):
    prepare(folder, tmp_path / "tfds")


def test_split_csv_with_an_unknown_split_or_splitting_a_group_is_named(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  plan = syn.video_plan(SPEC)
  (folder / "split.csv").write_text(f"video,split\n{plan[0]['id']},validation\n")
  with pytest.raises(errors.DataError, match=r"split.csv, line 2: split='validation'; expected "
                                             r"train or test"):
    prepare(folder, tmp_path / "tfds")
  (folder / "split.csv").write_text(f"video,split\n{plan[0]['id']},train\n{plan[1]['id']},test\n")
  with pytest.raises(errors.DataError, match=r"split.csv: .* both are in the group 'p01'"):
    prepare(folder, tmp_path / "tfds", group_by="subject")


def test_group_by_naming_no_column_is_named(written, tmp_path):
  with pytest.raises(errors.DataError, match=r"data.builder.group_by='session': .*labels.csv "
                                             r"has no such column"):
    prepare(copy_folder(written, tmp_path), tmp_path / "tfds", group_by="session")


def test_the_command_line_names_a_missing_folder_and_exits_2(tmp_path):
  result = run_main_here("--config=configs/videos.py",
                         f"--config.data.manual_dir={tmp_path / 'nowhere'}",
                         f"--config.data.data_dir={tmp_path / 'tfds'}",
                         f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 2, result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert lines[0] == (f"Error: Video folder not found: the directory {tmp_path / 'nowhere'} "
                      f"does not exist. Give your folder with --config.data.manual_dir=DIR; "
                      f"it holds") and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# End to end.
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # whole runs: train, evaluate, write results
def test_tiny_labelled_and_unlabelled_runs(tmp_path, capsys):
  config = videos.get_config("tiny")
  config.data.data_dir = str(tmp_path / "tfds")
  results = run.train_and_evaluate(config, str(tmp_path / "labelled"))
  out = capsys.readouterr().out
  assert {"fft", "1nn", "linear_probe", "train_mean"} <= set(results)
  assert "Unlabelled clips left out of the readouts" in out
  with open(tmp_path / "labelled" / "config.json") as f:
    assert json.load(f)["data"]["label_key"] == "rate_hz"  # resolved, so a resume compares it
  config.data.builder.labels = False
  config.eval.figures = True
  assert run.train_and_evaluate(config, str(tmp_path / "unlabelled")) == {}
  out = capsys.readouterr().out
  assert "No labels (config.data.label_key is None" in out
  assert "the median over its clips" in out and "site_a/p01/rest0" in out  # the video table
  with open(tmp_path / "unlabelled" / "predictions.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows and set(rows[0]) == {"video_id", "clip_index", "start_s", "frequency_hz",
                                   "rate_Hz", "confidence", "peak_prominence", "ood_score",
                                   "ood"}
  assert all(0.5 <= float(r["frequency_hz"]) <= 4.0 for r in rows)  # inside eval.band
  with open(tmp_path / "unlabelled" / "predictions_by_video.csv") as f:
    videos_read = list(csv.DictReader(f))
  assert sorted(r["video_id"] for r in videos_read) == sorted({r["video_id"] for r in rows})
  assert sum(int(r["clips"]) for r in videos_read) == len(rows)
  assert os.path.exists(tmp_path / "unlabelled" / "figures" / "spectra.png")
  with open(tmp_path / "unlabelled" / "results.json") as f:
    unlabelled = json.load(f)
  assert unlabelled["label"] is None and unlabelled["ood"]["threshold"] > 0
  assert "Out-of-distribution score" in out  # no labels, but an OOD reference all the same
  config.method = "supervised"
  with pytest.raises(errors.ConfigError, match="label_key=None: the supervised method trains "
                                                "on labels"):
    train.train(config, str(tmp_path / "supervised_unlabelled"))


def test_unlabelled_predictions_per_clip_and_per_video():
  from simper_jax import outputs  # pylint: disable=g-import-not-at-top
  fps, t = 10.0, np.arange(40) / 10.0
  # Video "a": three clips at 1 Hz and one read at its harmonic (2 Hz): the median says 1 Hz.
  rates = {"a": [1.0, 1.0, 2.0, 1.0], "b": [1.5, 1.5]}
  signals, ids, index = [], [], []
  for vid, clip_rates in rates.items():
    for k, rate in enumerate(clip_rates):
      signals.append(np.sin(2 * np.pi * rate * t))
      ids.append(vid.encode())
      index.append(k)
  test = {"signals": np.stack(signals), "video_id": np.array(ids, object),
          "clip_index": np.array(index), "start_s": np.array(index) * 4.0}
  by_clip, by_video = outputs.unlabelled_predictions(
      test, fps=fps, band=(0.5, 3.0), harmonic=1, protocol="heart_rate", unit="bpm")
  assert list(by_clip.columns) == ["video_id", "clip_index", "start_s", "frequency_hz",
                                   "rate_bpm", "confidence", "peak_prominence"]
  np.testing.assert_allclose(by_clip["frequency_hz"], [1, 1, 2, 1, 1.5, 1.5], atol=0.05)
  assert by_video["video_id"].tolist() == ["a", "b"]
  assert by_video["clips"].tolist() == [4, 2]
  np.testing.assert_allclose(by_video["frequency_hz"], [1.0, 1.5], atol=0.05)
  np.testing.assert_allclose(by_video["rate_bpm"], [60, 90], atol=3)
  np.testing.assert_allclose(by_video["max_hz"], [2.0, 1.5], atol=0.05)
  # Pure tones: each clip is sure of its own rate, but one of a's four disagrees with the rest.
  assert by_clip["confidence"].min() > 0.8
  assert by_video["confidence"][0] == pytest.approx(0.75 * by_clip["confidence"][:4].median(),
                                                    abs=1e-3)


@pytest.mark.slow  # whole runs: train, evaluate, write results
def test_the_supervised_reference_trains_on_the_labelled_clips_only(tmp_path, capsys):
  config = videos.get_config("tiny")
  config.data.data_dir = str(tmp_path / "tfds")
  config.method = "supervised"
  _, history, _ = train.train(config, str(tmp_path / "run"))
  out = capsys.readouterr().out
  assert "6 of 24 training clips have no 'rate_hz': this method trains on the other 18." in out
  assert "Data: 18 training clips" in out
  assert all(np.isfinite(loss) for _, loss in history)


@pytest.mark.slow  # whole runs: train, evaluate, write results
def test_tiny_counting_run_reports_counts(written, tmp_path):
  folder = copy_folder(written, tmp_path)
  with open(folder / "labels.csv", "w", newline="") as f:
    f.write("video,count,start_s,end_s\n")
    for vid, truth in written[1].items():  # whole repetitions, as people count them
      if len(truth["rates"]) == 1:
        f.write(f"{vid},{int(truth['rates'][0] * SPEC.seconds)},,\n")
      else:
        half = SPEC.seconds / 2
        f.write(f"{vid},{int(truth['rates'][0] * half)},0,{half:g}\n"
                f"{vid},{int(truth['rates'][1] * half)},{half:g},{SPEC.seconds:g}\n")
  config = videos.get_config("tiny,counting")
  config.data.synthetic = None
  config.data.manual_dir = str(folder)
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.builder.group_by = ""
  results = run.train_and_evaluate(config, str(tmp_path / "run"))
  assert {"fft", "1nn", "linear_probe", "train_mean"} <= set(results)
  assert all({"count_mae", "obo", "mae"} <= set(results[r]) for r in ("fft", "1nn"))


@pytest.mark.slow  # whole runs: train, evaluate, write results
def test_tiny_heart_rate_run_reads_the_signals_and_predict_reads_its_encoder(tmp_path):
  from simper_jax import predict  # pylint: disable=g-import-not-at-top
  config = videos.get_config("tiny,heart_rate")
  config.data.data_dir = str(tmp_path / "tfds")
  config.eval.classic_methods = ("pos", "green")  # what a face-crop folder would add
  results = run.train_and_evaluate(config, str(tmp_path / "run"))
  assert "snr_db" in results["fft"] and results["fft"]["n"] >= 1  # per video, the rPPG way
  assert results["pos"]["n"] == results["green"]["n"] == results["fft"]["n"]
  reader = predict.EncoderReader(str(tmp_path / "run"))
  assert (reader.clip_frames, reader.image_size, reader.fps) == (24, 8, 8.0)
