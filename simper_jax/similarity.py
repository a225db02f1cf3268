"""Periodic feature similarities (docs/method.md §4), batched over all pairs.

Every function maps a [M, L] and a [N, L] stack of feature signals to an [M, N] similarity
matrix. Each row's FFT is computed once and all M×N pairs come from one broadcast product;
the TensorFlow reference instead loops over rows and recomputes the second operand's FFT for
every row. Leading batch dimensions are handled by the caller with `jax.vmap`.
"""

from typing import Callable

import jax.numpy as jnp

Array = jnp.ndarray


def _centered(x: Array) -> Array:
  return x - jnp.mean(x, axis=-1, keepdims=True)


def _nonzero(x: Array) -> Array:
  """Replaces exact zeros by one, as the reference does, so constant signals stay finite."""
  return jnp.where(x == 0, jnp.ones_like(x), x)


def _safe_sqrt(x: Array) -> Array:
  """sqrt with a zero (not infinite) gradient at 0: a constant feature signal must not NaN."""
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _std(x: Array) -> Array:
  """Population std (ddof 0) over the last axis."""
  return _safe_sqrt(jnp.mean(_centered(x) ** 2, axis=-1))


def _norm(x: Array) -> Array:
  """L2 norm over the last axis, keepdims."""
  return _safe_sqrt(jnp.sum(x**2, axis=-1, keepdims=True))


def max_xcorr(a: Array, b: Array) -> Array:
  """Maximum over lags of the normalized cross-correlation.

  Args:
    a: [M, L] feature signals.
    b: [N, L] feature signals.

  Returns:
    [M, N]: max_lag xcorr(a_i, b_j) / (σ_ai σ_bj) / (L - 1), σ the population std.
  """
  length = a.shape[-1]
  if b.shape[-1] != length:
    raise ValueError(f"max_xcorr needs signals of one length, got {a.shape} and {b.shape}.")
  # Zero-padding to 2L turns the FFT's circular correlation into a linear one.
  fa = jnp.fft.rfft(_centered(a), n=2 * length)  # [M, L + 1]
  fb = jnp.fft.rfft(_centered(b), n=2 * length)  # [N, L + 1]
  xcorr = jnp.fft.irfft(fa[:, None, :] * jnp.conj(fb[None, :, :]), n=2 * length)  # [M, N, 2L]
  norm = _nonzero(_std(a)[:, None] * _std(b)[None, :])
  return jnp.max(xcorr, axis=-1) / norm / (length - 1)


def _normalized_psd(x: Array, fps: float, band: tuple[float, float]) -> Array:
  """[K, L] -> [K, F]: power spectrum in `band` (Hz), L2-normalized per row."""
  power = jnp.abs(jnp.fft.rfft(_centered(x), axis=-1)) ** 2  # [K, L//2 + 1]
  # The reference's frequency grid (linspace to Nyquist), kept so that band edges match it.
  freqs = jnp.linspace(0.0, fps / 2.0, power.shape[-1])
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  power = jnp.where(in_band, power, 0.0)
  return power / _nonzero(_norm(power))


def npsd(a: Array, b: Array, fps: float, band: tuple[float, float] = (0.25, 15.0)) -> Array:
  """Inner product of L2-normalized power spectra restricted to `band` Hz.

  Args:
    a: [M, L] feature signals sampled at `fps`.
    b: [N, L] feature signals sampled at `fps`.
    fps: sampling rate of the signals (frames per second).
    band: (low, high) in Hz; bins outside are ignored.

  Returns:
    [M, N] similarities in [0, 1].
  """
  return _normalized_psd(a, fps, band) @ _normalized_psd(b, fps, band).T


def cosine(a: Array, b: Array) -> Array:
  """[M, L], [N, L] -> [M, N] cosine similarity (ablation: ignores periodicity)."""
  a = a / _nonzero(_norm(a))
  b = b / _nonzero(_norm(b))
  return a @ b.T


def neg_l2(a: Array, b: Array) -> Array:
  """[M, L], [N, L] -> [M, N] negative Euclidean distance (ablation)."""
  sq = jnp.sum(a**2, -1)[:, None] + jnp.sum(b**2, -1)[None, :] - 2.0 * a @ b.T
  return -_safe_sqrt(jnp.maximum(sq, 0.0))


SIMILARITIES = ("max_xcorr", "npsd", "cosine", "neg_l2")


def get(name: str, fps: float = 30.0) -> Callable[[Array, Array], Array]:
  """Similarity by name; `fps` is bound for the spectral one."""
  if name == "npsd":
    return lambda a, b: npsd(a, b, fps=fps)
  if name in ("max_xcorr", "cosine", "neg_l2"):
    return globals()[name]
  raise ValueError(f"Unknown similarity {name!r}; expected one of {SIMILARITIES}.")
