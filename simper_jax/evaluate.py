"""Evaluation of a trained encoder: FFT readout, 1-NN and linear probe (docs/readouts.md); heart
rate by the rPPG protocol; the input baselines. Each prediction comes with how sure it is
(`Readout.details`, simper_jax/uncertainty.py). Fine-tuning lives in `simper_jax.finetune`,
the tables and files of a run in `simper_jax.outputs`.

Both read the *feature signal* z [T] of each whole test clip (the encoder is convolutional in
time, so it runs on clips longer than the training windows).
- FFT readout (no training): the frequency of the feature signal's spectral peak in the
  task's band is the prediction.
- Linear probe: a ridge-regression head, fitted in closed form on the training split's frozen
  features. Its input is either the feature signal itself ("signal", as the reference's Dense
  classifier) or its normalized power spectrum ("spectrum", the default). A linear map of the
  raw signal cannot read a frequency whose phase differs from clip to clip; the power spectrum
  is a fixed, parameter-free and phase-invariant view of the same features, on which a linear
  head can.
"""

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy  # scipy.signal, loaded by its first use (0.7 s), after the config is checked

from simper_jax import heart_rate as hr
from simper_jax import rppg_methods
from simper_jax import sharding
from simper_jax import similarity as similarity_lib
from simper_jax import uncertainty
from simper_jax.data import pipeline


def power_spectrum(signals: np.ndarray, fps: float, pad_factor: int = 4):
  """Linear-detrended periodogram; zero-padded to a power of two ≥ pad_factor·T for a finer grid.

  Returns:
    freqs [F] in Hz and power [N, F].
  """
  nfft = hr.next_pow2(pad_factor * signals.shape[-1])
  return scipy.signal.periodogram(signals, fs=fps, nfft=nfft, detrend="linear", axis=-1)


def fft_frequency(signals: np.ndarray, fps: float, band: tuple[float, float],
                  harmonic: float = 1) -> np.ndarray:
  """[N, T] feature signals -> [N] target frequency (Hz) read off the highest spectral peak.

  `harmonic` h says that the feature signal oscillates at h × the target frequency (a
  back-and-forth rotation passes every angle twice per cycle, so its appearance, and SimPer's
  feature signal, peak at 2f; a wrist's arm swing repeats once per stride, two steps, so an
  accelerometer's strongest rhythm is at f/2, h = 0.5): the peak is searched in h × `band`
  and divided by h.
  """
  return fft_readout(signals, fps, band, harmonic)[0]


def fft_readout(signals: np.ndarray, fps: float, band: tuple[float, float],
                harmonic: float = 1) -> tuple[np.ndarray, dict]:
  """`fft_frequency` and how sure each reading is: ([N] Hz, {'confidence', 'peak_share',
  'peak_prominence': [N]}) from one periodogram (`uncertainty.spectral_confidence`)."""
  freqs, power = power_spectrum(signals, fps)
  freqs = freqs / harmonic
  in_band = (freqs >= band[0]) & (freqs <= band[1])
  if not in_band.any():
    raise ValueError(f"The band {band} Hz holds no frequency bin of a {signals.shape[-1]}-frame "
                     f"signal at {fps} fps.")
  return (freqs[in_band][np.argmax(power[:, in_band], axis=-1)],
          uncertainty.spectral_confidence(freqs, power, band,
                                          resolution=fps / signals.shape[-1] / harmonic))


def spectrum(signals: jnp.ndarray, *, fps: float | None = None, band=None,
             pad_factor: int = 4) -> jnp.ndarray:
  """[N, T] -> [N, F] linear-detrended power spectra, each normalized to sum 1.

  All bins up to Nyquist, or only those inside `band` (Hz, needs `fps`): for heart rate the
  probe reads the plausible band only, a few dozen inputs instead of hundreds, which a probe
  fitted on a few hundred clips needs. Differentiable (jnp), so fine-tuning trains through
  the same input the linear probe reads. Zero-padded to a power of two ≥ pad_factor·T, as
  `power_spectrum`.
  """
  signals = jnp.asarray(signals, jnp.float32)
  length = signals.shape[-1]
  t = jnp.arange(length, dtype=jnp.float32) - (length - 1) / 2
  centred = signals - signals.mean(-1, keepdims=True)
  slope = (centred @ t) / jnp.maximum(t @ t, 1e-12)
  detrended = centred - slope[..., None] * t
  nfft = hr.next_pow2(pad_factor * length)
  power = jnp.abs(jnp.fft.rfft(detrended, n=nfft)) ** 2
  if band is not None:
    freqs = np.fft.rfftfreq(nfft, 1.0 / fps)
    power = power[..., np.flatnonzero((freqs >= band[0]) & (freqs <= band[1]))]
  return power / jnp.maximum(power.sum(-1, keepdims=True), 1e-12)


