r"""The settings SCAMPS, UBFC-rPPG and PURE share; `configs/<dataset>.py` calls `get_config`.

Variants (`--config=configs/scamps.py:VARIANT`, comma-separated):
  (none)     the dataset from config.data.manual_dir, the rPPG-Toolbox preprocessing (72×72
             face crops, 180-frame clips), TS-CAN as the SimPer encoder. Needs an accelerator.
  synthetic  writes a small synthetic set *in the dataset's real on-disk format* to a temporary
             directory, prepares it with the real builder and runs end to end, shrunk to finish
             in minutes on 2 CPU cores (16×16 frames, a narrow TS-CAN, 300 steps).
  tiny       seconds per run; for tests only (it does not learn anything useful).
"""

import ml_collections
from ml_collections.config_dict import placeholder

from configs import common

VARIANTS = ("synthetic", "tiny")


def get_config(dataset: str, arg: str, *, face_crop: bool, synthetic_videos: int,
               synthetic_size: tuple[int, int]) -> ml_collections.ConfigDict:
  """Config for `dataset` ("scamps" | "ubfc_rppg" | "pure"); `arg` lists variants."""
  variants = {v for v in arg.split(",") if v}
  unknown = variants - set(VARIANTS)
  if unknown:
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for the {dataset} config; expected "
                     f"some of {VARIANTS}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = dataset  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  # The dataset as distributed (docs/heart-rate.md); None → <data_dir>/downloads/manual/<name>.
  c.data.manual_dir = placeholder(str)
  c.data.label_key = "heart_rate"  # per-clip HR (bpm) from the clip's PPG, by the HR protocol
  c.data.fps = 30.0  # frame rate of the videos, Hz
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.image_size = 72  # face crops resized to this square (rPPG-Toolbox: 72)
  c.data.builder.num_frames = 180  # T, frames per clip, no overlap (toolbox: 180 = 6 s)
  c.data.builder.face_crop = face_crop  # Haar-cascade face box on the first frame
  c.data.builder.face_box_scale = 1.5  # the face box enlarged by this factor (toolbox: 1.5)
  c.data.builder.train_fraction = 0.8  # subject-wise split where there is no official one
  c.data.builder.on_bad_video = "fatal"  # a video that cannot be read: "fatal" or "skip" (logged)
  c.data.builder.num_workers = 4  # videos prepared in parallel threads

  c.model = ml_collections.ConfigDict()
  c.model.name = "tscan"  # "tscan" or "featurizer3d"; each takes only its own fields below
  c.model.frame_depth = 10  # TS-CAN temporal-shift block; windows and clips are multiples of it
  c.model.widths = (32, 64)  # conv stages: TS-CAN (paper), or the 3D-CNN's blocks
  c.model.dense = 128  # TS-CAN hidden dense width (paper)
  c.model.dropout = (0.25, 0.5)  # TS-CAN dropout after conv stages / hidden dense (paper)
  c.model.temporal_kernel = 5  # featurizer3d only: conv kernel length along time
  c.model.conv_impl = "auto"  # featurizer3d only: "auto" (im2col on CPU), "xla" or "im2col"
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # SimPer on video (our choices where the paper's rPPG settings are not public): M = 10 speeds
  # in U(0.5, 2) and 3-s windows, so that a view at the top speed still fits in a 6-s clip.
  c.simper = common.simper(num_speeds=10, speed_range=(0.5, 2.0), window=90)
  c.augment = common.augment()
  common.baselines(c, moco_queue=4096)

  common.loop(c, batch_size=8, num_epochs=20, lr_decay_epochs=(12, 16),
              checkpoint_every=1000)

  c.eval = ml_collections.ConfigDict()
  c.eval.protocol = "heart_rate"  # rPPG HR protocol (detrend, band-pass, periodogram)
  c.eval.unit = "bpm"  # unit of the label, for the results table
  c.eval.band = (0.75, 2.5)  # plausible heart rates, Hz (45–150 bpm)
  # FFT readout per window of this length, s; None → per whole video (the toolbox's default).
  c.eval.window_seconds = placeholder(float)
  c.eval.fft_harmonic = 1  # (frequency protocol only) feature-signal harmonic of the target
  c.eval.knn_similarity = "max_xcorr"  # 1-NN readout's similarity of feature signals
  # Classic training-free rPPG methods (simper_jax/rppg_methods.py), each a row of the results
  # table read like the FFT readout (same test clips, same protocol); () → none.
  c.eval.classic_methods = ("green", "ica", "chrom", "pos", "lgi", "pbv", "omit")
  c.eval.probe_input = "spectrum"  # linear probe on the feature signal's power spectrum
  # Ridge penalty of the linear probe (standardized inputs); None → 5-fold cross-validation on
  # the training split. The probe reads the power spectrum inside eval.band.
  c.eval.probe_l2 = placeholder(float)
  c.eval.batch_size = 32  # clips per forward pass during evaluation
  c.eval.figures = True  # draw workdir/figures/*.png (+ CSV) after evaluation (simper_jax/figures.py)
  c.eval.finetune_fractions = (1.0, 0.5, 0.2, 0.1, 0.05)  # fine-tune with these label fractions
  c.eval.finetune_steps = 1000  # steps of each fine-tuning run
  c.eval.finetune_batch_size = 8  # clips per fine-tuning step
  c.eval.finetune_learning_rate = 1e-4  # Adam, encoder and head
  common.uncertainty(c.eval)

  if "synthetic" in variants or "tiny" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # generated files in the real format
    c.data.synthetic.num_videos = synthetic_videos  # videos written
    c.data.synthetic.num_frames = 600  # frames per video (20 s at 30 fps)
    c.data.synthetic.fps = c.data.get_ref("fps")  # frame rate written
    c.data.synthetic.height = synthetic_size[0]  # frame height written
    c.data.synthetic.width = synthetic_size[1]  # frame width written
    c.data.synthetic.heart_rate_range = (50.0, 130.0)  # bpm, one constant rate per video
    c.data.synthetic.pulse_amplitude = 0.03  # skin-colour modulation (several × real skin)
    c.data.synthetic.seed = 0  # generation seed
    c.data.builder.image_size = 16
    c.model.widths = (8, 16)
    c.model.dense = 32
    c.simper.num_speeds = 4
    c.simper.window = 40
    c.batch_size = 4
    c.num_epochs = 0
    c.num_steps = 300
    c.lr_decay_epochs = ()
    c.log_every = 25
    c.checkpoint_every = 100
    c.eval.batch_size = 16
    c.eval.finetune_steps = 60
    c.eval.finetune_batch_size = 4
    c.eval.finetune_learning_rate = 3e-4
    c.moco.queue_size = 64  # fewer than the 72 training clips
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.synthetic.num_videos = 10
    c.data.synthetic.num_frames = 120
    c.data.synthetic.height = c.data.synthetic.width = 48
    c.data.builder.image_size = 12  # TS-CAN's smallest: 12 → 10 → 5 → 3 → 1
    c.data.builder.num_frames = 60
    c.data.builder.num_workers = 2
    c.data.builder.train_fraction = 0.6
    c.model.widths = (2, 2)
    c.model.dense = 4
    c.simper.num_speeds = 2
    c.simper.window = 20
    c.batch_size = 8
    c.num_steps = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 8
    c.eval.finetune_fractions = (1.0, 0.5)
    c.eval.finetune_steps = 2
    c.eval.finetune_batch_size = 8
    common.shrink_baselines(c)
  return c
