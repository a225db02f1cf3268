r"""Pretrain on less: choose the unlabelled training clips that teach SimPer most.

    python -m simper_jax.select --workdir=PROXY_RUN --fraction=0.4 --output=subset.json \
        [--strategy=sas|random|periodicity] [--latent=frequency|kmeans] [--classes=10]
    python -m simper_jax.main --config=... --config.data.subset=subset.json

SAS (Joshi & Mirzasoleiman, ICML 2023, "Data-Efficient Contrastive Self-supervised Learning:
Most Beneficial Examples for Supervised Learning Contribute the Least") keeps, within each
latent class, the examples most similar to the rest of their class: the ones whose views
other examples' views resemble, which contrastive learning learns most from. Classes are not
known without labels; SAS approximates them with a proxy model. Here the proxy is a short
SimPer run (`--workdir`), and the latent classes of periodic data are frequencies:

- `--latent=frequency` (default): bins of the frequency of the proxy's feature signal (its
  spectral peak, at no harmonic), equal in log-frequency between the 1st and 99th
  percentiles (a speed change multiplies a rate, so bins are ratios); `--latent=kmeans`:
  k-means on the feature spectra. No label is read.
- Similarity: the cosine of two clips' feature spectra (`evaluate.spectrum_features`: the
  normalized power spectrum, phase-free, as the periodic similarity of the method).
- `--strategy=sas`: within each class, the greedy maximizer of the SAS objective
  F(S) = Σ_{i∈S} Σ_j sim(i, j) − Σ_{pairs {i,s} ⊂ S} sim(i, s), whose gain for adding i is
  Σ_j sim(i, j) − Σ_{s∈S} sim(s, i) (`sas_greedy`). `random`: random clips of each class.
  `periodicity`: the clips of each class whose feature spectrum has the sharpest peak
  (`uncertainty.spectral_confidence`). All three keep the same number of clips per class,
  round(fraction × class size) adjusted so that the total is round(fraction × N)
  (`class_counts`): they differ only in which clips of a class they keep.

The subset file names the dataset, its prepared config and version, the number of training
clips and a fingerprint of them, the strategy and the proxy; a run given another dataset's
(or another preparation's) subset refuses it with what differs (`pipeline.subset_source`).
Only pretraining reads the subset: every readout is still fitted on the whole training split.
"""

import functools
import heapq
import json
import os
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from simper_jax import errors

STRATEGIES = ("sas", "random", "periodicity")
LATENTS = ("frequency", "kmeans")


# ---------------------------------------------------------------------------------------------
# Latent classes and per-class counts.
# ---------------------------------------------------------------------------------------------
def frequency_bins(frequencies: np.ndarray, classes: int) -> np.ndarray:
  """[N] the bin (0 .. classes − 1) of each frequency among `classes` bins of equal width in
  log-frequency between the 1st and 99th percentiles of `frequencies` (the extremes join the
  end bins): a speed change multiplies a rate, so classes are ratios; the percentiles, not a
  band, so that no label nor harmonic is needed."""
  frequencies = np.asarray(frequencies, np.float64)
  low, high = np.percentile(frequencies, [1, 99])
  if not high > low > 0:
    return np.zeros(len(frequencies), int)
  edges = np.geomspace(low, high, classes + 1)
  return np.clip(np.searchsorted(edges, frequencies, side="right") - 1, 0, classes - 1)


def kmeans_classes(features: np.ndarray, classes: int, seed: int) -> np.ndarray:
  """[N] k-means clusters (scikit-learn, 10 restarts) of the rows of `features`."""
  from sklearn import cluster  # pylint: disable=g-import-not-at-top
  classes = min(classes, len(features))
  return cluster.KMeans(n_clusters=classes, n_init=10, random_state=seed).fit_predict(features)


def class_counts(class_of: np.ndarray, fraction: float) -> dict:
  """{class: how many of its clips to keep}: fraction × its size, rounded so that the counts
  add up to round(fraction × N) (largest remainders first; ties to the larger class, then the
  smaller label). Every class present keeps at least one clip when the total allows."""
  labels, sizes = np.unique(class_of, return_counts=True)
  total = int(round(fraction * len(class_of)))
  exact = fraction * sizes
  counts = np.floor(exact).astype(int)
  order = sorted(range(len(labels)), key=lambda k: (-(exact[k] - counts[k]), -sizes[k], k))
  for k in order[:total - counts.sum()]:
    counts[k] += 1
  # A class kept at zero would vanish from pretraining; take one from the largest count.
  for k in np.flatnonzero(counts == 0):
    donor = int(np.argmax(counts))
    if counts[donor] > 1:
      counts[donor] -= 1
      counts[k] = 1
  return {int(label): int(count) for label, count in zip(labels, counts)}


