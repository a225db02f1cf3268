"""python -m simper_jax.predict: heart rate from a video file or folder, by a classic method
or a trained encoder, in every container OpenCV writes here; each input mistake is one line
and exit 2.

The videos are the synthetic faces of `synthetic_rppg` (a cartoon face OpenCV's cascade
detects, pulsing at a known rate): no real face video with a pulse reference exists here."""

import csv
import functools
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from simper_jax import predict
from simper_jax.data import synthetic_rppg
from tiny import REPO
from tiny import run_command_here

FPS = 30.0
BPM = 72.0
# Containers and codecs OpenCV's FFmpeg writes and reads back here (H.264 has no encoder).
CONTAINERS = [("avi", "MJPG"), ("mp4", "mp4v"), ("mkv", "FFV1"), ("mov", "mp4v"),
              ("webm", "VP80"), ("wmv", "WMV2"), ("flv", "FLV1"), ("mpg", "MPEG"),
              ("m4v", "mp4v"), ("mjpeg", "MJPG")]


def face_frames(seconds: float, bpm: float = BPM, seed: int = 0) -> np.ndarray:
  spec = synthetic_rppg.SyntheticSpec(num_frames=int(seconds * FPS), fps=FPS, height=96,
                                      width=128, heart_rate_range=(bpm, bpm), seed=seed)
  return synthetic_rppg.render_video(spec, 0)[0]


def write_video(path: str, frames: np.ndarray, fourcc: str = "MJPG", fps: float = FPS) -> str:
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps,
                           (frames.shape[2], frames.shape[1]))
  assert writer.isOpened(), (path, fourcc)
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()
  return path


@pytest.fixture(scope="module")
def twelve_seconds():
  return face_frames(12.0)


def classic(**options):
  defaults = dict(face="detect", face_frames=10, fps=None, window_seconds=10.0,
                  step_seconds=1.0)
  return {**defaults, **options}


# The protocol's frequency grid: a 10-s window at 30 fps is zero-padded to 512 samples.
BIN_BPM = 60 * FPS / 512


@pytest.mark.parametrize("extension, fourcc", CONTAINERS)
def test_heart_rate_of_a_synthetic_face_video_in_each_container(tmp_path, twelve_seconds,
                                                                extension, fourcc):
  path = write_video(str(tmp_path / f"face.{extension}"), twelve_seconds, fourcc)
  # A raw MJPEG stream declares no frame rate: it needs --fps (the error has its own test).
  fps = FPS if extension == "mjpeg" else None
  rows, status = predict.run(path, predict.ClassicReader("pos", 72), output=None,
                             **classic(fps=fps))
  (row,) = rows
  assert status == 0 and row["error"] == "" and row["frames"] == 360 and row["fps"] == FPS
  assert abs(row["video_bpm"] - BPM) <= BIN_BPM
  assert np.all(np.abs(row["result"]["bpm"] - BPM) <= BIN_BPM)
  # Beside the video by default: the windows' CSV (3 windows of 10 s every 1 s in 12 s), the
  # spectrum's CSV and the plot.
  with open(tmp_path / "face.heart_rate.csv") as f:
    windows = list(csv.DictReader(f))
  assert [(w["start_s"], w["end_s"]) for w in windows] == [
      ("0.000", "10.000"), ("1.000", "11.000"), ("2.000", "12.000")]
  assert all(abs(float(w["heart_rate_bpm"]) - BPM) <= BIN_BPM for w in windows)
  assert os.path.getsize(tmp_path / "face.heart_rate.png") > 10_000
  with open(tmp_path / "face.spectrum.csv") as f:
    spectrum = np.array([[float(v) for v in line] for line in list(csv.reader(f))[1:]])
  in_band = (spectrum[:, 0] >= 45) & (spectrum[:, 0] <= 150)
  assert abs(spectrum[in_band][spectrum[in_band, 1].argmax(), 0] - BPM) <= 60 * FPS / 512


def test_a_rate_that_changes_is_followed_window_by_window(tmp_path):
  """12 s at 60 bpm then 12 s at 96 bpm: the 10-s windows inside each half read its rate."""
  frames = np.concatenate([face_frames(12.0, 60.0), face_frames(12.0, 96.0)])
  path = write_video(str(tmp_path / "change.avi"), frames, "FFV1")
  (row,), _ = predict.run(path, predict.ClassicReader("pos", 72),
                          output=str(tmp_path / "out"), **classic(step_seconds=2.0))
  result = row["result"]
  first = result["ends_s"] <= 12
  second = result["starts_s"] >= 12
  assert first.sum() == 2 and second.sum() == 2
  np.testing.assert_allclose(result["bpm"][first], 60.0, atol=BIN_BPM)
  np.testing.assert_allclose(result["bpm"][second], 96.0, atol=BIN_BPM)
  assert os.path.exists(tmp_path / "out" / "change.heart_rate.png")


