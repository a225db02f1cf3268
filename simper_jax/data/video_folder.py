"""Your own videos: every video under a folder, in any container OpenCV's FFmpeg decodes,
labelled or not (docs/your-videos.md).

The folder (config.data.manual_dir):

    DIR/**/<name>.<ext>         the videos, in any sub-folders; a video's id is its path
                                relative to DIR without the extension ("site1/p03/rest")
    DIR/labels.csv   optional   an id column (`video`, `id` or `recording`; an extension on
                                the id is accepted) and numeric label columns; a row with
                                `start_s` and `end_s` labels that segment of its video,
                                otherwise the whole video; other text columns (a subject, a
                                session) may be named by data.builder.group_by; a
                                `count` column is a repetition count (counting protocol)
    DIR/signals/<id>.csv  opt.  `time_s,value` (header optional; time_s from the video's
                                first frame): a reference signal per video (a PPG), from
                                which each clip's `heart_rate` (bpm) is derived by the rPPG
                                heart-rate protocol
    DIR/split.csv    optional   `video,split` with split `train` or `test`

Examples are clips of `num_frames` frames at `fps`: every video's frames are resampled to
`fps` by the stream's timestamps (linear blend of the two nearest frames), cropped (`crop`:
"none", "centre" — the largest centred square —, or "face": the Haar-cascade box the rPPG
builders and `predict` use, from the first frames), and resized to `image_size`. Training
clips start every `train_stride` frames (overlapping); test clips follow each other without
overlap over the whole video (the remainder dropped), so a per-video readout concatenates
them as the rPPG protocol does.

Features of each clip: `video` [T, S, S, 3] uint8, `video_id`, `clip_index` (its place in
its video), `start_s` (its first frame's time), `fps`, `group` (the group_by value, or the
id); one float32 feature per numeric labels.csv column, named as the column (NaN where the
clip has no label: no row for its video, or it straddles a segment's edge); with a signals/
folder also `ppg` [T] (the signal at the frame times) and `heart_rate`; with a `count`
column also `frequency` (count / duration, Hz), `duration` (the counted segment's, s),
`segment_start` and `segment_frames` (the clip's frames inside it), as Countix's; a counted
segment shorter than a clip gets one clip centred on it (`clip_counts`).

Splits are by video, never by clip: split.csv where it names the video; otherwise a hash of
the video's group (its group_by value, or its id) puts it in test when the hash falls below
`test_fraction`, so a video keeps its split when others are added. A folder whose listing
(names, sizes, modification times) or label files changed since it was prepared is prepared
again (`stale_reason`).
"""

import csv
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

from simper_jax import heart_rate as hr
from simper_jax.data import common
from simper_jax.data import rppg
from simper_jax.data import video as video_io

LABELS_FILE = "labels.csv"
SPLIT_FILE = "split.csv"
SIGNALS_DIR = "signals"
MANIFEST_FILE = "source_manifest.json"
MISSING_VIDEOS_FILE = "missing_videos.csv"
ID_COLUMNS = ("video", "id", "recording")
SEGMENT_COLUMNS = ("start_s", "end_s")
SPLITS = ("train", "test")
CROPS = ("none", "centre", "face")
FACE_SEARCH_FRAMES = 10  # first frames searched for a face, in order (predict's default)
FRAMES_PER_CHUNK = 64  # frames decoded at a time: bounded memory for long videos
# A segment may end this far past its video's last frame (rounded annotation times) before
# the row counts as bad.
TIME_TOLERANCE_S = 0.5
# Feature names the builder writes itself: no labels.csv column may take one.
RESERVED = ("video", "video_id", "clip_index", "start_s", "fps", "group", "ppg", "heart_rate")
# A labels.csv column of this name is a repetition count over its row's segment (or video):
# the builder then also writes the fields of the counting protocol (Countix's), with the
# repetition frequency count / duration as the label `frequency`.
COUNT_COLUMN = "count"
COUNT_FIELDS = ("frequency", "duration", "segment_start", "segment_frames")
LAYOUT = ("  DIR/**/<name>.<ext>       your videos, in any sub-folders (" +
          ", ".join(video_io.VIDEO_EXTENSIONS) + ")\n"
          "  DIR/labels.csv            optional: video,<label columns>[,start_s,end_s]\n"
          "  DIR/signals/<id>.csv      optional: time_s,value (a reference PPG per video)\n"
          "  DIR/split.csv             optional: video,split (train or test)")


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(tfds.core.BuilderConfig):
  """How clips are made. The config name is derived from the fields (see `make_config`).

  Attributes:
    fps: frames per second of the clips; every video is resampled to it.
    source_fps: the frame rate of videos that declare none (raw streams); when set (> 0) it
      replaces every video's declared rate. 0: the videos' own.
    crop: "none" (the whole frame, squeezed to a square), "centre" (the largest centred
      square) or "face" (the Haar-cascade face box of the first frames, enlarged by
      face_box_scale).
    face_box_scale: the face box enlarged by this factor about its centre (rPPG-Toolbox: 1.5).
    image_size: side of the square frames after crop and resize.
    num_frames: T, frames per clip.
    train_stride: frames between the starts of consecutive training clips (overlapping when
      smaller than num_frames).
    test_fraction: share of the groups (videos, or group_by values) the hash rule puts in the
      test split.
    group_by: a labels.csv column whose values (subjects, sessions) stay on one side of the
      split; "" → each video is its own group.
    labels: read labels.csv and signals/ when present; False → every clip unlabelled.
    on_bad_video: "fatal" stops at a video that cannot be used; "skip" reports it, goes on.
    num_workers: videos prepared in parallel (not part of the name: it changes no data):
      threads, or with beam the DirectRunner's processes.
    beam: prepare with Apache Beam (TFDS's Beam path; the `[beam]` extra): the videos are
      read on the runner's workers and written to the same array_record shards.
    beam_options: Beam pipeline flags, space-separated (e.g. "--runner=DataflowRunner
      --project=P --region=R --temp_location=gs://B/tmp"); "" → the DirectRunner with
      num_workers processes. Neither is part of the name.
    source: the folder's absolute path (set by the pipeline), so two folders never share a
      prepared directory.
  """
  fps: float = 15.0
  source_fps: float = 0.0
  crop: str = "centre"
  face_box_scale: float = 1.5
  image_size: int = 32
  num_frames: int = 90
  train_stride: int = 45
  test_fraction: float = 0.2
  group_by: str = ""
  labels: bool = True
  on_bad_video: str = "fatal"
  num_workers: int = 4
  beam: bool = False
  beam_options: str = ""
  source: str = ""


