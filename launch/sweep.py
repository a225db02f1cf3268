r"""Runs the sweep a config file defines: one run per point, each in its own workdir.

    python launch/sweep.py --config=configs/rotating_digits.py:quick --workdir=workdir/sweep \
        [--sweep=NAME] [--dry-run] [--tpu=NAME --zone=ZONE --accelerator=v4-32 [--project=P]] \
        [-- FLAGS]

The config file defines the sweep in plain Python (big_vision style) next to `get_config`:

    def get_sweep(arg):
      return [{"simper.num_speeds": m, "simper.similarity": s}
              for m in (5, 10) for s in ("max_xcorr", "npsd")]

A config file with several sweeps takes their name as a second argument, picked by --sweep
(configs/rotating_digits.py: "default" and "view_strength"; without --sweep, `get_sweep(arg)`).
Each point is a dict of dotted config fields → values, passed as --config.FIELD=VALUE to
`python -m simper_jax.main`, with --workdir=WORKDIR/<index>_<field=value,...>. FLAGS after
`--` go to every run. Locally the points run one after another; a point whose workdir already
holds results.json is skipped and an interrupted one resumes from its checkpoint, so rerunning
the same command finishes the sweep. With --tpu the points run one after another on an existing
TPU VM / pod slice, all workers at once (install it first: launch/tpu.py --install-only).
--dry-run lists every point's command and runs none.

At the end (local runs) it writes WORKDIR/sweep.md and sweep.json: every point's test MAE per
readout and the seconds it took. When every point changes at most one field from the config
(besides `method`), as the view-strength sweep does, it also draws WORKDIR/sweep.png: test MAE
against each field's value, one panel per (method, field), one line per readout; a (low, high)
range is placed at high / low (how far apart its ends are), a number at itself. Points that
change nothing belong to every panel of their method.
"""

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
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


def expand(config_arg: str, sweep: str | None = None) -> list[dict[str, Any]]:
  """The points of the sweep in `config_arg` ("path.py[:variant]"), each checked against the
  config: every field must exist (a typo would otherwise be a silently identical run)."""
  path, _, arg = config_arg.partition(":")
  module = load_config_module(path)
  if not hasattr(module, "get_sweep"):
    raise SystemExit(f"Error: {path} defines no sweep: add `def get_sweep(arg)` returning a "
                     f"list of {{'dotted.field': value}} dicts (see launch/sweep.py).")
  config = module.get_config(arg)
  try:
    points = list(module.get_sweep(arg) if sweep is None else module.get_sweep(arg, sweep))
  except (ValueError, TypeError) as e:
    raise SystemExit(f"Error: --sweep={sweep}: {e}") from None
  if not points:
    raise SystemExit(f"Error: get_sweep({arg!r}) in {path} returned no points.")
  for index, point in enumerate(points):
    for field in point:
      try:
        config_field(config, field)
      except (KeyError, TypeError):
        raise SystemExit(f"Error: sweep point {index} of {path} sets {field!r}, which is "
                         f"not a field of the config.") from None
  return points


def config_field(config, dotted: str):
  """config['a']['b'] for 'a.b'; KeyError or TypeError when there is no such field."""
  node = config
  for part in dotted.split("."):
    if not hasattr(node, "keys"):
      raise TypeError(f"{dotted!r}: {part!r} is below a value, not a block")
    node = node[part]
  return node


def readout_names(tests) -> list[str]:
  """The readouts of several runs' {readout: metrics}, each once, in first-seen order."""
  names = []
  for test in tests:
    names += [r for r in test if r not in names]
  return names


def mae_table(rows: dict[str, dict], first_column: str,
              extra_column: tuple[str, dict] | None = None) -> list[str]:
  """Markdown lines: one row per name of `rows` ({name: {readout: metrics}}), one column per
  readout (test MAE, '—' where a run has none), and optionally (title, {name: text})."""
  readouts = readout_names(rows.values())
  extra_title, extra = extra_column or ("", {})
  header = [first_column, *readouts] + ([extra_title] if extra_column else [])
  lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
  for name, test in rows.items():
    cells = [name] + [f"{test[r]['mae']:.4f}" if r in test else "—" for r in readouts]
    lines.append(f"| {' | '.join(cells + ([extra.get(name, '')] if extra_column else []))} |")
  return lines


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


TIMES = "run_seconds.json"  # in the parent workdir: how long each run took, as measured here


def run_points(config_arg: str, runs: Sequence[tuple[str, dict]], parent: str,
               extra: Sequence[str], dry_run: bool = False) -> dict[str, float]:
  """Runs `python -m simper_jax.main` for each (name, point) into parent/name, one after
  another. A run whose workdir holds results.json is skipped; an interrupted one resumes
  from its checkpoint, so calling this again finishes the set.

  Returns:
    {name: seconds} of every run finished so far (also kept in parent/run_seconds.json).
  """
  times_path = os.path.join(parent, TIMES)
  seconds = {}
  if os.path.exists(times_path):
    with open(times_path) as f:
      seconds = json.load(f)
  for index, (name, point) in enumerate(runs):
    workdir = os.path.join(parent, name)
    command = [sys.executable, "-m", "simper_jax.main",
               *main_flags(config_arg, workdir, point, extra)]
    done = os.path.exists(os.path.join(workdir, "results.json"))
    print(f"$ {shlex.join(command)}" + ("   # done: results.json exists" if done else ""),
          flush=True)
    if dry_run or done:
      continue
    os.makedirs(parent, exist_ok=True)
    started = time.time()
    code = subprocess.run(command, check=False).returncode
    if code:
      raise SystemExit(f"Error: run {index} ({name}) exited with status {code}; rerun this "
                       f"command to resume it and the rest.")
    seconds[name] = seconds.get(name, 0.0) + time.time() - started
    with open(times_path, "w") as f:
      json.dump(seconds, f, indent=2)
  return seconds


