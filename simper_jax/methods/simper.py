"""SimPer: views at M speeds and the generalized InfoNCE over them (docs/method.md §2, §5)."""

import jax
import jax.numpy as jnp

from simper_jax import augment
from simper_jax import similarity as similarity_lib

Array = jnp.ndarray

LABEL_DISTANCES = ("l1", "l2", "sqrt")


def label_distance(s_a: Array, s_b: Array, kind: str = "l1") -> Array:
  """[M], [N] speeds -> [M, N] distances d(s_i, s_j)."""
  delta = jnp.abs(s_a[:, None] - s_b[None, :])
  if kind == "l1":
    return delta
  if kind == "l2":
    return delta**2
  if kind == "sqrt":
    return jnp.sqrt(delta + 1e-12)  # offset: sqrt'(0) is infinite; speeds are constants anyway
  raise ValueError(f"Unknown label_dist {kind!r}; expected one of {LABEL_DISTANCES}.")


def simper_loss(features: Array, speeds: Array, *, similarity: str = "max_xcorr",
                label_dist: str = "l1", label_temperature: float = 0.1,
                feature_temperature: float = 1.0, fps: float = 30.0) -> Array:
  """Generalized InfoNCE with soft speed targets, averaged over rows and clips.

  Args:
    features: [B, 2M, L] feature signals; views [:M] are compared against views [M:].
    speeds: [B, 2M] playback speed of each view.
    similarity: one of `similarity.SIMILARITIES`.
    label_dist: distance between speeds, "l1" | "l2" | "sqrt".
    label_temperature: τ_label of the soft targets.
    feature_temperature: τ_feat dividing the similarity logits.
    fps: frame rate of the feature signals (used by "npsd").

  Returns:
    Scalar loss: mean over clips and rows of −Σ_j Y_ij log softmax_j(S_ij).
  """
  if features.ndim != 3 or speeds.shape != features.shape[:2]:
    raise ValueError(f"simper_loss expects features [B, 2M, L] and speeds [B, 2M]; got "
                     f"{features.shape} and {speeds.shape}.")
  num_views = features.shape[1]
  if num_views % 2 or num_views < 4:
    raise ValueError(f"simper_loss needs 2M views with M >= 2, got {num_views}.")
  m = num_views // 2
  sim_fn = similarity_lib.get(similarity, fps=fps)

  def per_clip(feats, spd):  # [2M, L], [2M] -> scalar
    logits = sim_fn(feats[:m], feats[m:]) / feature_temperature  # [M, M]
    targets = jax.nn.softmax(-label_distance(spd[:m], spd[m:], label_dist) / label_temperature)
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1))

  return jnp.mean(jax.vmap(per_clip)(features.astype(jnp.float32), speeds))


def make_views(key: Array, clip: Array, *, num_speeds: int, speed_range: tuple[float, float],
               window: int, **augment_kwargs) -> tuple[Array, Array]:
  """One clip -> its 2M views and their speeds (docs/method.md §2).

  Args:
    key: PRNG key for this clip.
    clip: [T, H, W, C] float in [0, 1].
    num_speeds: M.
    speed_range: (s_min, s_max) of the uniform speed draw.
    window: L, frames per view.
    **augment_kwargs: passed on to `augment.invariant`.

  Returns:
    views [2M, L, H, W, C] and speeds [2M] (the M sorted speeds, twice).
  """
  speed_key, view_key = jax.random.split(key)
  speeds = jnp.sort(jax.random.uniform(speed_key, (num_speeds,), minval=speed_range[0],
                                       maxval=speed_range[1]))
  speeds = jnp.concatenate([speeds, speeds])
  view_keys = jax.random.split(view_key, 2 * num_speeds)

  def one_view(k, speed):
    window_key, invariant_key = jax.random.split(k)
    frames = augment.speed_window(window_key, clip, speed, window)
    return augment.invariant(invariant_key, frames, **augment_kwargs)

  return jax.vmap(one_view)(view_keys, speeds), speeds