def make_config(**fields) -> VideoFolderConfig:
  for field, allowed in (("crop", CROPS), ("on_bad_video", common.BAD_INPUT_POLICIES)):
    if field in fields and fields[field] not in allowed:
      raise common.DataError(f"data.builder.{field}={fields[field]!r}; expected one of "
                             f"{allowed}.")
  for field in ("fps", "image_size", "num_frames", "train_stride"):
    if field in fields and not fields[field] > 0:
      raise common.DataError(f"data.builder.{field}={fields[field]!r}; expected a positive "
                             f"number.")
  if "test_fraction" in fields and not 0 < fields["test_fraction"] < 1:
    raise common.DataError(f"data.builder.test_fraction={fields['test_fraction']!r}; expected "
                           f"a share in (0, 1).")
  return common.named_config(VideoFolderConfig, "{image_size}px_{num_frames}f",
                             exclude=("num_workers", "beam", "beam_options"), **fields)


def source_of(manual_dir: str) -> str:
  """What `source` the pipeline gives a folder: its absolute path."""
  return os.path.abspath(os.path.expanduser(manual_dir))


# ---------------------------------------------------------------------------------------------
# The folder: videos, their ids, the files that describe them.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Listing:
  """What the folder holds: {id: video path}, the other files, and the manifest (relative
  path, size, modification time of every file) that tells a changed folder."""
  folder: str
  videos: dict
  ignored: list
  manifest: list


def video_id(relative_path: str) -> str:
  """"site1/a.mp4" → "site1/a" (separators as '/', on every system)."""
  return os.path.splitext(relative_path.replace(os.sep, "/"))[0]


def scan(folder: str) -> Listing:
  """Every video under `folder` (recursively) by id, and the files that are not videos.

  Raises:
    DataNotFoundError: the folder does not exist or holds no video.
    DataError: two files share an id (`a.mp4` and `a.avi`), naming both.
  """
  if not folder or not os.path.isdir(folder):
    raise common.DataNotFoundError(
        f"Video folder not found: the directory {folder} does not exist. Give your folder "
        f"with --config.data.manual_dir=DIR; it holds\n{LAYOUT}")
  videos, ignored, manifest = {}, [], []
  for path in video_io.files_under(folder):
    relative = os.path.relpath(path, folder).replace(os.sep, "/")
    stat = os.stat(path)
    described = relative in (LABELS_FILE, SPLIT_FILE) or (
        relative.startswith(SIGNALS_DIR + "/") and relative.lower().endswith(".csv"))
    if video_io.is_video(path) and not relative.startswith(SIGNALS_DIR + "/"):
      vid = video_id(relative)
      if vid in videos:
        raise common.DataError(
            f"{videos[vid]} and {path} have the same id {vid!r} (a video's id is its path "
            f"without the extension); rename or remove one.")
      videos[vid] = path
    elif not described:
      ignored.append(relative)
      continue
    manifest.append((relative, stat.st_size, stat.st_mtime_ns))
  if not videos:
    raise common.DataNotFoundError(
        f"No video in {folder} or its sub-folders ({len(ignored)} other files); expected "
        f"files ending in one of {', '.join(video_io.VIDEO_EXTENSIONS)}.\n{LAYOUT}")
  return Listing(folder, videos, ignored, manifest)


