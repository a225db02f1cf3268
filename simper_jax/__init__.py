"""simper_jax: SimPer (self-supervised learning of periodic targets) in JAX/Flax."""

__version__ = "0.1.0"
