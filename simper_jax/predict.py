r"""Heart rate from your own face video, by a trained encoder or a classic rPPG method; or the
rate of your own time series (simper_jax/predict_series.py).

    python -m simper_jax.predict --video=face.mp4 --workdir=DIR   # a trained heart-rate run
    python -m simper_jax.predict --video=face.mp4 --method=pos    # no training: POS, CHROM, ...
    python -m simper_jax.predict --video=videos/ --method=pos     # every video in a folder
    python -m simper_jax.predict --series=walks/ --workdir=RUN    # a trained time-series run
    python -m simper_jax.predict --series=walk.csv --method=spectral_peak   # the input's own

Each video is read with OpenCV, cropped to the face as preparation crops it (the Haar cascade's
largest face, enlarged 1.5×, one box for the whole video, found in the first frames; or
`--face=none` for a video that is already a skin crop) and resized. The pulse is then the
encoder's feature signal (clips of the run's length, at the run's frame rate: the video is
resampled to it) or the classic method's output on the mean face colour; the heart rate is
read from it by the evaluation's protocol (`simper_jax.heart_rate`: detrend, band-pass,
periodogram peak in the band) in sliding windows and over the whole video.

Each window and the whole video come with a confidence: the spectral peak's share of the
band's power, discounted by its strongest rival that is not a harmonic (for the whole video,
also by the share of windows that agree with it). With a trained run evaluated with
calibration (its uncertainty.npz), also a calibrated interval at the run's eval.coverage and
an out-of-distribution flag (the window's feature spectrum unlike the training clips').
`--min_confidence` drops the windows below it and says how many.

Written into --output (default: beside the video) for each video <name>:
  <name>.heart_rate.csv  start_s, end_s, heart_rate_bpm, confidence[, low, high, ood_score,
                         ood] of each window
  <name>.spectrum.csv    the whole video's spectrum (bpm, power)
  <name>.heart_rate.png  heart rate over time, and that spectrum
and for a folder, heart_rates.csv: one row per video (its error, if it had one).

A mistake in the input — a file OpenCV cannot decode, no face in the first frames, a video
shorter than one window, a frame rate the file does not declare — is one line naming the
file, and exit status 2 (for a folder: after every other video is done).
"""

import contextlib
import csv
import functools
import itertools
import math
import os
import sys
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import cv2
import numpy as np

from simper_jax import errors
from simper_jax import figures
from simper_jax import heart_rate as hr
from simper_jax import rppg_methods
from simper_jax import uncertainty
from simper_jax.data import video as video_io