def spectrum_features(signals: np.ndarray, *, fps: float | None = None, band=None) -> np.ndarray:
  """Host-side `spectrum`: the linear probe's input."""
  return np.asarray(jax.device_get(spectrum(signals, fps=fps, band=band)))


L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def fit_ridge(inputs: np.ndarray, targets: np.ndarray, l2: float | None) -> dict:
  """Fits the linear probe in closed form: ridge regression on centred inputs.

  Closed form rather than SGD: the optimum of a convex problem, exact and in milliseconds.
  The penalty is `l2` × the inputs' mean variance, so it means the same at any input scale.
  Inputs are not standardized per feature: the probe's inputs (spectrum bins, signal samples)
  share one unit, and dividing by a per-feature std blows up bins that barely vary in a small
  labelled subset (measured: 10 % of the synthetic UBFC labels gave 79 bpm MAE standardized,
  19 bpm not). `l2=None` picks the penalty from `L2_GRID` by 5-fold cross-validation on these
  inputs (the training split only).

  Returns:
    `LinearHead` variables, in input units: LinearHead().apply(head, inputs) -> [N].
  """
  if l2 is None:
    l2 = select_l2(inputs, targets)
  mean = inputs.mean(0)
  x = inputs - mean
  gram = x.T @ x / len(x)
  gram += l2 * max(float(np.trace(gram)) / len(gram), 1e-12) * np.eye(len(gram))
  kernel = np.linalg.solve(gram, x.T @ (targets - targets.mean()) / len(x))
  bias = targets.mean() - mean @ kernel
  return {"params": {"Dense_0": {"kernel": kernel[:, None].astype(np.float32),
                                 "bias": np.array([bias], np.float32)}}}


def select_l2(inputs: np.ndarray, targets: np.ndarray, folds: int = 5, seed: int = 0) -> float:
  """The ridge penalty of `L2_GRID` with the lowest k-fold cross-validated squared error."""
  order = np.random.default_rng(seed).permutation(len(inputs))
  splits = np.array_split(order, min(folds, len(inputs)))
  errors = []
  for l2 in L2_GRID:
    error = 0.0
    for held_out in splits:
      kept = np.setdiff1d(order, held_out)
      head = fit_ridge(inputs[kept], targets[kept], l2)["params"]["Dense_0"]
      pred = inputs[held_out] @ head["kernel"][:, 0] + head["bias"][0]
      error += float(np.sum((pred - targets[held_out]) ** 2))
    errors.append(error)
  return L2_GRID[int(np.argmin(errors))]


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict:
  """MAE, MAPE (%), RMSE and Pearson r of predictions against targets, each with its standard
  error as the rPPG-Toolbox gives it (`standard_errors`).

  r is None (JSON null, "—" in tables) when either side is constant, as the train-mean
  baseline always is: a correlation is undefined there, and 0 would read as a measurement.
  """
  err = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
  # ptp, not std: a float32 constant can have a tiny non-zero std, and corrcoef then gives nan.
  r = (float(np.corrcoef(pred, target)[0, 1]) if np.ptp(pred) > 0 and np.ptp(target) > 0
       else None)
  relative = np.abs(err) / np.maximum(np.abs(target), 1e-8)
  metrics = {"n": int(len(err)), "mae": float(np.mean(np.abs(err))),
             "mape": float(100 * np.mean(relative)), "rmse": float(np.sqrt(np.mean(err**2))),
             "pearson_r": r}
  return {**metrics, **standard_errors(err, relative, r)}


def standard_errors(err: np.ndarray, relative: np.ndarray, r: float | None) -> dict:
  """The rPPG-Toolbox's standard errors (evaluation/metrics.py) of n errors e:
  MAE std(|e|)/√n; RMSE √(std(e²)/√n) (its choice: the SE of the mean squared error, then a
  square root); MAPE 100·std(|e|/|y|)/√n; Pearson r √((1 − r²)/(n − 2)), None when r is or
  n < 3. std is the population one (NumPy's default, as the toolbox)."""
  n = len(err)
  root_n = np.sqrt(n)
  return {"mae_se": float(np.std(np.abs(err)) / root_n),
          "mape_se": float(100 * np.std(relative) / root_n),
          "rmse_se": float(np.sqrt(np.std(err**2) / root_n)),
          "pearson_r_se": (float(np.sqrt((1 - r**2) / (n - 2))) if r is not None and n > 2
                           else None)}


