r"""The configs reference (docs/configs.md), generated from the config files' own comments.

Every field of every config in `configs/` has a comment where it is first assigned: the
comment lines right above the assignment and the one at its end. This module loads each
config (its default and each variant), records where every field was first assigned — by
wrapping `ConfigDict.__setitem__` while `get_config` runs, so a field built by a shared
function (`common.loop(c, ...)`, `s = ConfigDict(); s.window = ...`) is traced to the line
that wrote it — and writes one Markdown page: the fields every config shares with the same
meaning and values, then each config file with its variants and its own fields.

  python -m simper_jax.config_reference            # print the page
  python -m simper_jax.config_reference --write    # write docs/configs.md

tests/test_docs.py checks that docs/configs.md is what this prints, so the page cannot drift
from the configs. Written by hand (no library reads Python comments back) because the
comments, not docstrings, are where this repository documents its fields.
"""

import contextlib
import dataclasses
import importlib
import io
import os
import sys
import tokenize

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "configs")
PAGE = os.path.join(REPO, "docs", "configs.md")
# The config files a user runs, in the order the page lists them (the others are shared code);
# the three rPPG configs are one section, as they are one config (configs/common_rppg.py).
CONFIG_GROUPS = (("rotating_digits",), ("scamps", "ubfc", "pure"), ("countix",), ("lst",),
                 ("videos",), ("timeseries",))
CONFIG_FILES = tuple(name for group in CONFIG_GROUPS for name in group)


ABSENT = object()  # Field.default of a field only some variants add


@dataclasses.dataclass
class Field:
  """One leaf field of one config file."""
  path: str  # "simper.num_speeds"
  default: object  # its value in the default variant (ABSENT where only a variant has it)
  by_variant: dict  # variant -> value, where the variant changes it (or adds it)
  comment: str  # the comment written where it is first assigned
  source: str  # "configs/common.py:12"


@contextlib.contextmanager
def _recording(first_assignment: dict):
  """Records (ConfigDict, key) -> (file, line) of each key's first assignment made from a
  file under configs/."""
  original = ml_collections.ConfigDict.__setitem__
  keep_alive = []  # the ids below stay unique only while their ConfigDicts live

  def setitem(self, key, value):
    frame = sys._getframe(1)  # pylint: disable=protected-access
    while frame is not None and not frame.f_code.co_filename.startswith(CONFIG_DIR):
      frame = frame.f_back
    if frame is not None and (id(self), key) not in first_assignment:
      keep_alive.append(self)
      first_assignment[(id(self), key)] = (frame.f_code.co_filename, frame.f_lineno)
    return original(self, key, value)

  ml_collections.ConfigDict.__setitem__ = setitem
  try:
    yield keep_alive
  finally:
    ml_collections.ConfigDict.__setitem__ = original


def _comments(filename: str) -> tuple[dict, list[str]]:
  """{line: its end-of-line comment} and the file's lines, by Python's own tokenizer."""
  with open(filename, encoding="utf-8") as f:
    text = f.read()
  trailing = {}
  for token in tokenize.generate_tokens(io.StringIO(text).readline):
    if token.type == tokenize.COMMENT:
      line = token.start[0]
      if text.splitlines()[line - 1].strip() != token.string.strip():
        trailing[line] = token.string
  return trailing, text.splitlines()


def comment_at(filename: str, line: int) -> str:
  """The comment of the assignment at `line`: the comment-only lines right above it, then
  its end-of-line comment, joined into one string. A comment block above a run of
  assignments without end-of-line comments covers the run (`# Coordinate names; ...` above
  time_name, latitude_name, longitude_name); an end-of-line comment covers its own line only,
  so a field added without one is found by the test that every field has a comment."""
  trailing, lines = _comments(filename)
  previous = lines[line - 2] if line >= 2 else ""
  if (line not in trailing and previous.strip() and not previous.strip().startswith("#")
      and "=" in previous and line - 1 not in trailing):
    return comment_at(filename, line - 1)
  above = []
  i = line - 2
  while i >= 0 and lines[i].strip().startswith("#"):
    above.insert(0, lines[i].strip())
    i -= 1
  parts = [c.lstrip("#").strip() for c in above]
  if line in trailing:
    parts.append(trailing[line].lstrip("#").strip())
  # Pylint pragmas and the like are not documentation.
  parts = [p for p in parts if p and not p.startswith(("pylint:", "noqa"))]
  return " ".join(parts)


def _leaves(config: ml_collections.ConfigDict, prefix: str = ""):
  """(path, value, parent ConfigDict, key) of every non-ConfigDict field, in order."""
  for key in config.keys():
    value = config[key]
    path = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      yield from _leaves(value, path + ".")
    else:
      yield path, value, config, key


def _load(name: str, variant: str):
  """The config `configs/<name>.py:<variant>` with each leaf's (value, file, line)."""
  first = {}
  module = importlib.import_module(f"configs.{name}")
  with _recording(first):
    config = module.get_config(variant)
  leaves = {}
  for path, value, parent, key in _leaves(config):
    filename, line = first.get((id(parent), key), (None, None))
    leaves[path] = (value, filename, line)
  return module, leaves


