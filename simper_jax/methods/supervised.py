"""The supervised reference: the encoder and the fine-tuning head trained end to end on labels.

The head is the one fine-tuning uses (`simper_jax.finetune`): linear on the feature signal's
normalized power spectrum (inside the heart-rate band for heart rate), here predicting the
label standardized by the training labels' mean and std. Views: one random window per clip at
its own speed, with the invariant augmentations. `supervised.label_fraction` trains on that
share of the training clips (chosen by the seed, as fine-tuning chooses its labelled subset),
for data-efficiency comparisons. The readouts then read its feature signal like any method's.
"""

import jax.numpy as jnp

from simper_jax import evaluate
from simper_jax.methods import base

NEEDS_LABELS = True


def train_fraction(config) -> float:
  return config.supervised.label_fraction


def check_config(config, fail) -> None:
  c = config.supervised
  base.check_window(fail, config, "supervised")
  if not (isinstance(c.label_fraction, (int, float)) and 0 < c.label_fraction <= 1):
    fail("supervised.label_fraction", "expected a fraction of the training labels in (0, 1].")
  if not config.data.get("label_key"):
    fail("data.label_key", "the supervised method trains on labels; this dataset config names "
                           "none.")


def spectrum_band(config):
  """(fps, band) of the head's input spectrum, as fine-tuning's: the heart-rate band for
  heart rate, every bin otherwise."""
  if config.eval.get("protocol") == "heart_rate":
    return config.data.fps, tuple(config.eval.band)
  return None, None


def build(config, *, label_mean: float = 0.0, label_std: float = 1.0,
          **unused_context) -> base.Method:
  c = config.supervised
  head = base.MLP((1,), batch_norm=False)  # one Dense layer: fine-tuning's linear head
  fps, band = spectrum_band(config)

  def init_heads(key, length):
    bins = evaluate.spectrum(jnp.zeros((1, length)), fps=fps, band=band).shape[-1]
    return base.init_heads(key, bins, head=head)

  def loss(params, batch_stats, extra, encode, views, aux, labels, step):
    del extra, aux, step
    signals, encoder_stats = encode(params["encoder"], batch_stats["encoder"], views[:, 0])
    prediction, _ = base.apply_mlp(head, params["heads"]["head"], {},
                                   evaluate.spectrum(signals, fps=fps, band=band))
    target = (labels - label_mean) / label_std
    value = jnp.mean((prediction[:, 0] - target) ** 2)
    return value, ({**batch_stats, "encoder": encoder_stats}, base.no_aux_out())

  def make_views(key, clip):
    return base.augmented_window(key, clip, c.window, config.augment.to_dict())[None], {}

  return base.Method(window=c.window, make_views=make_views, init_heads=init_heads, loss=loss)
