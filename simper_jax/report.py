r"""A report of a run, a sweep, a comparison or a data-efficiency grid: one HTML file and its
Markdown twin.

    python -m simper_jax.report --workdir=DIR

Writes DIR/report.md (images linked by relative path) and DIR/report.html (one self-contained
file: every image embedded as a data URI, no script, no network; readable offline and
attachable to a mail). What goes in:
- the summaries the launch commands wrote in DIR (comparison.md, data_efficiency.md,
  sweep.md), with their plots;
- every run under DIR (a folder with results.json): its results table, the zero-shot regions
  when it has them, its config (whole for a single run; for several, the fields in which
  each differs from the first), and every figure in its figures/ folder.
"""

import base64
import html
import json
import os
import re
import sys
from typing import Sequence

import markdown
from absl import app
from absl import flags

from simper_jax import checkpoint
from simper_jax import outputs

SUMMARIES = ("comparison.md", "data_efficiency.md", "sweep.md")
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; }
code { background: #f4f4f4; padding: 0 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
"""


def find_runs(workdir: str) -> list[str]:
  """Folders under `workdir` (itself included) holding results.json, relative, sorted."""
  runs = []
  for folder, subfolders, files in os.walk(workdir):
    subfolders[:] = sorted(d for d in subfolders if d not in ("checkpoints", "tensorboard",
                                                               "figures"))
    if "results.json" in files:
      runs.append(os.path.relpath(folder, workdir))
  return sorted(runs)


def metrics_table(results: dict) -> str:
  """Markdown: one row per readout, a column per metric any readout has (`outputs.COLUMNS`,
  values ± their standard errors)."""
  columns = outputs.present_columns(results)
  lines = ["| readout | " + " | ".join(title for _, title, _ in columns) + " |",
           "|" + "---|" * (len(columns) + 1)]
  for readout, metrics in results.items():
    cells = [outputs.metric_cell(metrics, key, fmt) for key, _, fmt in columns]
    lines.append(f"| {readout} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def uncertainty_section(results: dict) -> list[str]:
  """Markdown paragraphs: each readout's calibrated intervals and selective MAE, and the OOD
  score's flags and AUROCs (simper_jax/uncertainty.py), where results.json has them."""
  parts = []
  calibration = results.get("calibration")
  rows = {name: m for name, m in results.get("test", {}).items() if "selective_mae" in m}
  if rows:
    levels = list(next(iter(rows.values()))["selective_mae"])
    header = ("| readout | coverage | mean width | " + " | ".join(f"MAE@{c}" for c in levels)
              + " | AURC |")
    lines = [header, "|" + "---|" * (len(levels) + 4)]
    cell = lambda v, fmt: "—" if v is None else format(v, fmt)
    for name, m in rows.items():
      lines.append(f"| {name} | {cell(m.get('coverage'), '.3f')} | "
                   f"{cell(m.get('interval_width'), '.4g')} | "
                   + " | ".join(format(m["selective_mae"][c], ".4g") for c in levels)
                   + f" | {m['aurc']:.4g} |")
    intro = ("How far to trust each readout: its intervals' empirical coverage at nominal "
             f"{results.get('coverage')} and mean width, calibrated on "
             f"{calibration['calibration_clips']} held-out training clips of "
             f"{calibration['calibration_groups']} recordings; the MAE of the most confident "
             "share of predictions; AURC, the area under that risk–coverage curve:"
             if calibration else "No calibration (eval.calibration_fraction=0): the MAE of "
             "the most confident share of predictions, and AURC:")
    parts += [intro, "\n".join(lines)]
  ood = results.get("ood")
  if ood:
    flagged = ", ".join(f"{name} {100 * share:.0f} %" for name, share in ood["flagged"].items())
    mahalanobis = ood.get("auroc_mahalanobis", {})
    aurocs = ", ".join(f"{name} {value:.3f}" + (f" (Mahalanobis {mahalanobis[name]:.3f})"
                                                if name in mahalanobis else "")
                       for name, value in ood["auroc"].items())
    parts.append(f"Out of distribution: a clip is flagged above {ood['threshold']:.3f} (the "
                 f"held-out training recordings' {100 * ood['quantile']:g}th percentile). "
                 f"Flagged: {flagged}." + (f" AUROC against the test clips: {aurocs}."
                                          if aurocs else ""))
  return parts


def config_table(fields: dict) -> str:
  lines = ["| field | value |", "|:---|:---|"]
  lines += [f"| `{key}` | `{json.dumps(value)}` |" for key, value in sorted(fields.items())]
  return "\n".join(lines)


def run_section(workdir: str, run: str, config_fields: dict | None) -> str:
  """Markdown for one run: results, regions, config fields, figures (paths relative to
  `workdir`)."""
  folder = os.path.join(workdir, run)
  with open(os.path.join(folder, "results.json")) as f:
    results = json.load(f)
  unit = results.get("unit", "")
  title = "Run" if run == "." else f"Run `{run}`"
  parts = [f"## {title}",
           f"Method **{results.get('method', '?')}**, encoder of step {results.get('step')}; "
           f"test metrics{f' (MAE in {unit})' if unit else ''}:", metrics_table(results["test"])]
  for region, region_results in results.get("test_by_region", {}).items():
    parts += [f"**{region}** (test clips {outputs.REGION_WORDS[region]} the training bands "
              f"{results.get('seen_bands')}):", metrics_table(region_results)]
  parts += uncertainty_section(results)
  figure_dir = os.path.join(folder, "figures")
  if os.path.isdir(figure_dir):
    for name in sorted(f for f in os.listdir(figure_dir) if f.endswith(".png")):
      stem = name[:-4]
      path = os.path.normpath(os.path.join(run, "figures", name))
      parts.append(f"**{stem.replace('_', ' ')}** (numbers: "
                   f"[{stem}.csv]({os.path.normpath(os.path.join(run, 'figures', stem))}.csv))"
                   f"\n\n![{stem}]({path})")
  # Last: the whole config of a single run is a hundred lines.
  if config_fields:
    parts += ["Config" + (" (whole):" if run == "." else " (fields that differ from the "
                          "first run's):"), config_table(config_fields)]
  return "\n\n".join(parts)


def build_markdown(workdir: str) -> str:
  """The report as Markdown (images by relative path). Raises FileNotFoundError when
  `workdir` holds no run and no summary."""
  runs = find_runs(workdir)
  summaries = [name for name in SUMMARIES if os.path.exists(os.path.join(workdir, name))]
  if not runs and not summaries:
    raise FileNotFoundError(
        f"{workdir} holds no results.json (a finished run) and none of {', '.join(SUMMARIES)} "
        f"(a comparison, data-efficiency grid or sweep): nothing to report. Give the --workdir "
        f"of a run, or the parent workdir of launch/compare.py, data_efficiency.py or sweep.py.")
  parts = [f"# simper_jax report: `{os.path.abspath(workdir)}`",
           f"{len(runs)} run(s)" + (f"; summaries: {', '.join(summaries)}" if summaries else "")
           + "."]
  for name in summaries:
    with open(os.path.join(workdir, name)) as f:
      text = f.read()
    # The summary's own title becomes a section of this report.
    parts.append(re.sub(r"^# ", "## ", text.strip(), count=1))
  configs = {}
  for run in runs:
    path = os.path.join(workdir, run, "config.json")
    if os.path.exists(path):
      with open(path) as f:
        configs[run] = checkpoint.flatten_config(json.load(f))
  first = configs.get(runs[0], {}) if runs else {}
  for run in runs:
    fields = configs.get(run)
    if fields is not None and len(runs) > 1:
      fields = {k: v for k, v in fields.items() if first.get(k, "<absent>") != v}
    parts.append(run_section(workdir, run, fields))
  return "\n\n".join(parts) + "\n"


def embed_images(page: str, workdir: str) -> str:
  """Replaces each <img src="relative.png"> by a data URI of the file's bytes."""
  def inline(match):
    source = html.unescape(match.group(2))
    path = os.path.join(workdir, source)
    if source.startswith("data:") or not os.path.exists(path):
      return match.group(0)
    with open(path, "rb") as f:
      encoded = base64.b64encode(f.read()).decode("ascii")
    return f'{match.group(1)}"data:image/png;base64,{encoded}"'
  return re.sub(r'(<img[^>]*?src=)"([^"]+)"', inline, page)


def write_report(workdir: str) -> tuple[str, str]:
  """Writes DIR/report.md and DIR/report.html; returns their paths."""
  text = build_markdown(workdir)
  body = markdown.markdown(text, extensions=["tables"])
  page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          f"<title>simper_jax report: {html.escape(os.path.basename(os.path.abspath(workdir)))}"
          f"</title><style>{STYLE}</style></head>\n<body>\n{embed_images(body, workdir)}\n"
          f"</body></html>\n")
  paths = os.path.join(workdir, "report.md"), os.path.join(workdir, "report.html")
  for path, content in zip(paths, (text, page)):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      f.write(content)
    os.replace(path + ".tmp", path)
  return paths


FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A run's workdir, or the parent workdir of a comparison, "
                    "data-efficiency grid or sweep.")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    print(f"Error: unexpected arguments {argv[1:]}; expected only --workdir=DIR.",
          file=sys.stderr)
    sys.exit(2)
  if not FLAGS.workdir or not os.path.isdir(FLAGS.workdir):
    print(f"Error: --workdir={FLAGS.workdir}: expected an existing directory (a run's "
          f"workdir, or the parent of a comparison, grid or sweep).", file=sys.stderr)
    sys.exit(2)
  try:
    md_path, html_path = write_report(FLAGS.workdir)
  except FileNotFoundError as e:
    print(f"Error: {e}", file=sys.stderr)
    sys.exit(2)
  size = os.path.getsize(html_path) / 1e6
  print(f"Wrote {html_path} ({size:.1f} MB, images embedded) and {md_path}.")


if __name__ == "__main__":
  app.run(main)