def test_a_folder_gives_one_row_per_video_and_names_the_bad_one(tmp_path, twelve_seconds):
  folder = tmp_path / "videos"
  folder.mkdir()
  write_video(str(folder / "a.avi"), twelve_seconds, "MJPG")
  write_video(str(folder / "b.mp4"), face_frames(12.0, 108.0, seed=1), "mp4v")
  (folder / "notes.txt").write_text("not a video, and not named like one: skipped")
  rows, status = predict.run(str(folder), predict.ClassicReader("chrom", 72), output=None,
                             **classic())
  assert status == 0 and [os.path.basename(r["video"]) for r in rows] == ["a.avi", "b.mp4"]
  with open(folder / "heart_rates.csv") as f:
    summary = list(csv.DictReader(f))
  assert [abs(float(r["video_bpm"]) - bpm) <= BIN_BPM for r, bpm in zip(summary, (72, 108))] \
      == [True, True]
  # A file that does not decode: its row says why, the others are still read, exit 2.
  (folder / "c.mp4").write_bytes(b"\x00" * 4096)
  rows, status = predict.run(str(folder), predict.ClassicReader("chrom", 72), output=None,
                             **classic())
  assert status == 2 and len(rows) == 3
  assert "c.mp4: OpenCV cannot decode it as a video" in rows[2]["error"]
  assert rows[0]["error"] == rows[1]["error"] == ""


def test_a_folder_is_searched_through_its_sub_folders(tmp_path, twelve_seconds):
  """Videos one and two levels down (a dataset laid out per site and subject) are found; the
  summary names them by relative path and each writes into its own sub-folder."""
  folder = tmp_path / "study"
  (folder / "site1" / "p01").mkdir(parents=True)
  (folder / "site2").mkdir()
  write_video(str(folder / "site1" / "p01" / "rest.avi"), twelve_seconds, "MJPG")
  write_video(str(folder / "site2" / "rest.mp4"), face_frames(12.0, 108.0, seed=1), "mp4v")
  rows, status = predict.run(str(folder), predict.ClassicReader("pos", 72), output=None,
                             **classic())
  assert status == 0 and len(rows) == 2
  with open(folder / "heart_rates.csv") as f:
    summary = list(csv.DictReader(f))
  assert [r["video"] for r in summary] == ["site1/p01/rest.avi", "site2/rest.mp4"]
  assert [abs(float(r["video_bpm"]) - bpm) <= BIN_BPM for r, bpm in zip(summary, (72, 108))] \
      == [True, True]
  assert os.path.exists(folder / "site1" / "p01" / "rest.heart_rate.csv")
  assert os.path.exists(folder / "site2" / "rest.heart_rate.png")
  empty = tmp_path / "empty" / "nested"
  empty.mkdir(parents=True)
  with pytest.raises(predict.InputError, match="no video file in the folder or its sub-folders"):
    predict.run(str(tmp_path / "empty"), predict.ClassicReader("pos", 72), output=None,
                **classic())


def test_frames_resampled_to_another_rate():
  """60 → 30 fps keeps every other frame; 20 → 30 fps blends the two nearest frames."""
  frames = np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1) * 10
  np.testing.assert_array_equal(predict.resample_frames(frames, 60.0, 30.0)[:, 0, 0, 0],
                                [0, 20, 40, 60, 80, 100])
  # New frame k sits at old position 2k/3: 0, 0.67, 1.33, 2, ...
  np.testing.assert_array_equal(predict.resample_frames(frames[:4], 20.0, 30.0)[:, 0, 0, 0],
                                [0, 7, 13, 20, 27])
  assert predict.resample_frames(frames, 30.0, 30.0) is frames


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "simper_jax.predict", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, *fragments):
  assert result.returncode == 2, result.stdout + result.stderr
  assert "Traceback" not in result.stderr, result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
  assert len(errors) == 1, result.stderr
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