# ---------------------------------------------------------------------------------------------
# The SAS objective, maximized greedily.
# ---------------------------------------------------------------------------------------------
def sas_objective(similarity: np.ndarray, chosen: Sequence[int]) -> float:
  """F(S) = Σ_{i∈S} Σ_j sim(i, j) − Σ_{pairs {i, s} ⊂ S, i ≠ s} sim(i, s), sim clipped at
  0 (SAS's threshold): how much the chosen clips resemble their class, less how much they
  resemble each other. Monotone and submodular for non-negative symmetric sim."""
  sim = np.maximum(similarity, 0.0)
  chosen = list(chosen)
  inner = sim[np.ix_(chosen, chosen)]
  return float(sim[chosen].sum() - (inner.sum() - np.trace(inner)) / 2)


def sas_greedy(similarity: np.ndarray, budget: int) -> list[int]:
  """The greedy maximizer of `sas_objective` with `budget` clips, in the order chosen.

  Lazy greedy (Minoux): a clip's gain Σ_j sim(i, j) − Σ_{s∈S} sim(s, i) only falls as S
  grows, so a stale gain is an upper bound and most clips are never re-evaluated. Ties go to
  the lower index, as a plain greedy's argmax would. (The SAS repository's objective zeroes
  the rows of the chosen clips before reading the penalty from them, so its penalty is
  always 0 and its greedy ranks by Σ_j sim(i, j) alone; this subtracts it, as the paper's
  objective does.) Written here rather than taken from
  apricot-select, whose last release (0.6.1, 2021) needs numba and whose graph-cut weighting
  would have to be matched to SAS's by hand; the objective is two lines of numpy.
  """
  sim = np.maximum(np.asarray(similarity, np.float64), 0.0)
  total = sim.sum(axis=1)
  penalty = np.zeros(len(sim))  # Σ_{s∈S} sim(s, i), kept up to date as S grows
  heap = [(-total[i], i) for i in range(len(sim))]
  heapq.heapify(heap)
  chosen = []
  while heap and len(chosen) < budget:
    _, i = heapq.heappop(heap)
    entry = (-(total[i] - penalty[i]), i)
    if not heap or entry <= heap[0]:  # its fresh gain still beats every stale bound
      chosen.append(i)
      penalty += sim[i]
    else:
      heapq.heappush(heap, entry)
  return chosen


def cosine_similarity(features: np.ndarray) -> np.ndarray:
  """[n, n] cosine similarities of the rows of `features`."""
  unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
  return unit @ unit.T


def choose(strategy: str, class_of: np.ndarray, fraction: float, *, features: np.ndarray,
           peak_confidence: np.ndarray, seed: int) -> np.ndarray:
  """The sorted indices kept by `strategy`: `class_counts` clips of each latent class, the
  SAS objective's greedy choice, random ones, or the sharpest-peaked (`peak_confidence`)."""
  if strategy not in STRATEGIES:
    raise errors.ConfigError(f"--strategy={strategy}: expected one of {STRATEGIES}.")
  rng = np.random.default_rng(seed)
  kept = []
  for label, count in class_counts(class_of, fraction).items():
    members = np.flatnonzero(class_of == label)
    if strategy == "sas":
      order = sas_greedy(cosine_similarity(features[members]), count)
    elif strategy == "random":
      order = rng.permutation(len(members))
    else:
      order = np.argsort(-peak_confidence[members], kind="stable")
    kept.extend(members[np.asarray(order[:count], int)])
  return np.sort(np.asarray(kept, int))


# ---------------------------------------------------------------------------------------------
# The proxy's features and the subset file.
# ---------------------------------------------------------------------------------------------
def proxy_features(workdir: str, log=print) -> dict:
  """What selection reads of a proxy run: its config (dict), the training split's data source
  and builder, and per training clip the feature signal's spectrum [N, F], its FFT-readout
  frequency [N] and peak confidence [N]."""
  import jax  # pylint: disable=g-import-not-at-top  (the flags are checked first)
  from simper_jax import checkpoint  # pylint: disable=g-import-not-at-top
  from simper_jax import evaluate  # pylint: disable=g-import-not-at-top
  from simper_jax import sharding  # pylint: disable=g-import-not-at-top
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  config, module, variables, settings = checkpoint.load_run(
      workdir, lambda c: c.get("eval", {}).get("protocol", "frequency") != "regression",
      "a run whose target is a frequency (the latent classes are frequency bins)")
  builder = pipeline.get_builder(pipeline.data_config_of_run(config), log=log)
  source = builder.as_data_source()["train"]
  started = time.time()
  log(f"Feature signals of the {len(source)} training clips by the proxy's encoder ...")
  mesh = sharding.make_mesh((("data", -1),), jax.devices())
  encode = evaluate.make_encoder_fn(module, variables, sharding.batch_sharding(mesh))
  batch_size = config["eval"]["batch_size"]
  signals = evaluate.compute_features(encode, pipeline.eval_batches(
      source, batch_size=batch_size - batch_size % jax.device_count() or jax.device_count(),
      label_key=None))["signals"]
  # The feature signal's own rhythm, read without labels: no harmonic (one chosen on the
  # training labels would be a label), searched from the band's low edge over every harmonic
  # the config would try; its peak's sharpness is the periodicity strategy's score.
  harmonics = config["eval"].get("fft_harmonics") or [1, 2, 3]
  fps, band = settings["fps"], settings["band"]
  search = (band[0] * min(harmonics), min(band[1] * max(harmonics), 0.49 * fps))
  frequency, details = evaluate.fft_readout(signals, fps, search)
  log(f"  done in {time.time() - started:.0f} s.")
  return {"config": config, "source": source, "builder": builder,
          "spectra": evaluate.spectrum_features(signals), "frequency": frequency,
          "peak_confidence": details["confidence"]}