def config_fields(name: str) -> tuple[str, list[Field]]:
  """The module docstring and every field of `configs/<name>.py`, over all its variants."""
  module, default = _load(name, "")
  fields = {}
  for path, (value, filename, line) in default.items():
    fields[path] = Field(path, value, {}, comment_at(filename, line) if filename else "",
                         f"{os.path.relpath(filename, REPO)}:{line}" if filename else "")
  for variant in _variants(module):
    _, leaves = _load(name, variant)
    for path, (value, filename, line) in leaves.items():
      if path not in fields:
        fields[path] = Field(path, ABSENT, {}, comment_at(filename, line) if filename else "",
                             f"{os.path.relpath(filename, REPO)}:{line}" if filename else "")
      if path not in default or default[path][0] != value:
        fields[path].by_variant[variant] = value
  return module.__doc__ or "", list(fields.values())


def _variants(module) -> tuple[str, ...]:
  """The variants a config file declares: its VARIANTS, or those of the module it uses."""
  if hasattr(module, "VARIANTS"):
    return tuple(module.VARIANTS)
  return tuple(importlib.import_module("configs.common_rppg").VARIANTS)


def _short(value) -> str:
  """repr, with floats like 4/3 cut to 6 significant digits (1.33333)."""
  if isinstance(value, float) and len(repr(value)) > 8:
    return format(value, ".6g")
  if isinstance(value, tuple):
    inner = ", ".join(_short(v) for v in value)
    return f"({inner},)" if len(value) == 1 else f"({inner})"
  return repr(value)


def _value(value) -> str:
  return f"`{_short(value)}`".replace("|", "\\|")


def _cell(text: str) -> str:
  """A comment as table-cell Markdown: `|` would end the cell and `<name>` would be read as
  an HTML tag and vanish."""
  return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _row(field: Field) -> str:
  default = "—" if field.default is ABSENT else _value(field.default)
  variants = "; ".join(f"{v}: {_value(x)}" for v, x in field.by_variant.items())
  return f"| `{field.path}` | {default} | {variants} | {_cell(field.comment)} |"


def _group_row(group: tuple[str, ...], fields: list) -> str:
  """One row for a field of several config files: their values side by side where they
  differ (`scamps: False; ubfc: True`)."""
  present = [(name, f) for name, f in zip(group, fields) if f is not None]
  if len(present) == len(group) and len({repr(_key(f)[:2]) for _, f in present}) == 1:
    return _row(present[0][1])
  first = present[0][1]
  default = "; ".join(f"{name}: {'—' if f.default is ABSENT else _value(f.default)}"
                      for name, f in present)
  variants = "; ".join(f"{name} {v}: {_value(x)}" for name, f in present
                       for v, x in f.by_variant.items())
  return f"| `{first.path}` | {default} | {variants} | {_cell(first.comment)} |"


def _key(field: Field) -> tuple:
  """What must agree for two config files' field to be listed once."""
  return field.default, sorted(field.by_variant.items(), key=repr), field.comment


def page() -> str:
  """The Markdown of docs/configs.md."""
  sys.path.insert(0, REPO)
  per_config = {name: config_fields(name) for name in CONFIG_FILES}
  by_path = {name: {f.path: f for f in fields} for name, (_, fields) in per_config.items()}
  shared = [f.path for f in per_config[CONFIG_FILES[0]][1]
            if all(f.path in by_path[name] and repr(_key(by_path[name][f.path])) == repr(_key(f))
                   for name in CONFIG_FILES)]

  header = ("| field | default | variants that change it | what it is |\n"
            "|---|---|---|---|")
  out = [
      "# Configs",
      "",
      "<!-- Generated by `python -m simper_jax.config_reference --write` from the comments in",
      "configs/*.py; tests/test_docs.py fails when this page and the configs differ. -->",
      "",
      "Every field of every config, with its default, the variants that change it, and the",
      "comment written beside it in the config file (this page is generated from those",
      "comments). Choose a variant after a colon (`--config=configs/videos.py:synthetic`, or",
      "several: `:quick,interpolation`) and override any field on the command line",
      "(`--config.batch_size=32`, `--config.simper.speed_range='(0.5, 3.0)'`); a misspelt field",
      "is an error naming the closest one.",
      "",
      "## Fields every config shares",
      "",
      "The same meaning and the same values in every config file.",
      "",
      header,
  ]
  out += [_row(by_path[CONFIG_FILES[0]][path]) for path in shared]
  for group in CONFIG_GROUPS:
    out += ["", "## " + ", ".join(f"configs/{name}.py" for name in group), ""]
    for name in group:
      out += ["```text", per_config[name][0].strip("\n"), "```", ""]
    out.append(header)
    paths = list(dict.fromkeys(f.path for name in group for f in per_config[name][1]))
    out += [_group_row(group, [by_path[name].get(path) for name in group])
            for path in paths if path not in shared]
  return "\n".join(out) + "\n"


def main(argv: list[str]) -> None:
  text = page()
  if "--write" in argv:
    with open(PAGE, "w", encoding="utf-8") as f:
      f.write(text)
    print(f"Wrote {os.path.relpath(PAGE)}.")
  else:
    sys.stdout.write(text)


if __name__ == "__main__":
  main(sys.argv[1:])
