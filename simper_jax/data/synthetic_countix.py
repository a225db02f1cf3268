"""Synthetic Countix, written in the real on-disk format (the official CSV columns, videos under
both Kinetics namings), so that the real builder, unchanged, reads it (`configs/countix.py`
`synthetic` and `tiny`, tests).

Each video is 10 s at 30 fps of a coloured disc on a textured background. It holds two
repetition segments: in each, the disc swings along a line with a known count and duration
(so a known frequency, 0.5–3 Hz), and between them it rests with a small jitter. The swing is
sinusoidal along one direction: its appearance repeats once per cycle, so the repetition
frequency is the feature signal's fundamental. Some rows name videos that are not written, as
real Countix rows name Kinetics clips that have left YouTube.
"""

import csv
import dataclasses
import os
import tempfile

import cv2
import numpy as np
import tensorflow_datasets as tfds

from simper_jax.data import countix

COLUMNS = ("video_id", "class", "kinetics_start", "kinetics_end", "repetition_start",
           "repetition_end", "count")
FPS = 30.0
SECONDS = 10.0
SEGMENTS = ((0.5, 4.5), (5.5, 9.5))  # the window each segment's times are drawn inside


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """What to write. Every video is a pure function of (seed, split, index)."""
  num_train: int = 24  # videos per split (each gives two rows)
  num_val: int = 4
  num_test: int = 8
  missing_per_split: int = 2  # rows naming a video that is not written
  height: int = 64
  width: int = 64
  frequency_range: tuple[float, float] = (0.5, 3.0)  # Hz
  seed: int = 0


def _segments(rng: np.random.Generator, spec: SyntheticSpec):
  """[(start, end, count)] of one video: durations 2.5–4 s inside SEGMENTS, whole counts
  whose frequency lies in spec.frequency_range."""
  segments = []
  for low, high in SEGMENTS:
    duration = rng.uniform(2.5, min(4.0, high - low))
    start = rng.uniform(low, high - duration)
    low_count = max(1, int(np.ceil(spec.frequency_range[0] * duration)))
    high_count = max(low_count, int(np.floor(spec.frequency_range[1] * duration)))
    count = int(rng.integers(low_count, high_count + 1))
    segments.append((round(start, 2), round(start + duration, 2), count))
  return segments


def render(spec: SyntheticSpec, segments, rng: np.random.Generator) -> np.ndarray:
  """uint8 RGB frames [SECONDS·FPS, H, W, 3] of the disc swinging in each segment."""
  h, w = spec.height, spec.width
  background = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2)
  background = (0.5 * background + 40).astype(np.uint8)
  colour = tuple(int(c) for c in rng.integers(120, 256, 3))
  radius = max(2, min(h, w) // 5)
  angle = rng.uniform(0, np.pi)
  direction = np.array([np.cos(angle), np.sin(angle)])
  amplitude = 0.3 * min(h, w)
  centre = np.array([w / 2, h / 2])
  frames = []
  for k in range(int(SECONDS * FPS)):
    t = k / FPS
    offset = rng.normal(0, 0.3, 2)  # a rest with jitter outside the segments
    for start, end, count in segments:
      if start <= t < end:
        offset = offset + amplitude * np.sin(2 * np.pi * count / (end - start) * (t - start)) \
            * direction
    frame = background.copy()
    x, y = (centre + offset).round().astype(int)
    cv2.circle(frame, (int(x), int(y)), radius, colour, -1)
    frames.append(frame)
  return np.stack(frames)


def write(directory: str, spec: SyntheticSpec) -> dict[str, int]:
  """Writes the CSVs and videos; returns {split: rows with a video}. Videos alternate between
  the plain (`<id>.mp4`, the whole "YouTube video") and the trimmed Kinetics naming
  (`<id>_<start:06d>_<end:06d>.avi`, whose time 0 is <start> in the YouTube video)."""
  videos_dir = os.path.join(directory, "videos")
  os.makedirs(videos_dir, exist_ok=True)
  with_video = {}
  sizes = {"train": spec.num_train, "validation": spec.num_val, "test": spec.num_test}
  for split_number, (split, num_videos) in enumerate(sizes.items()):
    rows = []
    for index in range(num_videos + spec.missing_per_split):
      rng = np.random.default_rng([spec.seed, split_number, index])
      video_id = f"syn{split_number}{index:03d}{'x' if index >= num_videos else 'v'}_cx"
      segments = _segments(rng, spec)
      trimmed = index % 2 == 1
      youtube_start = 30.0 + index if trimmed else 0.0  # the clip's place in its "YouTube video"
      for start, end, count in segments:
        rows.append({"video_id": video_id, "class": "swinging disc",
                     "kinetics_start": youtube_start, "kinetics_end": youtube_start + SECONDS,
                     "repetition_start": round(youtube_start + start, 2),
                     "repetition_end": round(youtube_start + end, 2), "count": count})
      if index >= num_videos:
        continue  # a row whose video has "left YouTube"
      frames = render(spec, segments, rng)
      if trimmed:
        name = f"{video_id}_{int(youtube_start):06d}_{int(youtube_start + SECONDS):06d}.avi"
        fourcc = "MJPG"
      else:
        name, fourcc = f"{video_id}.mp4", "mp4v"
      writer = cv2.VideoWriter(os.path.join(videos_dir, name), cv2.VideoWriter_fourcc(*fourcc),
                               FPS, (spec.width, spec.height))
      for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
      writer.release()
    with open(os.path.join(directory, countix.SPLIT_FILES[split]), "w", newline="") as f:
      writer = csv.DictWriter(f, COLUMNS)
      writer.writeheader()
      writer.writerows(rows)
    with_video[split] = 2 * num_videos
  return with_video


def prepare(builder, fmt: str, spec: SyntheticSpec) -> None:
  """Writes the synthetic files to a temporary directory and prepares `builder` from them with
  the real reader."""
  del fmt
  with tempfile.TemporaryDirectory(prefix="simper_synthetic_countix_") as manual_dir:
    total = spec.num_train + spec.num_val + spec.num_test
    print(f"Writing {total} synthetic Countix videos ({spec.height}×{spec.width}, 10 s) and "
          f"their CSVs in the real format to {manual_dir} ...", flush=True)
    write(manual_dir, spec)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
