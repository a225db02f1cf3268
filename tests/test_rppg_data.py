"""SCAMPS, UBFC-rPPG and PURE builders on tiny files in each real format; every bad input."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from simper_jax import heart_rate as hr
from simper_jax.data import common
from simper_jax.data import pure
from simper_jax.data import rppg
from simper_jax.data import scamps
from simper_jax.data import synthetic_rppg as syn
from simper_jax.data import ubfc_rppg
from simper_jax.data import video as video_io
from tiny import run_main_here

BUILDERS = {"scamps": scamps.Scamps, "ubfc_rppg": ubfc_rppg.UbfcRppg, "pure": pure.Pure}
SPEC = syn.SyntheticSpec(num_videos=5, num_frames=240, height=60, width=80)
CLIP = 120


def build(fmt, manual_dir, data_dir, **fields):
  fields = {"image_size": 8, "num_frames": CLIP, "face_crop": fmt != "scamps",
            "train_fraction": 0.6, "num_workers": 2, **fields}
  builder = BUILDERS[fmt](config=rppg.make_config(**fields), data_dir=str(data_dir),
                          file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def written(request, tmp_path_factory):
  """(format, manual_dir, {video_id: bpm}) of 5 synthetic videos in that format."""
  manual_dir = tmp_path_factory.mktemp(request.param)
  return request.param, manual_dir, syn.write(request.param, str(manual_dir), SPEC)


def test_builder_shapes_dtypes_labels_and_colours(written, tmp_path):
  fmt, manual_dir, rates = written
  sources = build(fmt, manual_dir, tmp_path).as_data_source()
  expected_splits = {"scamps": {"train", "validation", "test"}}.get(fmt, {"train", "test"})
  assert set(sources) == expected_splits
  bin_bpm = 60 * SPEC.fps / hr.next_pow2(CLIP)
  seen, waves = set(), {}
  for split, source in sources.items():
    for example in (source[i] for i in range(len(source))):
      video_id = example["video_id"].decode()
      seen.add(video_id)
      assert example["video"].shape == (CLIP, 8, 8, 3) and example["video"].dtype == np.uint8
      assert example["ppg"].shape == (CLIP,) and example["ppg"].dtype == np.float32
      assert abs(example["heart_rate"] - rates[video_id]) <= bin_bpm, video_id
      # The stored PPG is the generated wave at the frame times (timestamps resampled right).
      if video_id not in waves:
        waves[video_id] = syn.render_video(SPEC, _ids(fmt).index(video_id))[1]
      start = int(example["clip_index"]) * CLIP
      assert np.corrcoef(example["ppg"], waves[video_id][start:start + CLIP])[0, 1] > 0.99
      # RGB, not BGR: the synthetic skin is redder than it is blue.
      centre = example["video"][:, 3:5, 3:5].reshape(-1, 3).astype(float).mean(0)
      assert centre[0] > centre[2] + 20
  assert seen == set(rates)  # every video made it, each into exactly one split
  # Subject-wise: no subject in two splits.
  subjects = {split: {s[i]["subject"] for i in range(len(s))} for split, s in sources.items()}
  assert not subjects["train"] & subjects["test"]


def _ids(fmt):
  """The video ids the synthetic writer gives videos 0, 1, ... in format `fmt`."""
  names = {"scamps": lambda i: f"P{i + 1:06d}", "ubfc_rppg": lambda i: f"subject{i + 1}",
           "pure": lambda i: f"{i // 2 + 1:02d}-{i % 2 + 1:02d}"}[fmt]
  return [names(i) for i in range(SPEC.num_videos)]


def test_face_crop_finds_the_face():
  frames, _, _ = syn.render_video(syn.SyntheticSpec(num_videos=1, num_frames=1, height=120,
                                                    width=200), 0)
  top, bottom, left, right = video_io.face_box(frames[0], scale=1.0)
  # The cartoon face is centred: the box is too, and much narrower than the frame.
  assert abs((left + right) / 2 - 100) < 10 and abs((top + bottom) / 2 - 60) < 12
  assert right - left < 120
  assert video_io.face_box(np.full((120, 200, 3), 90, np.uint8)) is None  # no face, no box


def test_scamps_axes_found_by_shape_and_csv_split(tmp_path):
  # Rows brighter towards the bottom, columns not: after reading, intensity grows along H.
  num_frames, height, width = 130, 40, 50
  rows = np.linspace(0, 1, height)[:, None, None, None] * np.ones((1, width, 3, num_frames))
  ppg = np.sin(2 * np.pi * 1.5 * np.arange(num_frames) / 30)[:, None]
  for name in ("P000001", "P000002"):
    syn.write_mat(str(tmp_path / f"{name}.mat"), {"Xsub": rows, "d_ppg": ppg})
  (tmp_path / scamps.SPLIT_CSV).write_text("video,split\nP000001.mat,Train\nP000002.mat,Test\n")
  sources = build("scamps", tmp_path, tmp_path / "tfds", image_size=10).as_data_source()
  assert set(sources) == {"train", "test"}  # no validation videos: no validation split
  assert (len(sources["train"]), len(sources["test"])) == (1, 1)
  frame = sources["train"][0]["video"][0].astype(float)
  assert frame[-1, :, 0].mean() > frame[0, :, 0].mean() + 150  # bright bottom rows
  assert np.ptp(frame[:, :, 0].mean(axis=0)) < 5  # uniform across columns
  assert abs(sources["train"][0]["heart_rate"] - 90) <= 60 * 30 / 128


# ---------------------------------------------------------------------------------------------
# Bad input: each names the file and what was expected.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_missing_and_empty_directories(fmt, tmp_path):
  with pytest.raises(common.DataNotFoundError, match="does not exist"):
    build(fmt, tmp_path / "nowhere", tmp_path / "tfds")
  (tmp_path / "empty").mkdir()
  with pytest.raises(common.DataNotFoundError, match=f"{tmp_path / 'empty'}.*holds no"):
    build(fmt, tmp_path / "empty", tmp_path / "tfds")


@pytest.mark.parametrize("missing", ["Xsub", "d_ppg"])
def test_mat_without_a_field(missing, tmp_path):
  fields = {"Xsub": np.zeros((8, 8, 3, 130)), "d_ppg": np.zeros((130, 1))}
  del fields[missing]
  (tmp_path / "Train").mkdir()
  (tmp_path / "Test").mkdir()
  path = tmp_path / "Train" / "P000001.mat"
  syn.write_mat(str(path), fields)
  syn.write_mat(str(tmp_path / "Test" / "P000002.mat"), fields)
  with pytest.raises(common.DataError, match=f"{path}: no field {missing}"):
    build("scamps", tmp_path, tmp_path / "tfds")


def test_mat_that_is_not_hdf5(tmp_path):
  for split in ("Train", "Test"):
    (tmp_path / split).mkdir()
    (tmp_path / split / f"P00000{len(split)}.mat").write_bytes(b"MATLAB 5.0 MAT-file" +
                                                               bytes(200))
  path = tmp_path / "Train" / "P000005.mat"
  with pytest.raises(common.DataError, match=f"{path}: not a MATLAB v7.3"):
    build("scamps", tmp_path, tmp_path / "tfds")


def test_ubfc_ground_truth_with_two_lines(tmp_path):
  syn.write("ubfc_rppg", str(tmp_path), syn.SyntheticSpec(num_videos=2, num_frames=130,
                                                           height=48, width=48))
  path = tmp_path / "subject1" / "ground_truth.txt"
  path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
  with pytest.raises(common.DataError, match=f"{path}: 2 non-empty lines; expected 3"):
    build("ubfc_rppg", tmp_path, tmp_path / "tfds", train_fraction=0.5)


def test_pure_json_frame_count_mismatch(tmp_path):
  syn.write("pure", str(tmp_path), syn.SyntheticSpec(num_videos=4, num_frames=130, height=48,
                                                      width=48))
  os.remove(sorted(glob.glob(str(tmp_path / "01-01" / "01-01" / "*.png")))[-1])
  with pytest.raises(common.DataError, match=r"01-01\.json: /Image lists 130 frames but .* "
                                             r"holds 129 \.png files"):
    build("pure", tmp_path, tmp_path / "tfds", train_fraction=0.5)


def test_video_shorter_than_a_clip_is_fatal_or_a_logged_skip(tmp_path, capsys):
  spec = syn.SyntheticSpec(num_videos=4, num_frames=130, height=48, width=48)
  syn.write("ubfc_rppg", str(tmp_path / "data"), spec)
  short = tmp_path / "data" / "subject2"
  syn.write("ubfc_rppg", str(tmp_path / "short"),
            syn.SyntheticSpec(num_videos=2, num_frames=60, height=48, width=48))
  for name in ("vid.avi", "ground_truth.txt"):
    os.replace(tmp_path / "short" / "subject2" / name, short / name)
  with pytest.raises(common.DataError, match=f"{short}.*60 frames, fewer than one clip of "
                                             f"{CLIP} frames"):
    build("ubfc_rppg", tmp_path / "data", tmp_path / "tfds", train_fraction=0.5)
  sources = build("ubfc_rppg", tmp_path / "data", tmp_path / "tfds2", train_fraction=0.5,
                  on_bad_video="skip").as_data_source()
  assert {sources["train"][i]["video_id"].decode() for i in range(len(sources["train"]))} == \
      {"subject1"}
  assert "skipped" in capsys.readouterr().out


@pytest.mark.slow  # processes of the command line
def test_main_without_data_names_the_directory_and_exits_nonzero(tmp_path):
  result = run_main_here("--config=configs/scamps.py", f"--config.data.data_dir={tmp_path}",
                         f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 2
  expected_dir = os.path.join(str(tmp_path), "downloads", "manual", "scamps")
  assert f"SCAMPS not found: the directory {expected_dir} does not exist" in result.stderr
  assert "Xsub" in result.stderr and "d_ppg" in result.stderr
  assert "Traceback" not in result.stderr
