"""The TensorFlow reference's SimPer step, timed on the same shapes as train_step_bench.py.

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu
    git clone https://github.com/YyzHarry/SimPer /tmp/SimPer   # the paper's public code
    /usr/bin/time -v /tmp/tf/bin/python benchmarks/reference_step_bench.py \
        --reference_src=/tmp/SimPer/src --batch_size=1

Runs the reference's own `SimPer.update` (its featurizer, `batched_max_cross_corr`, soft
cross-entropy and Adam) on random views of the paper's RotatingDigits shape (batch × 2M views
× 150/3 frames of 28×28×1): the side-by-side figure for our
`benchmarks/train_step_bench.py --config=configs/rotating_digits.py`. Nothing of the
reference is copied here; it is imported from the directory given. `update` runs as published:
eagerly, as the reference's training loop calls it (it cannot be wrapped in `tf.function`: its
loss iterates over a tensor in Python). The timing does not include the reference's view
augmentation, which it runs in its tf.data pipeline; ours is inside the timed step. Needs only tensorflow and numpy,
so it runs in a TensorFlow environment without simper_jax installed.
"""

import argparse
import statistics
import sys
import time

import numpy as np


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--reference_src", required=True,
                      help="the reference repository's src/ (simper.py, networks.py)")
  parser.add_argument("--batch_size", type=int, default=4, help="clips per step")
  parser.add_argument("--views", type=int, default=20, help="2M views per clip")
  parser.add_argument("--frames", type=int, default=50, help="frames per view")
  parser.add_argument("--image_size", type=int, default=28)
  parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up")
  args = parser.parse_args()

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, args.reference_src)
  try:
    import simper as reference  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    print(f"Error: cannot import the reference's simper.py from {args.reference_src}: {e}",
          file=sys.stderr)
    return 2

  # Keras 3 renamed Adam's `lr` argument, which the reference (written for Keras 2) passes.
  adam = tf.keras.optimizers.Adam
  reference.tf.keras.optimizers.Adam = (
      lambda lr=1e-3, **kw: adam(learning_rate=lr, **kw))
  hparams = {"n_frames": args.frames, "lr": 1e-3, "label_dist_fn": "l1",
             "label_temperature": 0.1, "feat_dist_fn": "batched_max_cross_corr"}
  model = reference.SimPer(hparams)
  rng = np.random.default_rng(0)
  views = tf.constant(rng.uniform(size=(args.batch_size, args.views, args.frames,
                                        args.image_size, args.image_size, 1)), tf.float32)
  speeds = tf.constant(rng.uniform(0.5, 1.5, (args.batch_size, args.views)), tf.float32)

  def timed(update, label):
    float(update((views, speeds)))  # builds the variables
    times = []
    for _ in range(args.steps):
      start = time.perf_counter()
      float(update((views, speeds)))
      times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"reference {label}: {median:.3f} s/step (min {min(times):.3f}, max "
          f"{max(times):.3f}), {args.batch_size / median:.2f} clips/s")

  print(f"TensorFlow {tf.__version__}, batch {args.batch_size} clips × {args.views} views × "
        f"{args.frames} frames of {args.image_size}², {args.steps} timed steps")
  timed(model.update, "as published (eager)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
