"""Per-row NumPy re-statements of docs/method.md §4–5, written independently of the JAX code."""

import numpy as np


def max_xcorr(u, v):
  """One pair: max over all lags of the linear cross-correlation, as docs/method.md §4."""
  length = len(u)
  u, v = u - u.mean(), v - v.mean()
  # np.correlate 'full' gives the 2L-1 lags with overlap; the zero-padded FFT version also
  # has one lag (±L) with no overlap, whose value is 0.
  corr = np.append(np.correlate(u, v, mode="full"), 0.0)
  norm = u.std() * v.std()
  norm = 1.0 if norm == 0 else norm
  return corr.max() / norm / (length - 1)


def npsd(u, v, fps, band=(0.25, 15.0)):
  def psd(x):
    p = np.abs(np.fft.rfft(x - x.mean())) ** 2
    f = np.linspace(0, fps / 2, len(p))
    p = np.where((f >= band[0]) & (f <= band[1]), p, 0.0)
    n = np.linalg.norm(p)
    return p / (1.0 if n == 0 else n)
  return float(psd(u) @ psd(v))


def simper_loss(features, speeds, sim=max_xcorr, label_temperature=0.1):
  """Loops over clips and rows, as the TensorFlow reference does."""
  total = 0.0
  batch, views, _ = features.shape
  m = views // 2
  for b in range(batch):
    for i in range(m):
      logits = np.array([sim(features[b, i], features[b, m + j]) for j in range(m)])
      target = np.exp(-np.abs(speeds[b, i] - speeds[b, m:]) / label_temperature)
      target /= target.sum()
      log_prob = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
      total += -np.sum(target * log_prob)
  return total / (batch * m)
