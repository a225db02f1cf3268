r"""SimPer on land-surface temperature (LST; docs/temperature.md), ResNet3D-18.

The task (simper_jax/data/lst.py): from the last `window_hours` hourly temperature maps of a
tile, predict the tile's mean temperature over the next 24 hours. The target is a temperature,
not a frequency, so the FFT readout does not apply (eval.protocol="regression"): the table has
the 1-NN readout, the linear probe on the feature signal, the train mean, the persistence
forecast (the last 24 h of the window as the next 24 h) and fine-tuning.

Run (with NetCDF files in the manual_dir, see docs/temperature.md):
  python -m simper_jax.main --config=configs/lst.py --config.data.manual_dir=/data/era5_skt
On any machine, with a synthetic ERA5-like NetCDF (diurnal cycles, weather, missing values):
  python -m simper_jax.main --config=configs/lst.py:synthetic --workdir=workdir/lst_synthetic

Variants (`--config=configs/lst.py:VARIANT`):
  (none)     the files in config.data.manual_dir: ERA5 `skt`, 16×16-cell tiles, 72-h windows
             every 24 h, the last 20 % of the days for testing, ResNet3D-18 (the paper's
             backbone for LST), M = 10 speeds in U(0.5, 2), 36-h views. Needs an accelerator.
  synthetic  60 days of synthetic 32×48 maps, 16×16 tiles, a narrow ResNet3D-18, 200 steps:
             minutes on 2 CPU cores.
  tiny       seconds per run; for tests only.
"""

import os
import sys

import ml_collections
from ml_collections.config_dict import placeholder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402  pylint: disable=g-import-not-at-top

VARIANTS = ("synthetic", "tiny")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """Returns the config; `arg` is a comma-separated variant list, e.g. "synthetic"."""
  variants = {v for v in arg.split(",") if v}
  unknown = variants - set(VARIANTS)
  if unknown:
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for configs/lst.py; expected some "
                     f"of {VARIANTS}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = "lst"  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  # NetCDF files (*.nc), one or many along time; None → <data_dir>/downloads/manual/lst
  c.data.manual_dir = placeholder(str)
  c.data.label_key = "temperature"  # the tile's mean over the next target_hours, file units
  c.data.fps = 1.0  # maps per hour: frequencies are in cycles per hour (a day: 1/24)
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.variable = "skt"  # temperature variable in the files (ERA5 skin temperature)
  # Coordinate names; None → found from what the file declares (axis, standard_name, units).
  c.data.builder.time_name = placeholder(str)
  c.data.builder.latitude_name = placeholder(str)
  c.data.builder.longitude_name = placeholder(str)
  c.data.builder.tile_size = 16  # grid cells per tile side (ERA5 at 0.25°: 4°)
  c.data.builder.window_hours = 72  # T, hourly maps per example (three diurnal cycles)
  c.data.builder.target_hours = 24  # target: the mean over these hours after the window
  c.data.builder.stride_hours = 24  # hours between consecutive windows of a tile
  c.data.builder.test_fraction = 0.2  # the last share of the days is the test split
  c.data.builder.max_missing = 0.2  # tile-windows with more missing values are dropped

  c.model = ml_collections.ConfigDict()
  c.model.name = "resnet3d18"  # ResNet3D-18, time unstrided (simper_jax/models/resnet3d.py)
  c.model.widths = (64, 128, 256, 512)  # stage widths (torchvision r3d_18)
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # Our choices (the paper does not list its LST settings): speeds in U(0.5, 2) and windows of
  # half a clip, so a view at the top speed still fits in it.
  c.simper = common.simper(num_speeds=10, speed_range=(0.5, 2.0), window=36)
  c.augment = common.augment()
  # Brightness is temperature here: scaling it would change the target the maps show; and a
  # map has a north, so no flips.
  c.augment.brightness = (1.0, 1.0)
  c.augment.flip_prob = 0.0
  common.baselines(c, moco_queue=1024)
  common.loop(c, batch_size=8, num_epochs=20, lr_decay_epochs=(12, 16), checkpoint_every=1000)
  # The target is a temperature: 1-NN by Euclidean distance of the feature signals, and the
  # probe reads the signal itself (its level, which a spectrum discards). The band (periods of
  # 4–50 h) only bounds the spectra drawn for it.
  common.readouts(c, protocol="regression", unit="K", band=(0.02, 0.25), probe_input="signal",
                  knn_similarity="neg_l2", batch_size=32)
  # A row for the reference forecast "the next 24 h as the last 24 h" (a per-clip field of the
  # data): what a learned forecast must beat.
  c.eval.reference_keys = ("persistence",)

  if "synthetic" in variants or "tiny" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # an ERA5-like NetCDF, packed int16
    c.data.synthetic.num_days = 60  # days of hourly maps
    c.data.synthetic.num_latitudes = 32  # grid rows
    c.data.synthetic.num_longitudes = 48  # grid columns
    c.data.synthetic.resolution = 0.25  # degrees per cell
    c.data.synthetic.diurnal_amplitude = (4.0, 12.0)  # K, half the day–night swing
    c.data.synthetic.weather_std = 3.0  # K, spread of the daily weather anomaly
    c.data.synthetic.persistence = 0.8  # the anomaly's day-to-day correlation
    c.data.synthetic.cloud_gaps = 40  # patches of missing values
    c.data.synthetic.seed = 0  # generation seed
    c.model.widths = (8, 16, 32, 32)
    c.simper.num_speeds = 4
    c.batch_size = 4
    c.num_epochs = 0
    c.num_steps = 200
    c.lr_decay_epochs = ()
    c.log_every = 25
    c.checkpoint_every = 100
    c.eval.batch_size = 16
    c.moco.queue_size = 64
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.synthetic.num_days = 12
    c.data.synthetic.num_latitudes = 16
    c.data.synthetic.num_longitudes = 16
    c.data.synthetic.cloud_gaps = 5
    c.data.builder.tile_size = 8
    c.data.builder.window_hours = 24
    c.data.builder.stride_hours = 12
    c.data.builder.test_fraction = 0.34
    c.model.widths = (2, 2, 2, 2)
    c.simper.num_speeds = 2
    c.simper.window = 12
    c.batch_size = 8
    c.num_steps = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 8
    common.shrink_baselines(c)
  return c
