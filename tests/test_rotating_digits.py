"""The RotatingDigits builder: shapes, dtypes, labels that match the video, clear errors."""

import numpy as np
import pytest

from simper_jax.data import rotating_digits as rd


def build(tmp_path, **fields):
  builder = rd.RotatingDigits(config=rd.make_config(**fields), data_dir=str(tmp_path / "tfds"),
                              file_format="array_record")
  return builder


def test_builder_output_shapes_dtypes_and_labels(tmp_path):
  builder = build(tmp_path, num_train=6, num_test=4, num_frames=30, image_size=12,
                  freq_range=(1.0, 2.0))
  builder.download_and_prepare()
  sources = builder.as_data_source()
  assert (len(sources["train"]), len(sources["test"])) == (6, 4)
  freqs = []
  for example in (sources["train"][i] for i in range(6)):
    assert example["video"].shape == (30, 12, 12, 1) and example["video"].dtype == np.uint8
    assert example["video"].max() > 100  # a visible digit, not an empty frame
    assert 1.0 <= example["frequency"] <= 2.0
    freqs.append(float(example["frequency"]))
  assert len(set(freqs)) == 6  # each video draws its own frequency


def test_video_repeats_after_one_period():
  # f = 3 Hz at 30 fps: a period is exactly 10 frames, so frame t equals frame t + 10.
  config = rd.make_config(num_frames=40, image_size=16, freq_range=(3.0, 3.0))
  image = rd.load_digit_pools("sklearn", None)["train"][0][7]
  video, frequency, _ = rd.make_video(config, image, np.random.default_rng(0))
  assert frequency == 3.0
  np.testing.assert_allclose(video[:30].astype(int), video[10:].astype(int), atol=1)
  assert np.abs(video[0].astype(int) - video[5].astype(int)).max() > 50  # it does move


def test_generation_is_deterministic_and_configs_get_distinct_names(tmp_path):
  a, b = rd.make_config(num_train=4), rd.make_config(num_train=4)
  assert a.name == b.name and a.name != rd.make_config(num_train=5).name
  builder = build(tmp_path, num_train=2, num_test=2, num_frames=10, image_size=8)
  builder.download_and_prepare()
  first = builder.as_data_source()["test"][1]["video"]
  other = build(tmp_path / "again", num_train=2, num_test=2, num_frames=10, image_size=8)
  other.download_and_prepare()
  np.testing.assert_array_equal(first, other.as_data_source()["test"][1]["video"])


def test_mnist_from_a_local_npz(tmp_path):
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 255, (5, 28, 28), dtype=np.uint8),
           y_train=np.arange(5), x_test=rng.integers(0, 255, (3, 28, 28), dtype=np.uint8),
           y_test=np.arange(3))
  import tensorflow_datasets as tfds
  builder = build(tmp_path, digits="mnist", num_train=3, num_test=2, num_frames=10)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path)))
  assert builder.as_data_source()["train"][0]["video"].shape == (10, 28, 28, 1)


def test_missing_mnist_npz_names_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"mnist\.npz.*does not exist"):
    rd.load_digit_pools("mnist", str(tmp_path))


def test_malformed_mnist_npz_names_the_missing_arrays(tmp_path):
  np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28)))
  with pytest.raises(ValueError, match=r"lacks the arrays \['x_test', 'y_test', 'y_train'\]"):
    rd.load_digit_pools("mnist", str(tmp_path))
