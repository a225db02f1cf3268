"""The machinery the rPPG builders (SCAMPS, UBFC-rPPG, PURE) share (docs/heart-rate.md).

A dataset module says only how to list its videos and how to read one; this module does the
rest, the rPPG-Toolbox way: face box from OpenCV's Haar cascade on the first frame, enlarged
1.5×; every frame cropped to it and resized with INTER_AREA; the PPG resampled to the frame
times; clips of T frames without overlap (the remainder dropped); a heart-rate label per clip
from its PPG by the HR protocol (`simper_jax.heart_rate`). Videos are prepared in parallel
threads (OpenCV and h5py release the GIL while decoding), with a progress line per video.

Clips are stored as raw RGB uint8: the DiffNormalized / Standardized inputs of TS-CAN are
computed inside the model, so augmentations act on real frames and downstream users feed
plain [0, 1] video.
"""

import abc
import dataclasses
import os
from typing import Callable, Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds

from simper_jax import heart_rate as hr
from simper_jax.data import common
from simper_jax.data import video as video_io

BAD_VIDEO_POLICIES = common.BAD_INPUT_POLICIES


@dataclasses.dataclass(eq=False)
class RppgConfig(tfds.core.BuilderConfig):
  """How clips are made. The config name is derived from the fields (see `make_config`).

  Attributes:
    image_size: side of the square frames after crop and resize (toolbox: 72).
    num_frames: T, frames per clip (toolbox: 180, 6 s at 30 fps).
    face_crop: crop to the Haar-cascade face box of the first frame.
    face_box_scale: enlarge the face box by this factor about its centre (toolbox: 1.5).
    train_fraction: subject-wise split for datasets without an official one (UBFC, PURE):
      the first fraction of subjects, in subject-number order, trains.
    on_bad_video: "fatal" stops at a video that cannot be used; "skip" reports it and goes on.
    num_workers: videos prepared in parallel (not part of the name: it changes no data).
    source: "manual_dir" for the user's files; synthetic sets carry their settings here, so
      that they never share a prepared directory with real data.
  """
  image_size: int = 72
  num_frames: int = 180
  face_crop: bool = True
  face_box_scale: float = 1.5
  train_fraction: float = 0.8
  on_bad_video: str = "fatal"
  num_workers: int = 4
  source: str = "manual_dir"


def make_config(**fields) -> RppgConfig:
  if fields.get("on_bad_video", "fatal") not in BAD_VIDEO_POLICIES:
    raise ValueError(f"on_bad_video={fields['on_bad_video']!r}; expected one of "
                     f"{BAD_VIDEO_POLICIES}.")
  return common.named_config(RppgConfig, "{image_size}px_{num_frames}f", exclude=("num_workers",),
                             **fields)


@dataclasses.dataclass(frozen=True)
class VideoEntry:
  """One video on disk. `path` is what the dataset's reader opens (a file or a folder)."""
  video_id: str
  subject: str
  path: str


@dataclasses.dataclass
class RawVideo:
  """A video as read from disk, before cropping.

  Attributes:
    frames: chunks of RGB uint8 frames [n, H, W, 3], in order (bounded memory for long videos).
    fps: the video's frame rate.
    ppg_at_frames: num_frames -> the PPG [num_frames] at the frame times (called after all
      frames are read, because some containers only know their frame count at the end).
  """
  frames: Iterable[np.ndarray]
  fps: float
  ppg_at_frames: Callable[[int], np.ndarray]


