"""SCAMPS (McDuff et al. 2022): synthetic avatars with ground-truth PPG (docs/heart-rate.md).

Each video is one MATLAB v7.3 file (HDF5), read with h5py: `Xsub` the 240×240 face crop,
video values in [0, 1]; `d_ppg` the PPG, one sample per frame. HDF5 stores MATLAB arrays with
their axes reversed, and which of MATLAB's orders SCAMPS used is not documented, so the axes
of `Xsub` are found by their sizes: time is the axis as long as `d_ppg`, colour the axis of
size 3, and the two spatial axes, reversed back to MATLAB's (height, width).

Splits: the rPPG-Toolbox layout `Train/`, `Val/`, `Test/` folders of .mat files, or a flat
folder with the official `ScampsTrainTestSplit.csv`. The CSV's exact columns are *unverified*,
so each row is read tolerantly: it must contain the file's name (with or without .mat) and a
split word (train / val / validation / test).
"""

import csv
import glob
import os

import h5py
import numpy as np

from simper_jax.data import common
from simper_jax.data import rppg

SPLIT_CSV = "ScampsTrainTestSplit.csv"
_SPLIT_WORDS = {"train": "train", "val": "validation", "valid": "validation",
                "validation": "validation", "test": "test"}
_FRAMES_PER_READ = 60  # bounds memory: a 600-frame 240×240 float64 Xsub is 830 MB

make_config = rppg.make_config  # the name pipeline.get_builder looks up


class Scamps(rppg.RppgBuilder):
  """SCAMPS face-video clips with their PPG and per-clip heart rate."""

  DATASET = "SCAMPS"
  SPLITS = ("train", "validation", "test")
  LAYOUT = ("  either  Train/P000001.mat  Val/P....mat  Test/P....mat   (rPPG-Toolbox layout)\n"
            "  or      P000001.mat ... P002800.mat  plus  ScampsTrainTestSplit.csv\n"
            "Each .mat is MATLAB v7.3 with the fields Xsub (video) and d_ppg (PPG). SCAMPS is "
            "distributed by its authors under the R-UDA licence: "
            "https://github.com/danmcduff/scampsdataset")
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT
  BUILDER_CONFIGS = [rppg.RppgConfig(name="default", face_crop=False)]  # Xsub is a face crop

  def list_videos(self, manual_dir):
    by_split = {split: [] for split in self.SPLITS}
    folders = {name.lower(): os.path.join(manual_dir, name) for name in os.listdir(manual_dir)
               if os.path.isdir(os.path.join(manual_dir, name))}
    if any(word in folders for word in ("train", "val", "test")):
      for word, path in folders.items():
        if word in _SPLIT_WORDS:
          by_split[_SPLIT_WORDS[word]] += sorted(glob.glob(os.path.join(path, "*.mat")))
    else:
      by_split = self._split_by_csv(manual_dir)
    if not any(by_split.values()):
      raise common.DataNotFoundError(
          f"SCAMPS not found: {manual_dir} holds no .mat files in the expected layout.\n"
          f"{self.manual_instructions()}")
    return {split: [self._entry(path) for path in paths] for split, paths in by_split.items()}

  def _split_by_csv(self, manual_dir):
    files = sorted(glob.glob(os.path.join(manual_dir, "*.mat")))
    csv_path = os.path.join(manual_dir, SPLIT_CSV)
    if not files:
      return {}
    if not os.path.exists(csv_path):
      raise common.DataNotFoundError(
          f"{manual_dir} holds {len(files)} .mat files but no {SPLIT_CSV} and no Train/Val/Test "
          f"folders, so the official split is unknown.\n{self.manual_instructions()}")
    stems = {os.path.splitext(os.path.basename(f))[0]: f for f in files}
    by_split = {split: [] for split in self.SPLITS}
    with open(csv_path, newline="") as f:
      for line_number, row in enumerate(csv.reader(f), 1):
        cells = [c.strip() for c in row]
        names = [os.path.splitext(os.path.basename(c))[0] for c in cells]
        video = next((n for n in names if n in stems), None)
        split = next((_SPLIT_WORDS[c.lower()] for c in cells if c.lower() in _SPLIT_WORDS), None)
        if video and split:
          by_split[split].append(stems.pop(video))
        elif video:
          raise common.DataError(f"{csv_path}, line {line_number}: names {video} but no split "
                                 f"(expected one of {sorted(_SPLIT_WORDS)}).")
    if stems:
      print(f"[scamps] {len(stems)} .mat files are not in {SPLIT_CSV} and are left out, e.g. "
            f"{sorted(stems)[:3]}", flush=True)
    return by_split

  @staticmethod
  def _entry(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    return rppg.VideoEntry(video_id=stem, subject=stem, path=path)

  def read_video(self, entry):
    return read_mat(entry.path)


def read_mat(path: str, fps: float = 30.0) -> rppg.RawVideo:
  """Opens one SCAMPS .mat; frames are read lazily in chunks of `_FRAMES_PER_READ`."""
  try:
    handle = h5py.File(path, "r")
  except OSError as e:
    raise common.DataError(f"{path}: not a MATLAB v7.3 (HDF5) .mat file ({e}); SCAMPS videos "
                           f"are v7.3 files with the fields Xsub and d_ppg.") from e
  missing = [k for k in ("Xsub", "d_ppg") if k not in handle]
  if missing:
    fields = sorted(handle.keys())
    handle.close()
    raise common.DataError(f"{path}: no field {' or '.join(missing)} (it has {fields}); "
                           f"expected a SCAMPS .mat with Xsub (video) and d_ppg (PPG).")
  ppg = np.asarray(handle["d_ppg"], np.float64)
  if ppg.ndim > 2 or (ppg.ndim == 2 and min(ppg.shape) != 1):
    handle.close()
    raise common.DataError(f"{path}: d_ppg has shape {ppg.shape}; expected a vector.")
  ppg = ppg.reshape(-1)
  xsub = handle["Xsub"]
  time_axis, order = _video_axes(path, xsub.shape, len(ppg))

  def frames():
    try:
      for begin in range(0, xsub.shape[time_axis], _FRAMES_PER_READ):
        index = [slice(None)] * 4
        index[time_axis] = slice(begin, begin + _FRAMES_PER_READ)
        chunk = np.transpose(xsub[tuple(index)], order)
        if chunk.dtype != np.uint8:
          chunk = np.clip(np.round(chunk * 255.0), 0, 255).astype(np.uint8)
        yield np.ascontiguousarray(chunk)
    finally:
      handle.close()

  return rppg.RawVideo(frames=frames(), fps=fps,
                       ppg_at_frames=lambda n: rppg.stretch(ppg, n))


def _video_axes(path, shape, num_samples):
  """(time axis, transpose order to [T, H, W, 3]) of an Xsub of h5py `shape`."""
  if len(shape) != 4:
    raise common.DataError(f"{path}: Xsub has shape {shape}; expected 4 axes (frames, height, "
                           f"width, 3 colours, in some order).")
  time_axes = [a for a in range(4) if shape[a] == num_samples]
  colour_axes = [a for a in range(4) if shape[a] == 3 and a not in time_axes[:1]]
  if not time_axes or not colour_axes:
    raise common.DataError(f"{path}: Xsub has shape {shape}; expected one axis as long as d_ppg "
                           f"({num_samples} samples) and one of size 3 (colour).")
  time_axis, colour_axis = time_axes[0], colour_axes[0]
  width_axis, height_axis = [a for a in range(4) if a not in (time_axis, colour_axis)]
  return time_axis, (time_axis, height_axis, width_axis, colour_axis)