def test_each_input_mistake_is_one_line_and_exit_2(tmp_path, twelve_seconds):
  junk = tmp_path / "junk.mp4"
  junk.write_bytes(b"not a video " * 500)
  # The command itself, for a mistake in the data and one in the flags; the others through
  # its parse_flags and main in this process.
  assert_one_line_error(run_cli(f"--video={junk}", "--method=pos"),
                        f"{junk}: OpenCV cannot decode it as a video")
  assert_one_line_error(run_cli(f"--video={junk}", "--metod=pos"), "Unknown command line flag")
  run = functools.partial(run_command_here, predict)
  assert_one_line_error(run(f"--video={junk}", "--method=pos"),
                        f"{junk}: OpenCV cannot decode it as a video")
  # No face: a moving texture. The frames searched are named.
  texture = np.random.default_rng(0).integers(0, 255, (90, 96, 128, 3), dtype=np.uint8)
  no_face = write_video(str(tmp_path / "wall.avi"), texture, "MJPG")
  assert_one_line_error(run(f"--video={no_face}", "--method=pos", "--face_frames=5"),
                        f"{no_face}: no face found in frames 0–4", "--face=none")
  short = write_video(str(tmp_path / "short.avi"), twelve_seconds[:150], "MJPG")
  assert_one_line_error(run(f"--video={short}", "--method=pos"),
                        f"{short}: 150 frames (5.0 s at 30 fps) are shorter than one window "
                        f"of 10 s (--window_seconds)")
  raw = write_video(str(tmp_path / "face.mjpeg"), twelve_seconds, "MJPG")
  assert_one_line_error(run(f"--video={raw}", "--method=pos"),
                        f"{raw}: a raw stream, which declares no frame rate; give it with --fps")
  assert_one_line_error(run(f"--video={raw}"), "give exactly one of --workdir")
  assert_one_line_error(run(f"--video={raw}", "--method=cheek"),
                        "flag --method=cheek: value should be one of <green|ica|chrom|pos|")
  assert_one_line_error(run(f"--video={raw}", "--metod=pos"), "Unknown command line flag")
  assert_one_line_error(run(f"--video={tmp_path / 'nowhere.mp4'}", "--method=pos"),
                        "no such file or folder")
  assert_one_line_error(run(f"--video={tmp_path}", f"--workdir={tmp_path}"),
                        f"--workdir={tmp_path}: no config.json there")
  assert_one_line_error(run(f"--video={raw}", "--method=pos", "--min_confidence=1.5"),
                        "--min_confidence=1.5: expected a confidence in [0, 1)")
  # --face=none reads the texture's whole frame: no error, a heart rate in the band.
  result = run(f"--video={no_face}", "--method=pos", "--face=none", "--window_seconds=2")
  assert result.returncode == 0, result.stderr
  assert "heart rate over the whole video" in result.stdout


def test_a_frame_rate_the_backend_does_not_know_needs_fps(tmp_path, twelve_seconds, monkeypatch):
  """Some OpenCV backends report 0 (or NaN) for a file without a rate; FFmpeg's here reports
  25, which is why raw streams are refused above. Either way: --fps, or an error."""
  path = write_video(str(tmp_path / "face.avi"), twelve_seconds, "MJPG")

  class Capture:
    """OpenCV's capture, reporting no frame rate. (A wrapper, not a subclass: a Python
    subclass of cv2.VideoCapture crashes the interpreter when collected.)"""

    def __init__(self, *args):
      self._capture = real_capture(*args)

    def get(self, prop):
      return 0.0 if prop == cv2.CAP_PROP_FPS else self._capture.get(prop)

    def __getattr__(self, name):
      return getattr(self._capture, name)

  real_capture = cv2.VideoCapture
  monkeypatch.setattr(predict.cv2, "VideoCapture", Capture)
  with pytest.raises(predict.InputError, match=r"face.avi: the file declares no frame rate; "
                                               r"give it with --fps"):
    predict.run(path, predict.ClassicReader("pos", 72), output=None, **classic())
  (row,), status = predict.run(path, predict.ClassicReader("pos", 72), output=None,
                               **classic(fps=FPS))
  assert status == 0 and abs(row["video_bpm"] - BPM) <= BIN_BPM


