"""How long a first try on your own videos takes: configs/videos.py with no overrides on a
folder of `--videos` videos of one to five minutes, end to end (prepare, train, evaluate).

    python benchmarks/first_try_bench.py [--videos=60] [--width=320 --height=240]

Writes the folder first (not timed: each video a distinct 10-s loop of the synthetic folder's
swinging disc, repeated to its length of 60–300 s, MJPG at 30 fps, nested site/subject
folders, a labels.csv), then runs `python -m simper_jax.main --config=configs/videos.py` on it
in a fresh data_dir and workdir and prints its wall time and the times the run itself reports
for each phase. Frame size matters: decoding is most of the preparation, and a 1080p phone
video decodes many times slower than these frames (benchmarks/prepare_bench.py
--formats=video_folder gives the decode rate at 640×480).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simper_jax.data import synthetic_video_folder as syn  # noqa: E402  pylint: disable=g-import-not-at-top

_VIDEOS = flags.DEFINE_integer("videos", 60, "Videos in the folder.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width written.")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height written.")
_KEEP = flags.DEFINE_string("keep", None, "Keep the folder and run here instead of a temporary "
                            "directory.")
FPS = 30.0
LOOP_SECONDS = 10.0


def write_folder(folder: str, num_videos: int, width: int, height: int) -> float:
  """The folder; returns its total video length in seconds."""
  spec = syn.SyntheticSpec(num_videos=num_videos, seconds=LOOP_SECONDS, height=height,
                           width=width)
  rng = np.random.default_rng(0)
  total, rows = 0.0, ["video,rate_hz,subject"]
  for i, video in enumerate(syn.video_plan(spec)):
    # One rate per video (the loop repeats whole periods): a 10-s loop at k/10 Hz is seamless.
    rate = round(video["rates"][0] * LOOP_SECONDS) / LOOP_SECONDS
    video = {**video, "rates": [rate], "fps": FPS}
    loop = syn.render(spec, video, i)
    seconds = float(rng.uniform(60, 300))
    path = os.path.join(folder, video["id"] + ".avi")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    for k in range(int(seconds * FPS)):
      writer.write(cv2.cvtColor(loop[k % len(loop)], cv2.COLOR_RGB2BGR))
    writer.release()
    total += seconds
    rows.append(f"{video['id']},{rate:.4f},{video['subject']}")
  with open(os.path.join(folder, "labels.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
  return total


def main(_):
  with tempfile.TemporaryDirectory() as tmp:
    root = _KEEP.value or tmp
    folder = os.path.join(root, "videos")
    start = time.perf_counter()
    total = write_folder(folder, _VIDEOS.value, _WIDTH.value, _HEIGHT.value)
    print(f"Wrote {_VIDEOS.value} videos, {total / 60:.0f} min in all ({total / 60 / _VIDEOS.value:.1f} "
          f"min each on average), {_WIDTH.value}×{_HEIGHT.value} MJPG at {FPS:g} fps, in "
          f"{time.perf_counter() - start:.0f} s (not timed below).", flush=True)
    command = [sys.executable, "-m", "simper_jax.main", "--config=configs/videos.py",
               f"--config.data.manual_dir={folder}",
               f"--config.data.data_dir={os.path.join(root, 'tfds')}",
               f"--workdir={os.path.join(root, 'run')}"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode != 0:
      print(log[-3000:])
      raise SystemExit(f"the run failed (exit {result.returncode})")
    phases = {
        "prepare": r"Prepared video_folder in (\d+) s",
        "compile": r"Compiled the train step in ([\d.]+) s",
        "train": r"Trained steps \d+–\d+ in (\d+) s",
        "evaluate": r"evaluation took (\d+) s",
    }
    found = {name: re.search(pattern, log) for name, pattern in phases.items()}
    print(f"configs/videos.py (defaults) end to end: {wall / 60:.1f} min wall ("
          + ", ".join(f"{name} {float(m.group(1)):.0f} s" for name, m in found.items() if m)
          + ")")
    table = log[log.rfind("Test results"):].splitlines()[:7]
    print("\n".join(table))


if __name__ == "__main__":
  app.run(main)
