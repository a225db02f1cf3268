r"""The paper's comparison on any dataset config: every method, every readout, one table.

    python launch/compare.py --config=configs/rotating_digits.py:quick \
        --methods=simper,simclr,moco,byol,cvrl,supervised --workdir=DIR [--dry-run] [-- FLAGS]

Runs `python -m simper_jax.main --config=CONFIG --config.method=METHOD --workdir=DIR/METHOD`
for each method, one after another (FLAGS after `--` go to every run). A method whose workdir
holds results.json is skipped and an interrupted one resumes from its checkpoint, so rerunning
the same command finishes the comparison. Then prints the method × readout table of test MAE
and writes it to DIR/comparison.md and DIR/comparison.json (with every metric and the time
each run took).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402  pylint: disable=g-import-not-at-top
import tpu  # noqa: E402  pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from simper_jax import methods  # noqa: E402  pylint: disable=g-import-not-at-top

TIMES = "run_seconds.json"  # in DIR: how long each method's run took, as measured here


def parse_args(argv: Sequence[str]):
  own, extra = tpu.split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="path.py[:variant] of a dataset config.")
  parser.add_argument("--methods", default=",".join(methods.METHODS),
                      help=f"Comma-separated, from {','.join(methods.METHODS)}.")
  parser.add_argument("--workdir", required=True, help="Parent of one workdir per method.")
  parser.add_argument("--dry-run", action="store_true", help="List the runs, start none.")
  args = parser.parse_args(own)
  args.methods = [m for m in args.methods.split(",") if m]
  unknown = [m for m in args.methods if m not in methods.METHODS]
  if unknown or not args.methods:
    raise SystemExit(f"Error: --methods={','.join(args.methods)}: unknown {unknown}; expected "
                     f"some of {','.join(methods.METHODS)}.")
  sweep.load_config_module(args.config.partition(":")[0])  # a missing file: one clear line
  return args, extra


def table(results: dict[str, dict], unit: str) -> str:
  """Markdown: one row per method, one column per readout (test MAE), '—' where a method's
  run has no such readout."""
  readouts = []
  for test in results.values():
    readouts += [r for r in test if r not in readouts]
  header = f"| method | {' | '.join(readouts)} |"
  lines = [f"Test MAE{f' ({unit})' if unit else ''}; lower is better.", "", header,
           "|" + "---|" * (len(readouts) + 1)]
  for method, test in results.items():
    cells = [f"{test[r]['mae']:.4f}" if r in test else "—" for r in readouts]
    lines.append(f"| {method} | {' | '.join(cells)} |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  times_path = os.path.join(args.workdir, TIMES)
  seconds = {}
  if os.path.exists(times_path):
    with open(times_path) as f:
      seconds = json.load(f)
  print(f"# {len(args.methods)} methods on {args.config}", flush=True)
  for method in args.methods:
    workdir = os.path.join(args.workdir, method)
    command = [sys.executable, "-m", "simper_jax.main",
               *sweep.main_flags(args.config, workdir, {"method": method}, extra)]
    done = os.path.exists(os.path.join(workdir, "results.json"))
    print(f"$ {shlex.join(command)}" + ("   # done: results.json exists" if done else ""),
          flush=True)
    if args.dry_run or done:
      continue
    os.makedirs(args.workdir, exist_ok=True)
    started = time.time()
    code = subprocess.run(command, check=False).returncode
    if code:
      raise SystemExit(f"Error: the {method} run exited with status {code}; rerun this command "
                       f"to resume it and the rest of the comparison.")
    seconds[method] = seconds.get(method, 0.0) + time.time() - started
    with open(times_path, "w") as f:
      json.dump(seconds, f, indent=2)
  if args.dry_run:
    return

  results, unit = {}, ""
  for method in args.methods:
    with open(os.path.join(args.workdir, method, "results.json")) as f:
      saved = json.load(f)
    results[method], unit = saved["test"], saved.get("unit", "")
  text = table(results, unit)
  print("\n" + text)
  with open(os.path.join(args.workdir, "comparison.md"), "w") as f:
    f.write(f"# {args.config}\n\n{text}\n")
  with open(os.path.join(args.workdir, "comparison.json"), "w") as f:
    json.dump({"config": args.config, "flags": list(extra), "unit": unit,
               "run_seconds": seconds, "test": results}, f, indent=2)
  print(f"\nWrote {os.path.join(args.workdir, 'comparison.md')} and comparison.json.")


if __name__ == "__main__":
  main(sys.argv[1:])
