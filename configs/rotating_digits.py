r"""SimPer on RotatingDigits (docs/method.md §5, §7).

Run:
  python -m simper_jax.main --config=configs/rotating_digits.py:quick --workdir=/tmp/simper_rd

Sweep (`get_sweep`, run by launch/sweep.py): M, speed range, similarity and τ_label.

Variants (`--config=configs/rotating_digits.py:VARIANT`):
  (none)  the paper's setting: 1000 train / 2000 test videos of 150 frames at 28×28, M=10 speeds
          in U(0.5, 3), windows of 50 frames, the reference featurizer (64, 128), Adam 1e-3,
          batch 4 clips, 20 epochs, lr ×0.1 at epochs 12 and 16. Hours on a CPU; use an
          accelerator.
  quick   shrunk to learn on 2 CPU cores in minutes: 16×16 frames, 90-frame clips, M=5
          speeds in U(0.5, 2), windows of 30, a (8, 16)-channel featurizer with temporal
          kernel 3, batch 4, 3 epochs.
  tiny    seconds per run; for tests only (it does not learn anything useful).
  interpolation  zero-shot: the training split's frequencies leave 2–3 Hz out (0.5–2 and
          3–5 Hz); the test split covers 0.5–5 Hz, and results are split by region.
  extrapolation  zero-shot: training frequencies 0.5–3 Hz only; tested on 0.5–5 Hz.
  Combine them, e.g. `quick,interpolation`.

Sweeps (`get_sweep`, run by launch/sweep.py --sweep=NAME): "default" (M, speed range,
similarity, τ_label) and "view_strength" (how different the views are: SimPer's speed range
and M, SimCLR's crop strength; one knob at a time around the config's setting).
"""

import os
import sys

import ml_collections
from ml_collections.config_dict import placeholder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common  # noqa: E402  pylint: disable=g-import-not-at-top


VARIANTS = ("quick", "tiny", "interpolation", "extrapolation")
# Zero-shot variants: the training split's frequency bands (Hz); the test split keeps 0.5–5.
ZERO_SHOT_BANDS = {"interpolation": ((0.5, 2.0), (3.0, 5.0)), "extrapolation": ((0.5, 3.0),)}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """Returns the config; `arg` is a comma-separated variant list, e.g. "quick"."""
  variants = {v for v in arg.split(",") if v}
  unknown = variants - set(VARIANTS)
  if unknown:
    raise ValueError(f"Unknown variant(s) {sorted(unknown)} for configs/rotating_digits.py; "
                     f"expected some of {', '.join(VARIANTS)}.")
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, shuffling and augmentation; same seed → same run on any mesh
  # simper | simclr | moco | byol | cvrl | supervised (simper_jax/methods/; each has a block)
  c.method = "simper"

  c.data = ml_collections.ConfigDict()
  c.data.name = "rotating_digits"  # TFDS builder in simper_jax/data/
  c.data.data_dir = placeholder(str)  # prepared array_record files; None → ~/tensorflow_datasets
  c.data.manual_dir = placeholder(str)  # user-supplied inputs (mnist.npz for digits="mnist")
  c.data.label_key = "frequency"  # the regression target among the dataset's features
  c.data.fps = 30.0  # frame rate of the clips, Hz
  c.data.read_threads = 2  # grain reader threads on each host
  common.training_share(c.data)
  c.data.builder = ml_collections.ConfigDict()
  c.data.builder.digits = "sklearn"  # "sklearn" (bundled 8×8 digits) or "mnist" (manual_dir)
  c.data.builder.num_train = 1000  # training videos
  c.data.builder.num_test = 2000  # test videos
  c.data.builder.num_frames = 150  # T, frames per video (5 s at 30 fps)
  c.data.builder.fps = c.data.get_ref("fps")  # generation frame rate = c.data.fps
  c.data.builder.image_size = 28  # H = W of the frames
  c.data.builder.freq_range = (0.5, 5.0)  # rotation frequency f ~ U(range), Hz
  c.data.builder.seed = 0  # generation seed (independent of c.seed)
  # Zero-shot: the training split's frequencies come from these ((low, high), ...) bands only;
  # () → the whole freq_range. The test split always covers freq_range.
  c.data.builder.train_bands = ()

  c.model = ml_collections.ConfigDict()
  c.model.name = "featurizer3d"  # module in simper_jax/models/
  c.model.widths = (64, 128)  # channels of the conv blocks (reference featurizer)
  c.model.temporal_kernel = 5  # conv kernel length along time
  # How the convs are computed: "auto" (spatial im2col + a conv in time on CPU, where it is
  # ≈2× faster; XLA's 3D conv on accelerators), "xla" or "im2col". Same parameters and values.
  c.model.conv_impl = "auto"
  c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (params stay float32)

  # The reference tutorial: M = 10 speeds in U(0.5, 3), windows of T/3 frames.
  c.simper = common.simper(num_speeds=10, speed_range=(0.5, 3.0), window=50)
  c.augment = common.augment()
  common.baselines(c, moco_queue=512)

  common.loop(c, batch_size=4, num_epochs=20, lr_decay_epochs=(12, 16),
              checkpoint_every=500)

  c.eval = ml_collections.ConfigDict()
  c.eval.unit = "Hz"  # unit of the label, for the results table and the figures
  c.eval.band = (0.5, 5.0)  # FFT readout: the target's frequency band, Hz
  # FFT readout: the feature signal oscillates at this multiple of the target frequency (a
  # back-and-forth rotation passes each angle twice per cycle). None → the harmonic in 1..3
  # with the lowest MAE on the *training* split's labels (written to results.json).
  c.eval.fft_harmonic = placeholder(int)
  # 1-NN readout: the similarity of feature signals (simper_jax/similarity.py); max_xcorr is
  # invariant to the signals' phase.
  c.eval.knn_similarity = "max_xcorr"
  c.eval.probe_input = "spectrum"  # linear probe on the feature signal's "spectrum" or "signal"
  # Ridge penalty of the linear probe (× the inputs' mean variance); None → 5-fold
  # cross-validation on the training split.
  c.eval.probe_l2 = placeholder(float)
  c.eval.batch_size = 64  # clips per forward pass during evaluation
  # Label ranges the training split covers ((low, high), ...): when set, results.json also
  # splits the test clips into "seen" (inside one), "interpolation" (between them) and
  # "extrapolation" (beyond them), and the predicted-vs-true figure shades the unseen ranges.
  c.eval.seen_bands = c.data.builder.get_ref("train_bands")
  c.eval.figures = True  # draw workdir/figures/*.png (+ CSV) after evaluation
  common.uncertainty(c.eval)

  if "quick" in variants:
    c.data.builder.image_size = 16
    c.data.builder.num_frames = 90
    c.model.widths = (8, 16)
    c.model.temporal_kernel = 3
    c.simper.num_speeds = 5
    c.simper.speed_range = (0.5, 2.0)
    c.simper.window = 30
    c.num_epochs = 3
    c.lr_decay_epochs = (2,)
    c.log_every = 50
    c.checkpoint_every = 250
  if "tiny" in variants:
    c.eval.figures = False  # seconds per test run; tests that check figures turn them on
    c.data.builder.num_train = 16
    c.data.builder.num_test = 16
    c.data.builder.image_size = 8
    c.data.builder.num_frames = 24
    c.model.widths = (2,)
    c.simper.num_speeds = 3
    c.simper.speed_range = (0.5, 2.0)
    c.simper.window = 8
    c.batch_size = 8
    c.num_epochs = 3
    c.lr_decay_epochs = (2,)
    c.log_every = 1
    c.checkpoint_every = 2
    c.eval.batch_size = 8
    common.shrink_baselines(c)
  for variant in variants & set(ZERO_SHOT_BANDS):
    c.data.builder.train_bands = ZERO_SHOT_BANDS[variant]
  if variants >= set(ZERO_SHOT_BANDS):
    raise ValueError("configs/rotating_digits.py: 'interpolation' and 'extrapolation' are two "
                     "experiments; pick one.")
  return c


