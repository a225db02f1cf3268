r"""SimPer on your own time series: every recording under a folder — CSV/TSV, Parquet, NPY/NPZ,
EDF/BDF, WFDB — labelled or not (docs/timeseries.md; simper_jax/data/timeseries.py says the
layout and every step).

Run:
  python -m simper_jax.main --config=configs/timeseries.py --config.data.manual_dir=DIR
On any machine, with a synthetic folder of wrist-accelerometer walks written the way such
folders come:
  python -m simper_jax.main --config=configs/timeseries.py:synthetic

Variants (`--config=configs/timeseries.py:VARIANT`, comma-separated):
  (none)     25 Hz, 10-s windows, a residual 1D CNN (models/conv1d.py), M=5 speeds in
             U(0.5, 2), 4-s views, batch 16, 1000 steps: minutes on a laptop for hours of
             recordings.
  synthetic  the synthetic walks (16 recordings of 60 s at ~50 Hz, tri-axial, in four
             formats; cadence labels per half): 600 steps.
  synthetic_ppg  synthetic finger PPG + accelerometer records, EDF+ and WFDB (16 of 120 s;
             heart-rate labels in Hz per half; walking motion leaking into the PPG).
  tiny       seconds per run; for tests only.

Labels: data.label_key picks a numeric labels.csv column (None → the only one, else the
label column's field: `heart_rate` for a reference trace, `rate` for a counter);
data.builder.labels=False ignores them.
"""

import os
import sys

import ml_collections
from ml_collections.config_dict import placeholder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402  pylint: disable=g-import-not-at-top

