"""Heads on top of a frozen or fine-tuned encoder."""

import flax.linen as nn
import jax.numpy as jnp


class LinearHead(nn.Module):
  """[N, D] features -> [N] scalar predictions (the linear probe's head)."""

  @nn.compact
  def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
    return nn.Dense(1)(features)[..., 0]
