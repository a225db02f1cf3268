"""PURE (Stricker et al. 2014): 10 subjects × 6 setups, 30 Hz PNG frames (docs/heart-rate.md).

Layout: `XX-YY/XX-YY/*.png` (frames, in name order) and `XX-YY/XX-YY.json` with `/Image`
(one {"Timestamp"} per frame) and `/FullPackage` (pulse-oximeter samples, 60 Hz:
{"Timestamp", "Value": {"waveform", ...}}). The waveform is resampled onto the frame
timestamps. Timestamps are taken to be nanoseconds (*unverified*; only their differences are
used, and the frame rate is read from them). XX is the subject, YY the setup (the id↔setup
mapping is *unverified*). Split: subject-wise, the first `train_fraction` of subjects train.
"""

import glob
import json
import os
import re

import cv2
import numpy as np

from simper_jax.data import common
from simper_jax.data import rppg

_FRAMES_PER_READ = 60

make_config = rppg.make_config  # the name pipeline.get_builder looks up


class Pure(rppg.RppgBuilder):
  """PURE face-video clips with their PPG and per-clip heart rate."""

  DATASET = "PURE"
  LAYOUT = ("  01-01/01-01/Image*.png  01-01/01-01.json  ...  10-06/...\n"
            "(PURE, obtained from TU Ilmenau: https://www.tu-ilmenau.de/neurob/data-sets-code/"
            "pulse-rate-detection-dataset-pure)")
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def list_videos(self, manual_dir):
    recordings = sorted(name for name in os.listdir(manual_dir)
                        if re.fullmatch(r"\d+-\d+", name)
                        and os.path.isdir(os.path.join(manual_dir, name)))
    if not recordings:
      raise common.DataNotFoundError(
          f"PURE not found: {manual_dir} holds no XX-YY/ recording folders.\n"
          f"{self.manual_instructions()}")
    entries = [rppg.VideoEntry(video_id=name, subject=name.split("-")[0],
                               path=os.path.join(manual_dir, name)) for name in recordings]
    entries.sort(key=lambda e: tuple(int(part) for part in e.video_id.split("-")))
    return rppg.split_by_subject(entries, self.builder_config.train_fraction)

  def read_video(self, entry):
    name = entry.video_id
    json_path = os.path.join(entry.path, f"{name}.json")
    frame_paths = sorted(glob.glob(os.path.join(entry.path, name, "*.png")))
    if not frame_paths:
      raise common.DataError(f"{os.path.join(entry.path, name)}: no .png frames; expected "
                             f"the recording's frames there.")
    frame_times, wave_times, waveform = read_json(json_path)
    if len(frame_times) != len(frame_paths):
      raise common.DataError(
          f"{json_path}: /Image lists {len(frame_times)} frames but "
          f"{os.path.join(entry.path, name)} holds {len(frame_paths)} .png files; expected "
          f"one timestamp per frame.")
    seconds = (frame_times - frame_times[0]) * 1e-9
    fps = (len(seconds) - 1) / seconds[-1] if seconds[-1] > 0 else 30.0

    def frames():
      for begin in range(0, len(frame_paths), _FRAMES_PER_READ):
        chunk = []
        for path in frame_paths[begin:begin + _FRAMES_PER_READ]:
          image = cv2.imread(path, cv2.IMREAD_COLOR)
          if image is None:
            raise common.DataError(f"{path}: OpenCV cannot read it as an image.")
          chunk.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        yield np.stack(chunk)

    return rppg.RawVideo(
        frames=frames(), fps=float(fps),
        ppg_at_frames=lambda n: rppg.resample(waveform, wave_times, frame_times)[:n])


def read_json(path: str):
  """(frame timestamps [F], waveform timestamps [S], waveform [S]) of a PURE recording."""
  if not os.path.exists(path):
    raise common.DataError(f"{path}: missing; every PURE recording XX-YY has XX-YY.json.")
  try:
    with open(path) as f:
      data = json.load(f)
    frame_times = np.asarray([item["Timestamp"] for item in data["/Image"]], np.float64)
    package = data["/FullPackage"]
    wave_times = np.asarray([item["Timestamp"] for item in package], np.float64)
    waveform = np.asarray([item["Value"]["waveform"] for item in package], np.float64)
  except json.JSONDecodeError as e:
    raise common.DataError(f"{path}: not valid JSON ({e}).") from e
  except (KeyError, TypeError) as e:
    raise common.DataError(
        f"{path}: missing {e}; expected '/Image': [{{'Timestamp'}}...] and '/FullPackage': "
        f"[{{'Timestamp', 'Value': {{'waveform', ...}}}}...].") from e
  if len(wave_times) < 2:
    raise common.DataError(f"{path}: /FullPackage has {len(wave_times)} samples; expected the "
                           f"pulse-oximeter recording.")
  return frame_times, wave_times, waveform
