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

    python launch/data_efficiency.py --config=configs/rotating_digits.py:quick \
        --selection=sas,random,periodicity --fractions=1,0.8,0.6,0.4,0.2 --workdir=DIR

`--selection` chooses *which* clips pretraining reads instead (`simper_jax.select`; issue:
SAS for periodic data): a short proxy run (DIR/proxy, a fifth of the config's epochs, or of
its steps, `--proxy-share`) reads every clip; for each strategy and fraction < 1,
`python -m simper_jax.select` writes DIR/subsets/STRATEGY_f.json and one run pretrains on it
(`--config.data.subset`, DIR/STRATEGY/fraction=f; fewer clips, fewer steps per epoch); one
run at 100 % (DIR/all/fraction=1) is every strategy's. The readouts are always fitted on the
whole training split's labels (less its calibration part), so the table compares pretraining
sets alone. The .json keeps
the proxy's and each selection's and run's seconds: the proxy's cost is part of the total.
"""

import argparse
import json
import os
import shlex
import subprocess
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
  parser.add_argument("--selection", default="",
                      help="Comma-separated strategies of simper_jax.select (sas, random, "
                           "periodicity): pretrain on chosen subsets instead of shares.")
  parser.add_argument("--latent", default="frequency", help="--selection: latent classes, "
                      "frequency or kmeans.")
  parser.add_argument("--classes", type=int, default=10, help="--selection: latent classes.")
  parser.add_argument("--proxy-share", type=float, default=0.2,
                      help="--selection: the proxy run's length as a share of the config's.")
  parser.add_argument("--dry-run", action="store_true", help="List the runs, start none.")
  args = parser.parse_args(own)
  if args.selection:
    from simper_jax import select  # noqa: E402  pylint: disable=g-import-not-at-top
    args.selection = [name for name in args.selection.split(",") if name]
    unknown = [name for name in args.selection if name not in select.STRATEGIES]
    if unknown or args.latent not in select.LATENTS or not 0 < args.proxy_share <= 1:
      raise SystemExit(f"Error: --selection={','.join(args.selection)} --latent={args.latent} "
                       f"--proxy-share={args.proxy_share}: expected strategies from "
                       f"{','.join(select.STRATEGIES)}, a latent from "
                       f"{','.join(select.LATENTS)}, and a share in (0, 1].")
    if parser.get_default("methods") == args.methods:
      args.methods = "simper"
  args.methods = compare.check_methods(args.methods)
  if args.selection and len(args.methods) != 1:
    raise SystemExit("Error: --selection pretrains one method on each subset; give one "
                     "--methods (default simper).")
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


def proxy_length(config_arg: str, share: float) -> dict:
  """The proxy run's length: `share` of the config's epochs (at least one), or of its steps
  for a config measured in num_steps."""
  path, _, variant = config_arg.partition(":")
  config = sweep.load_config_module(path).get_config(variant)
  if config.get("num_steps"):
    return {"num_steps": max(1, round(share * config.num_steps))}
  return {"num_epochs": max(1, round(share * config.num_epochs)), "lr_decay_epochs": ()}


def select_subsets(args, extra: Sequence[str]) -> dict:
  """The proxy run, then every strategy's subset file at every fraction < 1: {'proxy': its
  seconds, (strategy, fraction): selection seconds}. Files already written are kept."""
  proxy = os.path.join(args.workdir, "proxy")
  point = {"method": args.methods[0], "eval.figures": False,
           **proxy_length(args.config, args.proxy_share)}
  print(f"# the proxy run: {point}", flush=True)
  seconds = {"proxy": sweep.run_points(args.config, [("proxy", point)], args.workdir, extra,
                                       args.dry_run).get("proxy")}
  for strategy in args.selection:
    for fraction in (f for f in args.fractions if f < 1):
      output = subset_path(args.workdir, strategy, fraction)
      command = [sys.executable, "-m", "simper_jax.select", f"--workdir={proxy}",
                 f"--fraction={fraction:g}", f"--strategy={strategy}", f"--latent={args.latent}",
                 f"--classes={args.classes}", f"--output={output}"]
      print(f"$ {shlex.join(command)}" + ("   # done" if os.path.exists(output) else ""),
            flush=True)
      if args.dry_run or os.path.exists(output):
        continue
      if subprocess.run(command, check=False).returncode:
        raise SystemExit(f"Error: selecting {strategy} at {fraction:g} failed (above).")
  for strategy in args.selection:
    for fraction in (f for f in args.fractions if f < 1):
      if os.path.exists(subset_path(args.workdir, strategy, fraction)):
        with open(subset_path(args.workdir, strategy, fraction)) as f:
          seconds[f"{strategy}/{fraction:g}"] = json.load(f)["seconds"]
  return seconds


def subset_path(parent: str, strategy: str, fraction: float) -> str:
  return os.path.join(parent, "subsets", f"{strategy}_{fraction:g}.json")


def selection_runs(args) -> list[tuple[str, dict]]:
  """(name, point) of each pretraining run: one on every clip, one per strategy and fraction."""
  runs = [(run_name("all", 1.0), {"method": args.methods[0]})] if 1.0 in args.fractions else []
  return runs + [(run_name(strategy, fraction),
                  {"method": args.methods[0],
                   "data.subset": subset_path(args.workdir, strategy, fraction)})
                 for strategy in args.selection for fraction in args.fractions if fraction < 1]


def main_selection(args, extra: Sequence[str]) -> None:
  """--selection: proxy, subsets, runs; the table and plot against the pretraining share."""
  selection_seconds = select_subsets(args, extra)
  runs = selection_runs(args)
  print(f"# {len(runs)} runs: {len(args.selection)} strategies × "
        f"{len([f for f in args.fractions if f < 1])} fractions (+ every clip) on {args.config}",
        flush=True)
  seconds = sweep.run_points(args.config, runs, args.workdir, extra, args.dry_run)
  if args.dry_run:
    return
  tests, unit = {}, ""
  for strategy in args.selection:
    for fraction in args.fractions:
      saved = sweep.load_results(os.path.join(
          args.workdir, run_name("all" if fraction >= 1 else strategy, fraction)))
      tests.setdefault(strategy, {})[fraction] = saved["test"]
      unit = saved.get("unit", "")
  text = table(tests, args.fractions, unit).replace(
      "against the share of the training split (clips and labels)",
      "against the share of the training clips pretraining read (the readouts fitted on the "
      "whole training split's labels, less its calibration part)").replace("| method |", "| selection |")
  readouts = [r for r in tests[args.selection[0]][args.fractions[0]] if r != "train_mean"]
  panels = {readout: {strategy: [(f, by_fraction[f][readout]["mae"]) for f in args.fractions
                                 if readout in by_fraction[f]]
                      for strategy, by_fraction in tests.items()}
            for readout in readouts}
  figures.curves(panels, "share of the training clips pretrained on",
                 f"test MAE ({unit}, log scale)", args.workdir, "data_efficiency", log_y=True)
  cost = (f"\n\nSeconds (2 CPU cores unless said): proxy run "
          f"{selection_seconds['proxy'] or 0:.0f}; selections "
          + ", ".join(f"{k} {v:.0f}" for k, v in selection_seconds.items() if k != "proxy")
          + "; pretraining runs " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()
                                               if k != "proxy") + ".")
  text += cost + "\n\n![test MAE against the pretraining share](data_efficiency.png)"
  print("\n" + text)
  with open(os.path.join(args.workdir, "data_efficiency.md"), "w") as f:
    f.write(f"# Data efficiency by selection: {args.config}\n\n{text}\n")
  with open(os.path.join(args.workdir, "data_efficiency.json"), "w") as f:
    json.dump({"config": args.config, "flags": list(extra), "unit": unit,
               "selection": args.selection, "latent": args.latent, "classes": args.classes,
               "fractions": args.fractions, "proxy_and_selection_seconds": selection_seconds,
               "run_seconds": seconds,
               "test": {s: {f"{f:g}": t for f, t in by.items()} for s, by in tests.items()}},
              f, indent=2)
  print(f"\nWrote {os.path.join(args.workdir, 'data_efficiency.md')}, .json and .png.")


def main(argv: Sequence[str]) -> None:
  args, extra = parse_args(argv)
  if args.selection:
    main_selection(args, extra)
    return
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
