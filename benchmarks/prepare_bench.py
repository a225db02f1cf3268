"""What preparing a dataset costs: seconds per video (or per map) and bytes per example on disk.

    python benchmarks/prepare_bench.py [--formats=scamps,ubfc_rppg,pure,countix,lst,video_folder,
                                                  timeseries]
                                       [--videos=2]

Writes `--videos` synthetic videos per format at the real datasets' resolution and length
(SCAMPS: 240×240 Xsub, 600 frames; UBFC-rPPG: 640×480 vid.avi, 1 min; PURE: 640×480 PNGs,
1 min) into a temporary directory, then times the real builder preparing them with the
default config (face crop, 72×72, 180-frame clips) and one worker per video. Generation is
not timed. Real files differ in codec and noise, so take the figures as an estimate of the
reading/cropping/writing cost, not of your disk.

Countix: `--videos` synthetic 10-s Kinetics-like clips at 640×360, 30 fps (two repetition rows
each, both file namings), prepared with the default config (64 frames at 10 fps, 112×112).
LST: 90 days of hourly 128×192 maps in ERA5's packed-int16 NetCDF layout, two files, prepared
with the default config (16×16 tiles, 72-h windows every 24 h).

video_folder (your own videos): `--videos` synthetic videos (at least 4) of 30 s at 640×480,
in the synthetic folder's four containers and frame rates (MJPG, MPEG-4, FFV1; 24–60 fps),
prepared with configs/videos.py's default fields (15 fps, centre crop, 32×32, 6-s clips) with
1 and `--workers` threads — beside OpenCV's bare decode of the same files (every frame read,
nothing else) with as many threads, in the same run: the decode is the physical limit of
preparing, and the ratio says what cropping, resampling and writing add.

timeseries (your own recordings): 8 synthetic wrist recordings of `--minutes` minutes at
~50 Hz, once as CSV (epoch-ns times) and once as Parquet (datetimes), prepared with
configs/timeseries.py's default fields and `--workers` threads, in the same run beside pandas'
bare read of the same files (read_csv / read_parquet, nothing else) and beside the floor of any
resampling reader (that read + np.interp of every channel onto the grid): MB/s of input for
reading and windowing (load_recording + make_windows), then for the whole preparation with
TFDS's per-example serialization and the array_record write.
"""

import concurrent.futures
import contextlib
import io
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import cv2
import tensorflow_datasets as tfds

from simper_jax.data import pipeline
from simper_jax.data import rppg
from simper_jax.data import synthetic_rppg as syn

_FORMATS = flags.DEFINE_list("formats", ["scamps", "ubfc_rppg", "pure", "countix", "lst",
                                         "video_folder"], "Formats to time.")
_VIDEOS = flags.DEFINE_integer("videos", 2, "Videos per format (at least enough for a train "
                                "and a test split: 5 SCAMPS, 2 UBFC, 3 PURE).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Preparation threads.")
_MINUTES = flags.DEFINE_float("minutes", 30.0, "timeseries: minutes per recording.")
# The synthetic writers put SCAMPS videos 0-2 in Train, 4 in Test; PURE has 2 per subject.
MIN_VIDEOS = {"scamps": 5, "ubfc_rppg": 2, "pure": 3}
REAL_SIZE = {"scamps": dict(num_frames=600, height=240, width=240),
             "ubfc_rppg": dict(num_frames=1800, height=480, width=640),
             "pure": dict(num_frames=1800, height=480, width=640)}


def main(_):
  tfds.disable_progress_bar()  # our own lines below say what was measured
  logging.set_verbosity(logging.WARNING)  # TFDS logs every shard it writes at INFO
  for fmt in _FORMATS.value:
    if fmt == "video_folder":
      _bench_video_folder()
      continue
    if fmt == "timeseries":
      _bench_timeseries()
      continue
    if fmt in OTHER_FORMATS:
      _bench_other(fmt)
      continue
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


# Countix and LST: what one input item is (plural, singular).
OTHER_FORMATS = {"countix": ("videos", "video"), "lst": ("days of maps", "day")}


