"""Fine-tuning with a fraction of the labels (docs/readouts.md; data efficiency: docs/experiments.md).

The encoder and a linear head on the feature signal's power spectrum — the linear probe's
input, computed differentiably by `evaluate.spectrum` — are trained together on a random
`fraction` of the labelled training clips, starting from the pretrained encoder and from the
ridge probe fitted on that same subset. The loss is the squared error in units of the labels'
standard deviation. Any scalar target works (heart rate, frequency, count).
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from simper_jax import evaluate
from simper_jax import sharding as sharding_lib
from simper_jax.data import pipeline
from simper_jax.models import heads


def predict(module, variables, head, video, *, train=False, rngs=None, spectrum_band=None):
  """uint8 video [b, T, H, W, C] -> (predictions [b], new batch_stats or None).

  `spectrum_band`: None, or (fps, (low, high)) to read only the spectrum inside the band.
  """
  kwargs = {"mutable": ["batch_stats"]} if train else {}
  out = module.apply(variables, pipeline.model_input(video), train=train,
                     rngs=rngs, **kwargs)
  signals, updates = out if train else (out, None)
  fps, band = spectrum_band or (None, None)
  prediction = heads.LinearHead().apply(head, evaluate.spectrum(signals, fps=fps, band=band))
  return prediction, (updates or {}).get("batch_stats")


def finetune(module, variables: dict, source, train_signals: np.ndarray,
             train_labels: np.ndarray, *, fraction: float, steps: int, batch_size: int,
             learning_rate: float, probe_l2: float | None, label_key: str, seed: int,
             batch_sharding, spectrum_band=None, log=print) -> tuple[dict, dict]:
  """Fine-tunes on `fraction` of the training clips of `source`.

  Args:
    module, variables: the pretrained encoder and its {'params', 'batch_stats'}.
    source: the training split (random access); train_signals [N, T] / train_labels [N]: its
      frozen feature signals and labels, for the head's initial ridge fit.
    batch_sharding: the batch split over the mesh (`sharding.batch_sharding`).
    spectrum_band: as in `predict`; the same as the linear probe's.
  Returns:
    (encoder variables, head variables) after `steps` steps.
  """
  labelled, rng = pipeline.fraction_indices(len(source), fraction, seed)
  num_labelled = len(labelled)
  fps, band = spectrum_band or (None, None)
  head = evaluate.fit_ridge(
      evaluate.spectrum_features(train_signals[labelled], fps=fps, band=band),
      train_labels[labelled], probe_l2)
  label_scale = float(np.std(train_labels[labelled])) or 1.0
  tx, step = _train_step(module, learning_rate, spectrum_band)
  # Copies: the step donates its inputs, and the pretrained variables are used again.
  trainable = jax.tree.map(jnp.array, {"encoder": variables["params"], "head": head["params"]})
  opt_state = tx.init(trainable)
  batch_stats = jax.tree.map(jnp.array, variables.get("batch_stats", {}))
  key = jax.random.key(seed)
  start, losses = time.time(), []
  for i in range(steps):
    indices = rng.choice(labelled, batch_size, replace=len(labelled) < batch_size)
    examples = source.__getitems__([int(j) for j in indices])
    video = np.stack([ex["video"] for ex in examples])
    labels = np.asarray([ex[label_key] for ex in examples], np.float32)
    # Every process draws the same indices (same rng) and holds the whole batch.
    put = lambda x: sharding_lib.global_batch(x, batch_sharding)
    trainable, opt_state, batch_stats, loss = step(
        trainable, opt_state, batch_stats, put(video), put(labels), jnp.float32(label_scale),
        jax.random.fold_in(key, i))
    losses.append(loss)
    if (i + 1) % max(1, steps // 4) == 0 or i + 1 == steps:
      log(f"  fine-tune {100 * fraction:g}% ({num_labelled} clips) step {i + 1}/{steps} | "
          f"loss {float(np.mean(jax.device_get(losses))):.4f} | {time.time() - start:.0f} s")
      losses = []
  return ({"params": trainable["encoder"], "batch_stats": batch_stats},
          {"params": trainable["head"]})


@functools.lru_cache(maxsize=8)
def _train_step(module, learning_rate: float, spectrum_band):
  """(optimizer, jitted fine-tuning step), built once per (encoder, learning rate, band):
  every label fraction reuses one compilation."""
  tx = optax.adam(learning_rate)

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2),
                     compiler_options=sharding_lib.compiler_options())
  def step(trainable, opt_state, batch_stats, video, labels, label_scale, step_key):
    def loss_fn(trainable):
      prediction, new_stats = predict(
          module, {"params": trainable["encoder"], "batch_stats": batch_stats},
          {"params": trainable["head"]}, video, train=True, rngs={"dropout": step_key},
          spectrum_band=spectrum_band)
      return jnp.mean(((prediction - labels) / label_scale) ** 2), new_stats

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    updates, opt_state = tx.update(grads, opt_state, trainable)
    new_stats = batch_stats if new_stats is None else new_stats
    return optax.apply_updates(trainable, updates), opt_state, new_stats, loss

  return tx, step


def make_predict_fn(module, variables, head, batch_sharding, spectrum_band=None):
  """uint8 video [b, T, H, W, C] -> predictions [b] as numpy, jitted, the batch split over
  the mesh; every process passes the whole batch and gets the whole result. The variables
  and head are arguments of one compilation per (encoder, band), shared by every fraction."""
  fn = _jitted_predict(module, spectrum_band)
  return sharding_lib.on_host_batches(lambda video: fn(variables, head, video), batch_sharding)


@functools.lru_cache(maxsize=8)
def _jitted_predict(module, spectrum_band):
  return jax.jit(lambda variables, head, video: predict(module, variables, head, video,
                                                        spectrum_band=spectrum_band)[0])
