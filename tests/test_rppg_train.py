"""The rPPG path end to end on the tiny synthetic config: builder → TS-CAN SimPer → HR readouts."""

import json
import os

import numpy as np
import pytest

from configs import scamps as scamps_config
from simper_jax import checkpoint
from simper_jax import train


def tiny_config(data_dir):
  config = scamps_config.get_config("tiny")
  config.data.data_dir = str(data_dir)
  return config


@pytest.mark.slow  # a whole run
def test_tiny_synthetic_scamps_run_end_to_end(tiny_scamps_run):
  workdir, results = tiny_scamps_run.workdir, tiny_scamps_run.results
  classic = {"green", "ica", "chrom", "pos", "lgi", "pbv", "omit"}
  assert set(results) == {"fft", "fft_clip", "1nn", "linear_probe", "train_mean", "finetune_100%",
                          "finetune_50%"} | classic
  # 2 test videos of 2 clips each: 'fft' and the classic methods per video, the rest per clip.
  assert results["fft"]["n"] == 2 and results["linear_probe"]["n"] == 4
  assert all(results[name]["n"] == 2 for name in classic)
  assert all(np.isfinite(m["mae"]) and np.isfinite(m["mae_se"]) for m in results.values())
  # SNR where there is a pulse signal to measure it on: the per-video rows.
  assert {name for name, m in results.items() if "snr_db" in m} == classic | {"fft"}
  out = tiny_scamps_run.output
  assert "Synthetic labels: the HR protocol" in out and "MAE in bpm" in out
  assert "SNR dB" in out and " ± " in out
  with open(os.path.join(workdir, "results.json")) as f:
    saved = json.load(f)
  assert saved["unit"] == "bpm" and saved["test"]["pos"] == results["pos"]

  module, variables = checkpoint.load_encoder(workdir)
  assert type(module).__module__ == "simper_jax.models.tscan" and set(variables) == {"params"}
  video = np.random.default_rng(0).uniform(size=(2, 60, 12, 12, 3)).astype(np.float32)
  assert module.apply(variables, video).shape == (2, 60)


def test_tscan_window_must_be_a_multiple_of_frame_depth(tmp_path):
  config = tiny_config(tmp_path)
  config.simper.window = 15
  with pytest.raises(ValueError, match=r"simper.window=15: TS-CAN .*frame_depth=10"):
    train.check_config(config, 8)


def test_either_encoder_by_name_from_the_same_config(tmp_path):
  from simper_jax.models import featurizer3d, tscan  # pylint: disable=g-import-not-at-top
  config = tiny_config(tmp_path)
  assert isinstance(train.make_model(config), tscan.Model)
  config.model.name = "featurizer3d"
  model = train.make_model(config)
  assert isinstance(model, featurizer3d.Model) and tuple(model.widths) == (2, 2)
  assert checkpoint.encoder_spec(config)["kwargs"] == {"widths": [2, 2], "temporal_kernel": 5,
                                                       "dtype": "float32", "conv_impl": "auto"}


@pytest.mark.parametrize("override, message", [
    ({"eval.classic_methods": ("pos", "cheek")},
     r"eval.classic_methods=\('pos', 'cheek'\): unknown \['cheek'\]; expected names from "
     r"\('green', 'ica', 'chrom', 'pos', 'lgi', 'pbv', 'omit'\)"),
    ({"eval.protocol": "frequency"},
     r"eval.classic_methods=.*they need eval.protocol='heart_rate'"),
])
def test_bad_classic_methods_are_named(tmp_path, override, message):
  config = tiny_config(tmp_path)
  config.update_from_flattened_dict(override)
  with pytest.raises(ValueError, match=message):
    train.check_config(config, 8)
