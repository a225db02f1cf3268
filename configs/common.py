"""Config blocks every dataset shares (big_vision style: plain functions returning ConfigDicts)."""

import ml_collections
from ml_collections.config_dict import placeholder


def simper(*, num_speeds: int, speed_range: tuple[float, float],
           window: int) -> ml_collections.ConfigDict:
  """SimPer's views and loss (docs/method.md §2, §4, §5)."""
  s = ml_collections.ConfigDict()
  s.num_speeds = num_speeds  # M speeds per clip (2M views)
  s.speed_range = speed_range  # speeds ~ U(range)
  s.window = window  # L, frames per view
  s.similarity = "max_xcorr"  # "max_xcorr" | "npsd" | "cosine" | "neg_l2"
  s.label_dist = "l1"  # speed distance for soft targets: "l1" | "l2" | "sqrt"
  s.label_temperature = 0.1  # τ_label of the soft targets
  s.feature_temperature = 1.0  # τ_feat dividing similarities (reference: 1)
  # Fourier transforms of max_xcorr/npsd: "fft" (jnp.fft) | "matmul" (cos/sin matrix products,
  # equal to float rounding: for TPUs, whose rfft rejects bfloat16 and is slow on short signals)
  s.dft = "fft"
  return s


def augment() -> ml_collections.ConfigDict:
  """Periodicity-invariant augmentations, one draw per view (docs/method.md §2)."""
  a = ml_collections.ConfigDict()
  a.name = "video"  # the augmentation family (simper_jax/augment.py): "video" or "series"
  a.reverse_prob = 0.5  # probability of playing the view backwards
  a.crop_area = (0.5, 1.0)  # random resized crop: area fraction range
  a.crop_aspect = (0.75, 4 / 3)  # random resized crop: aspect ratio range
  a.brightness = (0.7, 1.3)  # multiplicative brightness range
  a.blur_prob = 0.2  # probability of Gaussian blur
  a.blur_sigma = (0.1, 2.0)  # blur sigma range, pixels
  a.flip_prob = 0.5  # probability of a horizontal flip
  return a


def baselines(c: ml_collections.ConfigDict, *, moco_queue: int) -> None:
  """Adds the blocks of the other methods (`config.method` picks one) to config `c`.

  Every method trains the same encoder on views of the same length: each block's window is a
  reference to `c.simper.window` (override one to decouple it). Defaults are each paper's,
  except where noted.
  """
  window = c.simper.get_ref("window")

  simclr = ml_collections.ConfigDict()
  simclr.window = window  # L, frames per view
  simclr.temperature = 0.1  # NT-Xent τ (SimCLR's code default, also CVRL's)
  simclr.projector = (2048, 128)  # MLP widths: hidden..., output (SimCLR: 2048 → 128)
  simclr.projector_batch_norm = True  # BatchNorm in the hidden layers (SimCLR's code)
  c.simclr = simclr

  moco = ml_collections.ConfigDict()
  moco.window = window  # L, frames per view
  moco.temperature = 0.2  # InfoNCE τ (MoCo v2)
  moco.momentum = 0.999  # EMA momentum of the key encoder and projector (MoCo v2)
  # Keys in the queue; a multiple of batch_size. MoCo v2 keeps 65,536 (5 % of ImageNet); here
  # fewer than the training split has clips, so the queue never holds one clip's key twice.
  moco.queue_size = moco_queue
  moco.projector = (2048, 128)  # MLP widths: hidden..., output (MoCo v2: 2048 → 128)
  moco.projector_batch_norm = False  # MoCo v2's MLP head has no BatchNorm
  c.moco = moco

  byol = ml_collections.ConfigDict()
  byol.window = window  # L, frames per view
  byol.base_momentum = 0.996  # target EMA momentum at step 0, cosine to 1 (BYOL)
  byol.projector = (4096, 256)  # MLP widths with BatchNorm (BYOL: 4096 → 256)
  byol.predictor = (4096, 256)  # MLP widths with BatchNorm (BYOL: 4096 → 256)
  c.byol = byol

  cvrl = ml_collections.ConfigDict()
  cvrl.window = window  # L, frames per clip
  cvrl.temperature = 0.1  # InfoNCE τ (CVRL)
  # Interval between the two clips: density ∝ (1 − t/t_max)^power; 1 = CVRL's linearly
  # decreasing sampler, 0 = uniform.
  cvrl.interval_power = 1.0
  cvrl.projector = (2048, 2048, 128)  # 3-layer MLP with BatchNorm (CVRL)
  c.cvrl = cvrl

  supervised = ml_collections.ConfigDict()
  supervised.window = window  # L, frames per training view
  supervised.label_fraction = 1.0  # share of the training clips (and labels) it trains on
  c.supervised = supervised


def shrink_baselines(c: ml_collections.ConfigDict, *, queue_size: int = 16,
                     widths: tuple = (16, 8)) -> None:
  """The baselines' heads and MoCo queue at test size (the `tiny` variants)."""
  c.moco.queue_size = queue_size
  c.simclr.projector = c.moco.projector = c.cvrl.projector = widths
  c.byol.projector = c.byol.predictor = widths


