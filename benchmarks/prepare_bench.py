"""What preparing an rPPG dataset costs: seconds per video and bytes per clip on disk.

    python benchmarks/prepare_bench.py [--formats=scamps,ubfc_rppg,pure] [--videos=2]

Writes `--videos` synthetic videos per format at the real datasets' resolution and length
(SCAMPS: 240×240 Xsub, 600 frames; UBFC-rPPG: 640×480 vid.avi, 1 min; PURE: 640×480 PNGs,
1 min) into a temporary directory, then times the real builder preparing them with the
default config (face crop, 72×72, 180-frame clips) and one worker per video. Generation is
not timed. Real files differ in codec and noise, so take the figures as an estimate of the
reading/cropping/writing cost, not of your disk.
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from simper_jax.data import pipeline
from simper_jax.data import rppg
from simper_jax.data import synthetic_rppg as syn

_FORMATS = flags.DEFINE_list("formats", ["scamps", "ubfc_rppg", "pure"], "Formats to time.")
_VIDEOS = flags.DEFINE_integer("videos", 2, "Videos per format (at least enough for a train "
                                "and a test split: 5 SCAMPS, 2 UBFC, 3 PURE).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Preparation threads.")
# The synthetic writers put SCAMPS videos 0-2 in Train, 4 in Test; PURE has 2 per subject.
MIN_VIDEOS = {"scamps": 5, "ubfc_rppg": 2, "pure": 3}
REAL_SIZE = {"scamps": dict(num_frames=600, height=240, width=240),
             "ubfc_rppg": dict(num_frames=1800, height=480, width=640),
             "pure": dict(num_frames=1800, height=480, width=640)}


def main(_):
  for fmt in _FORMATS.value:
    spec = syn.SyntheticSpec(num_videos=max(_VIDEOS.value, MIN_VIDEOS[fmt]), **REAL_SIZE[fmt])
    with tempfile.TemporaryDirectory() as tmp:
      start = time.perf_counter()
      syn.write(fmt, os.path.join(tmp, "manual"), spec)
      generated = time.perf_counter() - start
      input_bytes = _du(os.path.join(tmp, "manual"))
      module_name, class_name = pipeline.DATASETS[fmt]
      module = __import__(module_name, fromlist=[class_name])
      builder = getattr(module, class_name)(
          config=rppg.make_config(face_crop=fmt != "scamps", train_fraction=0.5,
                                  num_workers=_WORKERS.value),
          data_dir=os.path.join(tmp, "tfds"), file_format="array_record")
      start = time.perf_counter()
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=os.path.join(tmp, "manual")))
      prepared = time.perf_counter() - start
      num_clips = sum(len(s) for s in builder.as_data_source().values())
      output_bytes = _du(os.path.join(tmp, "tfds"))
    print(f"{fmt}: {spec.num_videos} videos of {spec.num_frames} frames at "
          f"{spec.width}×{spec.height} ({input_bytes / spec.num_videos / 1e6:.0f} MB each as "
          f"written, generated in {generated:.0f} s)\n"
          f"  prepare  {prepared / spec.num_videos:6.1f} s/video with {_WORKERS.value} "
          f"worker(s)\n"
          f"  on disk  {output_bytes / num_clips / 1e6:6.2f} MB/clip ({num_clips} clips of 180 "
          f"frames at 72×72)", flush=True)


def _du(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
             for f in files)


if __name__ == "__main__":
  app.run(main)
