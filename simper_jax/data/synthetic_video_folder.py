"""A synthetic folder of "your own videos", written the way such folders come (`configs/videos.py`
`synthetic` and `tiny`, tests): read by the real video_folder builder, unchanged.

What it holds, under DIR:
  site_a/p01/rest.avi, site_b/p02/walk.mp4, ...   nested sub-folders, one per site and subject;
      containers and codecs in turn (MJPG .avi, mp4v .mp4 and .mov, FFV1 .mkv), each video at
      its own frame rate (24, 25, 30 or 60 fps): the builder must resample by timestamps.
  labels.csv      video,rate_hz,start_s,end_s,subject: a row per video (some ids written with
      their extension, as people do), and for the videos whose rate changes halfway two
      segment rows; one video has no row (unlabelled), and one row names a video that is not
      there.
  signals/<id>.csv  time_s,value: the swing's position, sampled at an irregular ~50 Hz (one
      file without a header), from which the heart-rate protocol reads the rate.
  split.csv       video,split for two videos (of two subjects); the other subjects are split
      by the hash rule.
  notes.txt, site_a/README.md   files that are not videos.

Each video shows a disc swinging sinusoidally on a fixed texture at the video's rate
(0.75–2.5 Hz, the heart-rate band, so the signals also give heart rates), with a slow
drift of the whole scene, a brightness flicker and sensor noise, then the codec's compression:
an FFT of a pixel's brightness does not simply read the rate off.
"""

import csv
import dataclasses
import os

import cv2
import numpy as np

from simper_jax.data import common

# (container, fourcc) in turn, and the frame rates the videos are written at.
CODECS = ((".avi", "MJPG"), (".mp4", "mp4v"), (".mkv", "FFV1"), (".mov", "mp4v"))
SOURCE_FPS = (24.0, 25.0, 30.0, 60.0)
SITES = ("site_a", "site_b")
ACTIVITIES = ("rest", "walk", "talk")
SIGNAL_RATE_HZ = 50.0


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """What to write. Every video is a pure function of (seed, index)."""
  num_videos: int = 12
  seconds: float = 24.0  # each video's length
  height: int = 64
  width: int = 80
  rate_range: tuple[float, float] = (0.75, 2.5)  # Hz
  seed: int = 0


