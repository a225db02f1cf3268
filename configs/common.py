"""Config blocks every dataset shares (big_vision style: plain functions returning ConfigDicts)."""

import ml_collections


def simper(*, num_speeds: int, speed_range: tuple[float, float],
           window: int) -> ml_collections.ConfigDict:
  """SimPer's views and loss (docs/method.md §2, §4, §5)."""
  s = ml_collections.ConfigDict()
  s.num_speeds = num_speeds  # M speeds per clip (2M views)
  s.speed_range = speed_range  # speeds ~ U(range)
  s.window = window  # L, frames per view
  s.similarity = "max_xcorr"  # "max_xcorr" | "npsd" | "cosine" | "neg_l2"
  s.label_dist = "l1"  # speed distance for soft targets: "l1" | "l2" | "sqrt"
  s.label_temperature = 0.1  # τ_label of the soft targets
  s.feature_temperature = 1.0  # τ_feat dividing similarities (reference: 1)
  return s


def augment() -> ml_collections.ConfigDict:
  """Periodicity-invariant augmentations, one draw per view (docs/method.md §2)."""
  a = ml_collections.ConfigDict()
  a.reverse_prob = 0.5  # probability of playing the view backwards
  a.crop_area = (0.5, 1.0)  # random resized crop: area fraction range
  a.crop_aspect = (0.75, 4 / 3)  # random resized crop: aspect ratio range
  a.brightness = (0.7, 1.3)  # multiplicative brightness range
  a.blur_prob = 0.2  # probability of Gaussian blur
  a.blur_sigma = (0.1, 2.0)  # blur sigma range, pixels
  a.flip_prob = 0.5  # probability of a horizontal flip
  return a