@pytest.mark.slow  # reads the shared tiny SCAMPS run, a whole run to prepare
def test_the_encoder_of_a_trained_run_reads_the_video(tmp_path, twelve_seconds, tiny_scamps_run,
                                                      capsys):
  """A tiny SCAMPS run (3 steps: its rates are not the point), then predict with its encoder:
  clips of the run's 60 frames at 12², windows from the concatenated feature signal."""
  workdir = tiny_scamps_run.workdir
  path = write_video(str(tmp_path / "face.avi"), twelve_seconds, "FFV1")
  reader = predict.EncoderReader(workdir)
  assert (reader.clip_frames, reader.image_size, reader.fps) == (60, 12, 30.0)
  (row,), status = predict.run(path, reader, output=str(tmp_path / "out"),
                               **classic(window_seconds=4.0, step_seconds=2.0))
  result = row["result"]
  assert status == 0 and len(result["bpm"]) == 5  # 12 s = 6 clips; 4-s windows every 2 s
  assert np.all((result["bpm"] >= 45) & (result["bpm"] <= 150))
  assert os.path.exists(tmp_path / "out" / "face.heart_rate.png")
  # The run's calibration (uncertainty.npz): an interval and an OOD flag per window.
  assert reader.calibration is not None
  assert capsys.readouterr().out.startswith("Intervals at 0.9 from the run's fft_clip readout, "
                                            "calibrated on ")
  assert result["ood"].dtype == bool and len(result["ood_score"]) == 5
  with open(tmp_path / "out" / "face.heart_rate.csv") as f:
    header = next(csv.reader(f))
  assert header == ["start_s", "end_s", "heart_rate_bpm", "confidence", "low", "high",
                    "ood_score", "ood"]
  # The tiny run calibrates on too few clips for a finite interval: give it 98 residuals of
  # 1 to 98 bpm at confidence 1, whose ⌈0.9 · 99⌉ = 90th is 90 bpm, so each window's interval
  # is its rate ± 90 bpm / its confidence.
  reader.calibration.readouts["fft_clip"] = (np.zeros(98), np.arange(1.0, 99.0), np.ones(98))
  (row,), _ = predict.run(path, reader, output=str(tmp_path / "out"),
                          **classic(window_seconds=4.0, step_seconds=2.0))
  result = row["result"]
  np.testing.assert_allclose(result["high"] - result["bpm"], 90.0 / result["confidence"])
  np.testing.assert_allclose(result["bpm"] - result["low"], 90.0 / result["confidence"])
  # Fewer frames than one clip of the encoder.
  short = write_video(str(tmp_path / "short.avi"), twelve_seconds[:45], "FFV1")
  with pytest.raises(predict.InputError, match="45 frames at the run's 30 fps, fewer than one "
                                               "clip of the encoder"):
    predict.run(short, reader, output=str(tmp_path / "out"), **classic(window_seconds=1.0))
  # A run that does not read heart rate.
  shutil.copy(os.path.join(workdir, "config.json"), tmp_path / "config.json")
  with open(tmp_path / "config.json") as f:
    text = f.read().replace('"protocol": "heart_rate"', '"protocol": "frequency"')
  with open(tmp_path / "config.json", "w") as f:
    f.write(text)
  with pytest.raises(predict.InputError, match="eval.protocol='frequency'"):
    predict.EncoderReader(str(tmp_path))


def test_min_confidence_drops_the_unsure_windows_and_says_how_many(tmp_path, twelve_seconds,
                                                                   capsys):
  path = write_video(str(tmp_path / "face.avi"), twelve_seconds, "FFV1")
  reader = predict.ClassicReader("pos", 72)
  (row,), _ = predict.run(path, reader, output=None, **classic(window_seconds=4.0))
  confidence = row["result"]["confidence"]
  assert len(confidence) == 9 and np.all((confidence > 0) & (confidence <= 1))
  assert "low" not in row["result"]  # a classic method has no run to calibrate it on
  cut = float(np.median(confidence))
  capsys.readouterr()
  (row,), _ = predict.run(path, reader, output=None, **classic(window_seconds=4.0),
                          min_confidence=cut)
  kept = row["result"]["confidence"]
  assert row["dropped_windows"] == int(np.sum(confidence < cut)) > 0
  assert len(kept) == 9 - row["dropped_windows"] and np.all(kept >= cut)
  assert f"Dropped {row['dropped_windows']} window(s) below --min_confidence" in (
      capsys.readouterr().out)
  with pytest.raises(predict.InputError, match="all 9 windows have a confidence below "
                                               "--min_confidence=0.999"):
    predict.run(path, reader, output=None, **classic(window_seconds=4.0), min_confidence=0.999)
