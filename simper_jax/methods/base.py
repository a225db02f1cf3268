"""What every method gives the training loop, and the pieces several methods share.

A `Method` is a bundle of pure functions that `train.train_step` calls in a fixed order:

  views, aux = vmap(make_views)(example_keys, clips)         # on the device, per clip
  loss, (batch_stats, aux_out) = loss(params, batch_stats, extra, encode, views, aux, labels,
                                      step)                  # differentiated w.r.t. params
  (optimizer step on params = {'encoder': ..., 'heads': ...})
  extra = update_extra(extra, new_params, batch_stats, aux_out, step)

`encode(encoder_params, encoder_batch_stats, video [n, L, H, W, C]) -> (signals [n, L],
new_batch_stats)` hides the encoder's BatchNorm plumbing, dropout and dtype; every method sees
the encoder's per-frame feature signal, and a method that needs a vector projects it in its own
heads. `extra` holds state the optimizer does not train (an EMA target network with its own
BatchNorm statistics, a queue of keys); it is checkpointed with the rest of the train state.

`aux_out = {'per_example': {...}, 'latest': {...}}`: leaves of 'per_example' have the micro-
batch as leading axis (with gradient accumulation the loop puts the micro-batches back in
example order); 'latest' is state that only its last value matters of (BatchNorm statistics of
a target network).
"""

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from simper_jax import augment
from simper_jax.data import pipeline

Array = jnp.ndarray


@dataclasses.dataclass(frozen=True)
class Method:
  """A method as the loop sees it (see the module docstring for the call order).

  Attributes:
    window: frames per view (the encoder is initialized on views of this length).
    make_views: (key, clip [T, H, W, C] in [0, 1]) -> (views [V, L, H, W, C], aux).
    init_heads: (key, feature_length) -> {'params': ..., 'batch_stats': ...} of the heads.
    init_extra: (key, params, batch_stats) -> extra (a pytree; {} when there is none).
    loss: see the module docstring.
    update_extra: (extra, params, batch_stats, aux_out, step) -> extra.
  """
  window: int
  make_views: Callable
  init_heads: Callable
  loss: Callable
  init_extra: Callable = lambda key, params, batch_stats: {}
  update_extra: Callable = lambda extra, params, batch_stats, aux_out, step: extra


def no_aux_out() -> dict:
  return {"per_example": {}, "latest": {}}


# ---------------------------------------------------------------------------------------------
# Heads.
# ---------------------------------------------------------------------------------------------
class MLP(nn.Module):
  """[N, D] -> [N, features[-1]]: Dense (→ BatchNorm) → ReLU for each hidden width, then Dense.

  The projectors and predictors of SimCLR, MoCo v2, BYOL and CVRL, on the feature signal.
  """
  features: Sequence[int]
  batch_norm: bool = True

  @nn.compact
  def __call__(self, x: Array, train: bool = True) -> Array:
    for width in self.features[:-1]:
      x = nn.Dense(width)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      x = nn.relu(x)
    return nn.Dense(self.features[-1])(x)


def init_heads(key: Array, feature_length: int, **modules: MLP) -> dict:
  """{'params': {name: ...}, 'batch_stats': {name: ...}} of MLP heads; the first one reads
  the feature signal [feature_length], each later one the output of the one before."""
  params, batch_stats, width = {}, {}, feature_length
  for (name, module), k in zip(modules.items(), jax.random.split(key, len(modules))):
    variables = module.init(k, jnp.zeros((2, width), jnp.float32), train=False)
    params[name], batch_stats[name] = variables["params"], variables.get("batch_stats", {})
    width = module.features[-1]
  return {"params": params, "batch_stats": batch_stats}


def apply_mlp(module: MLP, params, batch_stats, x: Array) -> tuple[Array, Any]:
  """Training-mode forward pass; returns (output, new batch_stats)."""
  if not batch_stats:
    return module.apply({"params": params}, x, train=True), batch_stats
  out, updates = module.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                              mutable=["batch_stats"])
  return out, updates["batch_stats"]


def encode_and_project(projector: MLP, params, batch_stats, encode, video: Array):
  """video [n, L, H, W, C] -> (projections [n, D], new batch statistics of the encoder and the
  projector, as {'encoder': ..., 'heads': {'projector': ...}})."""
  signals, encoder_stats = encode(params["encoder"], batch_stats["encoder"], video)
  z, projector_stats = apply_mlp(projector, params["heads"]["projector"],
                                 batch_stats["heads"]["projector"], signals)
  return z, {"encoder": encoder_stats, "heads": {"projector": projector_stats}}


