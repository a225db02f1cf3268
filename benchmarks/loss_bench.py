"""Loss + gradient time of `simper_loss` against a naive per-row implementation.

    python benchmarks/loss_bench.py [--batch 32 --speeds 10 --length 150 --repeats 20]

The naive version is how the TensorFlow reference computes the loss: for every row of A it
recomputes the FFT of all of B and forms one row of similarities (tf.map_fn over rows). Ours
computes each view's FFT once and all M×M pairs in one product. Both are jitted; the figures
are wall-clock medians on the devices present.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from simper_jax.methods import simper


def naive_max_xcorr_row(u, b):
  """One row: u [L] against b [N, L], recomputing b's FFT, as the reference does per row."""
  length = u.shape[-1]
  u = u - u.mean()
  b = b - b.mean(-1, keepdims=True)
  fu = jnp.fft.rfft(u, n=2 * length)
  fb = jnp.fft.rfft(b, n=2 * length)
  corr = jnp.fft.irfft(fu[None] * jnp.conj(fb), n=2 * length)
  norm = jnp.std(u) * jnp.std(b, -1)
  norm = jnp.where(norm == 0, 1.0, norm)
  return jnp.max(corr, -1) / norm / (length - 1)


def naive_loss(features, speeds, label_temperature=0.1):
  """Loops over clips and rows with lax.map (sequential, like tf.map_fn)."""
  m = features.shape[1] // 2

  def per_clip(args):
    feats, spd = args

    def per_row(i):
      logits = naive_max_xcorr_row(feats[i], feats[m:])
      target = jax.nn.softmax(-jnp.abs(spd[i] - spd[m:]) / label_temperature)
      return -jnp.sum(target * jax.nn.log_softmax(logits))

    return jnp.mean(jax.lax.map(per_row, jnp.arange(m)))

  return jnp.mean(jax.lax.map(per_clip, (features, speeds)))


def time_it(fn, *args, repeats):
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--speeds", type=int, default=10)
  parser.add_argument("--length", type=int, default=150)
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()

  key_f, key_s = jax.random.split(jax.random.key(0))
  features = jax.random.normal(key_f, (args.batch, 2 * args.speeds, args.length))
  speeds = jnp.sort(jax.random.uniform(key_s, (args.batch, args.speeds), minval=0.5, maxval=2))
  speeds = jnp.concatenate([speeds, speeds], axis=1)

  ours = jax.jit(jax.value_and_grad(lambda f: simper.simper_loss(f, speeds)))
  naive = jax.jit(jax.value_and_grad(lambda f: naive_loss(f, speeds)))
  np.testing.assert_allclose(ours(features)[0], naive(features)[0], rtol=1e-4)

  t_ours = time_it(ours, features, repeats=args.repeats)
  t_naive = time_it(naive, features, repeats=args.repeats)
  device = jax.devices()[0]
  print(f"simper_loss value+grad, B={args.batch} M={args.speeds} L={args.length} on "
        f"{jax.device_count()}× {device.device_kind} ({device.platform})")
  print(f"  batched (ours):   {1e3 * t_ours:8.3f} ms")
  print(f"  naive per-row:    {1e3 * t_naive:8.3f} ms")
  print(f"  speed-up:         {t_naive / t_ours:8.1f}×")


if __name__ == "__main__":
  main()