def load_results(workdir: str) -> dict:
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


def strength(value) -> float:
  """Where a swept value sits on a plot's x axis: a (low, high) range at high / low, a number
  at itself."""
  if isinstance(value, (tuple, list)):
    return float(value[1]) / float(value[0])
  return float(value)


def one_knob_curves(config, points: Sequence[dict], tests: Sequence[dict]) -> dict | None:
  """{'<method>: <field>': {readout: [(strength, test MAE)], sorted}} when every point changes
  at most one field of `config` besides `method`; None otherwise (a grid has no such curves).
  A point that changes nothing is on every curve of its method."""
  def default(field):
    value = config_field(config, field)
    return tuple(value) if isinstance(value, (tuple, list)) else value

  changed = []
  for point in points:
    diff = {f: v for f, v in point.items() if f != "method" and
            (tuple(v) if isinstance(v, (tuple, list)) else v) != default(f)}
    if len(diff) > 1:
      return None
    changed.append((point.get("method", config.method), diff))
  panels = {}
  for (method, diff), test in zip(changed, tests):
    for field, value in diff.items():
      panels.setdefault((method, field), []).append((strength(value), test))
  for (method, diff), test in zip(changed, tests):
    if not diff:
      for (panel_method, field), members in panels.items():
        if panel_method == method:
          members.append((strength(default(field)), test))
  return {f"{method}: {field}": {readout: sorted((x, test[readout]["mae"])
                                                 for x, test in members if readout in test)
                                 for readout in members[0][1]}
          for (method, field), members in panels.items()}


def parse_args(argv: Sequence[str]):
  own, extra = tpu.split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="path.py[:variant] defining get_sweep.")
  parser.add_argument("--workdir", required=True, help="Parent of one workdir per point.")
  parser.add_argument("--sweep", help="Which sweep of a config file that has several.")
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
    if os.path.exists(os.path.join(workdir, "results.json")):
      test = load_results(workdir)["test"]
      maes = "  ".join(f"{readout} {metrics['mae']:.4f}" for readout, metrics in test.items())
      lines.append(f"{os.path.basename(workdir)}: MAE {maes}")
    else:
      lines.append(f"{os.path.basename(workdir)}: no results.json")
  return "\n".join(lines)


def write_summary(args, points: list[dict], names: list[str], seconds: dict) -> None:
  """WORKDIR/sweep.md, sweep.json and, for one-knob sweeps, sweep.png (module docstring)."""
  tests = [load_results(os.path.join(args.workdir, name))["test"] for name in names]
  lines = [f"# Sweep {args.sweep or ''} of {args.config}", "",
           "Test MAE per readout; lower is better.", ""]
  lines += mae_table(dict(zip(names, tests)), "run", (
      "seconds", {name: f"{seconds.get(name, float('nan')):.0f}" for name in names}))
  path, _, arg = args.config.partition(":")
  curves = one_knob_curves(load_config_module(path).get_config(arg), points, tests)
  if curves:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from simper_jax import figures  # pylint: disable=g-import-not-at-top
    # Without the train-mean row (flat and far above the rest) and on a log MAE axis: the
    # readouts of one sweep differ by factors of 10.
    plotted = {panel: {readout: xy for readout, xy in series.items() if readout != "train_mean"}
               for panel, series in curves.items()}
    figures.curves(plotted, "view strength (a range: high / low; a number: its value)",
                   "test MAE (log scale)", args.workdir, "sweep", log_y=True)
    lines += ["", "![test MAE against each swept field](sweep.png)"]
  with open(os.path.join(args.workdir, "sweep.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(args.workdir, "sweep.json"), "w") as f:
    json.dump({"config": args.config, "sweep": args.sweep, "points": points, "runs": names,
               "run_seconds": seconds, "test": dict(zip(names, tests)), "curves": curves},
              f, indent=2)
  print(f"Wrote {os.path.join(args.workdir, 'sweep.md')} and sweep.json"
        + (" and sweep.png." if curves else "."))


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  points = expand(args.config, args.sweep)
  names = [point_name(index, point) for index, point in enumerate(points)]
  if not args.tpu:
    print(f"# {len(points)} runs of {args.config}", flush=True)
    seconds = run_points(args.config, list(zip(names, points)), args.workdir, extra,
                         args.dry_run)
    if not args.dry_run:
      print(summary([os.path.join(args.workdir, name) for name in names]))
      write_summary(args, points, names, seconds)
    return
  try:
    accelerator = tpu.parse_accelerator(args.accelerator)
  except ValueError as e:
    raise SystemExit(f"Error: {e}") from None
  args.name = args.tpu
  if not args.dry_run:
    tpu.check_gcloud()
  print(f"# {len(points)} runs of {args.config} on {args.tpu} ({accelerator.name})", flush=True)
  for index, (name, point) in enumerate(zip(names, points)):
    flags = main_flags(args.config, os.path.join(args.workdir, name), point, extra)
    command = tpu.run_command(args, accelerator, flags)
    print(f"$ {shlex.join(command)}", flush=True)
    if args.dry_run:
      continue
    code = subprocess.run(command, check=False).returncode
    if code:
      raise SystemExit(f"Error: run {index} ({name}) exited with status {code}; rerun this "
                       f"command to resume it and the rest of the sweep.")


if __name__ == "__main__":
  main(sys.argv[1:])
