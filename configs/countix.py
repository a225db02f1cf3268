r"""SimPer on Countix (repetition counting; docs/counting.md), ResNet3D-18.

Run (with Countix in the manual_dir, see docs/counting.md):
  python -m simper_jax.main --config=configs/countix.py --config.data.manual_dir=/data/countix
On any machine, with synthetic files in Countix's real format (CSVs + videos):
  python -m simper_jax.main --config=configs/countix.py:synthetic --workdir=workdir/countix_synthetic

Variants (`--config=configs/countix.py:VARIANT`):
  (none)     the CSVs and videos in config.data.manual_dir; 64 frames at 10 fps and 112×112
             (RepNet's input size), ResNet3D-18 (the paper's backbone for Countix), M = 10
             speeds in U(0.5, 2), 32-frame windows. Needs an accelerator.
  synthetic  a synthetic set in the real format (a disc swinging with known counts, two
             segments per video, some videos "gone from YouTube"), shrunk to run on 2 CPU cores
             in minutes: 16×16 frames, 48 frames at 12 fps, a narrow ResNet3D-18, 200 steps.
  tiny       seconds per run; for tests only.

The readouts predict the repetition frequency (Hz); count = frequency × segment duration, and
the table adds RepNet's count MAE (|ĉ − c| / c) and off-by-one accuracy.
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
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for configs/countix.py; expected "
                     f"some of {VARIANTS}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = "countix"  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  # countix_{train,val,test}.csv and videos/ (see docs/counting.md); None → <data_dir>/downloads/manual/countix
  c.data.manual_dir = placeholder(str)
  c.data.label_key = "frequency"  # repetitions per second = count / segment duration
  c.data.fps = 10.0  # frame rate of the prepared clips, Hz
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.image_size = 112  # frames resized to this square (RepNet: 112)
  c.data.builder.num_frames = 64  # T, frames per example, centred on the segment (RepNet: 64)
  c.data.builder.fps = c.data.get_ref("fps")  # frames resampled to this rate
  # A plain <video_id>.<ext> is the whole YouTube video ("youtube") or the trimmed Kinetics clip
  # starting at the row's kinetics_start ("kinetics"); <id>_<start>_<end> names say it.
  c.data.builder.plain_name_times = "youtube"
  c.data.builder.on_bad_video = "fatal"  # segment outside its video / undecodable: or "skip"
  c.data.builder.num_workers = 4  # rows prepared in parallel threads

  c.model = ml_collections.ConfigDict()
  c.model.name = "resnet3d18"  # ResNet3D-18, time unstrided (simper_jax/models/resnet3d.py)
  c.model.widths = (64, 128, 256, 512)  # stage widths (torchvision r3d_18)
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # Our choices (the paper does not list its Countix settings): M = 10 speeds in U(0.5, 2) and
  # windows of half a clip, so a view at the top speed still fits in it.
  c.simper = common.simper(num_speeds=10, speed_range=(0.5, 2.0), window=32)
  c.augment = common.augment()
  common.baselines(c, moco_queue=1024)
  common.loop(c, batch_size=8, num_epochs=20, lr_decay_epochs=(12, 16), checkpoint_every=1000)
  # Frequencies 0.1–5 Hz: one repetition in a 10-s clip up to the Nyquist rate of 10 fps.
  common.readouts(c, protocol="counting", unit="Hz", band=(0.1, 5.0), probe_input="spectrum",
                  knn_similarity="max_xcorr", batch_size=32)

  if "synthetic" in variants or "tiny" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # files written in the real format
    c.data.synthetic.num_train = 40  # training videos (two rows each)
    c.data.synthetic.num_val = 4  # validation videos
    c.data.synthetic.num_test = 16  # test videos
    c.data.synthetic.missing_per_split = 2  # rows whose video is not written
    c.data.synthetic.height = 64  # frame height written
    c.data.synthetic.width = 64  # frame width written
    c.data.synthetic.frequency_range = (0.5, 3.0)  # Hz, whole counts over 2.5–4 s segments
    c.data.synthetic.seed = 0  # generation seed
    c.data.fps = 12.0
    c.data.builder.image_size = 16
    c.data.builder.num_frames = 48
    c.model.widths = (8, 16, 32, 32)
    c.simper.num_speeds = 4
    c.simper.window = 24
    c.batch_size = 4
    c.num_epochs = 0
    c.num_steps = 200
    c.lr_decay_epochs = ()
    c.log_every = 25
    c.checkpoint_every = 100
    c.eval.batch_size = 16
    c.eval.band = (0.3, 6.0)
    c.moco.queue_size = 64
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.synthetic.num_train = 6
    c.data.synthetic.num_val = 1
    c.data.synthetic.num_test = 4
    c.data.synthetic.missing_per_split = 1
    c.data.synthetic.height = c.data.synthetic.width = 24
    c.data.fps = 8.0
    c.data.builder.image_size = 16
    c.data.builder.num_frames = 24
    c.data.builder.num_workers = 2
    c.model.widths = (2, 2, 2, 2)
    c.simper.num_speeds = 2
    c.simper.window = 12
    c.batch_size = 8
    c.num_steps = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 8
    c.eval.band = (0.3, 4.0)
    common.shrink_baselines(c)
  return c