def _bench_other(fmt: str) -> None:
  """Times the Countix or LST builder, default config, on realistic-size synthetic files."""
  module_name, class_name = pipeline.DATASETS[fmt]
  module = __import__(module_name, fromlist=[class_name])
  writer = __import__(pipeline.SYNTHETIC[fmt], fromlist=["SyntheticSpec"])
  if fmt == "countix":
    videos = max(_VIDEOS.value, 2)
    spec = writer.SyntheticSpec(num_train=videos, num_val=1, num_test=videos,
                                missing_per_split=0, height=360, width=640)
    inputs, fields = 2 * videos + 1, {"num_workers": _WORKERS.value}
  else:
    spec = writer.SyntheticSpec(num_days=90, num_latitudes=128, num_longitudes=192)
    inputs, fields = spec.num_days, {}
  with tempfile.TemporaryDirectory() as tmp:
    manual = os.path.join(tmp, "manual")
    start = time.perf_counter()
    writer.write(manual, spec)
    generated = time.perf_counter() - start
    input_bytes = _du(manual)
    builder = getattr(module, class_name)(config=module.make_config(**fields),
                                          data_dir=os.path.join(tmp, "tfds"),
                                          file_format="array_record")
    start = time.perf_counter()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual))
    prepared = time.perf_counter() - start
    num_examples = sum(len(s) for s in builder.as_data_source().values())
    output_bytes = _du(os.path.join(tmp, "tfds"))
    shape = builder.info.features["video"].shape
  plural, singular = OTHER_FORMATS[fmt]
  print(f"{fmt}: {inputs} {plural} ({input_bytes / 1e6:.0f} MB as written, "
        f"generated in {generated:.0f} s)\n"
        f"  prepare  {prepared / inputs:6.2f} s per {singular}"
        f"{' (' + str(_WORKERS.value) + ' worker(s))' if fmt == 'countix' else ''}, "
        f"{prepared:.0f} s in all\n"
        f"  on disk  {output_bytes / num_examples / 1e6:6.3f} MB/example ({num_examples} "
        f"examples of {shape})", flush=True)


def _bare_decode(path: str) -> int:
  """Frames in `path`, every one decoded by OpenCV and dropped: the least any reader does."""
  capture, frames = cv2.VideoCapture(path), 0
  while capture.grab() and capture.retrieve()[0]:
    frames += 1
  capture.release()
  return frames


def _bench_video_folder() -> None:
  """Times the video_folder builder (configs/videos.py's defaults) beside the bare decode."""
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from configs import videos  # pylint: disable=g-import-not-at-top
  from simper_jax.data import synthetic_video_folder as syn_folder  # pylint: disable=g-import-not-at-top
  from simper_jax.data import video_folder  # pylint: disable=g-import-not-at-top
  spec = syn_folder.SyntheticSpec(num_videos=max(_VIDEOS.value, 4), seconds=30.0, height=480,
                                  width=640)
  fields = {k: v for k, v in videos.get_config().data.builder.to_dict().items()
            if k in video_folder.VideoFolderConfig.__dataclass_fields__}
  with tempfile.TemporaryDirectory() as tmp:
    manual = os.path.join(tmp, "manual")
    start = time.perf_counter()
    truth = syn_folder.write(manual, spec)
    generated = time.perf_counter() - start
    paths = [t["path"] for t in truth.values()]
    print(f"video_folder: {len(paths)} videos of {spec.seconds:g} s at {spec.width}×"
          f"{spec.height}, 24–60 fps ({_du(manual) / 1e6:.0f} MB as written, generated in "
          f"{generated:.0f} s); default config: {fields['fps']:g} fps, {fields['crop']} crop, "
          f"{fields['image_size']}², {fields['num_frames']}-frame clips", flush=True)
    for workers in sorted({1, _WORKERS.value}):
      start = time.perf_counter()
      with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        frames = sum(pool.map(_bare_decode, paths))
      decode = time.perf_counter() - start
      builder = video_folder.VideoFolder(
          config=video_folder.make_config(**{**fields, "num_workers": workers,
                                             "source": manual}),
          data_dir=os.path.join(tmp, f"tfds_{workers}"), file_format="array_record")
      start = time.perf_counter()
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=manual))
      prepared = time.perf_counter() - start
      clips = sum(len(s) for s in builder.as_data_source().values())
      print(f"  {workers} thread(s): bare decode {len(paths) / decode:5.2f} videos/s, "
            f"{frames / decode:6.0f} frames/s; prepare {len(paths) / prepared:5.2f} videos/s, "
            f"{frames / prepared:6.0f} decoded frames/s ({clips} clips): "
            f"{prepared / decode:.2f}× the bare decode", flush=True)


