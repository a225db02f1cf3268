"""Is the input pipeline ever the bottleneck? Its batches/s alone against the train step's.

    python benchmarks/pipeline_bench.py --config=configs/rotating_digits.py
    python benchmarks/pipeline_bench.py --config=configs/scamps.py:synthetic

Prepares the config's data as training does (the embedded or synthetic sets are written on
first use), then times (1) the training iterator alone: `--batches` global batches read,
decoded and stacked by grain with the loop's read threads, as the loop consumes them; and
(2) the jitted train step on batches of the same shape (benchmarks/train_step_bench.py).
The pipeline keeps up when its batches/s exceed the step's steps/s; the loop also lays the
next batch on the devices while a step runs (`pipeline.DevicePrefetch`), so only the slower of
the two sets the pace.
"""

import time

from absl import app
from absl import flags

from simper_jax.data import pipeline
import train_step_bench  # benchmarks/, beside this script

_BATCHES = flags.DEFINE_integer("batches", 20, "Batches read from the pipeline (after one).")


def main(_):
  config = train_step_bench.CONFIG.value
  builder = pipeline.get_builder(config.data, log=print)
  source = builder.as_data_source()["train"]
  iterator = pipeline.train_iterator(source, global_batch_size=config.batch_size,
                                     seed=config.seed, label_key=config.data.label_key)
  first = next(iterator)  # starts grain's read threads
  started = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(iterator)
  pipeline_s = (time.perf_counter() - started) / _BATCHES.value

  step, state, batch, _, description = train_step_bench.build_step(config)
  step_s = train_step_bench.median_step_seconds(step, state, batch,
                                                train_step_bench.STEPS.value)

  megabytes = first["video"].nbytes / 1e6
  print(description)
  print(f"  pipeline alone  {1 / pipeline_s:8.2f} batches/s ({config.batch_size / pipeline_s:.1f} "
        f"clips/s, {megabytes / pipeline_s:.0f} MB/s of uint8 video; {_BATCHES.value} batches of "
        f"{len(source)} training clips)")
  print(f"  train step      {1 / step_s:8.2f} steps/s ({config.batch_size / step_s:.1f} clips/s, "
        f"median of {train_step_bench.STEPS.value})")
  verdict = "keeps up" if pipeline_s < step_s else "IS THE BOTTLENECK"
  print(f"  the pipeline {verdict}: {step_s / pipeline_s:.1f}× the rate the step consumes")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
