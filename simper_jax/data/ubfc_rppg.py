"""UBFC-rPPG (DATASET_2): 42 subjects filmed at 30 fps with a pulse oximeter (docs/heart-rate.md).

Layout: `subjectN/vid.avi` and `subjectN/ground_truth.txt`, the latter three lines of
space-separated numbers: PPG, HR (bpm), timestamps (s). Frames decode as BGR and are
converted to RGB. The PPG is resampled onto the frame times (frame k at k / fps) by its
timestamps. Split: subject-wise, the first `train_fraction` of subjects in number order train.
Faces of subjects 21 and 27 must not appear in publications.
"""

import os
import re

import cv2
import numpy as np

from simper_jax.data import common
from simper_jax.data import rppg
from simper_jax.data import video as video_io

_FRAMES_PER_READ = 60

make_config = rppg.make_config  # the name pipeline.get_builder looks up


class UbfcRppg(rppg.RppgBuilder):
  """UBFC-rPPG face-video clips with their PPG and per-clip heart rate."""

  DATASET = "UBFC-rPPG"
  LAYOUT = ("  subject1/vid.avi  subject1/ground_truth.txt  ...  subject49/...\n"
            "(UBFC-rPPG DATASET_2, obtained from its authors: "
            "https://sites.google.com/view/ybenezeth/ubfcrppg)")
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def list_videos(self, manual_dir):
    subjects = {}
    for name in os.listdir(manual_dir):
      match = re.fullmatch(r"subject(\d+)", name)
      if match and os.path.isdir(os.path.join(manual_dir, name)):
        subjects[int(match.group(1))] = name
    if not subjects:
      raise common.DataNotFoundError(
          f"UBFC-rPPG not found: {manual_dir} holds no subjectN/ folders.\n"
          f"{self.manual_instructions()}")
    entries = [rppg.VideoEntry(video_id=name, subject=name, path=os.path.join(manual_dir, name))
               for _, name in sorted(subjects.items())]
    return rppg.split_by_subject(entries, self.builder_config.train_fraction)

  def read_video(self, entry):
    video_path = os.path.join(entry.path, "vid.avi")
    ppg, timestamps = read_ground_truth(os.path.join(entry.path, "ground_truth.txt"))
    if not os.path.exists(video_path):
      raise common.DataError(f"{video_path}: missing; every UBFC subject folder holds vid.avi.")
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
      raise common.DataError(f"{video_path}: OpenCV cannot open it as a video.")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0

    def ppg_at_frames(num_frames):
      if len(ppg) == num_frames:
        return ppg
      return rppg.resample(ppg, timestamps - timestamps[0], np.arange(num_frames) / fps)

    return rppg.RawVideo(frames=video_io.video_chunks(capture, _FRAMES_PER_READ), fps=fps,
                         ppg_at_frames=ppg_at_frames)


def read_ground_truth(path: str):
  """(PPG [n], timestamps [n] in s) from a UBFC-rPPG DATASET_2 ground_truth.txt."""
  if not os.path.exists(path):
    raise common.DataError(f"{path}: missing; every UBFC subject folder holds ground_truth.txt.")
  with open(path) as f:
    lines = [line for line in f.read().splitlines() if line.strip()]
  if len(lines) != 3:
    raise common.DataError(f"{path}: {len(lines)} non-empty lines; expected 3 (PPG, heart rate, "
                           f"timestamps), as in UBFC-rPPG DATASET_2.")
  try:
    ppg, _, timestamps = (np.asarray(line.split(), np.float64) for line in lines)
  except ValueError as e:
    raise common.DataError(f"{path}: a line is not space-separated numbers ({e}).") from e
  if len(ppg) != len(timestamps) or len(ppg) < 2:
    raise common.DataError(f"{path}: {len(ppg)} PPG samples but {len(timestamps)} timestamps; "
                           f"expected the same number, at least 2.")
  return ppg, timestamps