def snr_metrics(snr_db: np.ndarray) -> dict:
  """Mean SNR (dB) over evaluation units and its standard error std/√n (the toolbox's)."""
  snr_db = np.asarray(snr_db, np.float64)
  return {"snr_db": float(np.mean(snr_db)),
          "snr_db_se": float(np.std(snr_db) / np.sqrt(len(snr_db)))}


def compute_features(encode: Callable, batches, mean_rgb: bool = False) -> dict:
  """Runs `encode` (uint8 video batch -> [b, T] feature signals) over `eval_batches`, reading
  the next batch in a background thread while the current one is encoded.

  Args:
    mean_rgb: also keep each clip's mean colour per frame, [N, T, C] in 0–255 (the input of
      the classic rPPG methods, `rppg_methods`; a time series' channels themselves).
  Returns:
    {'signals': [N, T], ['mean_rgb': [N, T, C],] and every other key of the batches
    ('label', ...): [N, ...]}, with the padding rows dropped.
  """
  collected = {}
  for batch in pipeline.prefetch(batches):
    mask = batch["mask"]
    rows = {"signals": encode(batch["video"])[mask]}
    if mean_rgb:
      rows["mean_rgb"] = np.asarray(batch["video"])[mask].mean(axis=(2, 3), dtype=np.float64)
    rows.update({k: v[mask] for k, v in batch.items() if k not in ("video", "mask")})
    for key, value in rows.items():
      collected.setdefault(key, []).append(value)
  return {key: np.concatenate(values) for key, values in collected.items()}


HARMONICS = (1, 2, 3)  # eval.fft_harmonics' default


def choose_fft_harmonic(train_signals: np.ndarray, train_labels: np.ndarray, fps: float,
                        band, readout: Callable = fft_frequency,
                        harmonics=HARMONICS) -> float:
  """The harmonic of `harmonics` (eval.fft_harmonics) whose FFT readout has the lowest MAE on
  the *training* split's labels: the rule for every method and protocol when
  `eval.fft_harmonic` is None, so that no readout setting is chosen on test data.

  `readout(train_signals, fps, band, harmonic) -> [N] Hz`: `fft_frequency`, or a variant of
  it (Countix's reads each clip's segment only; the input baselines).
  """
  maes = [np.mean(np.abs(readout(train_signals, fps, band, h) - train_labels))
          for h in harmonics]
  return harmonics[int(np.argmin(maes))]


def nearest_neighbour(train_signals: np.ndarray, train_labels: np.ndarray,
                      test_signals: np.ndarray, *, similarity: str = "max_xcorr",
                      fps: float = 30.0, memory: int = 2**26) -> np.ndarray:
  """The 1-NN readout (docs/readouts.md): each test clip gets the label of the training clip
  whose feature signal is most similar to its own.

  Args:
    train_signals: [N, T]; train_labels: [N]; test_signals: [M, T] (the same T).
  Returns:
    [M] predicted labels.
  """
  indices, _ = nearest_neighbours(train_signals, test_signals, k=1, similarity=similarity,
                                  fps=fps, memory=memory)
  return np.asarray(train_labels)[indices[:, 0]]


