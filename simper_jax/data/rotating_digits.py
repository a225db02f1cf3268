"""RotatingDigits (docs/method.md §7): a digit rotates back and forth; the target is its frequency.

angle(t) = 90° · sin(2π f t / fps + φ), f ~ U(freq_range), φ ~ U(−1.57, 1.57).

Zero-shot frequency generalization (docs/method.md §7): `train_bands`, when given, draws the
training split's frequencies uniformly from these bands only (e.g. ((0.5, 2), (3, 5)) leaves
2–3 Hz unseen; ((0.5, 3),) leaves everything above 3 Hz unseen), while the test split keeps
the whole `freq_range`.

Digits come from scikit-learn's bundled 8×8 digits (offline, the default), upsampled to the
output size inside the rotation's resampling, or from a Keras-style `mnist.npz` (keys
`x_train`, `y_train`, `x_test`, `y_test`) that the user puts in the TFDS `manual_dir`. Train
and test videos draw their digits from disjoint image pools. Every video is a pure function of
(seed, split, index), so the prepared files do not depend on generation order.
"""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from scipy import ndimage

from simper_jax.data import common

DIGIT_SOURCES = ("sklearn", "mnist")
_SKLEARN_TRAIN_POOL = 1000  # sklearn images [0, 1000) feed train, the other 797 feed test


@dataclasses.dataclass(eq=False)
class RotatingDigitsConfig(tfds.core.BuilderConfig):
  """What to generate. The config name is derived from the fields (see `make_config`)."""
  digits: str = "sklearn"
  num_train: int = 1000
  num_test: int = 2000
  num_frames: int = 150
  fps: float = 30.0
  image_size: int = 28
  freq_range: tuple[float, float] = (0.5, 5.0)
  max_angle: float = 90.0
  seed: int = 0
  train_bands: tuple = ()  # ((low, high), ...) Hz of the training split; () → freq_range


def make_config(**fields) -> RotatingDigitsConfig:
  """A config whose name encodes its fields, so that two settings never share a directory."""
  fields["train_bands"] = tuple(tuple(float(x) for x in band)
                                for band in fields.get("train_bands", ()))
  check_bands(fields["train_bands"], fields.get("freq_range", (0.5, 5.0)))
  # Without bands the name is the one it had before the field existed: prepared data stays.
  exclude = () if fields["train_bands"] else ("train_bands",)
  return common.named_config(RotatingDigitsConfig, "{digits}_{image_size}px_{num_frames}f",
                             exclude=exclude, **fields)


def check_bands(bands, freq_range) -> None:
  """Raises common.DataError unless `bands` are (low, high) pairs, low < high, inside
  `freq_range` and not overlapping."""
  previous_high = -np.inf
  for band in sorted(bands):
    if len(band) != 2 or not freq_range[0] <= band[0] < band[1] <= freq_range[1]:
      raise common.DataError(
          f"data.builder.train_bands={tuple(bands)}: expected (low, high) pairs with low < high "
          f"inside freq_range={tuple(freq_range)}.")
    if band[0] < previous_high:
      raise common.DataError(f"data.builder.train_bands={tuple(bands)}: the bands overlap.")
    previous_high = band[1]


def draw_frequency(rng: np.random.Generator, bands) -> float:
  """A frequency uniform over the union of `bands` ((low, high), ...): one draw of the rng,
  as U(low, high) is for a single band, so one band gives the same videos as before."""
  if len(bands) == 1:
    return rng.uniform(*bands[0])
  widths = np.array([high - low for low, high in bands])
  position = rng.uniform(0.0, widths.sum())
  band = min(int(np.searchsorted(np.cumsum(widths), position, side="right")), len(bands) - 1)
  return bands[band][0] + position - np.sum(widths[:band])


def rotate_digit(image: np.ndarray, angles_deg: np.ndarray, size: int) -> np.ndarray:
  """Renders `image` at each angle, resampled (bilinear) to size×size.

  Args:
    image: [h, w] float digit, background 0.
    angles_deg: [T] rotation angles in degrees.
    size: output side length.

  Returns:
    [T, size, size] float frames.
  """
  h, w = image.shape
  centre = (size - 1) / 2.0
  yy, xx = np.meshgrid(np.arange(size) - centre, np.arange(size) - centre, indexing="ij")
  theta = np.deg2rad(angles_deg)[:, None, None]
  # Inverse rotation of each output pixel, then scale from output to source pixels.
  src_y = (np.cos(theta) * yy - np.sin(theta) * xx) * h / size + (h - 1) / 2.0
  src_x = (np.sin(theta) * yy + np.cos(theta) * xx) * w / size + (w - 1) / 2.0
  coords = np.stack([src_y.ravel(), src_x.ravel()])
  frames = ndimage.map_coordinates(image, coords, order=1, mode="constant", cval=0.0)
  return frames.reshape(len(angles_deg), size, size)


