"""Synthetic face videos with a pulse, written in the real on-disk formats of SCAMPS, UBFC-rPPG
and PURE, so that the real builders, unchanged, read them (configs' `synthetic` variants, tests).

A cartoon face (that OpenCV's Haar cascade detects) drifts slowly over a textured background;
its skin colour pulses with a PPG-like wave at a known, constant heart rate, green strongest
as in real blood-volume changes. The drift (≤ 0.2 Hz) and the light flicker (0.05 Hz) stay
below the 0.75–2.5 Hz heart-rate band, so the pulse is the only periodicity in it. The pulse
amplitude (`pulse_amplitude`, default 3 % of the skin intensity) is several times that of real
skin: the point is a fast end-to-end check, not a benchmark.
"""

import dataclasses
import json
import os
import tempfile

import cv2
import h5py
import numpy as np
import tensorflow_datasets as tfds

from simper_jax import heart_rate as hr

FORMATS = ("scamps", "ubfc_rppg", "pure")
_MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: simper_jax synthetic data, " \
              b"HDF5 schema 1.00 ."


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """What to write. Every video is a pure function of (seed, index)."""
  num_videos: int = 12
  num_frames: int = 600
  fps: float = 30.0
  height: int = 96
  width: int = 96
  heart_rate_range: tuple[float, float] = (50.0, 130.0)  # bpm
  pulse_amplitude: float = 0.03
  seed: int = 0