def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """The command's flags, defined in `flag_values` and returned by name: absl's global flags
  when the command runs; a fresh FlagValues to parse a command line anywhere else (the
  README's test) without clashing with another command's --workdir."""
  defined = dict(flag_values=flag_values)
  return {
      "video": flags.DEFINE_string("video", None, "A video file, or a folder of videos.",
                                   **defined),
      "series": flags.DEFINE_string("series", None, "A time-series recording (CSV, TSV, "
                                    "Parquet, NPY/NPZ, EDF/BDF, WFDB .hea), or a folder of them.",
                                    **defined),
      "workdir": flags.DEFINE_string(
          "workdir", None, "A trained heart-rate run (eval.protocol 'heart_rate'): its "
          "encoder reads the pulse.", **defined),
      "method": flags.DEFINE_enum("method", None,
                                  list(rppg_methods.METHODS) + list(SERIES_METHODS),
                                  "Instead of a trained encoder: a classic rPPG method (with "
                                  "--video) or a reading of the input (with --series).",
                                  **defined),
      "band": flags.DEFINE_list("band", ["0.2", "5.0"], "--series --method: the rate's band, "
                                "low,high in Hz.", **defined),
      "harmonic": flags.DEFINE_float("harmonic", 1.0, "--series --method: the input's rhythm as "
                                     "a multiple of the rate (0.5: a wrist's stride, two "
                                     "steps).", **defined),
      "sample_rate": flags.DEFINE_float("sample_rate", 25.0, "--series --method: Hz the "
                                        "recording is resampled to.", **defined),
      "source_rate": flags.DEFINE_float("source_rate", 0.0, "--series: Hz of files without a "
                                        "time column.", **defined),
      "time_column": flags.DEFINE_string("time_column", "", "--series --method: the time "
                                         "column; '' → one named time, timestamp, t, ...",
                                         **defined),
      "face": flags.DEFINE_enum("face", "detect", ["detect", "none"],
                                "detect: crop to the face found in the first frames; none: "
                                "the whole frame (a video already cropped to skin).", **defined),
      "face_frames": flags.DEFINE_integer("face_frames", 10, "How many first frames are "
                                          "searched for a face, in order, before giving up.",
                                          **defined),
      "window_seconds": flags.DEFINE_float("window_seconds", 10.0,
                                           "Length of each heart-rate window, s.", **defined),
      "step_seconds": flags.DEFINE_float("step_seconds", 1.0, "Step between windows, s.",
                                         **defined),
      "fps": flags.DEFINE_float("fps", None, "The video's frame rate, for files that do not "
                                "declare one (it replaces a declared one).", **defined),
      "output": flags.DEFINE_string("output", None, "Folder for the CSVs and plots; default: "
                                    "the video's folder (for a folder of videos, that folder).",
                                    **defined),
      "image_size": flags.DEFINE_integer("image_size", 72, "Side of the resized face crop for a "
                                         "classic method (the rPPG-Toolbox's 72); a run uses "
                                         "its own.", **defined),
      "min_confidence": flags.DEFINE_float(
          "min_confidence", 0.0, "Drop the windows whose confidence (the spectral peak's share "
          "of the band's power, discounted by its strongest rival; 0–1) is below this.",
          **defined),
  }


FRAMES_PER_CHUNK = 64  # frames decoded and cropped at a time: bounded memory for long videos
SERIES_METHODS = ("spectral_peak", "autocorrelation")  # evaluate.INPUT_BASELINES


# A video or recording that cannot be used, or flags that do not fit together. Defined in
# errors.py so that predict_series raises the same class when this module runs as __main__.
InputError = errors.InputError


# ---------------------------------------------------------------------------------------------
# Reading, face crop.
# ---------------------------------------------------------------------------------------------
def open_video(path: str, fps: float | None) -> tuple[cv2.VideoCapture, float]:
  """An opened capture and the frame rate (`fps` if given, else the file's declared one)."""
  capture = cv2.VideoCapture(path)
  if not capture.isOpened():
    raise InputError(f"{path}: OpenCV cannot decode it as a video.")
  if fps is not None:
    if not fps > 0:
      capture.release()
      raise InputError(f"--fps={fps}: expected a positive frame rate.")
    return capture, float(fps)
  declared = video_io.declared_fps(capture, path)
  if declared is None:
    capture.release()
    raw = path.lower().endswith(video_io.RAW_STREAMS)
    raise InputError(f"{path}: {'a raw stream, which' if raw else 'the file'} declares no "
                     f"frame rate; give it with --fps.")
  return capture, declared


def read_face_frames(path: str, *, fps: float | None, face: str, face_frames: int,
                     image_size: int) -> tuple[np.ndarray, float, tuple | None]:
  """The video's frames cropped to the face and resized, [N, S, S, 3] uint8; its frame rate;
  the face box (top, bottom, left, right) or None for --face=none."""
  capture, rate = open_video(path, fps)
  searched = max(face_frames, 1)
  with contextlib.closing(video_io.video_chunks(capture, FRAMES_PER_CHUNK)) as chunks:
    head = []  # the chunks that hold the frames searched for a face (fewer if the video ends)
    for chunk in chunks:
      head.append(chunk)
      if sum(map(len, head)) >= searched:
        break
    if not head:
      raise InputError(f"{path}: OpenCV opens it but decodes no frame from it.")
    box = None
    if face == "detect":
      first = np.concatenate(head)[:searched]
      box = next((b for b in (video_io.face_box(f) for f in first) if b is not None), None)
      if box is None:
        raise InputError(
            f"{path}: no face found in frames 0–{len(first) - 1} (OpenCV's Haar cascade, as "
            f"preparation uses; --face_frames searches more); --face=none reads the whole "
            f"frame, for a video already cropped to skin.")
    cropped = [video_io.crop_resize(chunk, box, image_size)
               for chunk in itertools.chain(head, chunks)]
  return np.concatenate(cropped), rate, box