def describe_ignored(ignored: list, what: str = "videos") -> str:
  """"3 files that are not videos (.txt ×2, .json)", or "" (`what`: videos, recordings)."""
  if not ignored:
    return ""
  kinds = {}
  for name in ignored:
    ext = os.path.splitext(name)[1].lower() or "no extension"
    kinds[ext] = kinds.get(ext, 0) + 1
  one = len(ignored) == 1
  return (f"{len(ignored)} file{'' if one else 's'} that {'is' if one else 'are'} not "
          f"{'a ' + what[:-1] if one else what}, ignored ("
          + ", ".join(f"{ext} ×{n}" if n > 1 else ext for ext, n in sorted(kinds.items()))
          + ")")


# ---------------------------------------------------------------------------------------------
# labels.csv, split.csv, signals/.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Labels:
  """labels.csv, read: the numeric label columns, and per video its whole-video values and its
  segments [(start_s, end_s, {column: value}, line)]; the group of each video that has one;
  and the rows naming a video not in the folder [(line, id)]."""
  path: str
  columns: list
  whole: dict
  segments: dict
  groups: dict
  missing: list


def _read_csv(path: str) -> tuple[list[str], list[tuple[int, dict]]]:
  """(header, [(line, {column: stripped value})]) of a CSV with a header; blank lines skipped."""
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for record in reader:
      values = {k: (v or "").strip() for k, v in record.items() if k is not None}
      if any(values.values()):
        rows.append((reader.line_num, values))
  return header, rows


def _id_column(path: str, header: list[str]) -> str:
  found = [c for c in ID_COLUMNS if c in header]
  if not found:
    raise common.DataError(f"{path}: no id column (its header is {','.join(header) or 'empty'}"
                           f"); expected one named {' or '.join(ID_COLUMNS)}, holding each "
                           f"video's path relative to the folder.")
  return found[0]


def _normalize_id(text: str) -> str:
  text = text.replace("\\", "/").strip("/")
  return video_id(text) if video_io.is_video(text) else text


def _as_number(text: str) -> float | None:
  try:
    value = float(text)
  except ValueError:
    return None
  return value if math.isfinite(value) else None


def read_labels(path: str, video_ids, group_by: str, normalize=None) -> Labels:
  """labels.csv, checked against the folder's videos (`video_ids`; None: not checked, every
  row kept). `normalize(text) -> id` reads an id cell (default: a video path, its extension
  dropped; the time-series builder passes its own).

  Raises:
    DataError: naming the file (and line): no id column; `group_by` names no column; a
      non-numeric value in a label column (a column is a label when any of its values is a
      number); `end_s` not after `start_s`, or only one of them.
  """
  header, rows = _read_csv(path)
  id_column = _id_column(path, header)
  if group_by and group_by not in header:
    raise common.DataError(f"data.builder.group_by={group_by!r}: {path} has no such column "
                           f"(its columns: {', '.join(header)}).")
  others = [c for c in header if c not in (id_column, group_by, *SEGMENT_COLUMNS)]
  columns = [c for c in others if any(_as_number(v[c]) is not None for _, v in rows if v[c])]
  reserved = RESERVED + (COUNT_FIELDS if COUNT_COLUMN in columns else ())
  clash = sorted(set(columns) & set(reserved))
  if clash:
    raise common.DataError(f"{path}: the column {clash[0]!r} has a name the builder writes "
                           f"itself ({', '.join(reserved)}); rename it.")
  labels = Labels(path, columns, {}, {}, {}, [])
  normalize = normalize or _normalize_id
  for line, values in rows:
    vid = normalize(values[id_column])
    if video_ids is not None and vid not in video_ids:
      labels.missing.append((line, vid))
      continue
    numbers = {}
    for column in columns:
      if values[column] == "":
        continue  # this row does not label this column
      number = _as_number(values[column])
      if number is None:
        raise common.DataError(f"{path}, line {line}: {column}={values[column]!r}; expected a "
                               f"number (the column holds numbers on other rows).")
      if column == COUNT_COLUMN and not number > 0:
        raise common.DataError(f"{path}, line {line}: {column}={values[column]!r}; a "
                               f"repetition count is a positive number.")
      numbers[column] = number
    if group_by and values[group_by]:
      labels.groups[vid] = values[group_by]
    start, end = (values.get(c, "") for c in SEGMENT_COLUMNS)
    if start or end:
      start_s, end_s = _as_number(start), _as_number(end)
      if start_s is None or end_s is None:
        raise common.DataError(f"{path}, line {line}: start_s={start!r}, end_s={end!r}; a "
                               f"segment needs both, in seconds.")
      if not end_s > start_s:
        raise common.DataError(f"{path}, line {line}: end_s={end} is not after "
                               f"start_s={start}.")
      labels.segments.setdefault(vid, []).append((start_s, end_s, numbers, line))
    else:
      labels.whole.setdefault(vid, {}).update(numbers)
  return labels


