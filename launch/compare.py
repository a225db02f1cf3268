r"""The paper's comparison on any dataset config: every method, every readout, one table.

    python launch/compare.py --config=configs/rotating_digits.py:quick \
        --methods=simper,simclr,moco,byol,cvrl,supervised --workdir=DIR [--dry-run] [-- FLAGS]

Runs `python -m simper_jax.main --config=CONFIG --config.method=METHOD --workdir=DIR/METHOD`
for each method, one after another (FLAGS after `--` go to every run). A method whose workdir
holds results.json is skipped and an interrupted one resumes from its checkpoint, so rerunning
the same command finishes the comparison. Then prints the method × readout table of test MAE
and writes it to DIR/comparison.md and DIR/comparison.json (with every metric and the time
each run took). For zero-shot configs (`eval.seen_bands`, e.g. rotating_digits.py's
`interpolation` and `extrapolation` variants) it adds a table per region of the test labels:
seen, interpolation, extrapolation.
"""

import argparse
import json
import os
import sys
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402  pylint: disable=g-import-not-at-top
import tpu  # noqa: E402  pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simper_jax import outputs  # noqa: E402  pylint: disable=g-import-not-at-top
from simper_jax import methods  # noqa: E402  pylint: disable=g-import-not-at-top


def parse_args(argv: Sequence[str]):
  own, extra = tpu.split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="path.py[:variant] of a dataset config.")
  parser.add_argument("--methods", default=",".join(methods.METHODS),
                      help=f"Comma-separated, from {','.join(methods.METHODS)}.")
  parser.add_argument("--workdir", required=True, help="Parent of one workdir per method.")
  parser.add_argument("--dry-run", action="store_true", help="List the runs, start none.")
  args = parser.parse_args(own)
  args.methods = check_methods(args.methods)
  sweep.load_config_module(args.config.partition(":")[0])  # a missing file: one clear line
  return args, extra


def check_methods(text: str) -> list[str]:
  """--methods=a,b → ['a', 'b'], or exit with a line naming the unknown ones."""
  names = [m for m in text.split(",") if m]
  unknown = [m for m in names if m not in methods.METHODS]
  if unknown or not names:
    raise SystemExit(f"Error: --methods={text}: unknown {unknown}; expected some of "
                     f"{','.join(methods.METHODS)}.")
  return names


def table(results: dict[str, dict], unit: str) -> str:
  """Markdown: one row per method, one column per readout (test MAE), '—' where a method's
  run has no such readout."""
  return "\n".join([f"Test MAE{f' ({unit})' if unit else ''}; lower is better.", "",
                    *sweep.mae_table(results, "method")])


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  print(f"# {len(args.methods)} methods on {args.config}", flush=True)
  seconds = sweep.run_points(args.config, [(m, {"method": m}) for m in args.methods],
                             args.workdir, extra, args.dry_run)
  if args.dry_run:
    return
  saved = {method: sweep.load_results(os.path.join(args.workdir, method))
           for method in args.methods}
  unit = next(iter(saved.values())).get("unit", "")
  results = {method: s["test"] for method, s in saved.items()}
  text = table(results, unit)
  # Zero-shot runs (eval.seen_bands) split the test clips by region: a table per region.
  for region in outputs.REGIONS:
    if all(region in s.get("test_by_region", {}) for s in saved.values()):
      text += (f"\n\n### {region}\n\n"
               + table({m: s["test_by_region"][region] for m, s in saved.items()}, unit))
  print("\n" + text)
  with open(os.path.join(args.workdir, "comparison.md"), "w") as f:
    f.write(f"# {args.config}\n\n{text}\n")
  with open(os.path.join(args.workdir, "comparison.json"), "w") as f:
    json.dump({"config": args.config, "flags": list(extra), "unit": unit,
               "run_seconds": seconds, "test": results,
               "test_by_region": {m: s["test_by_region"] for m, s in saved.items()
                                  if "test_by_region" in s}}, f, indent=2)
  print(f"\nWrote {os.path.join(args.workdir, 'comparison.md')} and comparison.json.")


if __name__ == "__main__":
  main(sys.argv[1:])
