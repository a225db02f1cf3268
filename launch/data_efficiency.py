r"""Data efficiency on any dataset config: test MAE against the share of the training split.

    python launch/data_efficiency.py --config=configs/rotating_digits.py:quick \
        --methods=simper,simclr,supervised --fractions=1,0.5,0.2,0.1,0.05 --workdir=DIR \
        [--dry-run] [-- FLAGS]

For each method and fraction f it runs `python -m simper_jax.main --config=CONFIG
--config.method=METHOD --config.data.train_fraction=f --workdir=DIR/METHOD/fraction=f`:
pretraining reads that share of the training clips, and every readout (FFT harmonic choice,
1-NN, linear probe) is fitted on the labels of the same clips. The subsets are nested (the 5 %
clips are among the 10 %; `pipeline.fraction_indices`) and the test split is always whole.
The number of epochs stays the config's, so a smaller share also trains for fewer steps, as
in the paper. Runs one after another; finished runs are skipped and an interrupted one
resumes, so rerunning the command finishes the grid. Then writes DIR/data_efficiency.md,
.json (every metric and each run's seconds) and data_efficiency.png (+ .csv): test MAE against
the fraction, one panel per readout, one line per method.
"""

import argparse
import json
import os
import sys
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  pylint: disable=g-import-not-at-top
import sweep  # noqa: E402  pylint: disable=g-import-not-at-top
import tpu  # noqa: E402  pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simper_jax import figures  # noqa: E402  pylint: disable=g-import-not-at-top
from simper_jax import methods  # noqa: E402  pylint: disable=g-import-not-at-top

FRACTIONS = (1.0, 0.5, 0.2, 0.1, 0.05)  # the paper's grid


def parse_args(argv: Sequence[str]):
  own, extra = tpu.split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="path.py[:variant] of a dataset config.")
  parser.add_argument("--methods", default="simper,simclr,supervised",
                      help=f"Comma-separated, from {','.join(methods.METHODS)}.")
  parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS),
                      help="Comma-separated shares of the training split, in (0, 1].")
  parser.add_argument("--workdir", required=True, help="Parent of one workdir per run.")
  parser.add_argument("--dry-run", action="store_true", help="List the runs, start none.")
  args = parser.parse_args(own)
  args.methods = compare.check_methods(args.methods)
  text = args.fractions
  try:
    args.fractions = sorted({float(f) for f in text.split(",") if f}, reverse=True)
  except ValueError:
    args.fractions = []
  if not args.fractions or not all(0 < f <= 1 for f in args.fractions):
    raise SystemExit(f"Error: --fractions={text}: expected comma-separated numbers in (0, 1], "
                     f"e.g. 1,0.5,0.2,0.1,0.05.")
  sweep.load_config_module(args.config.partition(":")[0])  # a missing file: one clear line
  return args, extra


def run_name(method: str, fraction: float) -> str:
  return os.path.join(method, f"fraction={fraction:g}")


def table(tests: dict, fractions: Sequence[float], unit: str) -> str:
  """Markdown: one row per (method, readout), one column per fraction (test MAE)."""
  lines = [f"Test MAE{f' ({unit})' if unit else ''} against the share of the training split "
           f"(clips and labels); lower is better.", "",
           "| method | readout | " + " | ".join(f"{100 * f:g} %" for f in fractions) + " |",
           "|" + "---|" * (len(fractions) + 2)]
  for method, by_fraction in tests.items():
    for readout in sweep.readout_names(by_fraction.values()):
      cells = [f"{by_fraction[f][readout]['mae']:.4f}" if readout in by_fraction.get(f, {})
               else "—" for f in fractions]
      lines.append(f"| {method} | {readout} | {' | '.join(cells)} |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  runs = [(run_name(m, f), {"method": m, "data.train_fraction": f})
          for m in args.methods for f in args.fractions]
  print(f"# {len(runs)} runs: {len(args.methods)} methods × {len(args.fractions)} fractions "
        f"on {args.config}", flush=True)
  seconds = sweep.run_points(args.config, runs, args.workdir, extra, args.dry_run)
  if args.dry_run:
    return
  tests, unit = {}, ""
  for method in args.methods:
    for fraction in args.fractions:
      saved = sweep.load_results(os.path.join(args.workdir, run_name(method, fraction)))
      tests.setdefault(method, {})[fraction] = saved["test"]
      unit = saved.get("unit", "")
  text = table(tests, args.fractions, unit)
  readouts = [r for r in next(iter(tests.values()))[args.fractions[0]] if r != "train_mean"]
  panels = {readout: {method: [(f, by_fraction[f][readout]["mae"]) for f in args.fractions
                               if readout in by_fraction[f]]
                      for method, by_fraction in tests.items()}
            for readout in readouts}
  # Log MAE: between methods and fractions errors differ by factors of 100.
  figures.curves(panels, "share of the training split", f"test MAE ({unit}, log scale)",
                 args.workdir, "data_efficiency", log_y=True)
  text += "\n\n![test MAE against the training share](data_efficiency.png)"
  print("\n" + text)
  with open(os.path.join(args.workdir, "data_efficiency.md"), "w") as f:
    f.write(f"# Data efficiency: {args.config}\n\n{text}\n")
  with open(os.path.join(args.workdir, "data_efficiency.json"), "w") as f:
    json.dump({"config": args.config, "flags": list(extra), "unit": unit,
               "fractions": args.fractions, "run_seconds": seconds,
               "test": {m: {f"{f:g}": t for f, t in by.items()} for m, by in tests.items()}},
              f, indent=2)
  print(f"\nWrote {os.path.join(args.workdir, 'data_efficiency.md')}, .json and .png.")


if __name__ == "__main__":
  main(sys.argv[1:])