def read_split(path: str, video_ids, normalize=None) -> tuple[dict, list]:
  """split.csv: ({video id: "train" | "test"}, [(line, id) of rows naming no video here]);
  `normalize` as for `read_labels`.

  Raises:
    DataError naming the file and line: no id or split column, or a split other than train
    and test.
  """
  header, rows = _read_csv(path)
  id_column = _id_column(path, header)
  if "split" not in header:
    raise common.DataError(f"{path}: no column 'split' (its header is {','.join(header)}); "
                           f"expected {id_column},split with split train or test.")
  known, splits, missing = set(video_ids), {}, []
  for line, values in rows:
    split = values["split"].lower()
    if split not in SPLITS:
      raise common.DataError(f"{path}, line {line}: split={values['split']!r}; expected "
                             f"train or test.")
    vid = (normalize or _normalize_id)(values[id_column])
    if vid in known:
      splits[vid] = split
    else:
      missing.append((line, vid))
  return splits, missing


def hash_share(text: str) -> float:
  """A deterministic number in [0, 1) for a group name (the same on every machine and run)."""
  return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16**12


def assign_splits(video_ids, groups: dict, fixed: dict, test_fraction: float,
                  split_path: str = SPLIT_FILE) -> dict:
  """{video id: split}, a group (`groups`: video id → group; a video without one is its own)
  always on one side: the split split.csv (`fixed`) gives any of its videos; otherwise test
  when the hash of the group's name is below `test_fraction`. When that leaves a split empty,
  the group with the lowest hash goes to test (or the highest to train).

  Raises:
    DataError: split.csv puts two videos of one group on different sides.
  """
  group_of = {vid: groups.get(vid, vid) for vid in video_ids}
  group_split = {}
  for vid in sorted(fixed):
    group = group_of[vid]
    if group_split.setdefault(group, (fixed[vid], vid))[0] != fixed[vid]:
      other = group_split[group][1]
      raise common.DataError(
          f"{split_path}: {other} is in {group_split[group][0]} and {vid} in {fixed[vid]}, but "
          f"both are in the group {group!r} (data.builder.group_by), which stays on one side.")
  free = sorted({g for g in group_of.values() if g not in group_split}, key=hash_share)
  split_of = {g: split for g, (split, _) in group_split.items()}
  split_of.update({g: "test" if hash_share(g) < test_fraction else "train" for g in free})
  for wanted, pick in (("test", 0), ("train", -1)):
    if free and wanted not in split_of.values():
      split_of[free[pick]] = wanted
  return {vid: split_of[group_of[vid]] for vid in video_ids}