def nearest_neighbours(train_signals: np.ndarray, test_signals: np.ndarray, *, k: int,
                       similarity: str = "max_xcorr", fps: float = 30.0,
                       memory: int = 2**26) -> tuple[np.ndarray, np.ndarray]:
  """The `k` training clips most similar to each test clip: (indices [M, k], similarities
  [M, k]), most similar first.

  Similarities are computed on the device in chunks of test rows against every training clip
  at once (`similarity.get(similarity)`, all pairs in one batched product); a chunk holds about
  `memory` floats of intermediate results (max_xcorr forms [rows, N, 2T] correlations).
  """
  train = jnp.asarray(train_signals, jnp.float32)
  k = min(k, train.shape[0])
  # A chunk size that does not depend on the number of test rows: the calibration part and
  # the test split (and every evaluation against the same training clips) share one
  # compilation of the cached function below.
  chunk = int(max(1, min(NN_CHUNK, memory // (2 * train.shape[0] * train.shape[1]))))
  nearest = _jitted_top_k(similarity, float(fps), k)
  indices, similarities = [], []
  for begin in range(0, len(test_signals), chunk):
    rows = np.asarray(test_signals[begin:begin + chunk], np.float32)
    padded = np.concatenate([rows, np.repeat(rows[-1:], chunk - len(rows), axis=0)])
    values, found = nearest(padded, train)  # one shape: one compilation
    indices.append(np.asarray(found)[:len(rows)])
    similarities.append(np.asarray(values)[:len(rows)])
  return np.concatenate(indices), np.concatenate(similarities)


NN_CHUNK = 256  # test rows per 1-NN similarity product, at most


@functools.lru_cache(maxsize=16)
def _jitted_top_k(similarity: str, fps: float, k: int) -> Callable:
  """jit((rows [r, T], train [N, T]) -> (similarities, indices) [r, k]) of the k most similar
  training clips, one per (similarity, fps, k): calls with the same shapes compile once."""
  similarity_fn = similarity_lib.get(similarity, fps=fps)
  return jax.jit(lambda rows, train: jax.lax.top_k(similarity_fn(rows, train), k))


KNN_SPREAD_K = 5  # neighbours whose labels' spread is the 1-NN readout's uncertainty


def knn_readout(train_signals, train_labels, test_signals, *, similarity: str, fps: float,
                k: int = KNN_SPREAD_K) -> tuple[np.ndarray, dict]:
  """The 1-NN readout and how sure it is: ([M] the nearest clip's label, {'confidence',
  'nn_similarity' (the nearest clip's similarity), 'knn_spread' (the std of the `k` nearest
  labels): [M]}); confidence `uncertainty.spread_confidence` of the spread: neighbours that
  disagree mean a reading that could have been any of theirs."""
  indices, similarities = nearest_neighbours(train_signals, test_signals, k=k,
                                             similarity=similarity, fps=fps)
  labels = np.asarray(train_labels, np.float64)
  spread = labels[indices].std(axis=1)
  return labels[indices[:, 0]], {
      "confidence": uncertainty.spread_confidence(spread, labels),
      "nn_similarity": similarities[:, 0], "knn_spread": spread}


PROBE_BOOTSTRAP = 20  # resampled refits of the linear probe whose spread is its uncertainty


def probe_readout(train_inputs: np.ndarray, train_labels: np.ndarray, test_inputs: np.ndarray,
                  l2: float | None, *, resamples: int = PROBE_BOOTSTRAP,
                  seed: int = 0) -> tuple[np.ndarray, dict]:
  """The linear probe (`fit_ridge`) and how sure it is: ([M], {'confidence', 'bootstrap_std':
  [M]}), the std of the predictions of `resamples` probes fitted on bootstrap resamples of the
  training clips (with the penalty the whole set chose).

  A bootstrap, not an ensemble: the closed-form probe is deterministic, so refitting it on the
  same clips varies nothing; what is uncertain is how far its training clips pin it down.
  """
  if l2 is None:
    l2 = select_l2(train_inputs, train_labels)
  apply = lambda head, inputs: (inputs @ head["params"]["Dense_0"]["kernel"][:, 0]
                                + head["params"]["Dense_0"]["bias"][0])
  pred = apply(fit_ridge(train_inputs, train_labels, l2), test_inputs)
  rng = np.random.default_rng(seed)
  resampled = [rng.integers(0, len(train_inputs), len(train_inputs)) for _ in range(resamples)]
  spread = np.std([apply(fit_ridge(train_inputs[rows], train_labels[rows], l2), test_inputs)
                   for rows in resampled], axis=0)
  return pred, {"confidence": uncertainty.spread_confidence(spread, train_labels),
                "bootstrap_std": spread}


def constant_readout(value: float, count: int) -> tuple[np.ndarray, dict]:
  """A prediction that is the same for every clip (the training mean): one confidence for all,
  so its intervals have one width and its selective MAE is its MAE."""
  return np.full(count, value, np.float32), {"confidence": np.ones(count)}


def probe_inputs_fn(probe_input: str) -> Callable:
  """eval.probe_input → [N, T] signals → the probe's [N, F] inputs."""
  if probe_input == "spectrum":
    return spectrum_features
  if probe_input == "signal":
    return lambda s: s
  raise ValueError(f"Unknown eval.probe_input {probe_input!r}; expected 'spectrum' or "
                   f"'signal'.")


def readout_predictions(train_signals, train_labels, test_signals, *, fps: float, band,
                        probe_input: str, probe_l2: float, fft_harmonic: float | None = 1,
                        knn_similarity: str = "max_xcorr", fft: bool = True,
                        harmonics=HARMONICS) -> dict:
  """Every readout's predictions for the test clips and how sure each is: {readout: ([M],
  details)}, details {'confidence': [M], ...}; and 'harmonic' (the FFT readout's) when `fft`.

  `fft_harmonic` None: chosen on the training split (`choose_fft_harmonic`). `fft=False` leaves
  the FFT readout out, for targets that are not a frequency.
  """
  make_inputs = probe_inputs_fn(probe_input)
  predictions = {}
  if fft:
    if fft_harmonic is None:
      fft_harmonic = choose_fft_harmonic(train_signals, train_labels, fps, band,
                                         harmonics=harmonics)
    predictions["fft"] = fft_readout(test_signals, fps, band, fft_harmonic)
    predictions["harmonic"] = fft_harmonic
  predictions["1nn"] = knn_readout(train_signals, train_labels, test_signals,
                                   similarity=knn_similarity, fps=fps)
  predictions["linear_probe"] = probe_readout(make_inputs(train_signals), train_labels,
                                              make_inputs(test_signals), probe_l2)
  predictions["train_mean"] = constant_readout(np.mean(train_labels), len(test_signals))
  return predictions


class Readout(NamedTuple):
  """One readout on the test split: what it predicted and the truth ([M] each), its scalar
  metrics beyond the errors ('harmonic', SNR, counts), and per prediction [M] how sure it is
  ('confidence' in (0, 1], and what that was made of)."""
  pred: np.ndarray
  true: np.ndarray
  extra: dict
  details: dict


def signal_readouts(train_signals, train_labels, test_signals, test_labels, **kwargs) -> dict:
  """All readouts of one encoder (`readout_predictions`, same arguments) as {readout:
  `Readout`}; the FFT readout's extra is its 'harmonic'."""
  predictions = readout_predictions(train_signals, train_labels, test_signals, **kwargs)
  harmonic = predictions.pop("harmonic", None)
  return {name: Readout(pred, test_labels, {"harmonic": harmonic} if name == "fft" else {},
                        details)
          for name, (pred, details) in predictions.items()}


def scored(readouts: dict) -> dict:
  """{readout: `Readout`} -> {readout: regression metrics + extra}."""
  return {name: {**regression_metrics(r.pred, r.true), **r.extra}
          for name, r in readouts.items()}


def evaluate_signals(train_signals, train_labels, test_signals, test_labels, **kwargs) -> dict:
  """`signal_readouts`, scored: {readout: metrics} on the test split, the FFT readout's with
  its 'harmonic'."""
  return scored(signal_readouts(train_signals, train_labels, test_signals, test_labels,
                                **kwargs))


MIN_SEGMENT_FRAMES = 8


def segment_fft_frequency(signals: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                          fps: float, band, harmonic: int = 1) -> np.ndarray:
  """The FFT readout on the frames of each clip inside its repetition segment (a Countix
  window can hold frames around the segment, which repeat nothing); clips with fewer than
  `MIN_SEGMENT_FRAMES` such frames use the whole window.

  Args:
    signals: [N, T]; starts, lengths: [N] first frame and number of frames inside the segment.
  Returns:
    [N] frequencies, Hz.
  """
  return segment_fft_readout(signals, starts, lengths, fps, band, harmonic)[0]


def segment_fft_readout(signals: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                        fps: float, band, harmonic: int = 1) -> tuple[np.ndarray, dict]:
  """`segment_fft_frequency` and its `fft_readout` details, each from its segment's spectrum."""
  starts, lengths = np.asarray(starts, int), np.asarray(lengths, int)
  lengths = np.where(lengths < MIN_SEGMENT_FRAMES, signals.shape[1], lengths)
  starts = np.where(lengths == signals.shape[1], 0, starts)
  out, details = np.empty(len(signals)), {}
  for length in np.unique(lengths):  # one periodogram per segment length present
    rows = np.flatnonzero(lengths == length)
    frames = starts[rows, None] + np.arange(length)
    out[rows], found = fft_readout(signals[rows[:, None], frames], fps, band, harmonic)
    for key, values in found.items():
      details.setdefault(key, np.empty(len(signals)))[rows] = values
  return out, details


def counting_metrics(frequency: np.ndarray, duration: np.ndarray, count: np.ndarray) -> dict:
  """RepNet's counting metrics of a predicted repetition frequency (Hz) over segments of
  `duration` seconds with true `count`s. The predicted count is round(frequency × duration):
  a count is a whole number.

  Returns:
    {'count_mae': mean |ĉ − c| / c (RepNet's normalized MAE), 'obo': share with |ĉ − c| ≤ 1}.
  """
  count = np.asarray(count, np.float64)
  predicted = np.round(np.asarray(frequency, np.float64) * np.asarray(duration, np.float64))
  error = np.abs(predicted - count)
  return {"count_mae": float(np.mean(error / count)), "obo": float(np.mean(error <= 1))}


def counting_readouts(train: dict, test: dict, *, fps: float, band, probe_input: str,
                      probe_l2: float | None, fft_harmonic: float | None,
                      knn_similarity: str, harmonics=HARMONICS) -> dict:
  """Repetition counting (Countix): each readout predicts the repetition frequency; its
  metrics are the frequency's (MAE etc., Hz) and the count's (`counting_metrics`), as
  {readout: `Readout`}.

  Args:
    train, test: `compute_features` outputs with 'signals', 'label' (frequency), 'count',
      'duration', 'segment_start' and 'segment_frames'.
  """
  predictions = readout_predictions(train["signals"], train["label"], test["signals"], fps=fps,
                                    band=band, probe_input=probe_input, probe_l2=probe_l2,
                                    knn_similarity=knn_similarity, fft=False)
  def segment_fft(split):
    return lambda signals, fps, band, h: segment_fft_frequency(
        signals, split["segment_start"], split["segment_frames"], fps, band, h)
  if fft_harmonic is None:
    fft_harmonic = choose_fft_harmonic(train["signals"], train["label"], fps, band,
                                       readout=segment_fft(train), harmonics=harmonics)
  predictions = {"fft": segment_fft_readout(test["signals"], test["segment_start"],
                                            test["segment_frames"], fps, band, fft_harmonic),
                 **predictions}
  readouts = {name: Readout(pred, test["label"],
                            counting_metrics(pred, test["duration"], test["count"]), details)
              for name, (pred, details) in predictions.items()}
  readouts["fft"].extra["harmonic"] = fft_harmonic
  return readouts


def heart_rate_readouts(train: dict, test: dict, *, fps: float, band, probe_l2: float | None,
                        window: int | None = None, knn_similarity: str = "max_xcorr",
                        classic_methods=()) -> dict:
  """Heart-rate readouts (bpm) by the rPPG protocol (`simper_jax.heart_rate`).

  Args:
    train, test: `compute_features` outputs with 'signals', 'label' (clip HR), 'ppg',
      'video_id', 'clip_index' and optionally 'fps' (each clip's video's own frame rate,
      stored at preparation; the FFT readouts use it); the test split with 'mean_rgb' when
      `classic_methods` are given.
    fps: the nominal frame rate: the probe's spectrum bins, and clips without 'fps'.
    probe_l2: ridge penalty of the linear probe, None → cross-validated on the train split.
    window: frames per evaluation window of the FFT readout; None → whole videos.
    classic_methods: names in `rppg_methods.METHODS`, each a row read like 'fft'.
  Returns:
    {readout: `Readout`}: 'fft' per video (or window), as the rPPG-Toolbox evaluates, and
    likewise each classic method on the same clips, extra being their mean SNR
    (`snr_metrics`); 'fft_clip', '1nn', 'linear_probe' (on the in-band spectrum) and
    'train_mean' per clip, against the clips' HR labels.
  """
  clip_fps = np.asarray(test.get("fps", np.full(len(test["signals"]), fps)), np.float64)
  def per_video(signals):
    rates = hr.per_video_heart_rates(signals, test["ppg"], test["video_id"], test["clip_index"],
                                     clip_fps, band=band, window=window)
    return Readout(rates.pred, rates.true, snr_metrics(rates.snr),
                   {**rates.details, "unit": np.asarray(rates.units)})
  inputs = lambda split: spectrum_features(split["signals"], fps=fps, band=band)
  per_clip, per_clip_details = np.empty(len(clip_fps)), {}
  for rate in np.unique(clip_fps):  # one protocol call per frame rate present
    rows = clip_fps == rate
    freqs, power = hr.spectrum(test["signals"][rows], rate, band=band)
    per_clip[rows] = hr.peak_bpm(freqs, power, band)
    found = uncertainty.spectral_confidence(freqs, power, band,
                                            resolution=rate / test["signals"].shape[1])
    for key, values in found.items():
      per_clip_details.setdefault(key, np.empty(len(clip_fps)))[rows] = values
  per_clip_readouts = {
      "fft_clip": (per_clip, per_clip_details),
      "1nn": knn_readout(train["signals"], train["label"], test["signals"],
                         similarity=knn_similarity, fps=fps),
      "linear_probe": probe_readout(inputs(train), train["label"], inputs(test), probe_l2),
      "train_mean": constant_readout(train["label"].mean(), len(test["label"]))}
  readouts = {"fft": per_video(test["signals"]),
              **{name: Readout(pred, test["label"], {}, details)
                 for name, (pred, details) in per_clip_readouts.items()}}
  for method in classic_methods:
    readouts[method] = per_video(rppg_methods.video_pulses(
        method, test["mean_rgb"], test["video_id"], test["clip_index"], clip_fps))
  return readouts


# eval.protocol -> the per-clip fields its readouts need besides the video and the label.
PROTOCOL_KEYS = {
    "frequency": (),  # the label is a frequency (RotatingDigits)
    "heart_rate": ("ppg", "video_id", "clip_index", "fps"),  # rPPG HR protocol per video
    "counting": ("count", "duration", "segment_start", "segment_frames"),  # Countix
    "regression": (),  # a label that is not a frequency (LST): no FFT readout
}
PROTOCOLS = tuple(PROTOCOL_KEYS)


def feature_keys(eval_config) -> tuple:
  """The per-clip fields the evaluation reads besides the video and the label."""
  return (PROTOCOL_KEYS[eval_config.get("protocol", "frequency")]
          + tuple(eval_config.get("reference_keys", ())))


# eval.protocol -> the label's frequency in Hz per label unit (None: not a frequency), for
# marking the true frequency on the feature signals' spectra.
LABEL_HZ = {"frequency": 1.0, "heart_rate": 1 / 60, "counting": 1.0, "regression": None}


def evaluate_protocol(eval_config, fps: float, train: dict, test: dict) -> tuple[dict, dict]:
  """The readouts of `eval_config.protocol` on `compute_features` outputs; then a row for each
  of `eval_config.reference_keys`, a per-clip field of the data that is a reference prediction
  of the label (LST's persistence forecast).

  Returns:
    ({readout: metrics}, {readout: `Readout`}): the second for the intervals
    (`uncertainty.calibrate`), the figures and the zero-shot regions (`region_results`).
  """
  readouts = _protocol_readouts(eval_config, fps, train, test)
  for key in eval_config.get("reference_keys", ()):
    readouts[key] = Readout(np.asarray(test[key], np.float64), test["label"], {},
                            constant_readout(0.0, len(test["label"]))[1])
  return scored(readouts), readouts


def _protocol_readouts(eval_config, fps: float, train: dict, test: dict) -> dict:
  e = eval_config
  protocol = e.get("protocol", "frequency")
  common = dict(fps=fps, band=tuple(e.band), probe_l2=e.probe_l2,
                knn_similarity=e.knn_similarity)
  if protocol == "heart_rate":
    window = e.get("window_seconds")
    return heart_rate_readouts(train, test, window=round(window * fps) if window else None,
                               classic_methods=tuple(e.get("classic_methods", ())), **common)
  harmonics = tuple(e.get("fft_harmonics", HARMONICS))
  signal_readout_args = dict(probe_input=e.probe_input, fft_harmonic=e.get("fft_harmonic"),
                             harmonics=harmonics, **common)
  if protocol == "counting":
    return counting_readouts(train, test, **signal_readout_args)
  readouts = signal_readouts(train["signals"], train["label"], test["signals"], test["label"],
                             fft=protocol == "frequency", **signal_readout_args)
  readouts.update(input_baseline_readouts(e.get("input_baselines", ()), train, test, fps=fps,
                                          band=tuple(e.band), harmonics=harmonics))
  return readouts


def input_spectrum(inputs: np.ndarray) -> np.ndarray:
  """[N, T, C] clip inputs (a time series' channels, or a video's mean colour per frame) →
  [N, T] whose power spectrum is the channels' power spectra summed: `fft_frequency` of it
  reads the input's own spectral peak. Each channel is detrended and scaled to unit variance
  first, so no channel dominates by its units."""
  x = np.asarray(inputs, np.float64)
  t = np.arange(x.shape[1], dtype=np.float64) - (x.shape[1] - 1) / 2
  slope = np.einsum("ntc,t->nc", x - x.mean(axis=1, keepdims=True), t) / np.sum(t * t)
  x = x - x.mean(axis=1, keepdims=True) - slope[:, None, :] * t[None, :, None]
  x = x / np.maximum(x.std(axis=1, keepdims=True), 1e-12)
  return x


def spectral_peak_frequency(inputs: np.ndarray, fps: float, band,
                            harmonic: float = 1) -> np.ndarray:
  """[N, T, C] → [N] Hz: the highest bin of the channels' summed power spectra inside
  `harmonic × band`, divided by `harmonic` (as `fft_frequency` reads a feature signal)."""
  return spectral_peak_readout(inputs, fps, band, harmonic)[0]


def spectral_peak_readout(inputs: np.ndarray, fps: float, band,
                          harmonic: float = 1) -> tuple[np.ndarray, dict]:
  """`spectral_peak_frequency` and its summed spectrum's `uncertainty.spectral_confidence`."""
  x = input_spectrum(inputs)
  freqs, _ = power_spectrum(x[:, :, 0], fps)
  power = sum(power_spectrum(x[:, :, c], fps)[1] for c in range(x.shape[2]))
  freqs = freqs / harmonic
  inside = (freqs >= band[0]) & (freqs <= band[1])
  return (freqs[inside][np.argmax(power[:, inside], axis=1)],
          uncertainty.spectral_confidence(freqs, power, band,
                                          resolution=fps / x.shape[1] / harmonic))


def autocorrelation_frequency(inputs: np.ndarray, fps: float, band,
                              harmonic: float = 1) -> np.ndarray:
  """[N, T, C] → [N] Hz: fps / the lag of the highest peak of the channels' summed
  autocorrelation among the lags of rates in `harmonic × band` (the peak refined by a parabola
  through its neighbours), divided by `harmonic`."""
  return autocorrelation_readout(inputs, fps, band, harmonic)[0]


def autocorrelation_readout(inputs: np.ndarray, fps: float, band,
                            harmonic: float = 1) -> tuple[np.ndarray, dict]:
  """`autocorrelation_frequency` and how sure it is: {'confidence', 'acf_peak': [N]}, the
  height of the autocorrelation peak it read (1 for a perfectly repeating input, near 0 for
  noise; the confidence is it, floored at 0.001)."""
  x = input_spectrum(inputs)
  n, length, _ = x.shape
  spectrum = np.fft.rfft(x, n=2 * length, axis=1)
  acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :length].sum(axis=2)  # [N, T]
  acf = acf / np.maximum(acf[:, :1], 1e-12)
  lo_lag = max(1, int(np.floor(fps / (harmonic * band[1]))))
  hi_lag = min(length - 2, int(np.ceil(fps / (harmonic * band[0]))))
  lags = np.arange(lo_lag, hi_lag + 1)
  best = lags[np.argmax(acf[:, lags], axis=1)]
  left, mid, right = (acf[np.arange(n), best + d] for d in (-1, 0, 1))
  curvature = left - 2 * mid + right
  shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, 1),
                   0.0)
  return (fps / (best + np.clip(shift, -0.5, 0.5)) / harmonic,
          {"confidence": np.clip(mid, 1e-3, 1.0), "acf_peak": mid})