def select(workdir: str, *, fraction: float, strategy: str, latent: str, classes: int,
           seed: int = 0, log=print) -> dict:
  """The subset file's contents for `strategy` on the proxy run in `workdir`."""
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  started = time.time()
  proxy = proxy_features(workdir, log=log)
  if latent == "frequency":
    class_of = frequency_bins(proxy["frequency"], classes)
  else:
    class_of = kmeans_classes(proxy["spectra"], classes, seed)
  indices = choose(strategy, class_of, fraction, features=proxy["spectra"],
                   peak_confidence=proxy["peak_confidence"], seed=seed)
  sizes = np.unique(class_of, return_counts=True)[1]
  log(f"Kept {len(indices)} of {len(class_of)} training clips ({strategy}; {len(sizes)} latent "
      f"classes by {latent}, of {sizes.min()}–{sizes.max()} clips).")
  return {**pipeline.subset_identity(proxy["builder"], proxy["source"]),
          "strategy": strategy, "latent": latent, "classes": int(classes),
          "fraction": float(fraction), "seed": int(seed), "proxy": os.path.abspath(workdir),
          "selected": int(len(indices)), "seconds": round(time.time() - started, 1),
          "indices": [int(i) for i in indices]}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  defined = dict(flag_values=flag_values)
  return {
      "workdir": flags.DEFINE_string("workdir", None, "The proxy: a trained run (a short SimPer "
                                     "run of the dataset to select from).", **defined),
      "fraction": flags.DEFINE_float("fraction", None, "Share of the training clips to keep, "
                                     "in (0, 1].", **defined),
      "output": flags.DEFINE_string("output", None, "The subset file to write (JSON).",
                                    **defined),
      "strategy": flags.DEFINE_enum("strategy", "sas", list(STRATEGIES), "Which clips of each "
                                    "latent class to keep.", **defined),
      "latent": flags.DEFINE_enum("latent", "frequency", list(LATENTS), "Latent classes: bins "
                                  "of the proxy's FFT frequency, or k-means on its feature "
                                  "spectra.", **defined),
      "classes": flags.DEFINE_integer("classes", 10, "How many latent classes.", **defined),
      "seed": flags.DEFINE_integer("seed", 0, "For random choices and k-means.", **defined),
  }


def main(argv: Sequence[str], defined: dict) -> None:
  logging.set_verbosity(logging.WARNING)
  value = {name: holder.value for name, holder in defined.items()}
  if len(argv) > 1:
    errors.fail(f"unexpected arguments {list(argv[1:])}; see --help.")
  for name in ("workdir", "fraction", "output"):
    if value[name] is None:
      errors.fail(f"--{name} is required (python -m simper_jax.select --workdir=PROXY_RUN "
                  f"--fraction=F --output=subset.json).")
  if not 0 < value["fraction"] <= 1:
    errors.fail(f"--fraction={value['fraction']}: expected a share of the training clips in "
                "(0, 1].")
  if value["classes"] < 1:
    errors.fail(f"--classes={value['classes']}: expected at least 1.")
  try:
    subset = select(value["workdir"], fraction=value["fraction"], strategy=value["strategy"],
                    latent=value["latent"], classes=value["classes"], seed=value["seed"])
  except (errors.InputError, errors.ConfigError, errors.DataError) as e:
    errors.fail(str(e))
  from simper_jax import workdir as run_files  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(value["output"])), exist_ok=True)
  run_files.write_atomic(value["output"], json.dumps(subset, indent=1))
  print(f"Wrote {value['output']} ({subset['selected']} clips of {subset['dataset']} "
        f"{subset['prepared']}, {subset['seconds']:.0f} s). Train on it with "
        f"--config.data.subset={value['output']}.")


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  return errors.parse_flags(argv, flag_values)


if __name__ == "__main__":
  app.run(functools.partial(main, defined=define_flags()), flags_parser=parse_flags)
