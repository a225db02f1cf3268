r"""Runs the sweep a config file defines: one run per point, each in its own workdir.

    python launch/sweep.py --config=configs/rotating_digits.py:quick --workdir=workdir/sweep \
        [--dry-run] [--tpu=NAME --zone=ZONE --accelerator=v4-32 [--project=P]] [-- FLAGS]

The config file defines the sweep in plain Python (big_vision style) next to `get_config`:

    def get_sweep(arg):
      return [{"simper.num_speeds": m, "simper.similarity": s}
              for m in (5, 10) for s in ("max_xcorr", "npsd")]

Each point is a dict of dotted config fields → values, passed as --config.FIELD=VALUE to
`python -m simper_jax.main`, with --workdir=WORKDIR/<index>_<field=value,...>. FLAGS after
`--` go to every run. Locally the points run one after another; a point whose workdir already
holds results.json is skipped and an interrupted one resumes from its checkpoint, so rerunning
the same command finishes the sweep. With --tpu the points run one after another on an existing
TPU VM / pod slice, all workers at once (install it first: launch/tpu.py --install-only).
--dry-run lists every point's command and runs none.
"""

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tpu  # noqa: E402  pylint: disable=g-import-not-at-top

def load_config_module(path: str):
  if not os.path.isfile(path):
    raise SystemExit(f"Error: --config file {path} does not exist.")
  spec = importlib.util.spec_from_file_location("sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def expand(config_arg: str) -> list[dict[str, Any]]:
  """The points of the sweep in `config_arg` ("path.py[:variant]"), each checked against the
  config: every field must exist (a typo would otherwise be a silently identical run)."""
  path, _, arg = config_arg.partition(":")
  module = load_config_module(path)
  if not hasattr(module, "get_sweep"):
    raise SystemExit(f"Error: {path} defines no sweep: add `def get_sweep(arg)` returning a "
                     f"list of {{'dotted.field': value}} dicts (see launch/sweep.py).")
  config = module.get_config(arg)
  points = list(module.get_sweep(arg))
  if not points:
    raise SystemExit(f"Error: get_sweep({arg!r}) in {path} returned no points.")
  for index, point in enumerate(points):
    for field in point:
      node = config
      for part in field.split("."):
        if not hasattr(node, "keys") or part not in node:
          raise SystemExit(f"Error: sweep point {index} of {path} sets {field!r}, which is "
                           f"not a field of the config.")
        node = node[part]
  return points


def format_value(value) -> str:
  """How config_flags reads it back: tuples as Python literals, the rest as plain text."""
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  return str(value)


def point_name(index: int, point: dict) -> str:
  """'03_num_speeds=10,similarity=npsd': the leaf field names, filesystem-safe."""
  parts = []
  for field, value in point.items():
    text = "-".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
    parts.append(f"{field.split('.')[-1]}={text}")
  return f"{index:02d}_" + re.sub(r"[^A-Za-z0-9._=,-]", "_", ",".join(parts))


def main_flags(config_arg: str, workdir: str, point: dict, extra: Sequence[str]) -> list[str]:
  return ([f"--config={config_arg}"] +
          [f"--config.{field}={format_value(value)}" for field, value in point.items()] +
          list(extra) + [f"--workdir={workdir}"])


def parse_args(argv: Sequence[str]):
  own, extra = tpu.split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="path.py[:variant] defining get_sweep.")
  parser.add_argument("--workdir", required=True, help="Parent of one workdir per point.")
  parser.add_argument("--dry-run", action="store_true", help="List the runs, start none.")
  parser.add_argument("--tpu", help="Run on this existing TPU VM / pod slice instead.")
  parser.add_argument("--zone", help="With --tpu: its zone.")
  parser.add_argument("--accelerator", help="With --tpu: its type, e.g. v4-32.")
  parser.add_argument("--project", help="With --tpu: its project (default: gcloud's).")
  args = parser.parse_args(own)
  if args.tpu and not (args.zone and args.accelerator):
    parser.error("--tpu needs --zone and --accelerator.")
  return args, extra


def summary(workdirs: list[str]) -> str:
  """One line per finished point: its MAE for every readout in results.json."""
  lines = []
  for workdir in workdirs:
    path = os.path.join(workdir, "results.json")
    if os.path.exists(path):
      with open(path) as f:
        test = json.load(f)["test"]
      maes = "  ".join(f"{readout} {metrics['mae']:.4f}" for readout, metrics in test.items())
      lines.append(f"{os.path.basename(workdir)}: MAE {maes}")
    else:
      lines.append(f"{os.path.basename(workdir)}: no results.json")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  points = expand(args.config)
  accelerator = None
  if args.tpu:
    try:
      accelerator = tpu.parse_accelerator(args.accelerator)
    except ValueError as e:
      raise SystemExit(f"Error: {e}") from None
    args.name = args.tpu
    if not args.dry_run:
      tpu.check_gcloud()
  print(f"# {len(points)} runs of {args.config}"
        f"{f' on {args.tpu} ({accelerator.name})' if args.tpu else ''}", flush=True)
  workdirs = []
  for index, point in enumerate(points):
    workdir = os.path.join(args.workdir, point_name(index, point))
    workdirs.append(workdir)
    flags = main_flags(args.config, workdir, point, extra)
    if args.tpu:
      command = tpu.run_command(args, accelerator, flags)
    else:
      command = [sys.executable, "-m", "simper_jax.main", *flags]
    done = not args.tpu and os.path.exists(os.path.join(workdir, "results.json"))
    print(f"$ {shlex.join(command)}" + ("   # done: results.json exists" if done else ""),
          flush=True)
    if args.dry_run or done:
      continue
    code = subprocess.run(command, check=False).returncode
    if code:
      raise SystemExit(f"Error: run {index} ({point_name(index, point)}) exited with status "
                       f"{code}; rerun this command to resume it and the rest of the sweep.")
  if not args.dry_run and not args.tpu:
    print(summary(workdirs))


if __name__ == "__main__":
  main(sys.argv[1:])