def load_digit_pools(source: str, manual_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{'train'|'test': (images [N, h, w] float in [0, 1], digit labels [N])}."""
  if source == "sklearn":
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    digits = load_digits()
    # A 2-pixel margin puts the digit in the central 2/3 of the frame, as MNIST's 20×20 box
    # sits in 28×28, so that rotation does not cut off its corners.
    images = np.pad(digits.images.astype(np.float32) / 16.0, ((0, 0), (2, 2), (2, 2)))
    k = _SKLEARN_TRAIN_POOL
    return {"train": (images[:k], digits.target[:k]), "test": (images[k:], digits.target[k:])}
  if source == "mnist":
    path = os.path.join(str(manual_dir or ""), "mnist.npz")
    if not manual_dir or not os.path.exists(path):
      raise common.DataNotFoundError(
          f"RotatingDigits with digits='mnist' reads a local Keras-style mnist.npz, and "
          f"{path!r} does not exist. Put mnist.npz (keys x_train, y_train, x_test, y_test) in "
          f"the directory given as config.data.manual_dir, or use digits='sklearn'.")
    with np.load(path) as npz:
      missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
      if missing:
        raise common.DataError(f"{path} lacks the arrays {sorted(missing)}; expected a Keras-style "
                         f"mnist.npz with x_train, y_train, x_test, y_test.")
      return {"train": (npz["x_train"].astype(np.float32) / 255.0, npz["y_train"]),
              "test": (npz["x_test"].astype(np.float32) / 255.0, npz["y_test"])}
  raise ValueError(f"Unknown digits source {source!r}; expected one of {DIGIT_SOURCES}.")


def make_video(config: RotatingDigitsConfig, image: np.ndarray, rng: np.random.Generator,
               bands=None):
  """One example: uint8 video [T, S, S, 1], its frequency (Hz, uniform over `bands`, default
  the config's freq_range) and phase."""
  frequency = draw_frequency(rng, bands or (config.freq_range,))
  phase = rng.uniform(-1.57, 1.57)
  t = np.arange(config.num_frames) / config.fps
  angles = config.max_angle * np.sin(2 * np.pi * frequency * t + phase)
  frames = rotate_digit(image, angles, config.image_size)
  video = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)[..., None]
  return video, np.float32(frequency), np.float32(phase)


class RotatingDigits(common.Builder):
  """Rotating digit videos labelled with their rotation frequency."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  # Named "default", unlike every make_config() name, so a config equal to it is not a clash.
  BUILDER_CONFIGS = [RotatingDigitsConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Only for digits='mnist': place a Keras-style mnist.npz in the manual_dir. The default "
      "digits='sklearn' needs nothing.")

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "video": tfds.features.Tensor(
                shape=(c.num_frames, c.image_size, c.image_size, 1), dtype=np.uint8),
            "frequency": tfds.features.Scalar(dtype=np.float32, doc="rotation frequency, Hz"),
            "phase": tfds.features.Scalar(dtype=np.float32, doc="phase φ, radians"),
            "digit": tfds.features.Scalar(dtype=np.int64, doc="the digit's class (not a target)"),
        }),
        supervised_keys=("video", "frequency"),
    )

  def _split_generators(self, dl_manager):
    manual_dir = getattr(dl_manager, "_manual_dir", None)
    pools = load_digit_pools(self.builder_config.digits, manual_dir)
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {split: self._generate_examples(split, pools[split], sizes[split])
            for split in ("train", "test")}

  def _generate_examples(self, split, pool, num_videos):
    images, labels = pool
    split_id = {"train": 0, "test": 1}[split]
    bands = (self.builder_config.train_bands or None) if split == "train" else None
    for index in range(num_videos):
      rng = np.random.default_rng([self.builder_config.seed, split_id, index])
      choice = int(rng.integers(len(images)))
      video, frequency, phase = make_video(self.builder_config, images[choice], rng, bands)
      yield index, {"video": video, "frequency": frequency, "phase": phase,
                    "digit": int(labels[choice])}