def resample(values: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
  """Linear interpolation of a signal sampled at `times` onto `new_times` (held at the ends)."""
  order = np.argsort(times, kind="stable")
  return np.interp(new_times, np.asarray(times, np.float64)[order],
                   np.asarray(values, np.float64)[order])


def stretch(values: np.ndarray, length: int) -> np.ndarray:
  """Resamples a signal to `length` samples spanning the same time (the toolbox's rule when a
  PPG and its video disagree in length and no timestamps say better)."""
  values = np.asarray(values, np.float64)
  if len(values) == length:
    return values
  return np.interp(np.linspace(0, 1, length), np.linspace(0, 1, len(values)), values)


def split_by_subject(entries: list, train_fraction: float) -> dict:
  """First `train_fraction` of the subjects (entries already in subject order) train; the rest
  test. Every video of a subject goes to the same split."""
  subjects = list(dict.fromkeys(e.subject for e in entries))
  if not 0 < train_fraction < 1:
    raise ValueError(f"train_fraction={train_fraction}; expected a number in (0, 1).")
  if len(subjects) < 2:
    raise common.DataError(f"Only {len(subjects)} subject(s) found ({subjects}); a subject-wise "
                           f"train/test split needs at least 2.")
  num_train = min(len(subjects) - 1, max(1, round(train_fraction * len(subjects))))
  train_subjects = set(subjects[:num_train])
  return {"train": [e for e in entries if e.subject in train_subjects],
          "test": [e for e in entries if e.subject not in train_subjects]}


# ---------------------------------------------------------------------------------------------
# The builder.
# ---------------------------------------------------------------------------------------------
class RppgBuilder(common.Builder, abc.ABC):
  """Face-video clips with their PPG and a heart-rate label per clip.

  Subclasses set DATASET (a display name), SPLITS, LAYOUT (what the manual_dir holds, shown
  in every "not found" message) and implement `list_videos` and `read_video`.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  # Named "default", unlike every make_config() name, so a config equal to it is not a clash.
  BUILDER_CONFIGS = [RppgConfig(name="default")]
  DATASET = ""
  SPLITS = ("train", "test")
  LAYOUT = ""

  @classmethod
  def manual_instructions(cls) -> str:
    return f"Put {cls.DATASET} in the manual_dir (config.data.manual_dir):\n{cls.LAYOUT}"

  @abc.abstractmethod
  def list_videos(self, manual_dir: str) -> dict[str, list[VideoEntry]]:
    """{split: videos}; raises DataError / DataNotFoundError for a bad layout."""

  @abc.abstractmethod
  def read_video(self, entry: VideoEntry) -> RawVideo:
    """Opens one video; raises DataError naming the file for malformed input."""

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "video": tfds.features.Tensor(shape=(c.num_frames, c.image_size, c.image_size, 3),
                                          dtype=np.uint8, doc="RGB face clip"),
            "ppg": tfds.features.Tensor(shape=(c.num_frames,), dtype=np.float32,
                                        doc="ground-truth PPG at the frame times"),
            "heart_rate": tfds.features.Scalar(dtype=np.float32,
                                               doc="bpm, from the clip's PPG (HR protocol)"),
            "video_id": tfds.features.Text(),
            "subject": tfds.features.Text(),
            "clip_index": tfds.features.Scalar(dtype=np.int32, doc="position in its video"),
            "fps": tfds.features.Scalar(dtype=np.float32, doc="the video's frame rate"),
        }),
        supervised_keys=("video", "heart_rate"),
    )

  def check_manual_dir(self, manual_dir) -> dict[str, list[VideoEntry]]:
    """The videos of each split; DataNotFoundError naming the directory and the expected
    layout when it does not exist or holds no videos."""
    manual_dir = os.fspath(manual_dir) if manual_dir else None
    if not manual_dir or not os.path.isdir(manual_dir):
      raise common.DataNotFoundError(
          f"{self.DATASET} not found: the directory {manual_dir} does not exist.\n"
          f"{self.manual_instructions()}")
    return self.list_videos(manual_dir)

  def _split_generators(self, dl_manager):
    videos = self.check_manual_dir(getattr(dl_manager, "_manual_dir", None))
    for split in ("train", "test"):  # the others (SCAMPS's validation) may be absent
      if not videos.get(split):
        raise common.DataError(f"{self.DATASET}: the {split!r} split has no videos.\n"
                               f"{self.manual_instructions()}")
    return {split: self._generate_examples(split, videos[split])
            for split in self.SPLITS if videos.get(split)}

  def _generate_examples(self, split: str, entries: list[VideoEntry]) -> Iterator:
    config = self.builder_config
    yield from common.clips_of_videos(
        entries, self.make_clips, name=f"{self.name} {split}", video_id=lambda e: e.video_id,
        describe=lambda e: e.path, clip_key=lambda e, ex: f"{e.video_id}/{ex['clip_index']:04d}",
        num_workers=config.num_workers, on_bad=config.on_bad_video)

  def make_clips(self, entry: VideoEntry) -> list[dict]:
    """Reads, crops and resizes one video and cuts it into labelled clips."""
    config = self.builder_config
    raw = self.read_video(entry)
    resized, box = [], None
    for i, chunk in enumerate(raw.frames):
      if i == 0 and config.face_crop:
        box = video_io.face_box(chunk[0], config.face_box_scale)
        if box is None:
          print(f"[{self.name}] no face found in the first frame of {entry.path}; using the "
                f"whole frame.", flush=True)
      resized.append(video_io.crop_resize(chunk, box, config.image_size))
    num_frames = sum(len(c) for c in resized)
    clip_len = config.num_frames
    if num_frames < clip_len:
      raise common.DataError(
          f"{entry.path}: {num_frames} frames, fewer than one clip of {clip_len} frames "
          f"(data.builder.num_frames).")
    ppg = np.asarray(raw.ppg_at_frames(num_frames), np.float32)
    num_clips = num_frames // clip_len
    video = np.concatenate(resized)[:num_clips * clip_len]
    video = video.reshape((num_clips, clip_len) + video.shape[1:])
    ppg = ppg[:num_clips * clip_len].reshape(num_clips, clip_len)
    rates = hr.heart_rate(ppg, raw.fps)
    return [{"video": video[k], "ppg": ppg[k], "heart_rate": np.float32(rates[k]),
             "video_id": entry.video_id, "subject": entry.subject, "clip_index": k,
             "fps": np.float32(raw.fps)} for k in range(num_clips)]
