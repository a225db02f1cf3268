"""simper_jax.select: the SAS objective and its greedy maximizer, latent classes from frequencies,
per-class shares, subset files checked against the data they were made for, and pretraining
that reads only a subset's clips."""

import itertools
import json
import os
import sys
import types

import numpy as np
import pytest

from simper_jax import errors
from simper_jax import select
from simper_jax import train
from simper_jax.data import pipeline
from tiny import REPO
from tiny import run_command_here
from tiny import tiny_config


def naive_greedy(similarity, budget):
  """The plain greedy: each step, the clip with the largest gain (ties: the lower index)."""
  chosen = []
  for _ in range(budget):
    gains = [select.sas_objective(similarity, chosen + [i]) - select.sas_objective(similarity,
                                                                                      chosen)
             if i not in chosen else -np.inf for i in range(len(similarity))]
    chosen.append(int(np.argmax(gains)))
  return chosen


def test_the_greedy_is_the_plain_greedy_and_near_the_best_subset():
  rng = np.random.default_rng(0)
  for trial in range(5):
    features = rng.random((9, 4)) ** 3  # a few clips alike, others apart
    similarity = select.cosine_similarity(features)
    for budget in (1, 3, 5):
      chosen = select.sas_greedy(similarity, budget)
      assert chosen == naive_greedy(similarity, budget), (trial, budget)
      best = max(select.sas_objective(similarity, subset)
                 for subset in itertools.combinations(range(9), budget))
      # Monotone submodular: the greedy is within 1 − 1/e of the best (here, much closer).
      assert select.sas_objective(similarity, chosen) >= (1 - 1 / np.e) * best
  # By hand: row sums 2.8, 2.8, 3.3, 2.8, 1.9; 2 first. Then 0, 1 and 3 tie on their row
  # sums, but 3 is the least like 2 (0.7 against 0.8): gains 2.0, 2.0, 2.1. (The reference
  # code's objective zeroes the penalty it meant to subtract and would take 0.)
  similarity = np.array([[1.0, 0.9, 0.8, 0.1, 0.0],
                         [0.9, 1.0, 0.8, 0.1, 0.0],
                         [0.8, 0.8, 1.0, 0.7, 0.0],
                         [0.1, 0.1, 0.7, 1.0, 0.9],
                         [0.0, 0.0, 0.0, 0.9, 1.0]])
  assert select.sas_greedy(similarity, 2) == [2, 3]
  assert select.sas_objective(similarity, [2, 3]) == pytest.approx(3.3 + 2.8 - 0.7)


def test_frequency_bins_are_equal_in_log_frequency():
  # Four octaves between the 1st and 99th percentiles: one octave a bin.
  frequencies = np.r_[np.geomspace(0.5, 8.0, 98), 0.1, 20.0]
  bins = select.frequency_bins(frequencies, 4)
  low, high = np.percentile(frequencies, [1, 99])
  np.testing.assert_array_equal(bins, np.clip(np.floor(
      4 * np.log(frequencies / low) / np.log(high / low) + 1e-9), 0, 3))
  assert bins[-2] == 0 and bins[-1] == 3  # the extremes join the end bins
  assert sorted(np.bincount(bins[:-2])) == [24, 24, 25, 25]  # log-uniform: even bins
  assert np.all(select.frequency_bins(np.full(5, 2.0), 4) == 0)  # one rate: one class


def test_each_latent_class_keeps_its_share_and_the_total_is_the_fraction():
  class_of = np.repeat([0, 1, 2, 3], [50, 30, 15, 5])
  counts = select.class_counts(class_of, 0.4)
  assert counts == {0: 20, 1: 12, 2: 6, 3: 2}
  counts = select.class_counts(class_of, 0.25)  # 12.5, 7.5, 3.75, 1.25 → 25 in all
  assert sum(counts.values()) == 25 and counts == {0: 13, 1: 7, 2: 4, 3: 1}  # ties: larger
  tiny = select.class_counts(np.repeat([0, 1, 2], [40, 5, 5]), 0.1)  # 4, 0.5, 0.5 → 5
  assert sum(tiny.values()) == 5 and min(tiny.values()) == 1  # no class vanishes


def test_the_strategies_keep_the_same_classes_and_differ_in_which_clips():
  rng = np.random.default_rng(0)
  class_of = np.repeat([0, 1], [20, 10])
  features = rng.random((30, 6))
  features[:3] = features[3]  # four identical clips of class 0: SAS keeps one, not four
  confidence = rng.random(30)
  kept = {s: select.choose(s, class_of, 0.3, features=features, peak_confidence=confidence,
                           seed=0) for s in select.STRATEGIES}
  for strategy, indices in kept.items():
    assert np.sum(class_of[indices] == 0) == 6 and np.sum(class_of[indices] == 1) == 3, strategy
  assert len(set(kept["sas"]) & {0, 1, 2, 3}) <= 1
  best = [np.argsort(-confidence[class_of == c])[:n] + (0 if c == 0 else 20)
          for c, n in ((0, 6), (1, 3))]
  np.testing.assert_array_equal(kept["periodicity"], np.sort(np.concatenate(best)))
  assert len({tuple(v) for v in kept.values()}) == 3


class FakeBuilder:
  name = "rotating_digits"
  version = "1.0.0"

  def __init__(self, config_name):
    self.builder_config = types.SimpleNamespace(name=config_name)