def _read_and_resample(read, path: str, rate: float) -> int:
  """The least a resampling reader does: the file read, every numeric channel put on a
  uniform `rate` grid by np.interp (times as they are; nothing checked, nothing dropped).
  Returns the samples on the grid."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  frame = read(path)
  times = frame.iloc[:, 0]
  if isinstance(times.dtype, pd.DatetimeTZDtype):  # zoned: UTC datetime64, not Timestamps
    times = times.dt.tz_convert(None)
  times = times.to_numpy()
  times = (times - times[0]).astype("timedelta64[ns]").astype(np.float64) * 1e-9 if (
      times.dtype.kind == "M") else (times - times[0]) * 1e-9
  grid = np.arange(0.0, times[-1], 1.0 / rate)
  return sum(len(np.interp(grid, times, frame[c].to_numpy(np.float64)))
             for c in frame.columns[1:])


def _bench_timeseries() -> None:
  """Times the timeseries builder (configs/timeseries.py's defaults) on CSV and on Parquet,
  beside pandas' bare read of the same files and the read + resample floor."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from configs import timeseries as ts_config  # pylint: disable=g-import-not-at-top
  from simper_jax.data import synthetic_timeseries as syn_ts  # pylint: disable=g-import-not-at-top
  from simper_jax.data import timeseries  # pylint: disable=g-import-not-at-top
  fields = {k: v for k, v in ts_config.get_config().data.builder.to_dict().items()
            if k in timeseries.TimeseriesConfig.__dataclass_fields__}
  spec = syn_ts.SyntheticSpec(num_recordings=8, seconds=_MINUTES.value * 60)
  for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
    with tempfile.TemporaryDirectory() as tmp:
      manual = os.path.join(tmp, "manual")
      for item in syn_ts.recording_plan(spec):
        path = os.path.join(manual, *item["id"].split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        syn_ts.write_recording(path, spec, {**item, "format": fmt})
      files = [os.path.join(r, f) for r, _, fs in os.walk(manual) for f in fs]
      size = _du(manual) / 1e6
      config = timeseries.make_config(**{**fields, "num_workers": _WORKERS.value,
                                         "source": manual})

      def in_threads(work) -> tuple[float, int]:
        """(the best of 3 wall times of `work` over every file in the pool, its total)."""
        times = []
        for _ in range(3):  # the first also warms the page cache for the others
          start = time.perf_counter()
          with concurrent.futures.ThreadPoolExecutor(_WORKERS.value) as pool:
            total = sum(pool.map(work, files))
          times.append(time.perf_counter() - start)
        return min(times), total

      bare, rows = in_threads(lambda f: len(read(f)))
      floor, _ = in_threads(lambda f: _read_and_resample(read, f, config.sample_rate))
      with contextlib.redirect_stdout(io.StringIO()):  # its per-file lines
        windowed, windows = in_threads(lambda f: len(timeseries.make_windows(
            config, [], "r", f, labels=None, stride=config.train_stride)))
        builder = timeseries.Timeseries(config=config, data_dir=os.path.join(tmp, "tfds"),
                                        file_format="array_record")
        start = time.perf_counter()
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual))
        prepared = time.perf_counter() - start
      stored = sum(len(s) for s in builder.as_data_source().values())
      print(f"timeseries {fmt}: {len(files)} recordings of {_MINUTES.value:g} min at "
            f"~{spec.rate:g} Hz, 3 channels ({rows:,} rows, {size:.1f} MB), "
            f"{_WORKERS.value} thread(s), best of 3\n"
            f"  pandas' bare read      {size / bare:7.1f} MB/s\n"
            f"  read + np.interp       {size / floor:7.1f} MB/s  {floor / bare:5.2f}× the read "
            f"(the floor of any resampling reader)\n"
            f"  read and windowed      {size / windowed:7.1f} MB/s  {windowed / bare:5.2f}× the "
            f"read, {windowed / floor:.2f}× the floor ({windows} training windows)\n"
            f"  prepared (TFDS write)  {size / prepared:7.1f} MB/s  {prepared / bare:5.2f}× the "
            f"read; {stored / prepared:,.0f} windows/s into array_record ({stored} windows, "
            f"train and test)", flush=True)


def _du(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
             for f in files)


if __name__ == "__main__":
  app.run(main)