VARIANTS = ("synthetic", "synthetic_ppg", "tiny")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """Returns the config; `arg` is a comma-separated variant list, e.g. "synthetic"."""
  variants = {v for v in arg.split(",") if v}
  unknown = variants - set(VARIANTS)
  if unknown:
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for configs/timeseries.py; "
                     f"expected some of {', '.join(VARIANTS)}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = "timeseries"  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  # Your folder of recordings (searched recursively) with its optional labels.csv and
  # split.csv; None → <data_dir>/downloads/manual/timeseries.
  c.data.manual_dir = placeholder(str)
  # The label: a numeric labels.csv column, or the label column's field; None → the only
  # numeric column, else that field, else no label.
  c.data.label_key = placeholder(str)
  c.data.fps = 25.0  # samples per second of the windows, Hz (every recording is resampled)
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.sample_rate = c.data.get_ref("fps")  # recordings resampled to this rate
  c.data.builder.columns = ()  # channel columns; () → every numeric one but time and labels
  c.data.builder.time_column = ""  # "" → a column named time, timestamp, t, ...; else none
  # The time column's unit: "auto" (datetimes, or by the median step), "s", "ms", "us", "ns"
  # or "datetime"; the log says which it used.
  c.data.builder.time_unit = "auto"
  c.data.builder.source_rate = 0.0  # Hz of files without a time column (0 → they are errors)
  c.data.builder.max_gap_s = 1.0  # gaps up to this are interpolated; longer ones split
  c.data.builder.num_samples = 250  # T, samples per window (10 s at 25 Hz)
  c.data.builder.train_stride = 125  # samples between training windows' starts
  # A per-sample label column in the files ("" → none): a reference trace ("signal": the
  # heart-rate protocol gives `heart_rate`) or a cumulative counter ("counter": `rate`, Hz).
  c.data.builder.label_column = ""
  c.data.builder.label_kind = "signal"
  c.data.builder.test_fraction = 0.2  # share of recordings (or groups) the hash split tests on
  c.data.builder.group_by = ""  # a labels.csv column (subject, session) kept on one side
  c.data.builder.labels = True  # read labels.csv and label_column; False → unlabelled
  c.data.builder.on_bad_file = "fatal"  # an unreadable or too short recording: or "skip"
  c.data.builder.num_workers = 4  # recordings prepared in parallel threads

  c.model = ml_collections.ConfigDict()
  c.model.name = "conv1d"  # the residual 1D CNN (simper_jax/models/conv1d.py)
  c.model.widths = (32, 64, 64)  # channels of each stage
  c.model.blocks = (1, 1, 1)  # residual blocks per stage
  c.model.kernel = 7  # convolution length along time, samples
  c.model.dilation_growth = 2  # each stage's dilation is this × the previous one's
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # M = 5 speeds in U(0.5, 2) and 4-s views: a view at the top speed fits in a 10-s window.
  c.simper = common.simper(num_speeds=5, speed_range=(0.5, 2.0), window=100)
  c.augment = ml_collections.ConfigDict()
  c.augment.name = "series"  # the augmentation family (simper_jax/augment.py)
  c.augment.reverse_prob = 0.5  # probability of playing the view backwards
  c.augment.scale = (0.7, 1.3)  # amplitude factor range (all channels alike)
  c.augment.noise_std = 0.05  # Gaussian noise, in channel standard deviations
  c.augment.drift_std = 0.2  # slow baseline drift amplitude, in channel standard deviations
  c.augment.rotate3d = False  # rotate each (x, y, z) triple of channels at random
  c.augment.channel_dropout = 0.0  # probability of zeroing each channel (never all)
  common.baselines(c, moco_queue=256)
  common.loop(c, batch_size=16, num_epochs=0, lr_decay_epochs=(), checkpoint_every=500)
  c.num_steps = 1000  # a first look in minutes
  # Rates 0.2–5 Hz: a breath to a fast cadence, below the Nyquist rate of 25 Hz sampling.
  common.readouts(c, protocol="frequency", unit="Hz", band=(0.2, 5.0), probe_input="spectrum",
                  knn_similarity="max_xcorr", batch_size=64)
  # Rows read off the input itself, the first thing a user would try: the spectral peak of
  # the channels' summed power spectra and the autocorrelation peak (simper_jax/evaluate.py).
  c.eval.input_baselines = ("spectral_peak", "autocorrelation")
  # The feature signal's (or input's) rhythm as a multiple of the target's, chosen among these
  # on the training split (eval.fft_harmonic None): 0.5 is a wrist's stride, two steps.
  c.eval.fft_harmonics = (0.5, 1, 2, 3)
  # A sensor recording noise, or lying still: the OOD score's test sets (no lamp to flicker).
  c.eval.ood_shifts = ("noise", "static")

  if "synthetic_ppg" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # physiological records, EDF+ and WFDB
    c.data.synthetic.kind = "ppg"  # "walks" or "ppg"
    c.data.synthetic.num_recordings = 16  # recordings, two per subject
    c.data.synthetic.seconds = 120.0  # each recording's length
    c.data.synthetic.heart_rate_range = (0.9, 1.8)  # Hz (54–108 bpm), one per half
    c.data.synthetic.seed = 0  # generation seed
    c.data.builder.group_by = "subject"  # a subject's two recordings stay on one side
    c.data.builder.test_fraction = 0.25
    c.data.builder.train_stride = 50
    c.num_steps = 600
    c.eval.band = (0.7, 3.0)  # 42–180 bpm
  if "synthetic" in variants or "tiny" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # a folder written like a user's
    c.data.synthetic.num_recordings = 16  # recordings, two per subject
    c.data.synthetic.seconds = 60.0  # each recording's length
    c.data.synthetic.rate = 50.0  # nominal sampling rate written, Hz
    c.data.synthetic.cadence_range = (1.4, 2.4)  # steps per second
    c.data.synthetic.seed = 0  # generation seed
    c.data.builder.source_rate = 50.0  # the logger's header-less files
    c.data.builder.group_by = "subject"  # a subject's two recordings stay on one side
    c.data.builder.test_fraction = 0.25
    c.data.builder.train_stride = 50
    c.augment.rotate3d = True  # tri-axial: the wrist's orientation is arbitrary
    c.num_steps = 600
    c.eval.band = (0.5, 4.0)
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.synthetic.num_recordings = 8
    c.data.synthetic.seconds = 30.0
    c.data.builder.num_samples = 100
    c.data.builder.train_stride = 50
    c.data.builder.num_workers = 2
    c.model.widths = (4,)
    c.model.blocks = (1,)
    c.simper.num_speeds = 3
    c.simper.window = 40
    c.batch_size = 8
    c.num_steps = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 16
    common.shrink_baselines(c)
  return c