def test_a_subset_made_for_other_prepared_data_is_refused(tmp_path):
  source = [{"video": np.full((2, 2), i, np.uint8)} for i in range(20)]
  builder = FakeBuilder("sklearn_16px_90f_09b291b0")
  subset = {**pipeline.subset_identity(builder, source), "indices": [1, 5, 7]}
  path = tmp_path / "subset.json"
  path.write_text(json.dumps(subset))
  assert pipeline.subset_source(source, str(path), builder).indices == [1, 5, 7]
  with pytest.raises(errors.ConfigError, match="made for other prepared data: prepared "
                                               "'sklearn_16px_90f_09b291b0' \\(this run's: "
                                               "'sklearn_8px_24f_5fc575d6'\\)"):
    pipeline.subset_source(source, str(path), FakeBuilder("sklearn_8px_24f_5fc575d6"))
  changed = [dict(example) for example in source]
  changed[0] = {"video": np.full((2, 2), 99, np.uint8)}  # the same name, other clips
  with pytest.raises(errors.ConfigError, match="fingerprint"):
    pipeline.subset_source(changed, str(path), builder)
  with pytest.raises(errors.ConfigError, match="train_clips 20 \\(this run's: 19\\)"):
    pipeline.subset_source(source[:19], str(path), builder)
  path.write_text(json.dumps({**subset, "indices": [1, 20]}))
  with pytest.raises(errors.ConfigError, match="expected distinct indices in \\[0, 20\\)"):
    pipeline.subset_source(source, str(path), builder)
  path.write_text("{}")
  with pytest.raises(errors.ConfigError, match="not a subset file"):
    pipeline.subset_source(source, str(path), builder)


def test_pretraining_on_a_subset_reads_only_its_clips(data_dir, tmp_path, monkeypatch):
  config = tiny_config(data_dir, num_steps=3)
  builder = pipeline.get_builder(config.data)
  train_split = builder.as_data_source()["train"]
  indices = [1, 4, 6, 9, 10, 12, 13, 15]
  path = tmp_path / "subset.json"
  path.write_text(json.dumps({**pipeline.subset_identity(builder, train_split),
                              "indices": indices}))
  read = []
  original = pipeline.train_iterator

  def recording_iterator(source, **kwargs):
    class Recording:  # the training source, noting each clip read by its index in the split
      def __len__(self):
        return len(source)

      def __getitem__(self, i):
        read.append(source.indices[i])
        return source[i]

      def __getitems__(self, rows):
        read.extend(source.indices[i] for i in rows)
        return source.__getitems__(rows)
    return original(Recording(), **kwargs)

  monkeypatch.setattr(pipeline, "train_iterator", recording_iterator)
  config.data.subset = str(path)
  train.train(config, str(tmp_path / "run"))
  assert read and set(read) <= set(indices)
  assert len(set(read)) == len(indices)  # 3 steps of 8 clips read them all


def test_the_select_command_writes_a_subset_and_says_what_is_wrong(tiny_run, tmp_path):
  output = tmp_path / "subset.json"
  result = run_command_here(select, f"--workdir={tiny_run.workdir}", "--fraction=0.5",
                            "--classes=3", "--strategy=periodicity", f"--output={output}")
  assert result.returncode == 0, result.stderr
  assert f"Train on it with --config.data.subset={output}" in result.stdout
  subset = json.loads(output.read_text())
  assert subset["strategy"] == "periodicity" and subset["selected"] == 8
  assert subset["dataset"] == "rotating_digits" and subset["train_clips"] == 16
  assert subset["proxy"] == os.path.abspath(tiny_run.workdir)
  for args, message in (((f"--workdir={tiny_run.workdir}", f"--output={output}"),
                         "--fraction is required"),
                        ((f"--workdir={tiny_run.workdir}", "--fraction=0", f"--output={output}"),
                         "--fraction=0.0: expected a share of the training clips in (0, 1]"),
                        ((f"--workdir={tmp_path}", "--fraction=0.5", f"--output={output}"),
                         "no config.json there"),
                        (("--strategy=best",), "flag --strategy=best: value should be one of")):
    result = run_command_here(select, *args)
    assert result.returncode == 2 and result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_selection_grid_lists_the_proxy_its_subsets_and_one_run_each(capsys):
  sys.path.insert(0, os.path.join(REPO, "launch"))
  import data_efficiency  # pylint: disable=g-import-not-at-top
  data_efficiency.main(["--config=configs/rotating_digits.py:quick", "--selection=sas,random",
                        "--fractions=1,0.5", "--workdir=/nowhere", "--dry-run"])
  out = capsys.readouterr().out
  assert "--config.num_epochs=1" in out and "--workdir=/nowhere/proxy" in out  # 3 → a fifth
  for strategy in ("sas", "random"):
    assert (f"-m simper_jax.select --workdir=/nowhere/proxy --fraction=0.5 "
            f"--strategy={strategy}") in out
    assert (f"--config.data.subset=/nowhere/subsets/{strategy}_0.5.json "
            f"--workdir=/nowhere/{strategy}/fraction=0.5") in out
  assert out.count("--workdir=/nowhere/all/fraction=1") == 1  # every strategy's 100 % run
  with pytest.raises(SystemExit, match="--selection=sas,greedy"):
    data_efficiency.main(["--config=configs/rotating_digits.py:quick", "--selection=sas,greedy",
                          "--workdir=/nowhere", "--dry-run"])
