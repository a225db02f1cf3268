"""Periodic feature similarities (docs/method.md §4), batched over all pairs.

Every function maps a [M, L] and a [N, L] stack of feature signals to an [M, N] similarity
matrix. Each row's FFT is computed once and all M×N pairs come from one broadcast product;
the TensorFlow reference instead loops over rows and recomputes the second operand's FFT for
every row. Leading batch dimensions are handled by the caller with `jax.vmap`.
"""

import functools
from typing import Callable

import jax.numpy as jnp
import numpy as np

Array = jnp.ndarray

# How the similarities compute discrete Fourier transforms:
#   fft     jnp.fft (XLA's FFT): the default on CPU and GPU.
#   matmul  products with cos/sin matrices: a TPU's rfft rejects bfloat16 and is slow for
#           signals this short (tens to hundreds of frames), while matmuls run on its MXU.
DFTS = ("fft", "matmul")


@functools.lru_cache(maxsize=32)
def _dft_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
  """cos and sin of 2π·t·f/n, [n, n//2 + 1] (t time, f frequency bin), in float64."""
  angle = 2 * np.pi * np.outer(np.arange(n), np.arange(n // 2 + 1)) / n
  return np.cos(angle), np.sin(angle)


def rfft(x: Array, n: int, dft: str = "fft") -> tuple[Array, Array]:
  """Real and imaginary parts of `jnp.fft.rfft(x, n)` over the last axis: [..., n//2 + 1] each
  (x zero-padded or cut to n samples)."""
  if dft == "fft":
    spectrum = jnp.fft.rfft(x, n=n)
    return spectrum.real, spectrum.imag
  length = min(x.shape[-1], n)
  cos, sin = _dft_matrices(n)
  x = x[..., :length]
  return (x @ jnp.asarray(cos[:length], x.dtype), -(x @ jnp.asarray(sin[:length], x.dtype)))


def irfft(real: Array, imag: Array, n: int, dft: str = "fft") -> Array:
  """`jnp.fft.irfft(real + i·imag, n)` over the last axis, for even n: [..., n]."""
  if dft == "fft":
    return jnp.fft.irfft(real + 1j * imag, n=n)
  if n % 2:
    raise ValueError(f"irfft as a matmul is written for an even length, got {n}.")
  cos, sin = _dft_matrices(n)
  # Bins 1 .. n/2 - 1 stand for themselves and their mirror images; 0 and n/2 only for
  # themselves, and their imaginary parts are ignored, as irfft does.
  weights = np.full(n // 2 + 1, 2.0)
  weights[[0, -1]] = 1.0
  cos_t = jnp.asarray((weights[:, None] * cos.T) / n, real.dtype)  # [n//2 + 1, n]
  sin_t = jnp.asarray((weights[:, None] * sin.T) / n, real.dtype)
  return real @ cos_t - imag @ sin_t


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


def max_xcorr(a: Array, b: Array, dft: str = "fft") -> Array:
  """Maximum over lags of the normalized cross-correlation.

  Args:
    a: [M, L] feature signals.
    b: [N, L] feature signals.
    dft: how Fourier transforms are computed, one of `DFTS`.

  Returns:
    [M, N]: max_lag xcorr(a_i, b_j) / (σ_ai σ_bj) / (L - 1), σ the population std.
  """
  length = a.shape[-1]
  if b.shape[-1] != length:
    raise ValueError(f"max_xcorr needs signals of one length, got {a.shape} and {b.shape}.")
  # Zero-padding to 2L turns the FFT's circular correlation into a linear one.
  ra, ia = rfft(_centered(a), 2 * length, dft)  # [M, L + 1] each
  rb, ib = rfft(_centered(b), 2 * length, dft)  # [N, L + 1] each
  # fa · conj(fb), for all pairs: [M, N, L + 1]
  real = ra[:, None, :] * rb[None, :, :] + ia[:, None, :] * ib[None, :, :]
  imag = ia[:, None, :] * rb[None, :, :] - ra[:, None, :] * ib[None, :, :]
  xcorr = irfft(real, imag, 2 * length, dft)  # [M, N, 2L]
  norm = _nonzero(_std(a)[:, None] * _std(b)[None, :])
  return jnp.max(xcorr, axis=-1) / norm / (length - 1)


def _normalized_psd(x: Array, fps: float, band: tuple[float, float], dft: str) -> Array:
  """[K, L] -> [K, F]: power spectrum in `band` (Hz), L2-normalized per row."""
  real, imag = rfft(_centered(x), x.shape[-1], dft)
  power = real**2 + imag**2  # [K, L//2 + 1]
  # The reference's frequency grid (linspace to Nyquist), kept so that band edges match it.
  freqs = jnp.linspace(0.0, fps / 2.0, power.shape[-1])
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  power = jnp.where(in_band, power, 0.0)
  return power / _nonzero(_norm(power))


def npsd(a: Array, b: Array, fps: float, band: tuple[float, float] = (0.25, 15.0),
         dft: str = "fft") -> Array:
  """Inner product of L2-normalized power spectra restricted to `band` Hz.

  Args:
    a: [M, L] feature signals sampled at `fps`.
    b: [N, L] feature signals sampled at `fps`.
    fps: sampling rate of the signals (frames per second).
    band: (low, high) in Hz; bins outside are ignored.
    dft: how Fourier transforms are computed, one of `DFTS`.

  Returns:
    [M, N] similarities in [0, 1].
  """
  return _normalized_psd(a, fps, band, dft) @ _normalized_psd(b, fps, band, dft).T


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


def get(name: str, fps: float = 30.0, dft: str = "fft") -> Callable[[Array, Array], Array]:
  """Similarity by name; `fps` is bound for the spectral one, `dft` (one of `DFTS`) for the
  two that use Fourier transforms."""
  if dft not in DFTS:
    raise ValueError(f"Unknown dft {dft!r}; expected one of {DFTS}.")
  if name == "npsd":
    return lambda a, b: npsd(a, b, fps=fps, dft=dft)
  if name == "max_xcorr":
    return lambda a, b: max_xcorr(a, b, dft=dft)
  if name in ("cosine", "neg_l2"):
    return globals()[name]
  raise ValueError(f"Unknown similarity {name!r}; expected one of {SIMILARITIES}.")
