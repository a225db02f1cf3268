"""Countix (Dwibedi et al. 2020, RepNet): repeated actions in Kinetics clips, with counts
(docs/counting.md).

manual_dir holds the official annotation files and the user's own copies of the videos:

    countix_train.csv  countix_val.csv  countix_test.csv
    videos/<video_id>.<ext>                         (any container OpenCV reads)
    videos/<video_id>_<start:06d>_<end:06d>.<ext>   (the Kinetics downloaders' trimmed clips)

The CSVs are read by header name, and only the columns used are required: `video_id`,
`repetition_start`, `repetition_end` and `count` (plus `kinetics_start` when a plain-named file
is a trimmed clip, `plain_name_times="kinetics"`); `class` is kept when present. Times are
seconds in the YouTube video. A trimmed clip `<id>_<start>_<end>` starts at `<start>`; a plain
`<id>.<ext>` is by default the whole YouTube video (`plain_name_times="youtube"`).

The task built here, one example per CSV row (a video can have several repetition segments):
  video      `num_frames` frames at `fps` (resampled by nearest frame), resized to
             image_size × image_size (RepNet: 112×112), from a window centred on the
             repetition segment (clamped to the video; a segment longer than the window is seen
             in part, a shorter one with its surroundings). `segment_start` and
             `segment_frames` say which frames of the window lie inside the segment.
  count      the annotated count; `frequency` = count / (repetition_end − repetition_start),
             Hz, the label SimPer's readouts predict; count = frequency × duration.
Rows whose video is missing (many Kinetics clips have left YouTube) are counted, one summary
line per split, and listed in `missing_videos.csv` beside the prepared files. A row whose
times fall outside its video, or a video that does not decode, stops preparation
(`on_bad_video="fatal"`) or is skipped and reported (`"skip"`). A malformed CSV row (a
non-numeric time, a count below 1, an end not after its start) always stops it, naming the
file and line.
"""

import csv
import dataclasses
import math
import os
import re
import time

import cv2
import numpy as np
import tensorflow_datasets as tfds

from simper_jax.data import common
from simper_jax.data import video as video_io

SPLIT_FILES = {"train": "countix_train.csv", "validation": "countix_val.csv",
               "test": "countix_test.csv"}
REQUIRED_COLUMNS = ("video_id", "repetition_start", "repetition_end", "count")
PLAIN_NAME_TIMES = ("youtube", "kinetics")
MISSING_VIDEOS_FILE = "missing_videos.csv"
# Annotation times are rounded and trimmed clips are often a few frames short of 10 s: a
# segment may end this far past its video's last frame before the row counts as bad.
TIME_TOLERANCE_S = 0.5
_TRIMMED_NAME = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")
LAYOUT = ("  countix_train.csv  countix_val.csv  countix_test.csv   (the official annotations)\n"
          "  videos/<video_id>.<ext>  or  videos/<video_id>_<start:06d>_<end:06d>.<ext>\n"
          "The CSVs come with RepNet (https://sites.google.com/view/repnet); the videos are your "
          "own copies of the Kinetics clips they name.")


@dataclasses.dataclass(eq=False)
class CountixConfig(tfds.core.BuilderConfig):
  """How examples are made. The config name is derived from the fields (see `make_config`).

  Attributes:
    image_size: side of the square frames (RepNet: 112).
    num_frames: T, frames per example (RepNet reads 64).
    fps: frames per second of the examples (resampled from the video's own rate).
    plain_name_times: what a plain `<video_id>.<ext>` is: "youtube" (the whole YouTube video,
      the CSV's times as they are) or "kinetics" (the trimmed clip, starting at the row's
      `kinetics_start`).
    on_bad_video: "fatal" stops at a row whose times fall outside its video or a video that
      does not decode; "skip" reports it and goes on.
    num_workers: rows prepared in parallel (not part of the name: it changes no data).
    source: "manual_dir" for the user's files; synthetic sets carry their settings here.
  """
  image_size: int = 112
  num_frames: int = 64
  fps: float = 10.0
  plain_name_times: str = "youtube"
  on_bad_video: str = "fatal"
  num_workers: int = 4
  source: str = "manual_dir"