def read_signal(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(times s, values) of a signals/<id>.csv: two numeric columns, time_s and value, with or
  without a header; rows sorted by time, repeated times dropped.

  Raises:
    DataError naming the file and line: a row that is not two numbers, fewer than 2 samples.
  """
  times, values = [], []
  with open(path, newline="", encoding="utf-8-sig") as f:
    for line, row in enumerate(csv.reader(f), 1):
      cells = [c.strip() for c in row]
      if not any(cells):
        continue
      numbers = [_as_number(c) for c in cells[:2]]
      if len(cells) < 2 or None in numbers:
        if line == 1 and len(times) == 0:
          continue  # the header
        raise common.DataError(f"{path}, line {line}: {','.join(cells)!r}; expected two "
                               f"numbers, time_s,value.")
      times.append(numbers[0])
      values.append(numbers[1])
  if len(times) < 2:
    raise common.DataError(f"{path}: {len(times)} samples; expected a signal, time_s,value "
                           f"rows.")
  times, values = np.asarray(times), np.asarray(values)
  order = np.argsort(times, kind="stable")
  times, values = times[order], values[order]
  keep = np.concatenate([[True], np.diff(times) > 0])
  return times[keep], values[keep]


# ---------------------------------------------------------------------------------------------
# One video.
# ---------------------------------------------------------------------------------------------
def read_frames(path: str, config: VideoFolderConfig) -> tuple[np.ndarray, float]:
  """The video's frames at `config.fps`, cropped and resized: ([N, S, S, 3] uint8, its
  duration in s). Frame k is at k / fps from the first frame.

  Raises:
    DataError naming the file: it does not decode, declares no frame rate (and no
    source_fps is given), or (crop="face") shows no face in its first frames.
  """
  capture = cv2.VideoCapture(path)
  if not capture.isOpened():
    capture.release()
    raise common.DataError(f"{path}: OpenCV cannot decode it as a video.")
  rate = config.source_fps or video_io.declared_fps(capture, path)
  if not rate:
    capture.release()
    what = "a raw stream, which" if path.lower().endswith(video_io.RAW_STREAMS) else "the file"
    raise common.DataError(f"{path}: {what} declares no frame rate; give it with "
                           f"data.builder.source_fps.")
  # Frame by frame: each cropped and resized as soon as it is decoded, in BGR (colour
  # conversion commutes with both), so no full-resolution chunk is ever stacked (that copy
  # cost as much as the decoding).
  first, small, times, box = [], [], [], None
  decided = False  # the crop box (None for crop="none") is read off the first frames
  for time, frame in video_io.timed_frames(capture, rate, stream_times=not config.source_fps):
    if not decided:
      first.append((time, frame))
      if len(first) < FACE_SEARCH_FRAMES:
        continue
      box, decided = _crop_box(first, config, path), True
    for t, f in (first if first else [(time, frame)]):
      small.append(video_io.crop_resize_frame(f, box, config.image_size))
      times.append(t)
    first = []
  if first:  # a video shorter than the face search
    box = _crop_box(first, config, path)
    small = [video_io.crop_resize_frame(f, box, config.image_size) for _, f in first]
    times = [t for t, _ in first]
  if not small:
    raise common.DataError(f"{path}: OpenCV opens it but decodes no frame from it.")
  frames = np.stack(small)[..., ::-1]  # BGR → RGB
  times = np.asarray(times) - times[0]
  duration = float(times[-1]) + 1 / rate
  new_times = np.arange(int(math.floor(times[-1] * config.fps + 1e-6)) + 1) / config.fps
  return video_io.frames_at(frames, times, new_times), duration


def _crop_box(first: list, config: VideoFolderConfig, path: str):
  """The crop box from the first frames [(time, BGR frame)]."""
  first_frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for _, f in first]
  if config.crop == "centre":
    return video_io.centre_box(first_frames[0])
  if config.crop == "face":
    box = next((b for b in (video_io.face_box(f, config.face_box_scale) for f in first_frames)
                if b is not None), None)
    if box is None:
      raise common.DataError(
          f"{path}: no face found in frames 0–{len(first_frames) - 1} (OpenCV's Haar cascade); "
          f"data.builder.crop='centre' or 'none' reads videos without one.")
    return box
  return None


def clip_starts(num_frames: int, clip_frames: int, stride: int) -> range:
  """First frames of the clips of a video of `num_frames` (none when it is shorter)."""
  return range(0, num_frames - clip_frames + 1, stride)


def clip_labels(starts, clip_frames: int, fps: float, columns: list, whole: dict,
                segments: list) -> dict:
  """{column: [num clips] float32}: a clip inside a segment (its first frame at or after the
  start, its last before the end) takes the segment's value; otherwise the video's
  (`whole`); NaN where neither labels it."""
  out = {c: np.full(len(starts), np.nan, np.float32) for c in columns}
  for k, start in enumerate(starts):
    first, last = start / fps, (start + clip_frames - 1) / fps
    inside = [values for s, e, values, _ in segments if first >= s - 0.5 / fps
              and last < e + 0.5 / fps]
    for column in columns:
      value = next((v[column] for v in inside if column in v), whole.get(column))
      if value is not None:
        out[column][k] = value
  return out


def short_segment_starts(segments: list, num_frames: int, clip_frames: int,
                         fps: float) -> list:
  """First frames of one clip centred on each counted segment shorter than a clip (moved,
  not shrunk, to stay inside the video): no clip lies inside such a segment, so without it
  the segment would have no example (Countix's windows are made the same way)."""
  starts = []
  for start_s, end_s, values, _ in segments:
    if COUNT_COLUMN in values and (end_s - start_s) * fps < clip_frames:
      centre = (start_s + end_s) / 2 * fps
      starts.append(int(min(max(round(centre - clip_frames / 2), 0),
                            num_frames - clip_frames)))
  return starts


def clip_counts(starts, clip_frames: int, fps: float, whole: dict, segments: list,
                duration: float) -> dict:
  """The counting protocol's fields per clip: {`count`, `frequency` (count / duration, Hz),
  `duration` (s) [num clips] float32; `segment_start`, `segment_frames` [num clips] int32,
  the frames of the clip inside the counted segment}.

  A clip inside a counted segment (clip_labels' rule) counts it over all its frames; a clip
  that holds a whole counted segment shorter than itself counts it over the frames inside;
  otherwise a count of the whole video (a row without start_s, end_s) over the video's
  duration; otherwise NaN (no count).
  """
  n = len(starts)
  out = {"count": np.full(n, np.nan, np.float32), "duration": np.full(n, np.nan, np.float32),
         "segment_start": np.zeros(n, np.int32), "segment_frames": np.zeros(n, np.int32)}
  counted = [(s, e, values[COUNT_COLUMN]) for s, e, values, _ in segments
             if COUNT_COLUMN in values]
  half = 0.5 / fps
  for k, start in enumerate(starts):
    times = (start + np.arange(clip_frames)) / fps
    found = next(((s, e, c, 0, clip_frames) for s, e, c in counted
                  if times[0] >= s - half and times[-1] < e + half), None)
    if found is None:  # a short segment inside the clip
      for s, e, c in counted:
        if s >= times[0] - half and e <= times[-1] + 1 / fps + half:
          inside = (times >= s - half) & (times < e - half)
          found = (s, e, c, int(np.argmax(inside)), int(inside.sum()))
          break
    if found is None and COUNT_COLUMN in whole:
      found = (0.0, duration, whole[COUNT_COLUMN], 0, clip_frames)
    if found is not None:
      s, e, c, first, frames = found
      out["count"][k], out["duration"][k] = c, e - s
      out["segment_start"][k], out["segment_frames"][k] = first, frames
  out["frequency"] = (out["count"] / out["duration"]).astype(np.float32)
  return out


# ---------------------------------------------------------------------------------------------
# The builder.
# ---------------------------------------------------------------------------------------------
class VideoFolder(common.Builder):
  """Clips of the videos under a folder, with the labels its CSVs give (if any)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [VideoFolderConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT
  PARTLY_LABELLED = True  # some clips may have no label (NaN): see train.train

  # --- What the folder says, read once per builder -----------------------------------------
  def _folder_files(self):
    """(labels.csv path or None, signals folder or None) that this config reads."""
    folder, c = self.builder_config.source, self.builder_config
    labels = os.path.join(folder, LABELS_FILE)
    signals = os.path.join(folder, SIGNALS_DIR)
    # labels=False leaves the labels out, not labels.csv: its group_by column still splits.
    return ((labels if os.path.isfile(labels) else None),
            (signals if c.labels and os.path.isdir(signals) else None))

  def label_columns(self) -> list:
    """The numeric labels.csv columns, as features (read from the file, not the prepared
    data: the features must be known before preparing)."""
    if not hasattr(self, "_columns"):
      labels_path, _ = self._folder_files()
      self._columns = (read_labels(labels_path, None, self.builder_config.group_by).columns
                       if labels_path and self.builder_config.labels else [])
    return self._columns

  def default_label_key(self) -> str | None:
    """The label a config that names none reads: the only numeric labels.csv column (a
    `count` column: its `frequency`, count / duration), else `heart_rate` from signals/, else
    None (unlabelled).

    Raises:
      DataError: several numeric columns (data.label_key must choose).
    """
    columns = ["frequency" if c == COUNT_COLUMN else c for c in self.label_columns()]
    if len(columns) > 1:
      raise common.DataError(
          f"{self._folder_files()[0]} has {len(columns)} numeric columns "
          f"({', '.join(columns)}); choose the label with --config.data.label_key=NAME.")
    if columns:
      return columns[0]
    return "heart_rate" if self._folder_files()[1] else None

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    features = {
        "video": tfds.features.Tensor(shape=(c.num_frames, c.image_size, c.image_size, 3),
                                      dtype=np.uint8, doc="RGB frames at config.fps"),
        "video_id": tfds.features.Text(doc="path relative to the folder, no extension"),
        "clip_index": tfds.features.Scalar(dtype=np.int32, doc="place among its video's clips"),
        "start_s": tfds.features.Scalar(dtype=np.float32, doc="time of the first frame, s"),
        "fps": tfds.features.Scalar(dtype=np.float32, doc="frame rate of the clip"),
        "group": tfds.features.Text(doc="the group_by value, or the video id"),
    }
    features.update({column: tfds.features.Scalar(dtype=np.float32, doc="labels.csv; NaN: none")
                     for column in self.label_columns()})
    if COUNT_COLUMN in self.label_columns():
      features.update(
          frequency=tfds.features.Scalar(dtype=np.float32, doc="count / duration, Hz"),
          duration=tfds.features.Scalar(dtype=np.float32, doc="of the counted segment, s"),
          segment_start=tfds.features.Scalar(dtype=np.int32, doc="first frame in the segment"),
          segment_frames=tfds.features.Scalar(dtype=np.int32, doc="frames in the segment"))
    if self._folder_files()[1]:
      features["ppg"] = tfds.features.Tensor(shape=(c.num_frames,), dtype=np.float32,
                                             doc="signals/<id>.csv at the frame times")
      features["heart_rate"] = tfds.features.Scalar(dtype=np.float32,
                                                    doc="bpm, from the clip's ppg")
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=tfds.features.FeaturesDict(features))

  # --- Stale data --------------------------------------------------------------------------
  def stale_reason(self) -> str | None:
    """Why the prepared data no longer matches the folder (files added, removed or changed,
    in a few words), or None when it does."""
    return stale_reason_of(os.fspath(self.data_dir),
                           lambda: scan(self.builder_config.source).manifest)

  def check_manual_dir(self, manual_dir) -> Listing:
    """The folder's listing, and its label files read and checked (errors before TFDS starts
    anything)."""
    listing = scan(os.fspath(manual_dir) if manual_dir else "")
    self._plan(listing)
    return listing

  # --- Preparation -------------------------------------------------------------------------
  def _plan(self, listing: Listing) -> tuple[dict, Labels | None]:
    """({split: [video ids]}, labels), with every label file read and checked."""
    c = self.builder_config
    by_split, labels, self._missing = plan_folder(listing, self._folder_files()[0], c.group_by,
                                                  c.test_fraction)
    return by_split, labels

  def _split_generators(self, dl_manager):
    listing = scan(os.fspath(getattr(dl_manager, "_manual_dir", None) or
                             self.builder_config.source))
    by_split, labels = self._plan(listing)
    c, name = self.builder_config, "video_folder"
    note = describe_ignored(listing.ignored)
    print(f"[{name}] {len(listing.videos)} videos in {listing.folder} and its sub-folders"
          f"{'; ' + note if note else ''}.", flush=True)
    write_manifest_and_missing(os.fspath(self.data_dir), listing, self._missing)
    if labels and c.labels:
      unlabelled = [v for v in listing.videos
                    if v not in labels.whole and v not in labels.segments]
      print(f"[{name}] {LABELS_FILE}: label columns {', '.join(labels.columns) or '(none)'}; "
            f"{len(unlabelled)} of {len(listing.videos)} videos without a row (their clips "
            f"train the self-supervised methods, unlabelled).", flush=True)
    for split in SPLITS:
      if not by_split[split]:
        raise common.DataError(f"{listing.folder}: no video in the {split!r} split; a split "
                               f"needs at least one (2 or more videos, or a {SPLIT_FILE}).")
      print(f"[{name} {split}] {len(by_split[split])} videos", flush=True)
    return {split: self._generate_examples(split, by_split[split], listing, labels)
            for split in SPLITS}


  def _generate_examples(self, split: str, video_ids: list, listing: Listing,
                         labels: Labels | None):
    config = self.builder_config
    _, signals_dir = self._folder_files()
    stride = config.train_stride if split == "train" else config.num_frames
    make = functools.partial(make_clips, config, self.label_columns(), labels=labels,
                             signals_dir=signals_dir, stride=stride)
    if config.beam:
      # TFDS runs this transform on Beam's workers, writing the same array_record shards.
      beam = tfds.core.lazy_imports.apache_beam
      return (beam.Create([(vid, listing.videos[vid]) for vid in video_ids])
              | beam.FlatMap(_beam_clips, make=make, on_bad=config.on_bad_video))
    return common.clips_of_videos(
        video_ids, lambda vid: make(vid, listing.videos[vid]), name=f"video_folder {split}",
        video_id=lambda vid: vid, describe=lambda vid: listing.videos[vid],
        clip_key=clip_key, num_workers=config.num_workers, on_bad=config.on_bad_video)

  def download_options(self) -> dict:
    """Fields of TFDS's DownloadConfig this config adds: Beam's pipeline options when
    `beam` is set (`beam_options`, else the DirectRunner with `num_workers` processes).

    Raises:
      DataError: beam=True and Apache Beam is not installed.
    """
    c = self.builder_config
    if not c.beam:
      return {}
    try:
      from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise common.DataError(
          "data.builder.beam=True prepares with Apache Beam, which is not installed: "
          "pip install -e '.[beam]' (or apache-beam).") from e
    flags = c.beam_options.split() or [f"--direct_num_workers={c.num_workers}",
                                       "--direct_running_mode=multi_processing"]
    return {"beam_options": pipeline_options.PipelineOptions(flags)}


def plan_folder(listing: Listing, labels_path: str | None, group_by: str, test_fraction: float,
                normalize=None) -> tuple[dict, Labels | None, list]:
  """The splits of a folder (of videos or of recordings): ({split: [ids]}, labels.csv read and
  checked or None, [(file, line, id)] of the rows naming an id that is not in the folder).
  `normalize` reads an id cell (`read_labels`).

  Raises:
    DataError: group_by without a labels.csv, and the label and split files' own errors.
  """
  labels = (read_labels(labels_path, listing.videos, group_by, normalize=normalize)
            if labels_path else None)
  if group_by and labels is None:
    raise common.DataError(f"data.builder.group_by={group_by!r}: there is no "
                           f"{os.path.join(listing.folder, LABELS_FILE)} to name the groups.")
  fixed, split_missing = {}, []
  split_path = os.path.join(listing.folder, SPLIT_FILE)
  if os.path.isfile(split_path):
    fixed, split_missing = read_split(split_path, listing.videos, normalize=normalize)
  splits = assign_splits(sorted(listing.videos), labels.groups if labels else {}, fixed,
                         test_fraction, split_path)
  missing = ([(LABELS_FILE, line, vid) for line, vid in labels.missing] if labels else []
             ) + [(SPLIT_FILE, line, vid) for line, vid in split_missing]
  return ({s: [v for v in sorted(listing.videos) if splits[v] == s] for s in SPLITS}, labels,
          missing)


def stale_reason_of(data_dir: str, manifest) -> str | None:
  """Why the data prepared in `data_dir` no longer matches its folder, whose manifest now is
  `manifest()` (files added, removed or changed, in a few words), or None when it does."""
  path = os.path.join(data_dir, MANIFEST_FILE)
  if not os.path.exists(path):
    return "it was prepared before folders were checked for changes"
  with open(path) as f:
    before = {name: (size, mtime) for name, size, mtime in json.load(f)["files"]}
  try:
    now = {name: (size, mtime) for name, size, mtime in manifest()}
  except common.DataError as e:
    return str(e).splitlines()[0]
  added = sorted(set(now) - set(before))
  removed = sorted(set(before) - set(now))
  changed = sorted(n for n in set(now) & set(before) if now[n] != before[n])
  if not (added or removed or changed):
    return None
  words = lambda names, what: (f"{len(names)} {what} ({', '.join(names[:3])}"
                               f"{', …' if len(names) > 3 else ''})" if names else None)
  return "; ".join(w for w in (words(added, "added"), words(removed, "removed"),
                               words(changed, "changed")) if w)


def write_manifest_and_missing(directory: str, listing: Listing, missing: list,
                               what: str = "video", name: str = "video_folder") -> None:
  """source_manifest.json (what the folder held) and missing_videos.csv (rows naming a
  `what` — video, recording — that is not there) beside the prepared files (TFDS's temporary
  folder here, renamed when preparation succeeds)."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, MANIFEST_FILE), "w") as f:
    json.dump({"folder": listing.folder, "files": listing.manifest}, f)
  with open(os.path.join(directory, MISSING_VIDEOS_FILE), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "line", what])
    writer.writerows(missing)
  if missing:
    rows = "1 row names" if len(missing) == 1 else f"{len(missing)} rows name"
    print(f"[{name}] {rows} a {what} that is not in the folder (listed in "
          f"{MISSING_VIDEOS_FILE} beside the prepared files); the rest are used.", flush=True)