def draw_face(height: int, width: int, rng: np.random.Generator):
  """(RGB float image [H, W, 3] in [0, 1], skin mask [H, W]) of a cartoon face on a texture."""
  texture = cv2.GaussianBlur(rng.uniform(0.2, 0.5, (height, width, 3)), (0, 0), 3)
  image = np.ascontiguousarray(texture * rng.uniform(0.6, 1.2, 3), np.float64)
  skin = np.zeros((height, width), np.float64)
  centre = (width // 2, height // 2)
  radius = int(0.32 * min(height, width))
  skin_colour = np.array([0.78, 0.6, 0.47]) * rng.uniform(0.8, 1.1)
  cv2.ellipse(image, centre, (int(0.8 * radius), radius), 0, 0, 360, skin_colour.tolist(), -1)
  cv2.ellipse(skin, centre, (int(0.8 * radius), radius), 0, 0, 360, 1.0, -1)
  eye_y, eye_dx, stroke = centre[1] - radius // 4, int(0.35 * radius), max(1, radius // 16)
  for side in (-1, 1):
    eye = (centre[0] + side * eye_dx, eye_y)
    cv2.ellipse(image, eye, (int(0.18 * radius), int(0.08 * radius)), 0, 0, 360,
                (0.16, 0.16, 0.16), -1)
    cv2.line(image, (eye[0] - radius // 5, eye[1] - radius // 5),
             (eye[0] + radius // 5, eye[1] - int(0.22 * radius)), (0.23, 0.2, 0.2), stroke)
  cv2.ellipse(image, (centre[0], centre[1] + int(0.45 * radius)),
              (int(0.3 * radius), int(0.08 * radius)), 0, 0, 360, (0.55, 0.24, 0.24), -1)
  skin *= image[..., 1] > 0.3  # eyes, brows and mouth are not skin
  return image, skin


def pulse_wave(heart_rate_bpm: float, num_frames: int, fps: float, phase: float) -> np.ndarray:
  """A PPG-like wave: the fundamental plus a weaker second harmonic (the dicrotic notch)."""
  angle = 2 * np.pi * heart_rate_bpm / 60.0 * np.arange(num_frames) / fps + phase
  return np.sin(angle) + 0.3 * np.sin(2 * angle + 0.8)


def render_video(spec: SyntheticSpec, index: int):
  """(RGB uint8 frames [T, H, W, 3], PPG [T], heart rate in bpm) of video `index`."""
  rng = np.random.default_rng([spec.seed, index])
  rate = float(rng.uniform(*spec.heart_rate_range))
  ppg = pulse_wave(rate, spec.num_frames, spec.fps, rng.uniform(0, 2 * np.pi))
  image, skin = draw_face(spec.height, spec.width, rng)
  t = np.arange(spec.num_frames) / spec.fps
  drift_hz = rng.uniform(0.05, 0.2, 2)
  shift_x = 0.04 * spec.width * np.sin(2 * np.pi * drift_hz[0] * t + rng.uniform(0, 6.3))
  shift_y = 0.03 * spec.height * np.sin(2 * np.pi * drift_hz[1] * t + rng.uniform(0, 6.3))
  light = 1 + 0.05 * np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 6.3))
  colour_weights = np.array([0.4, 1.0, 0.6])  # RGB: haemoglobin absorbs green most
  frames = np.empty((spec.num_frames, spec.height, spec.width, 3), np.uint8)
  for k in range(spec.num_frames):
    pulsed = image * (1 + spec.pulse_amplitude * ppg[k] / 1.3 * colour_weights *
                      skin[..., None])
    warp = np.float32([[1, 0, shift_x[k]], [0, 1, shift_y[k]]])
    frame = cv2.warpAffine(pulsed * light[k], warp, (spec.width, spec.height),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    noise = rng.normal(0, 1.0, frame.shape)
    frames[k] = np.clip(np.round(frame * 255 + noise), 0, 255).astype(np.uint8)
  return frames, ppg, rate


def write(fmt: str, directory: str, spec: SyntheticSpec) -> dict[str, float]:
  """Writes `spec.num_videos` videos in format `fmt` under `directory`.

  Returns:
    {video_id: heart rate in bpm} as the builder will name the videos.
  """
  writers = {"scamps": _write_scamps, "ubfc_rppg": _write_ubfc, "pure": _write_pure}
  if fmt not in writers:
    raise ValueError(f"Unknown synthetic format {fmt!r}; expected one of {FORMATS}.")
  os.makedirs(directory, exist_ok=True)
  rates = {}
  for index in range(spec.num_videos):
    frames, ppg, rate = render_video(spec, index)
    rates[writers[fmt](directory, index, spec, frames, ppg, rate)] = rate
  return rates


def write_mat(path: str, fields: dict) -> None:
  """A MATLAB v7.3 .mat: HDF5 behind MATLAB's 512-byte header, arrays with axes reversed (as
  MATLAB writes them) and a MATLAB_class attribute."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for name, value in fields.items():
      value = np.asarray(value)
      dataset = f.create_dataset(name, data=value.T, compression="gzip", compression_opts=1)
      dataset.attrs["MATLAB_class"] = np.bytes_({np.float32: "single"}.get(value.dtype.type,
                                                                           "double"))
  with open(path, "r+b") as f:
    header = _MAT_HEADER.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
    f.write(header.ljust(512, b"\0"))


def _write_scamps(directory, index, spec, frames, ppg, rate):
  # The rPPG-Toolbox layout: 60 % Train, 20 % Val, 20 % Test by index.
  split = ("Train", "Train", "Train", "Val", "Test")[index % 5]
  os.makedirs(os.path.join(directory, split), exist_ok=True)
  video_id = f"P{index + 1:06d}"
  # MATLAB Xsub [H, W, 3, T] of single floats in [0, 1]; h5py sees [T, 3, W, H].
  xsub = np.transpose(frames.astype(np.float32) / 255.0, (1, 2, 3, 0))
  write_mat(os.path.join(directory, split, f"{video_id}.mat"),
            {"Xsub": xsub, "d_ppg": ppg[:, None], "d_br": np.zeros((len(ppg), 1))})
  return video_id


def _write_ubfc(directory, index, spec, frames, ppg, rate):
  video_id = f"subject{index + 1}"
  folder = os.path.join(directory, video_id)
  os.makedirs(folder, exist_ok=True)
  writer = cv2.VideoWriter(os.path.join(folder, "vid.avi"), cv2.VideoWriter_fourcc(*"FFV1"),
                           spec.fps, (spec.width, spec.height))  # FFV1: lossless
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()
  timestamps = np.arange(len(ppg)) / spec.fps
  with open(os.path.join(folder, "ground_truth.txt"), "w") as f:
    for values in (ppg, np.full(len(ppg), rate), timestamps):
      f.write(" ".join(f"{v:.7e}" for v in values) + "\n")
  return video_id


def _write_pure(directory, index, spec, frames, ppg, rate):
  subject, setup = index // 2 + 1, index % 2 + 1  # two setups per subject
  video_id = f"{subject:02d}-{setup:02d}"
  frame_dir = os.path.join(directory, video_id, video_id)
  os.makedirs(frame_dir, exist_ok=True)
  start_ns = 1_392_643_990_000_000_000 + index * 10**11
  frame_ns = start_ns + np.round(np.arange(len(frames)) / spec.fps * 1e9).astype(np.int64)
  for frame, stamp in zip(frames, frame_ns):
    cv2.imwrite(os.path.join(frame_dir, f"Image{stamp}.png"),
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  # The oximeter samples at 60 Hz: the wave at twice the frame rate, with its own clock.
  oximeter_t = np.arange(2 * len(frames)) / (2 * spec.fps)
  wave = np.interp(oximeter_t, np.arange(len(ppg)) / spec.fps, ppg)
  package = [{"Timestamp": int(start_ns + t * 1e9),
              "Value": {"waveform": float(w), "pulseRate": round(rate), "o2saturation": 98,
                        "signalStrength": 5}} for t, w in zip(oximeter_t, wave)]
  with open(os.path.join(directory, video_id, f"{video_id}.json"), "w") as f:
    json.dump({"/FullPackage": package,
               "/Image": [{"Timestamp": int(s)} for s in frame_ns]}, f)
  return video_id


def prepare(builder, fmt: str, spec: SyntheticSpec) -> None:
  """Writes the synthetic files to a temporary directory, prepares `builder` from them with
  the real reader, and checks the labels: the HR protocol on each test video's ground-truth
  PPG, as the builder stored it, against the heart rate the video was generated with."""
  with tempfile.TemporaryDirectory(prefix=f"simper_synthetic_{fmt}_") as manual_dir:
    print(f"Writing {spec.num_videos} synthetic {fmt} videos ({spec.num_frames} frames, "
          f"{spec.height}×{spec.width}) in the real format to {manual_dir} ...", flush=True)
    rates = write(fmt, manual_dir, spec)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  test = builder.as_data_source()["test"]
  clips = {}
  for example in (test[i] for i in range(len(test))):
    clips.setdefault(example["video_id"].decode(), []).append(
        (int(example["clip_index"]), example["ppg"]))
  errors = [abs(hr.heart_rate(np.concatenate([p for _, p in sorted(c)]), spec.fps) - rates[v])
            for v, c in clips.items()]
  print(f"Synthetic labels: the HR protocol on the stored ground-truth PPG of the {len(errors)} "
        f"test videos recovers their generated heart rates within {max(errors):.2f} bpm "
        f"(mean {np.mean(errors):.2f}).", flush=True)
