"""Reading video files, the one implementation every builder and `predict` use: which files are
videos, frame rates and timestamps, decoding in bounded chunks, the face box, crops and resizes,
resampling frames to another rate.

OpenCV (its FFmpeg backend) decodes; frames come out RGB uint8 [n, H, W, 3].
"""

import math
import os
import threading
from typing import Iterator

import cv2
import numpy as np

# Raw streams: frames without a container, so without a frame rate. OpenCV's FFmpeg backend
# reports 25 fps for them (and for any file that declares none), which would silently scale
# every rate by 25 / the true rate: these need a frame rate from the user.
RAW_STREAMS = (".mjpg", ".mjpeg", ".h264", ".264", ".h265", ".265", ".hevc", ".h263", ".yuv")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".y4m", ".ts", ".mts", ".m2ts", ".3gp", ".ogv") + RAW_STREAMS


def is_video(path: str) -> bool:
  """By its extension (case-insensitive): what OpenCV's FFmpeg backend is asked to open."""
  return path.lower().endswith(VIDEO_EXTENSIONS)


def files_under(folder: str) -> list[str]:
  """Every file in `folder` and its sub-folders, sorted by path relative to it (hidden files
  and folders — names starting with '.' — left out)."""
  found = []
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    found += [os.path.join(root, name) for name in files if not name.startswith(".")]
  return sorted(found, key=lambda path: os.path.relpath(path, folder))


def declared_fps(capture: cv2.VideoCapture, path: str) -> float | None:
  """The frame rate the file declares, or None: a raw stream declares none (whatever OpenCV
  reports), nor does a container whose rate reads as 0 or NaN."""
  if path.lower().endswith(RAW_STREAMS):
    return None
  rate = capture.get(cv2.CAP_PROP_FPS)
  return float(rate) if rate > 0 and math.isfinite(rate) else None


def video_chunks(capture: cv2.VideoCapture, size: int) -> Iterator[np.ndarray]:
  """RGB uint8 frames [n ≤ size, H, W, 3] of an opened OpenCV capture, `size` at a time until
  the stream ends (bounded memory for long videos; OpenCV decodes BGR); releases the capture
  when exhausted or closed."""
  for _, frames in timed_chunks(capture, size, fps=1.0, stream_times=False):
    yield frames


def timed_frames(capture: cv2.VideoCapture, fps: float,
                 stream_times: bool = True) -> Iterator[tuple[float, np.ndarray]]:
  """(time in seconds, BGR uint8 frame [H, W, 3]) of each frame of an opened capture, as
  OpenCV decodes it; releases the capture when exhausted or closed.

  With `stream_times`, a frame's time is its presentation timestamp (OpenCV's
  CAP_PROP_POS_MSEC after the read), so a variable-rate video keeps its real timing; a
  timestamp that does not move forward (MPEG-PS's last frame reads 0 here) is replaced by the
  previous one plus 1/fps. Without, frame k is at k/fps (a raw stream, or a rate the user
  gave instead of the file's).
  """
  try:
    index, previous = 0, -math.inf
    while True:
      ok, frame = capture.read()
      if not ok:
        break
      time = index / fps
      if stream_times:
        stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        time = stamp if math.isfinite(stamp) and stamp > previous else previous + 1 / fps
        if index == 0 and not math.isfinite(time):
          time = 0.0
      previous = time
      yield time, frame
      index += 1
  finally:
    capture.release()


def timed_chunks(capture: cv2.VideoCapture, size: int, fps: float,
                 stream_times: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(times [n] in seconds, RGB uint8 frames [n, H, W, 3]) of an opened capture, `size` frames
  at a time (`timed_frames`' times); releases the capture when exhausted or closed."""
  times, frames = [], []
  for time, frame in timed_frames(capture, fps, stream_times):
    times.append(time)
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    if len(frames) == size:
      yield np.asarray(times), np.stack(frames)
      times, frames = [], []
  if frames:
    yield np.asarray(times), np.stack(frames)


def frames_at(frames: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
  """Frames [N, ...] shown at `times` (s, increasing) → frames at `new_times`: each the linear
  blend of the two frames around it (held at the ends), rounded back to the input's dtype."""
  position = np.interp(new_times, times, np.arange(len(frames), dtype=np.float64))
  below = np.minimum(np.floor(position).astype(int), len(frames) - 1)
  above = np.minimum(below + 1, len(frames) - 1)
  weight = (position - below).reshape((-1,) + (1,) * (frames.ndim - 1))
  blended = (1 - weight) * frames[below] + weight * frames[above]
  return np.round(blended).astype(frames.dtype)


# ---------------------------------------------------------------------------------------------
# Face box, crops, resize.
# ---------------------------------------------------------------------------------------------
_CASCADE = threading.local()  # CascadeClassifier is not safe to share between threads


def _face_detector():
  if not hasattr(_CASCADE, "detector"):
    path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    detector = cv2.CascadeClassifier(path)
    if detector.empty():
      raise RuntimeError(f"OpenCV could not load its Haar cascade {path}; reinstall "
                         f"opencv-python-headless<5 (OpenCV 5 no longer ships it).")
    _CASCADE.detector = detector
  return _CASCADE.detector


def face_box(frame: np.ndarray, scale: float = 1.5):
  """(top, bottom, left, right) of the largest face in an RGB frame, enlarged `scale`× about
  its centre and clipped to the frame; None when no face is found."""
  gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  faces = _face_detector().detectMultiScale(gray, minSize=(30, 30))
  if len(faces) == 0:
    return None
  x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
  cx, cy, half_w, half_h = x + w / 2, y + h / 2, scale * w / 2, scale * h / 2
  height, width = frame.shape[:2]
  return (max(0, round(cy - half_h)), min(height, round(cy + half_h)),
          max(0, round(cx - half_w)), min(width, round(cx + half_w)))


def centre_box(frame: np.ndarray):
  """(top, bottom, left, right) of the largest centred square of a frame."""
  height, width = frame.shape[:2]
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  return top, top + side, left, left + side


def crop_resize(frames: np.ndarray, box, size: int) -> np.ndarray:
  """[n, H, W, 3] uint8 -> [n, size, size, 3] uint8: crop to `box` (or keep all), INTER_AREA."""
  return np.stack([crop_resize_frame(f, box, size) for f in frames])


def crop_resize_frame(frame: np.ndarray, box, size: int) -> np.ndarray:
  """One frame [H, W, C] -> [size, size, C]: crop to `box` (or keep all), INTER_AREA."""
  if box is not None:
    top, bottom, left, right = box
    frame = frame[top:bottom, left:right]
  return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
