r"""SimPer on your own videos: every video under a folder, labelled or not (docs/your-videos.md;
simper_jax/data/video_folder.py says the layout).

Run:
  python -m simper_jax.main --config=configs/videos.py --config.data.manual_dir=DIR
On any machine, with a synthetic folder written the way such folders come:
  python -m simper_jax.main --config=configs/videos.py:synthetic

Variants (`--config=configs/videos.py:VARIANT`, comma-separated):
  (none)     sized for a first try on a 2-core laptop — 32×32 centre crops at 15 fps, 6-s
             clips, the reference 3D-CNN narrowed to (8, 16) channels, 600 steps of batch 8.
             Measured (benchmarks/first_try_bench.py, 2 CPU cores): 60 videos of 1–5 min
             (181 min of 320×240 MJPG) prepared, trained and evaluated in 18.6 min; larger
             frames decode slower (prepare_bench: ~280 frames/s per thread at 640×480).
  large      the paper-size encoder and schedule, for accelerators: 64×64 crops, the (64, 128)
             3D-CNN, batch 32, 20 epochs.
  synthetic  a synthetic folder (nested sub-folders, four containers at four frame rates,
             labels.csv with per-video and per-segment rows, signals/, split.csv, files that
             are not videos), written once under data_dir and read like yours: the rate of a
             swinging disc, 0.75–2.5 Hz; 24×24 crops, 4-s clips, 400 steps. Minutes on 2 CPU
             cores.
  tiny       seconds per run; for tests only.
  heart_rate the label is each clip's heart rate from signals/ and the evaluation is the rPPG
             protocol's (bpm, per video); with a face crop for face videos. Combine with the
             others, e.g. `synthetic,heart_rate`.
  counting   labels.csv has a `count` column (repetitions over a row's segment, or its whole
             video): the label is the repetition frequency count / duration and the table adds
             Countix's count MAE and off-by-one accuracy (count = frequency × duration).

Labels: data.label_key picks a numeric labels.csv column (None → the only one, else
`heart_rate` when there is a signals/ folder); data.builder.labels=False ignores them.
"""

import os
import sys

import ml_collections
from ml_collections.config_dict import placeholder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402  pylint: disable=g-import-not-at-top