def video_plan(spec: SyntheticSpec) -> list[dict]:
  """One dict per video: its id, file extension and codec, frame rate, subject, its rates
  (two for a video whose rate changes halfway) and the swing's starting phase."""
  rng = np.random.default_rng(spec.seed)
  plan = []
  for i in range(spec.num_videos):
    subject = f"p{i // 2 + 1:02d}"  # two videos per subject: group_by keeps them together
    site = SITES[(i // 2) % len(SITES)]
    ext, fourcc = CODECS[i % len(CODECS)]
    rates = [float(rng.uniform(*spec.rate_range))]
    if i % 4 == 3:  # every fourth video changes its rate halfway
      rates.append(float(rng.uniform(*spec.rate_range)))
    plan.append({"id": f"{site}/{subject}/{ACTIVITIES[i % len(ACTIVITIES)]}{i}", "ext": ext,
                 "fourcc": fourcc, "fps": SOURCE_FPS[i % len(SOURCE_FPS)], "subject": subject,
                 "rates": rates, "phase0": float(rng.uniform(0, 2 * np.pi))})
  return plan


def swing_phase(times: np.ndarray, rates: list, seconds: float, phase0: float) -> np.ndarray:
  """The swing's phase at `times`: the integral of its rate (one rate, or the first until
  halfway and the second after)."""
  half = seconds / 2
  if len(rates) == 1:
    return phase0 + 2 * np.pi * rates[0] * times
  return phase0 + 2 * np.pi * np.where(times < half, rates[0] * times,
                                       rates[0] * half + rates[1] * (times - half))


def render(spec: SyntheticSpec, video: dict, index: int) -> np.ndarray:
  """uint8 RGB frames [n, H, W, 3] of one video at its own frame rate."""
  rng = np.random.default_rng([spec.seed, index])
  h, w = spec.height, spec.width
  texture = cv2.GaussianBlur(rng.uniform(40, 200, (h + 16, w + 16, 3)).astype(np.float32),
                             (0, 0), 2.0)
  times = np.arange(int(spec.seconds * video["fps"])) / video["fps"]
  phase = swing_phase(times, video["rates"], spec.seconds, video["phase0"])
  colour = rng.uniform(60, 255, 3)
  radius = max(3, min(h, w) // 7)
  yy, xx = np.mgrid[0:h, 0:w]
  frames = np.empty((len(times), h, w, 3), np.uint8)
  drift = rng.uniform(0.02, 0.06)  # Hz: the whole scene pans slowly back and forth
  for k, t in enumerate(times):
    dx = int(round(6 * np.sin(2 * np.pi * drift * t)))
    scene = texture[8:8 + h, 8 + dx:8 + dx + w].copy()
    cx = w / 2 + 0.3 * w * np.sin(phase[k])
    cy = h / 2 + 0.1 * h * np.cos(phase[k] / 2)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
    scene[disc] = colour
    flicker = 1 + 0.08 * np.sin(2 * np.pi * 0.37 * t) + 0.03 * rng.normal()
    scene = scene * flicker + rng.normal(0, 6, scene.shape)
    frames[k] = np.clip(scene, 0, 255).astype(np.uint8)
  return frames


def write(directory: str, spec: SyntheticSpec) -> dict:
  """Writes the folder; returns {video id: {"path", "rates", "fps", "subject"}} (the truth)."""
  plan = video_plan(spec)
  truth = {}
  for i, video in enumerate(plan):
    path = os.path.join(directory, video["id"] + video["ext"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frames = render(spec, video, i)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*video["fourcc"]), video["fps"],
                             (spec.width, spec.height))
    if not writer.isOpened():
      raise RuntimeError(f"OpenCV cannot write {path} ({video['fourcc']}).")
    for frame in frames:
      writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    truth[video["id"]] = {"path": path, "rates": video["rates"], "fps": video["fps"],
                          "subject": video["subject"]}
    _write_signal(directory, spec, video, i)
  _write_labels(directory, spec, plan)
  with open(os.path.join(directory, "split.csv"), "w", newline="") as f:
    f.write("video,split\n")
    # Subject p01 (videos 0 and 1) in train, p02's first video in test: group_by keeps p02's
    # second video with it.
    f.write(f"{plan[0]['id']},train\n{plan[2]['id']}{plan[2]['ext']},test\n")
  with open(os.path.join(directory, "notes.txt"), "w") as f:
    f.write("Recorded in two sites; see labels.csv.\n")
  with open(os.path.join(directory, SITES[0], "README.md"), "w") as f:
    f.write("# site a\n")
  return truth


def _write_labels(directory: str, spec: SyntheticSpec, plan: list) -> None:
  """labels.csv: a row per video, two segment rows where the rate changes, one video left
  without a row, one row for a video that is not in the folder."""
  half = spec.seconds / 2
  with open(os.path.join(directory, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["video", "rate_hz", "start_s", "end_s", "subject"])
    for i, video in enumerate(plan):
      if i == len(plan) - 2:
        continue  # no row: an unlabelled video
      name = video["id"] + (video["ext"] if i % 3 == 1 else "")  # some ids with extension
      if len(video["rates"]) == 1:
        writer.writerow([name, f"{video['rates'][0]:.4f}", "", "", video["subject"]])
      else:
        writer.writerow([name, f"{video['rates'][0]:.4f}", "0", f"{half:g}", video["subject"]])
        writer.writerow([name, f"{video['rates'][1]:.4f}", f"{half:g}", f"{spec.seconds:g}",
                         video["subject"]])
    writer.writerow(["site_b/p99/gone7", "1.2", "", "", "p99"])


def _write_signal(directory: str, spec: SyntheticSpec, video: dict, index: int) -> None:
  """signals/<id>.csv: the swing's horizontal position at irregular ~50 Hz sample times."""
  rng = np.random.default_rng([spec.seed, index, 1])
  times = np.cumsum(rng.uniform(0.5, 1.5, int(spec.seconds * SIGNAL_RATE_HZ)) / SIGNAL_RATE_HZ)
  times = times[times < spec.seconds] - times[0]
  values = np.sin(swing_phase(times, video["rates"], spec.seconds, video["phase0"]))
  path = os.path.join(directory, "signals", video["id"] + ".csv")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="") as f:
    if index != 2:  # one file without a header
      f.write("time_s,value\n")
    f.writelines(f"{t:.4f},{v:.5f}\n" for t, v in zip(times, values))


def ensure_folder(data_dir: str, spec: SyntheticSpec, log) -> str:
  """The synthetic folder for `spec` under data_dir, written on first use."""
  return common.synthetic_folder(
      data_dir, "video_folder", spec, write, log,
      f"{spec.num_videos} synthetic videos ({spec.width}×{spec.height}, {spec.seconds:g} s, "
      f"nested folders, 4 containers, labels.csv, signals/, split.csv)")