# eval.input_baselines: readouts of the clips' inputs, no encoder (rows of the results table).
INPUT_BASELINES = {"spectral_peak": spectral_peak_readout,
                   "autocorrelation": autocorrelation_readout}


def input_baseline_readouts(names, train: dict, test: dict, *, fps: float, band,
                            harmonics=HARMONICS) -> dict:
  """{name: `Readout`, extra {'harmonic': h}} of each of INPUT_BASELINES on the test clips'
  inputs ('mean_rgb' [N, T, C]: a series' channels), its harmonic chosen on the training
  split as the FFT readout's is."""
  readouts = {}
  for name in names:
    if name not in INPUT_BASELINES:
      raise ValueError(f"Unknown eval.input_baselines entry {name!r}; expected some of "
                       f"{tuple(INPUT_BASELINES)}.")
    read = INPUT_BASELINES[name]
    harmonic = choose_fft_harmonic(train["mean_rgb"], train["label"], fps, band,
                                   readout=lambda *args: read(*args)[0], harmonics=harmonics)
    pred, details = read(test["mean_rgb"], fps, band, harmonic)
    readouts[name] = Readout(pred, test["label"], {"harmonic": harmonic}, details)
  return readouts


def make_encoder_fn(module, variables, batch_sharding) -> Callable:
  """uint8 video [b, T, H, W, C] -> feature signals [b, T] as numpy, jitted, the batch split
  over the mesh. Every process passes the same whole batch and gets the whole result.

  The variables are an argument of the compiled function, not constants baked into it: every
  evaluation of one encoder (each checkpoint, each fine-tuned copy) reuses one compilation.
  """
  encode = jitted_encode(module)
  return sharding.on_host_batches(lambda video: encode(variables, video), batch_sharding)


@functools.lru_cache(maxsize=8)
def jitted_encode(module) -> Callable:
  """jit((variables, uint8 video) -> feature signals), one per encoder module."""
  return jax.jit(lambda variables, video: module.apply(
      variables, pipeline.model_input(video), train=False))
