"""SimPer: views at M speeds and the generalized InfoNCE over them (docs/method.md §2, §5)."""

import functools

import jax
import jax.numpy as jnp

from simper_jax import augment
from simper_jax import similarity as similarity_lib
from simper_jax.data import pipeline
from simper_jax.methods import base

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
                feature_temperature: float = 1.0, fps: float = 30.0, dft: str = "fft") -> Array:
  """Generalized InfoNCE with soft speed targets, averaged over rows and clips.

  Args:
    features: [B, 2M, L] feature signals; views [:M] are compared against views [M:].
    speeds: [B, 2M] playback speed of each view.
    similarity: one of `similarity.SIMILARITIES`.
    label_dist: distance between speeds, "l1" | "l2" | "sqrt".
    label_temperature: τ_label of the soft targets.
    feature_temperature: τ_feat dividing the similarity logits.
    fps: frame rate of the feature signals (used by "npsd").
    dft: how the similarities compute Fourier transforms, one of `similarity.DFTS`.

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
  sim_fn = similarity_lib.get(similarity, fps=fps, dft=dft)

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


def check_config(config, fail) -> None:
  """Raises through `fail(field, expected)` for a `config.simper` that cannot work."""
  s = config.simper
  if not (isinstance(s.num_speeds, int) and s.num_speeds >= 2):
    fail("simper.num_speeds", "SimPer contrasts M >= 2 speeds.")
  lo, hi = s.speed_range
  if not lo < hi:
    fail("simper.speed_range", "expected (low, high) with 0 < low < high: speeds must differ.")
  if not 1 <= s.window <= base.clip_frames(config):
    fail("simper.window", f"expected 1 <= window <= the clip length "
                          f"{pipeline.clip_frames_field(config.data)}="
                          f"{base.clip_frames(config)}.")
  if s.similarity not in similarity_lib.SIMILARITIES:
    fail("simper.similarity", f"expected one of {similarity_lib.SIMILARITIES}.")
  if s.label_dist not in LABEL_DISTANCES:
    fail("simper.label_dist", f"expected one of {LABEL_DISTANCES}.")
  if s.dft not in similarity_lib.DFTS:
    fail("simper.dft", f"expected one of {similarity_lib.DFTS}.")
  for field in ("label_temperature", "feature_temperature"):
    if not s[field] > 0:
      fail(f"simper.{field}", "expected a positive number.")


def build(config, **unused_context) -> base.Method:
  """SimPer has no heads and no state besides the encoder: its loss reads the feature
  signals of the 2M views directly."""
  s = config.simper
  make = functools.partial(make_views, num_speeds=s.num_speeds,
                           speed_range=tuple(s.speed_range), window=s.window,
                           **config.augment.to_dict())

  def loss(params, batch_stats, extra, encode, views, speeds, labels, step):
    del extra, labels, step
    signals, encoder_stats = encode(params["encoder"], batch_stats["encoder"],
                                    views.reshape((-1,) + views.shape[2:]))
    value = simper_loss(signals.reshape(views.shape[:3]), speeds, similarity=s.similarity,
                        label_dist=s.label_dist, label_temperature=s.label_temperature,
                        feature_temperature=s.feature_temperature, fps=config.data.fps,
                        dft=s.dft)
    return value, ({**batch_stats, "encoder": encoder_stats}, base.no_aux_out())

  return base.Method(window=s.window, make_views=make,
                     init_heads=lambda key, length: base.init_heads(key, length),
                     loss=loss)