def clip_key(vid: str, example: dict) -> str:
  """The key TFDS stores (and shuffles by) for a clip: its video and place."""
  return f"{vid}/{example['clip_index']:05d}"


def _beam_clips(video: tuple[str, str], make, on_bad: str) -> list[tuple[str, dict]]:
  """(key, example) of one (id, path) on a Beam worker; a bad video under on_bad="skip" is
  logged (the worker's log) and gives none."""
  vid, path = video
  try:
    return [(clip_key(vid, ex), ex) for ex in make(vid, path)]
  except common.DataError as e:
    if on_bad != "skip":
      raise
    logging.warning("[video_folder] skipped %s", e)
    return []


def make_clips(config: VideoFolderConfig, columns: list, vid: str, path: str, *,
               labels: Labels | None, signals_dir: str | None, stride: int) -> list[dict]:
  """Reads one video and cuts it into clips with their labels (`columns`: the numeric
  labels.csv columns). A module function, not a method: Beam's workers receive it pickled.

  Raises:
    DataError naming the file: read_frames' errors; shorter than one clip; a segment of
    labels.csv beyond the video's end (naming the line).
  """
  c = config
  frames, duration = read_frames(path, c)
  if len(frames) < c.num_frames:
    raise common.DataError(f"{path}: {duration:.2f} s, {len(frames)} frames at {c.fps:g} fps, "
                           f"fewer than one clip of {c.num_frames} frames "
                           f"(data.builder.num_frames).")
  segments = labels.segments.get(vid, []) if labels else []
  for start_s, end_s, _, line in segments:
    if end_s > duration + TIME_TOLERANCE_S or start_s < -TIME_TOLERANCE_S:
      raise common.DataError(f"{labels.path}, line {line}: the segment {start_s:g}–{end_s:g} "
                             f"s is beyond {path}, which is {duration:.2f} s long.")
  starts = list(clip_starts(len(frames), c.num_frames, stride))
  whole = labels.whole.get(vid, {}) if labels else {}
  counting = COUNT_COLUMN in columns
  if counting:
    starts = sorted(set(starts) | set(short_segment_starts(segments, len(frames),
                                                           c.num_frames, c.fps)))
  values = clip_labels(starts, c.num_frames, c.fps, columns, whole, segments)
  if counting:  # replaces clip_labels' count: a short segment's clip counts it too
    values.update(clip_counts(starts, c.num_frames, c.fps, whole, segments, duration))
  group = (labels.groups.get(vid, vid) if labels and c.group_by else vid)
  extra = [{} for _ in starts]
  if signals_dir:
    extra = signal_fields(c, vid, signals_dir, len(frames), starts)
  return [{"video": frames[s:s + c.num_frames], "video_id": vid, "clip_index": k,
           "start_s": np.float32(s / c.fps), "fps": np.float32(c.fps), "group": group,
           **{column: values[column][k] for column in values}, **extra[k]}
          for k, s in enumerate(starts)]