def make_config(**fields) -> CountixConfig:
  for field, allowed in (("on_bad_video", common.BAD_INPUT_POLICIES),
                         ("plain_name_times", PLAIN_NAME_TIMES)):
    if field in fields and fields[field] not in allowed:
      raise common.DataError(f"data.builder.{field}={fields[field]!r}; expected one of "
                             f"{allowed}.")
  return common.named_config(CountixConfig, "{image_size}px_{num_frames}f",
                             exclude=("num_workers",), **fields)


@dataclasses.dataclass(frozen=True)
class Row:
  """One annotated repetition segment (times in seconds of the YouTube video)."""
  csv_path: str
  line: int
  video_id: str
  action: str
  kinetics_start: float | None
  start: float
  end: float
  count: int


@dataclasses.dataclass(frozen=True)
class VideoFile:
  path: str
  clip_start: float | None  # the trimmed clip's start in the YouTube video; None: plain name


@dataclasses.dataclass(frozen=True)
class Job:
  """A row with the file it is read from and the segment's times within that file."""
  row: Row
  path: str
  start: float
  end: float


# ---------------------------------------------------------------------------------------------
# Annotations and videos on disk.
# ---------------------------------------------------------------------------------------------
def read_annotations(path: str) -> list[Row]:
  """The rows of one Countix CSV, read by header name.

  Raises:
    DataError naming the file (and line) for a missing column, a non-numeric time, a count
    below 1 or a segment that does not end after it starts.
  """
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
      raise common.DataError(
          f"{path}: no column {', '.join(missing)} (its header is {','.join(header) or 'empty'}"
          f"); expected a Countix CSV with at least the columns {','.join(REQUIRED_COLUMNS)}.")
    reader.fieldnames = header
    rows = []
    for record in reader:
      line = reader.line_num
      record = {k: (v or "").strip() for k, v in record.items() if k is not None}
      if not any(record.values()):
        continue  # a blank line
      number = lambda column, record=record, line=line: _number(path, line, column,
                                                                record.get(column, ""))
      start, end, count = number("repetition_start"), number("repetition_end"), number("count")
      if count < 1 or count != round(count):
        raise common.DataError(f"{path}, line {line}: count={record['count']}; expected a whole "
                               f"number of repetitions, at least 1.")
      if not end > start:
        raise common.DataError(f"{path}, line {line}: repetition_end={record['repetition_end']} "
                               f"is not after repetition_start={record['repetition_start']}.")
      kinetics_start = number("kinetics_start") if record.get("kinetics_start") else None
      rows.append(Row(path, line, record["video_id"], record.get("class", ""), kinetics_start,
                      start, end, int(round(count))))
  return rows