def training_share(d: ml_collections.ConfigDict) -> None:
  """Adds to `d` (a config's data block) which training clips a run reads."""
  # Share of the training split used, pretraining and readouts alike (data efficiency): the
  # first clips of one permutation drawn by `seed`, so smaller shares are nested in larger.
  d.train_fraction = 1.0
  # A subset file of simper_jax.select ("" → none): pretraining reads only the clips it keeps
  # (chosen by a proxy run: SAS, random or periodicity); the readouts still fit on the whole
  # training split. Refused if made for other prepared data.
  d.subset = ""


def loop(c: ml_collections.ConfigDict, *, batch_size: int, num_epochs: int,
         lr_decay_epochs: tuple, checkpoint_every: int) -> None:
  """Adds the training-loop fields (batch, mesh, length, Adam schedule, logging) to `c`."""
  c.batch_size = batch_size  # global batch, clips (each gives 2M views); divisible by devices
  c.grad_accum_steps = 1  # micro-batches per batch, run in turn (BatchNorm sees each alone)
  # Device mesh: ((axis, size), ...), -1 = the remaining devices. ("data", -1) replicates the
  # state; add ("fsdp", k) to split params and optimizer state k ways (simper_jax/sharding.py).
  c.mesh = (("data", -1),)
  c.num_epochs = num_epochs  # training length in epochs of the training split
  c.num_steps = placeholder(int)  # if set, overrides num_epochs (the lr schedule stays in epochs)
  c.learning_rate = 1e-3  # Adam learning rate (SimPer reference)
  c.lr_decay_epochs = lr_decay_epochs  # epochs at which the lr is multiplied by lr_decay_factor
  c.lr_decay_factor = 0.1  # the learning rate's factor at each of lr_decay_epochs
  c.log_every = 50  # steps between progress lines and TensorBoard points
  c.checkpoint_every = checkpoint_every  # steps between checkpoints (and one at the end)
  c.keep_checkpoints = 3  # how many recent checkpoints to keep
  # A step whose loss or gradients are not finite: "stop" the run (found at the next log line
  # or checkpoint, nothing saved after it, one line saying where and why), or "skip" its
  # update (the state stays as it was; counted in the log and metrics.jsonl).
  c.nonfinite = "stop"
  # JAX's persistent compilation cache: a rerun loads the compiled steps instead of compiling.
  c.compilation_cache = True
  c.compilation_cache_dir = placeholder(str)  # None → <user cache folder>/simper_jax/jax


def readouts(c: ml_collections.ConfigDict, *, protocol: str, unit: str, band: tuple,
             probe_input: str, knn_similarity: str, batch_size: int) -> None:
  """Adds `c.eval`: the readouts of the trained encoder (simper_jax/evaluate.py)."""
  e = c.eval = ml_collections.ConfigDict()
  # "frequency" | "heart_rate" | "counting" (+ count MAE, OBO) | "regression" (no FFT readout)
  e.protocol = protocol
  e.unit = unit  # unit of the label, for the results table
  e.band = band  # FFT readout: the target's frequency band, in cycles per time unit of data.fps
  # FFT readout: the feature signal's harmonic of the target; None → the one of 1..3 with the
  # lowest MAE on the *training* split (written to results.json).
  e.fft_harmonic = placeholder(int)
  e.knn_similarity = knn_similarity  # 1-NN readout's similarity of feature signals
  e.probe_input = probe_input  # linear probe on the feature signal's "spectrum" or "signal"
  # Ridge penalty of the linear probe; None → 5-fold cross-validation on the training split.
  e.probe_l2 = placeholder(float)
  e.batch_size = batch_size  # clips per forward pass during evaluation
  e.figures = True  # draw workdir/figures/*.png (+ CSV) after evaluation (simper_jax/figures.py)
  e.finetune_fractions = ()  # fine-tune encoder + head with these fractions of the labels
  e.finetune_steps = 1000  # steps of each fine-tuning run
  e.finetune_batch_size = 8  # clips per fine-tuning step
  e.finetune_learning_rate = 1e-4  # Adam, encoder and head
  uncertainty(e)


def uncertainty(e: ml_collections.ConfigDict) -> None:
  """Adds to `e` (a config's eval block) how far to trust each prediction
  (simper_jax/uncertainty.py, docs/readouts.md)."""
  # The share of the training split's recordings held out to calibrate the intervals and the
  # OOD threshold (the readouts are fitted on the rest); 0 → no intervals, no OOD flags.
  e.calibration_fraction = 0.2
  e.coverage = 0.9  # nominal coverage of the split-conformal intervals [low, high]
  # Test clips made unlike training on purpose, to measure the OOD score on (AUROC): "noise",
  # "static" (the first frame held still: the face gone), "flicker" (a strong lamp flicker).
  e.ood_shifts = ("noise", "static", "flicker")
  e.ood_shift_clips = 256  # at most this many test clips per shifted set