def signal_fields(config: VideoFolderConfig, vid: str, signals_dir: str, num_frames: int,
                  starts: list) -> list:
  """Per clip: the reference signal at its frame times (`ppg`) and its heart rate; NaN for a
  video without a signal file."""
  c = config
  path = os.path.join(signals_dir, vid + ".csv")
  if not os.path.isfile(path):
    nan = np.full(c.num_frames, np.nan, np.float32)
    return [{"ppg": nan, "heart_rate": np.float32(np.nan)} for _ in starts]
  times, values = read_signal(path)
  ppg = rppg.resample(values, times, np.arange(num_frames) / c.fps).astype(np.float32)
  clips = np.stack([ppg[s:s + c.num_frames] for s in starts])
  rates = hr.heart_rate(clips, c.fps).astype(np.float32)
  # A clip the signal does not cover has no reference (the resampled signal is only held
  # flat there): NaN, not a rate read off a constant.
  covered = np.array([times[0] - 0.5 / c.fps <= s / c.fps and
                      (s + c.num_frames - 1) / c.fps <= times[-1] + 0.5 / c.fps
                      for s in starts])
  rates[~covered] = np.nan
  clips[~covered] = np.nan
  return [{"ppg": clips[k], "heart_rate": rates[k]} for k in range(len(starts))]