VARIANTS = ("large", "synthetic", "tiny", "heart_rate", "counting")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """Returns the config; `arg` is a comma-separated variant list, e.g. "synthetic"."""
  variants = {v for v in arg.split(",") if v}
  unknown = variants - set(VARIANTS)
  if unknown:
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for configs/videos.py; expected "
                     f"some of {', '.join(VARIANTS)}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = "video_folder"  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  # Your folder of videos (searched recursively) with its optional labels.csv, signals/ and
  # split.csv; None → <data_dir>/downloads/manual/video_folder.
  c.data.manual_dir = placeholder(str)
  # The label: a numeric labels.csv column, or "heart_rate" (from signals/); None → the only
  # numeric column, else heart_rate when signals/ exists, else no label.
  c.data.label_key = placeholder(str)
  c.data.fps = 15.0  # frame rate of the clips, Hz (every video is resampled to it)
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.fps = c.data.get_ref("fps")  # frames resampled to this rate by timestamps
  # Frame rate of videos that declare none (raw streams): > 0 replaces every video's declared
  # rate; 0 → each video's own.
  c.data.builder.source_fps = 0.0
  c.data.builder.crop = "centre"  # "none" (whole frame), "centre" (square) or "face" (Haar box)
  c.data.builder.face_box_scale = 1.5  # crop="face": the face box enlarged by this factor
  c.data.builder.image_size = 32  # side of the square frames after crop and resize
  c.data.builder.num_frames = 90  # T, frames per clip (6 s at 15 fps)
  c.data.builder.train_stride = 45  # frames between training clips' starts (half overlap)
  c.data.builder.test_fraction = 0.2  # share of videos (or groups) the hash split tests on
  c.data.builder.group_by = ""  # a labels.csv column (subject, session) kept on one side
  c.data.builder.labels = True  # read labels.csv and signals/; False → unlabelled
  c.data.builder.on_bad_video = "fatal"  # an undecodable or too short video: or "skip"
  c.data.builder.num_workers = 4  # videos prepared in parallel threads (Beam: processes)
  # Prepare with Apache Beam (pip install -e '.[beam]'): the same shards, written by Beam's
  # workers; beam_options are its pipeline flags ("" → the DirectRunner with num_workers
  # processes; "--runner=DataflowRunner --project=P ..." on a cluster).
  c.data.builder.beam = False
  c.data.builder.beam_options = ""

  c.model = ml_collections.ConfigDict()
  c.model.name = "featurizer3d"  # the reference 3D-CNN (simper_jax/models/featurizer3d.py)
  c.model.widths = (8, 16)  # channels of the conv blocks (reference: (64, 128), `large`)
  c.model.temporal_kernel = 3  # conv kernel length along time
  c.model.conv_impl = "auto"  # "auto" (im2col on CPU, XLA's 3D conv elsewhere), "xla", "im2col"
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # M = 5 speeds in U(0.5, 2) and windows of a third of a clip: a view at the top speed fits.
  c.simper = common.simper(num_speeds=5, speed_range=(0.5, 2.0), window=30)
  c.augment = common.augment()
  common.baselines(c, moco_queue=256)
  common.loop(c, batch_size=8, num_epochs=0, lr_decay_epochs=(), checkpoint_every=200)
  c.num_steps = 600  # a few hundred steps: a first look in minutes (`large`: epochs)
  c.log_every = 50
  # Rates 0.2–5 Hz: a slow breath to a fast repetition, below the Nyquist rate of 15 fps.
  common.readouts(c, protocol="frequency", unit="Hz", band=(0.2, 5.0), probe_input="spectrum",
                  knn_similarity="max_xcorr", batch_size=32)

  if "large" in variants:
    c.data.builder.image_size = 64
    c.data.builder.num_frames = 150
    c.data.builder.train_stride = 75
    c.data.fps = 30.0
    c.model.widths = (64, 128)
    c.model.temporal_kernel = 5
    c.simper.num_speeds = 10
    c.simper.window = 50
    c.batch_size = 32
    c.num_steps = placeholder(int)
    c.num_epochs = 20
    c.lr_decay_epochs = (12, 16)
    c.checkpoint_every = 1000
  if "synthetic" in variants or "tiny" in variants:
    c.data.synthetic = ml_collections.ConfigDict()  # a folder written like a user's
    c.data.synthetic.num_videos = 16  # videos, two per subject
    c.data.synthetic.seconds = 24.0  # each video's length
    c.data.synthetic.height = 64  # frame height written
    c.data.synthetic.width = 80  # frame width written
    c.data.synthetic.rate_range = (0.75, 2.5)  # the swing's rate, Hz
    c.data.synthetic.seed = 0  # generation seed
    c.data.builder.group_by = "subject"  # a subject's two videos stay on one side
    c.data.builder.test_fraction = 0.25
    c.data.builder.image_size = 24
    c.data.builder.num_frames = 60  # 4 s at 15 fps
    c.data.builder.train_stride = 15
    c.simper.window = 30
    c.num_steps = 400
    c.checkpoint_every = 200
    c.eval.band = (0.5, 3.0)
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.synthetic.num_videos = 8
    c.data.synthetic.seconds = 8.0
    c.data.synthetic.height = 32
    c.data.synthetic.width = 40
    c.data.fps = 8.0
    c.data.builder.image_size = 8
    c.data.builder.num_frames = 24
    c.data.builder.train_stride = 12
    c.data.builder.num_workers = 2
    c.model.widths = (2,)
    c.simper.num_speeds = 3
    c.simper.window = 8
    c.num_steps = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 8
    c.eval.band = (0.5, 4.0)
    common.shrink_baselines(c)
  if "heart_rate" in variants:
    c.data.label_key = "heart_rate"
    c.eval.protocol = "heart_rate"  # rPPG HR protocol per video (detrend, band-pass, periodogram)
    c.eval.unit = "bpm"
    c.eval.band = (0.75, 2.5)  # 45–150 bpm
    c.eval.window_seconds = placeholder(float)  # None → per whole video
    c.eval.classic_methods = ()  # GREEN … OMIT need a face or skin crop: add them for one
  if "counting" in variants:
    c.data.label_key = "frequency"  # count / duration of each clip's counted segment, Hz
    c.eval.protocol = "counting"  # Countix's: frequency readouts, counts, off-by-one accuracy
  return c