def _number(path: str, line: int, column: str, text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not math.isfinite(value):
    raise common.DataError(f"{path}, line {line}: {column}={text!r}; expected a number "
                           f"(seconds, or the count).")
  return value


def index_videos(videos_dir: str) -> dict[str, list[VideoFile]]:
  """{video_id: its files} for every video in `videos_dir`, under either naming."""
  index = {}
  for name in sorted(os.listdir(videos_dir)):
    stem, _ = os.path.splitext(name)
    if not video_io.is_video(name):
      continue
    trimmed = _TRIMMED_NAME.match(stem)
    if trimmed:
      index.setdefault(trimmed["id"], []).append(
          VideoFile(os.path.join(videos_dir, name), float(trimmed["start"])))
    # A YouTube id may itself end in _dddddd_dddddd: the plain reading stays possible.
    index.setdefault(stem, []).append(VideoFile(os.path.join(videos_dir, name), None))
  return index


def locate(row: Row, files: list[VideoFile], plain_name_times: str) -> Job | None:
  """The file that holds `row`'s segment and the segment's times within it; None if the
  video is missing. A trimmed clip that covers the segment is preferred; a plain name is the
  fallback."""
  for video in files:
    if video.clip_start is not None and video.clip_start <= row.start + TIME_TOLERANCE_S:
      return Job(row, video.path, row.start - video.clip_start, row.end - video.clip_start)
  for video in files:
    if video.clip_start is None:
      if plain_name_times == "youtube":
        return Job(row, video.path, row.start, row.end)
      if row.kinetics_start is None:
        raise common.DataError(
            f"{row.csv_path}, line {row.line}: no kinetics_start, which "
            f"data.builder.plain_name_times='kinetics' needs to place the segment in "
            f"{video.path}.")
      return Job(row, video.path, row.start - row.kinetics_start, row.end - row.kinetics_start)
  return None


# ---------------------------------------------------------------------------------------------
# Reading one segment.
# ---------------------------------------------------------------------------------------------
def read_window(job: Job, *, num_frames: int, fps: float, image_size: int) -> dict:
  """The example of one row: `num_frames` frames at `fps` around its segment.

  Decodes the file from the start (seeking is frame-accurate in few codecs), keeping only the
  frames the window can use, and stops after the segment's end plus a window.

  Raises:
    DataError naming the file: it does not decode, declares no frame rate, or the segment's
    times fall outside it.
  """
  capture = cv2.VideoCapture(job.path)
  try:
    if not capture.isOpened():
      raise common.DataError(f"{job.path}: OpenCV cannot open it as a video.")
    source_fps = video_io.declared_fps(capture, job.path)
    if source_fps is None:
      raise common.DataError(f"{job.path}: the file declares no frame rate (a raw stream "
                             f"never does); remux it into a container (.mp4, .avi, .mkv).")
    span = num_frames / fps
    first_time = max(0.0, job.start - span)  # frames before this are never in a window
    last_time = job.end + span
    frames, times, index, reached_end = [], [], 0, True
    while True:
      ok, frame = capture.read()
      if not ok:
        break
      t = index / source_fps
      index += 1
      if t > last_time:
        reached_end = False  # the video goes on past everything a window can use
        break
      if t >= first_time:
        frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB),
                                 (image_size, image_size), interpolation=cv2.INTER_AREA))
        times.append(t)
  finally:
    capture.release()
  if index == 0:
    raise common.DataError(f"{job.path}: no frame decodes.")
  duration = index / source_fps if reached_end else math.inf
  if job.start < -TIME_TOLERANCE_S or job.end > duration + TIME_TOLERANCE_S or not frames:
    raise common.DataError(
        f"{job.row.csv_path}, line {job.row.line}: the segment {job.row.start:g}–"
        f"{job.row.end:g} s is at {job.start:g}–{job.end:g} s in {job.path}, which is "
        f"{duration:.2f} s long. (A trimmed clip starts at its name's <start>; a plain name is "
        f"read as data.builder.plain_name_times says.)")
  start, end = max(job.start, 0.0), min(job.end, times[-1] + 1 / source_fps)
  # The window: centred on the segment, moved (not shrunk) to stay inside the decoded frames.
  window_start = (start + end) / 2 - span / 2
  window_start = max(times[0], min(window_start, times[-1] + 1 / source_fps - span))
  frame_times = window_start + np.arange(num_frames) / fps
  # Nearest decoded frame to each time (held at the ends when the video is shorter).
  nearest = np.clip(np.searchsorted(times, frame_times + 0.5 / source_fps) - 1, 0,
                    len(times) - 1)
  inside = (frame_times >= start - 0.5 / fps) & (frame_times < end - 0.5 / fps)
  segment_start = int(np.argmax(inside)) if inside.any() else 0
  return {"video": np.stack([frames[i] for i in nearest]),
          "segment_start": np.int32(segment_start),
          "segment_frames": np.int32(inside.sum())}


