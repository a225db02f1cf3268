"""CVRL (Qian et al. 2021): two clips of one video at a random temporal interval, InfoNCE.

The interval t between the two clips' starts is drawn from a monotonically decreasing density
on [0, T − L] — CVRL's sampler, which prefers nearby clips: p(t) ∝ (1 − t/(T − L))^power
(`cvrl.interval_power`; 1 = CVRL's linearly decreasing choice) — and the pair is placed
uniformly in the video. The spatial augmentation is temporally consistent: one crop, flip,
blur and brightness draw for all frames of a clip (docs/method.md §2), without time reversal,
which CVRL does not use. A 3-layer MLP projector and NT-Xent over the global batch with
τ = `cvrl.temperature` (0.1, CVRL's).
"""

import jax
import jax.numpy as jnp

from simper_jax import augment
from simper_jax.methods import base
from simper_jax.methods import simclr


def sample_interval(key, max_interval: int, power: float):
  """t in [0, max_interval] with density ∝ (1 − t/max_interval)^power, by inverting its CDF
  1 − (1 − t/max_interval)^(power + 1)."""
  u = jax.random.uniform(key)
  return max_interval * (1.0 - (1.0 - u) ** (1.0 / (power + 1.0)))


def make_views(key, clip, *, window: int, power: float, augment_kwargs: dict):
  """Two clips of `window` frames at a sampled interval. [T, H, W, C] -> views
  [2, L, H, W, C] and {'interval': frames between their starts}."""
  num_frames = clip.shape[0]
  max_interval = num_frames - window
  interval_key, start_key, order_key, *augment_keys = jax.random.split(key, 5)
  interval = jnp.floor(sample_interval(interval_key, max_interval, power)).astype(jnp.int32)
  first = jnp.floor(jax.random.uniform(start_key) * (max_interval - interval + 1))
  first = jnp.minimum(first.astype(jnp.int32), max_interval - interval)
  starts = jnp.where(jax.random.bernoulli(order_key), jnp.stack([first, first + interval]),
                     jnp.stack([first + interval, first]))
  consistent = {**augment_kwargs, "reverse_prob": 0.0}
  views = jnp.stack([
      augment.invariant(k, jax.lax.dynamic_slice_in_dim(clip, start, window), **consistent)
      for k, start in zip(augment_keys, starts)])
  return views, {"interval": interval}


def check_config(config, fail) -> None:
  c = config.cvrl
  base.check_window(fail, config, "cvrl")
  base.check_positive(fail, c, "cvrl", "temperature")
  if not (isinstance(c.interval_power, (int, float)) and c.interval_power >= 0):
    fail("cvrl.interval_power", "expected a number >= 0 (0: uniform intervals).")
  base.check_widths(fail, c.projector, "cvrl.projector")
  base.check_in_batch_negatives(fail, config, "CVRL")


def build(config, **unused_context) -> base.Method:
  c = config.cvrl
  projector = base.MLP(tuple(c.projector), batch_norm=True)

  def loss(params, batch_stats, extra, encode, views, aux, labels, step):
    del extra, aux, labels, step
    z, stats = simclr.project_two_views(params, batch_stats, encode, projector, views)
    return base.nt_xent(z[:, 0], z[:, 1], c.temperature), (stats, base.no_aux_out())

  return base.Method(
      window=c.window,
      make_views=lambda key, clip: make_views(key, clip, window=c.window,
                                              power=c.interval_power,
                                              augment_kwargs=config.augment.to_dict()),
      init_heads=lambda key, length: base.init_heads(key, length, projector=projector),
      loss=loss)