def resample_frames(frames: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
  """[N, ...] frames at `fps` → the same span at `new_fps`, each new frame the linear blend of
  the two nearest (rounded back to uint8); unchanged when the rates are equal."""
  if abs(new_fps - fps) < 1e-6 * fps:
    return frames
  count = int(math.floor((len(frames) - 1) / fps * new_fps)) + 1
  return video_io.frames_at(frames, np.arange(len(frames)) / fps, np.arange(count) / new_fps)


# ---------------------------------------------------------------------------------------------
# Pulse signals.
# ---------------------------------------------------------------------------------------------
class ClassicReader:
  """A classic method on the mean face colour, at the video's own frame rate."""

  def __init__(self, method: str, image_size: int):
    self.method, self.image_size = method, image_size
    self.band = hr.BAND_HZ
    self.name = method
    self.calibration = None  # a training-free method has no run to calibrate it on

  def pulse(self, frames: np.ndarray, fps: float, path: str) -> tuple[np.ndarray, float]:
    del path
    mean_rgb = frames.mean(axis=(1, 2), dtype=np.float64)
    return rppg_methods.METHODS[self.method](mean_rgb, fps), fps


class EncoderReader:
  """A trained run's encoder: clips of its training length at its frame rate, in batches."""

  def __init__(self, workdir: str):
    # Imported here: a classic method needs neither JAX nor a checkpoint.
    from simper_jax import checkpoint  # pylint: disable=g-import-not-at-top
    from simper_jax import evaluate  # pylint: disable=g-import-not-at-top
    config, self.module, self.variables, settings = checkpoint.load_run(
        workdir, lambda c: c.get("eval", {}).get("protocol") == "heart_rate",
        "a run trained for heart rate (eval.protocol='heart_rate', e.g. configs/scamps.py)")
    self.fps, self.band = float(settings["fps"]), tuple(settings["band"])
    builder = config["data"]["builder"]
    self.image_size, self.clip_frames = int(builder["image_size"]), int(builder["num_frames"])
    self.batch_size = int(config["eval"]["batch_size"])
    self.encode = evaluate.jitted_encode(self.module)
    self.name = f"the encoder of {workdir}"
    # Intervals from the run's per-clip FFT readout (its clips are the windows nearest ours).
    self.calibration, self.readout = uncertainty.RunCalibration.of_run(workdir), "fft_clip"

  def pulse(self, frames: np.ndarray, fps: float, path: str) -> tuple[np.ndarray, float]:
    """The feature signal of the video's whole clips, concatenated (as the per-video
    evaluation concatenates them); frames after the last whole clip are left out."""
    frames = resample_frames(frames, fps, self.fps)
    num_clips = len(frames) // self.clip_frames
    if num_clips == 0:
      raise InputError(
          f"{path}: {len(frames)} frames at the run's {self.fps:g} fps, fewer than one clip of "
          f"the encoder ({self.clip_frames} frames, {self.clip_frames / self.fps:g} s).")
    clips = frames[:num_clips * self.clip_frames].reshape(
        (num_clips, self.clip_frames) + frames.shape[1:])
    signals = [np.asarray(self.encode(self.variables, clips[i:i + self.batch_size]))
               for i in range(0, num_clips, self.batch_size)]
    return np.concatenate(signals).reshape(-1).astype(np.float64), self.fps


# ---------------------------------------------------------------------------------------------
# Heart rate in windows.
# ---------------------------------------------------------------------------------------------
def heart_rates(pulse: np.ndarray, fps: float, *, window_seconds: float, step_seconds: float,
                band, path: str) -> dict:
  """{'starts_s', 'ends_s', 'bpm', 'confidence' [K] per window, 'windows' [K, W] their
  signals; 'video_bpm' and 'video_confidence' over the whole signal (its spectrum's confidence
  times the share of windows that agree with it, `uncertainty.window_agreement`);
  'spectrum_bpm', 'spectrum_power' of the whole signal (processed as the protocol does)}."""
  window = max(2, round(window_seconds * fps))
  step = max(1, round(step_seconds * fps))
  if len(pulse) < window:
    raise InputError(f"{path}: {len(pulse)} frames ({len(pulse) / fps:.1f} s at {fps:g} fps) "
                     f"are shorter than one window of {window_seconds:g} s "
                     f"(--window_seconds).")
  starts = hr.window_starts(len(pulse), window, step)
  windows = np.stack([pulse[s:s + window] for s in starts])
  window_freqs, window_power = hr.spectrum(windows, fps, band=band)
  bpm = hr.peak_bpm(window_freqs, window_power, band)
  freqs, power = hr.spectrum(pulse, fps, band=band)
  video_bpm = float(hr.peak_bpm(freqs, power, band))
  agreement = uncertainty.window_agreement(bpm, video_bpm, tolerance=60.0 * fps / window)
  return {"starts_s": starts / fps, "ends_s": (starts + window) / fps, "bpm": bpm,
          "confidence": uncertainty.spectral_confidence(window_freqs, window_power, band,
                                                        resolution=fps / window)["confidence"],
          "windows": windows, "video_bpm": video_bpm,
          "video_confidence": agreement * float(uncertainty.spectral_confidence(
              freqs, power[None], band, resolution=fps / len(pulse))["confidence"][0]),
          "spectrum_bpm": 60 * freqs, "spectrum_power": power}


def trust_windows(result: dict, rate_key: str, reader, fps: float, *, min_confidence: float,
                  path: str) -> dict:
  """Adds to `result` (per-window arrays under `rate_key`, 'confidence', 'windows', and the
  whole recording's `whole_key`/'…_confidence') what the reader's run says of each window —
  'low', 'high' (its calibrated interval) and 'ood_score', 'ood' (unlike the training clips)
  — and of the whole ('whole_low', 'whole_high', 'ood_windows'), then drops the windows below
  `min_confidence` ('dropped' says how many). A reader without a run (a classic method, an
  input reading) or a run evaluated without calibration adds no interval and no flag.

  Raises:
    InputError: every window is below `min_confidence`.
  """
  calibration = reader.calibration
  if calibration is not None and reader.readout in calibration.readouts:
    result["low"], result["high"] = calibration.interval(reader.readout, result[rate_key],
                                                         result["confidence"])
    whole = result["whole_rate"], result["whole_confidence"]
    (result["whole_low"],), (result["whole_high"],) = calibration.interval(
        reader.readout, [whole[0]], [whole[1]])
    result["ood_score"], result["ood"] = calibration.ood(result["windows"][..., 0]
                                                         if result["windows"].ndim == 3
                                                         else result["windows"], fps)
    result["ood_windows"] = int(result["ood"].sum())
  keep = result["confidence"] >= min_confidence
  if not keep.any():
    raise InputError(f"{path}: all {len(keep)} windows have a confidence below "
                     f"--min_confidence={min_confidence:g} (the highest is "
                     f"{result['confidence'].max():.3f}).")
  result["dropped"] = int((~keep).sum())
  for key in ("starts_s", "ends_s", rate_key, "confidence", "low", "high", "ood_score", "ood",
              "windows"):
    if key in result:
      result[key] = result[key][keep]
  return result


WINDOW_COLUMNS = ("confidence", "low", "high", "ood_score", "ood")  # beside each window's rate


def write_outputs(result: dict, out_dir: str, name: str, title: str, band) -> list[str]:
  """<name>.heart_rate.png and .csv (the windows), <name>.spectrum.csv; their paths."""
  os.makedirs(out_dir, exist_ok=True)
  png, windows_csv = figures.heart_rate_over_time(
      result["starts_s"], result["ends_s"], result["bpm"], result["video_bpm"],
      result["spectrum_bpm"], result["spectrum_power"], band_bpm=(60 * band[0], 60 * band[1]),
      out_dir=out_dir, name=f"{name}.heart_rate", title=title,
      columns={key: result[key] for key in WINDOW_COLUMNS if key in result})
  return [windows_csv, os.path.join(out_dir, f"{name}.spectrum.csv"), png]


# ---------------------------------------------------------------------------------------------
# The command.
# ---------------------------------------------------------------------------------------------
def video_paths(video: str) -> list[str]:
  """[video] for a file; for a folder, the video files in it and in its sub-folders, sorted by
  their path relative to it."""
  if os.path.isdir(video):
    paths = [path for path in video_io.files_under(video) if video_io.is_video(path)]
    if not paths:
      raise InputError(f"--video={video}: no video file in the folder or its sub-folders "
                       f"(expected one of {', '.join(video_io.VIDEO_EXTENSIONS)}).")
    return paths
  if not os.path.exists(video):
    raise InputError(f"--video={video}: no such file or folder.")
  return [video]


def predict_video(path: str, reader, *, out_dir: str, face: str, face_frames: int,
                  fps: float | None, window_seconds: float, step_seconds: float,
                  min_confidence: float = 0.0) -> dict:
  """Reads one video, writes its outputs, returns its summary row."""
  started = time.time()
  frames, rate, _ = read_face_frames(path, fps=fps, face=face, face_frames=face_frames,
                                     image_size=reader.image_size)
  pulse, pulse_fps = reader.pulse(frames, rate, path)
  result = heart_rates(pulse, pulse_fps, window_seconds=window_seconds,
                       step_seconds=step_seconds, band=reader.band, path=path)
  result.update(whole_rate=result["video_bpm"], whole_confidence=result["video_confidence"])
  result = trust_windows(result, "bpm", reader, pulse_fps, min_confidence=min_confidence,
                         path=path)
  name = os.path.splitext(os.path.basename(path))[0]
  written = write_outputs(result, out_dir, name, f"{os.path.basename(path)} — {reader.name}",
                          reader.band)
  return {"video": path, "fps": rate, "frames": len(frames),
          "seconds": len(frames) / rate, "video_bpm": result["video_bpm"],
          "confidence": result["video_confidence"], "low": result.get("whole_low", ""),
          "high": result.get("whole_high", ""),
          "median_window_bpm": float(np.median(result["bpm"])),
          "windows": len(result["bpm"]), "dropped_windows": result["dropped"],
          "ood_windows": result.get("ood_windows", ""), "error": "", "result": result,
          "written": written, "elapsed": time.time() - started}


SUMMARY_FIELDS = ("video", "fps", "frames", "seconds", "video_bpm", "confidence", "low", "high",
                  "median_window_bpm", "windows", "dropped_windows", "ood_windows", "error")


def write_summary(rows: list[dict], path: str, relative_to: str, *,
                  fields=SUMMARY_FIELDS, float_format: str = ".2f") -> None:
  """heart_rates.csv (or a series' rates.csv): one row per input, named (its first field) by
  its path relative to the folder read."""
  key = fields[0]
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      row = {**row, key: os.path.relpath(row[key], relative_to)}
      writer.writerow({k: (format(v, float_format) if isinstance(v, float) else v)
                       for k, v in row.items() if k in fields})


def run_each(root: str, paths: list[str], *, output: str | None, predict_one, print_one,
             key: str) -> tuple[list[dict], str | None]:
  """`predict_one(path, out_dir) -> row` for each of `paths` (the files of --video or
  --series `root`), each printed by `print_one`. A file in a sub-folder of a folder writes into
  the same sub-folder of the output folder; a folder goes on past a file's InputError (its row
  then holds the error, under `key`), a single file raises it.

  Returns:
    (the rows, the output folder when `root` is a folder, else None).
  """
  folder = os.path.isdir(root)
  out_dir = output or (root if folder else os.path.dirname(os.path.abspath(root)))
  rows = []
  for i, path in enumerate(paths, 1):
    here = (os.path.join(out_dir, os.path.dirname(os.path.relpath(path, root))) if folder
            else out_dir)
    try:
      row = predict_one(path, here)
    except InputError as e:
      if not folder:
        raise
      row = {key: path, "error": str(e)}
      print(f"[{i}/{len(paths)}] Error: {e}", flush=True)
    else:
      print_one(row, index=f"[{i}/{len(paths)}] " if folder else "", windows=not folder)
    rows.append(row)
  return rows, (out_dir if folder else None)


def describe_calibration(reader) -> None:
  """Prints where the reader's intervals come from, once, before the first input."""
  calibration = reader.calibration
  if calibration is not None and reader.readout in calibration.readouts:
    print(calibration.describe(reader.readout), flush=True)


def run(video: str, reader, *, output: str | None, **options) -> tuple[list[dict], int]:
  """Every video of --video; (summary rows, exit status: 0, or 2 if a video failed)."""
  describe_calibration(reader)
  rows, folder_out = run_each(
      video, video_paths(video), output=output, print_one=print_video, key="video",
      predict_one=lambda path, out_dir: predict_video(path, reader, out_dir=out_dir, **options))
  if folder_out:
    summary = os.path.join(folder_out, "heart_rates.csv")
    write_summary(rows, summary, relative_to=video)
    print_summary(rows, relative_to=video)
    print(f"Wrote {summary}.")
  return rows, 2 if any(row["error"] for row in rows) else 0


def print_video(row: dict, *, index: str = "", windows: bool = True) -> None:
  r = row["result"]
  print(f"{index}{row['video']}: {row['frames']} frames at {row['fps']:g} fps "
        f"({row['seconds']:.1f} s); heart rate over the whole video {row['video_bpm']:.1f} bpm"
        f"{interval_text(r, 'whole_low', 'whole_high', '.1f')} (confidence "
        f"{row['confidence']:.2f}), median of {row['windows']} windows "
        f"{row['median_window_bpm']:.1f} bpm ({row['elapsed']:.1f} s).", flush=True)
  print_trust(r)
  if windows:
    print_windows(r, "bpm", "heart rate (bpm)", ".1f")
  print(f"  Wrote {', '.join(row['written'])}.", flush=True)


def interval_text(result: dict, low_key: str, high_key: str, fmt: str) -> str:
  """' [low, high]' where the result has the interval, else ''."""
  if low_key not in result:
    return ""
  return f" [{format(result[low_key], fmt)}, {format(result[high_key], fmt)}]"


def print_trust(result: dict) -> None:
  """The lines about what was dropped, flagged or could not be calibrated."""
  if result["dropped"]:
    print(f"  Dropped {result['dropped']} window(s) below --min_confidence.")
  if "ood" in result and result["ood_windows"]:
    print(f"  {result['ood_windows']} window(s) flagged out of distribution: unlike the run's "
          f"training clips, their rates are not to be trusted.")


def print_windows(result: dict, rate_key: str, title: str, fmt: str) -> None:
  """One line per window: its span, rate, interval, confidence and OOD flag."""
  interval = "low" in result
  print(f"  window (s)      {title:>16}" + ("   interval" if interval else "")
        + "   confidence" + ("  OOD" if "ood" in result else ""))
  for k in range(len(result[rate_key])):
    line = (f"  {result['starts_s'][k]:6.1f}–{result['ends_s'][k]:<6.1f}  "
            f"{format(result[rate_key][k], fmt):>16}")
    if interval:
      line += f"   [{format(result['low'][k], fmt)}, {format(result['high'][k], fmt)}]"
    line += f"   {result['confidence'][k]:10.2f}"
    if "ood" in result:
      line += "  yes" if result["ood"][k] else "   no"
    print(line)


def print_summary(rows: list[dict], relative_to: str) -> None:
  names = [os.path.relpath(row["video"], relative_to) for row in rows]
  width = max(map(len, names)) + 2
  print(f"\n{'video':<{width}}{'seconds':>9}{'bpm (video)':>13}{'confidence':>12}"
        f"{'bpm (median)':>14}")
  for name, row in zip(names, rows):
    if row["error"]:
      print(f"{name:<{width}}  error (see above)")
    else:
      print(f"{name:<{width}}{row['seconds']:>9.1f}{row['video_bpm']:>13.1f}"
            f"{row['confidence']:>12.2f}{row['median_window_bpm']:>14.1f}")


def main(argv: Sequence[str], defined: dict) -> None:
  logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO
  value = {name: holder.value for name, holder in defined.items()}
  if len(argv) > 1:
    errors.fail(f"unexpected arguments {list(argv[1:])}; see --help.")
  if bool(value["video"]) == bool(value["series"]):
    errors.fail("give exactly one of --video (a video file or a folder of videos) and --series (a "
                "time-series recording or a folder of them).")
  if value["series"]:
    main_series(value)
  if (value["workdir"] is None) == (value["method"] is None):
    errors.fail("give exactly one of --workdir (a trained heart-rate run) and --method (one of "
                f"{', '.join(rppg_methods.METHODS)}).")
  if value["method"] in SERIES_METHODS:
    errors.fail(f"--method={value['method']} reads a time series; give it --series, or use one of "
                f"{', '.join(rppg_methods.METHODS)} for a video.")
  if not (value["window_seconds"] > 0 and value["step_seconds"] > 0):
    errors.fail(f"--window_seconds={value['window_seconds']} and --step_seconds="
                f"{value['step_seconds']}: expected positive durations.")
  if not 0 <= value["min_confidence"] < 1:
    errors.fail(f"--min_confidence={value['min_confidence']}: expected a confidence in [0, 1).")
  try:
    reader = (EncoderReader(value["workdir"]) if value["workdir"]
              else ClassicReader(value["method"], value["image_size"]))
    _, status = run(value["video"], reader, output=value["output"], face=value["face"],
                    face_frames=value["face_frames"], fps=value["fps"],
                    window_seconds=value["window_seconds"],
                    step_seconds=value["step_seconds"], min_confidence=value["min_confidence"])
  except InputError as e:
    errors.fail(str(e))
  sys.exit(status)


def main_series(value: dict) -> None:
  """--series: the rate of each recording (simper_jax/predict_series.py); exits."""
  from simper_jax import predict_series  # pylint: disable=g-import-not-at-top
  if (value["workdir"] is None) == (value["method"] is None):
    errors.fail(f"give exactly one of --workdir (a trained time-series run) and --method (one of "
                f"{', '.join(SERIES_METHODS)}).")
  if value["method"] is not None and value["method"] not in SERIES_METHODS:
    errors.fail(f"--method={value['method']} reads a face video's colour; for --series use one of "
                f"{', '.join(SERIES_METHODS)}.")
  try:
    band = tuple(float(x) for x in value["band"])
  except ValueError:
    band = ()
  if len(band) != 2 or not 0 < band[0] < band[1]:
    errors.fail(f"--band={','.join(value['band'])}: expected low,high in Hz with 0 < low < high.")
  if not (value["window_seconds"] > 0 and value["step_seconds"] > 0 and value["harmonic"] > 0
          and value["sample_rate"] > 0):
    errors.fail("--window_seconds, --step_seconds, --harmonic and --sample_rate must be positive.")
  if not 0 <= value["min_confidence"] < 1:
    errors.fail(f"--min_confidence={value['min_confidence']}: expected a confidence in [0, 1).")
  try:
    reader = (predict_series.EncoderReader(value["workdir"]) if value["workdir"] else
              predict_series.MethodReader(value["method"], band=band,
                                          harmonic=value["harmonic"],
                                          sample_rate=value["sample_rate"],
                                          source_rate=value["source_rate"],
                                          time_column=value["time_column"]))
    _, status = predict_series.run(value["series"], reader, output=value["output"],
                                   window_seconds=value["window_seconds"],
                                   step_seconds=value["step_seconds"],
                                   min_confidence=value["min_confidence"])
  except InputError as e:
    errors.fail(str(e))
  sys.exit(status)


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  return errors.parse_flags(argv, flag_values)


if __name__ == "__main__":
  app.run(functools.partial(main, defined=define_flags()), flags_parser=parse_flags)