class Countix(common.Builder):
  """Countix repetition segments with their counts and repetition frequencies."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [CountixConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "video": tfds.features.Tensor(shape=(c.num_frames, c.image_size, c.image_size, 3),
                                          dtype=np.uint8, doc="RGB frames at config.fps"),
            "count": tfds.features.Scalar(dtype=np.float32, doc="annotated repetitions"),
            "frequency": tfds.features.Scalar(dtype=np.float32,
                                              doc="count / segment duration, Hz"),
            "duration": tfds.features.Scalar(dtype=np.float32, doc="segment duration, s"),
            "segment_start": tfds.features.Scalar(dtype=np.int32,
                                                  doc="first frame inside the segment"),
            "segment_frames": tfds.features.Scalar(dtype=np.int32,
                                                   doc="frames inside the segment"),
            "video_id": tfds.features.Text(),
            "action": tfds.features.Text(doc="the Kinetics class ('' if the CSV has none)"),
            "row": tfds.features.Scalar(dtype=np.int32, doc="line in the split's CSV"),
        }),
        supervised_keys=("video", "frequency"),
    )

  def check_manual_dir(self, manual_dir) -> dict[str, list[Row]]:
    """Every split's rows, checked; DataNotFoundError / DataError naming what is missing."""
    manual_dir = os.fspath(manual_dir) if manual_dir else None
    if not manual_dir or not os.path.isdir(manual_dir):
      raise common.DataNotFoundError(
          f"Countix not found: the directory {manual_dir} does not exist.\nPut Countix in the "
          f"manual_dir (config.data.manual_dir):\n{LAYOUT}")
    missing = [name for name in SPLIT_FILES.values()
               if not os.path.exists(os.path.join(manual_dir, name))]
    if missing or not os.path.isdir(os.path.join(manual_dir, "videos")):
      what = ", ".join(missing + ([] if os.path.isdir(os.path.join(manual_dir, "videos"))
                                  else ["videos/"]))
      raise common.DataNotFoundError(
          f"Countix: {manual_dir} has no {what}.\nPut Countix in the manual_dir "
          f"(config.data.manual_dir):\n{LAYOUT}")
    return {split: read_annotations(os.path.join(manual_dir, name))
            for split, name in SPLIT_FILES.items()}

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(getattr(dl_manager, "_manual_dir", None) or "")
    rows = self.check_manual_dir(manual_dir)
    index = index_videos(os.path.join(manual_dir, "videos"))
    jobs, missing = {}, []
    for split, split_rows in rows.items():
      located = [(row, locate(row, index.get(row.video_id, []),
                              self.builder_config.plain_name_times)) for row in split_rows]
      jobs[split] = [job for _, job in located if job is not None]
      missing += [(split, row) for row, job in located if job is None]
      print(f"[countix {split}] {len(jobs[split]):,} of {len(split_rows):,} {split} rows have a "
            f"video".replace(",", " "), flush=True)
      if not jobs[split] and split != "validation":
        raise common.DataError(f"Countix: none of the {len(split_rows)} rows of "
                               f"{SPLIT_FILES[split]} has its video in "
                               f"{os.path.join(manual_dir, 'videos')}.\n{LAYOUT}")
    self._write_missing(missing)
    return {split: self._generate_examples(split, split_jobs)
            for split, split_jobs in jobs.items() if split_jobs}

  def _write_missing(self, missing: list) -> None:
    """missing_videos.csv beside the prepared files: split, CSV line and id of each row
    without its video (the data_dir is TFDS's temporary one here, renamed when done)."""
    os.makedirs(os.fspath(self.data_dir), exist_ok=True)
    path = os.path.join(os.fspath(self.data_dir), MISSING_VIDEOS_FILE)
    with open(path, "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["split", "line", "video_id"])
      writer.writerows((split, row.line, row.video_id) for split, row in missing)
    if missing:
      print(f"[countix] the {len(missing)} rows without a video are listed in "
            f"{MISSING_VIDEOS_FILE} beside the prepared files.", flush=True)

  def _generate_examples(self, split: str, jobs: list[Job]):
    config = self.builder_config
    read = lambda job: read_window(job, num_frames=config.num_frames, fps=config.fps,
                                   image_size=config.image_size)
    started, skipped = time.time(), 0
    prepared = common.prepare_in_threads(jobs, read, num_workers=config.num_workers,
                                         on_bad=config.on_bad_video,
                                         describe=lambda job: job.path)
    for i, (job, result) in enumerate(prepared, 1):
      if isinstance(result, str):
        skipped += 1
        print(f"[countix {split}] skipped {result}", flush=True)
        continue
      row = job.row
      yield f"{row.line:06d}", {
          **result, "count": np.float32(row.count),
          "frequency": np.float32(row.count / (row.end - row.start)),
          "duration": np.float32(row.end - row.start), "video_id": row.video_id,
          "action": row.action, "row": row.line}
      if i % 100 == 0 or i == len(jobs):
        print(f"[countix {split}] {i}/{len(jobs)} rows ({time.time() - started:.0f} s)",
              flush=True)
    if skipped:
      print(f"[countix {split}] skipped {skipped} of {len(jobs)} rows (on_bad_video='skip').",
            flush=True)
    if skipped == len(jobs):
      raise common.DataError(f"Countix: no usable row in the {split!r} split ({skipped} "
                             f"skipped).")