# ---------------------------------------------------------------------------------------------
# Losses.
# ---------------------------------------------------------------------------------------------
def l2_normalize(x: Array) -> Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def nt_xent(z1: Array, z2: Array, temperature: float) -> Array:
  """SimCLR's NT-Xent over the whole batch: [B, D] projections of view 1 and view 2.

  Each of the 2B views has its other view as the positive and the 2B − 2 views of the other
  clips as negatives. Under `jit` over a global batch, `z @ z.T` spans every device and host:
  XLA inserts the collectives, so negatives are never only the local ones.
  """
  z = l2_normalize(jnp.concatenate([z1, z2]).astype(jnp.float32))
  n = z1.shape[0]
  logits = z @ z.T / temperature
  logits = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, logits)
  positives = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[jnp.arange(2 * n), positives])


def info_nce_with_queue(queries: Array, keys: Array, queue: Array, temperature: float) -> Array:
  """MoCo's InfoNCE: [B, D] queries against their own [B, D] keys (positives) and a [K, D]
  queue of earlier keys (negatives); every vector is L2-normalized here."""
  q, k, queue = l2_normalize(queries), l2_normalize(keys), l2_normalize(queue)
  positive = jnp.sum(q * k, axis=-1, keepdims=True)  # [B, 1]
  logits = jnp.concatenate([positive, q @ queue.T], axis=-1) / temperature
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])


def normalized_mse(predictions: Array, targets: Array) -> Array:
  """BYOL's loss: ‖p/‖p‖ − z/‖z‖‖² = 2 − 2·cos(p, z), averaged over the batch."""
  return jnp.mean(jnp.sum((l2_normalize(predictions) - l2_normalize(targets)) ** 2, axis=-1))


# ---------------------------------------------------------------------------------------------
# State outside the optimizer.
# ---------------------------------------------------------------------------------------------
def ema(target, online, momentum):
  """target ← momentum · target + (1 − momentum) · online, leaf by leaf."""
  return optax.incremental_update(online, target, step_size=1.0 - momentum)


def cosine_momentum(step: Array, total_steps: int, base: float) -> Array:
  """BYOL's target momentum: `base` at step 0, rising to 1 on a cosine over the run."""
  progress = jnp.minimum(step / max(total_steps, 1), 1.0)
  return 1.0 - (1.0 - base) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0


def enqueue(queue: Array, pointer: Array, keys: Array) -> tuple[Array, Array]:
  """Writes `keys` [B, D] over the oldest B entries of `queue` [K, D]; K is a multiple of B,
  so a batch never straddles the end, and the pointer wraps to 0 after K / B batches."""
  queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (pointer, 0))
  return queue, (pointer + keys.shape[0]) % queue.shape[0]


# ---------------------------------------------------------------------------------------------
# Views.
# ---------------------------------------------------------------------------------------------
def augmented_window(key: Array, clip: Array, window: int, augment_kwargs: dict,
                     speed: float = 1.0) -> Array:
  """One view: a random window of `window` frames at `speed`, then the invariant
  augmentations (one draw for the whole view). [T, H, W, C] -> [L, H, W, C]."""
  window_key, augment_key = jax.random.split(key)
  frames = augment.speed_window(window_key, clip, jnp.float32(speed), window)
  return augment.invariant(augment_key, frames, **augment_kwargs)


def two_views(key: Array, clip: Array, *, window: int, augment_kwargs: dict) -> tuple[Array, dict]:
  """SimCLR / MoCo / BYOL views: two random windows of one clip at its own speed, each with
  its own invariant augmentations. Returns views [2, L, H, W, C] and no aux."""
  views = jax.vmap(lambda k: augmented_window(k, clip, window, augment_kwargs))(
      jax.random.split(key, 2))
  return views, {}


def check_window(fail, config, block: str) -> None:
  window = config[block].window
  if not (isinstance(window, int) and 1 <= window <= clip_frames(config)):
    fail(f"{block}.window", f"expected 1 <= window <= the clip length "
                            f"{pipeline.clip_frames_field(config.data)}={clip_frames(config)}.")


def clip_frames(config) -> int:
  """Frames per clip of the configured dataset."""
  return pipeline.clip_shape(config.data)[0]


def check_in_batch_negatives(fail, config, method: str) -> None:
  if config.batch_size < 2:
    fail("batch_size", f"{method}'s negatives are the other clips of the batch; expected at "
                       f"least 2 clips.")


def check_positive(fail, config_block, prefix: str, *fields: str) -> None:
  for field in fields:
    value = config_block[field]
    if not (isinstance(value, (int, float)) and value > 0):
      fail(f"{prefix}.{field}", "expected a positive number.")


def check_widths(fail, widths, field: str) -> None:
  if not (isinstance(widths, (tuple, list)) and widths
          and all(isinstance(w, int) and w > 0 for w in widths)):
    fail(field, "expected a non-empty tuple of positive layer widths, e.g. (256, 128).")


def check_momentum(fail, value, field: str) -> None:
  if not (isinstance(value, (int, float)) and 0 <= value < 1):
    fail(field, "expected a momentum in [0, 1).")