def get_sweep(arg: str = "", name: str = "default") -> list[dict]:
  """The shipped sweeps (launch/sweep.py --sweep=NAME runs one).

  Each point overrides dotted config fields of `get_config(arg)`; the rest stay as they are.
  - "default": 16 runs over SimPer's main knobs (M, speed range, similarity, τ_label).
  - "view_strength" (InfoMin: is there a best difference between the views?): one knob at a
    time, each listed from the weakest views to the strongest: SimPer's speed range (views
    that differ less or more in speed) and M (how many speeds each clip is contrasted at),
    and SimCLR's crop (the smallest area kept; SimCLR's views are the crops and colours).
    The config's own setting (quick: speeds 0.5–2, M = 5, crop area 0.5–1) is run once and
    belongs to every curve of its method.
  """
  if name == "default":
    return [{"simper.num_speeds": num_speeds, "simper.speed_range": speed_range,
             "simper.similarity": similarity, "simper.label_temperature": temperature}
            for num_speeds in (5, 10)
            for speed_range in ((0.5, 2.0), (0.5, 3.0))
            for similarity in ("max_xcorr", "npsd")
            for temperature in (0.1, 0.5)]
  if name == "view_strength":
    # The speed ranges keep the windows inside the clip: window × max speed ≤ clip frames
    # (quick: 30 × 3 = 90).
    speed_ranges = ((0.9, 1.1), (0.8, 1.25), (0.67, 1.5), (0.5, 2.0), (0.33, 3.0))
    return ([{"method": "simper", "simper.speed_range": r} for r in speed_ranges] +
            [{"method": "simper", "simper.num_speeds": m} for m in (2, 3, 8)] +
            [{"method": "simclr", "augment.crop_area": (low, 1.0)}
             for low in (0.9, 0.7, 0.5, 0.3, 0.1)])
  raise ValueError(f"Unknown sweep {name!r} in configs/rotating_digits.py; expected 'default' "
                   f"or 'view_strength'.")
