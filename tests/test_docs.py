"""Every code block of README.md and docs/*.md runs, so the documentation cannot drift from
the code; the site builds with `mkdocs build --strict`; docs/configs.md is what the configs say.

- ```python blocks are executed, in a folder holding the workdirs they name (tiny runs).
- ```bash blocks: every `python -m simper_jax.main ...` command line is parsed as the command
  would parse it (config file, variant, each --config.FIELD override and every flag), without
  training; every `launch/*.py` command runs with --dry-run; benchmark scripts must exist and
  their --config must load.
- Output blocks that start with a command (`$ ...`) are compared with what the command prints.
"""

import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys

from absl import flags
import pytest

from configs import scamps as scamps_config
from simper_jax import config_reference
from simper_jax import main
from simper_jax import train
from tiny import in_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DOC_FILES = ["README.md"] + sorted(os.path.relpath(p, REPO)
                                   for p in glob.glob(os.path.join(REPO, "docs", "*.md")))


def file_blocks(name: str) -> list[tuple[str, str]]:
  """(language, text) of every fenced block of one Markdown file, in order."""
  with open(os.path.join(REPO, name)) as f:
    text = f.read()
  return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


def doc_blocks() -> list[tuple[str, str]]:
  """(language, text) of every fenced block of README.md and the docs pages, file by file."""
  return [block for name in DOC_FILES for block in file_blocks(name)]


def block_ids(language: str) -> list[tuple[str, str]]:
  """("README.md:0", text) of every block in `language`, numbered within its file."""
  found = []
  for name in DOC_FILES:
    texts = [text for lang, text in file_blocks(name) if lang == language]
    found += [(f"{name}:{i}", text) for i, text in enumerate(texts)]
  return found


def shell_commands(block: str) -> list[list[str]]:
  """The commands of a bash block: continuation lines joined, comments dropped, `&&` chains
  split, environment variables given a sample value."""
  joined = block.replace("\\\n", " ")
  commands = []
  for line in joined.splitlines():
    line = line.split(" #")[0].strip()
    if not line or line.startswith("#"):
      continue
    for part in line.split("&&"):
      commands.append(shlex.split(part.replace("$RANK", "0")))
  return commands


def parse_main_flags(args: list[str]) -> None:
  """Parses `python -m simper_jax.main ARGS` exactly as main does, without running it: main's
  own flags, defined in a fresh FlagValues (ml_collections registers the --config.FIELD flags
  of the config it loads, so each command line needs its own), in the repository's folder,
  which the README's commands run from."""
  argv = ["main", *args]
  parsed = flags.FlagValues()
  main.define_flags(parsed, argv)
  previous = os.getcwd()
  os.chdir(REPO)
  try:
    main.parse_flags(argv, parsed)
  except SystemExit as error:  # errors.fail: its one line is on stderr
    raise AssertionError(f"README command `python -m simper_jax.main {' '.join(args)}` does "
                         f"not parse (exit {error.code}; stderr above)") from None
  finally:
    os.chdir(previous)
  assert parsed["config"].value.method

PYTHON_BLOCKS = block_ids("python")
BASH_BLOCKS = block_ids("bash")


def test_the_docs_have_the_blocks_this_test_reads():
  readme = file_blocks("README.md")
  assert [lang for lang, _ in readme].count("python") >= 1
  assert [lang for lang, _ in readme].count("bash") >= 3
  assert len(PYTHON_BLOCKS) >= 4 and len(BASH_BLOCKS) >= 20


def test_the_readme_is_a_front_door():
  with open(os.path.join(REPO, "README.md")) as f:
    assert len(f.read().splitlines()) < 250  # the rest is on the docs pages


@pytest.fixture(scope="module")
def readme_workdirs(tiny_run, scamps_data_dir, tmp_path_factory):
  """A folder with workdir/quick (RotatingDigits) and workdir/scamps_synthetic (TS-CAN at
  16×16, as the synthetic variant) holding tiny trained encoders: what the snippets load."""
  root = tmp_path_factory.mktemp("readme")
  # Evaluated too: the run's FFT harmonic is chosen by the evaluation (results.json).
  shutil.copytree(tiny_run.workdir, root / "workdir" / "quick")
  config = scamps_config.get_config("tiny")
  config.data.data_dir = scamps_data_dir
  config.data.builder.image_size = 16
  config.num_steps = 1
  train.train(config, str(root / "workdir" / "scamps_synthetic"))
  return root


@pytest.mark.slow  # reads the shared tiny runs (RotatingDigits and SCAMPS)
@pytest.mark.parametrize("where, block", PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_python_block_runs(where, block, readme_workdirs, monkeypatch, capsys):
  monkeypatch.chdir(readme_workdirs)
  code = compile(block, f"{where} (python block)", "exec")
  exec(code, {})  # pylint: disable=exec-used
  if "predicted Hz" in block:
    out = capsys.readouterr().out
    assert "true Hz:" in out and "predicted Hz:" in out


@pytest.mark.parametrize("where, block", BASH_BLOCKS, ids=[w for w, _ in BASH_BLOCKS])
def test_bash_block_commands_parse(where, block, tmp_path, monkeypatch):
  commands = shell_commands(block)
  assert commands
  for command in commands:
    if command[:3] in (["python", "-m", "simper_jax.main"], ["srun", "python", "-m"]):
      parse_main_flags(command[command.index("simper_jax.main") + 1:])
    elif command[0] == "python" and command[1].startswith("launch/"):
      args = command[1:] if "--dry-run" in command else _with_dry_run(command[1:])
      monkeypatch.setenv("HOME", str(tmp_path))
      dry_run = in_process(args, lambda: launch_module(args[0]).main(args[1:]))
      assert dry_run.returncode == 0, (f"{' '.join(command)}: exit {dry_run.returncode}\n"
                                       f"{dry_run.stdout}{dry_run.stderr}")
      printed = dry_run.stdout
      runs = [shlex.split(line[2:]) for line in printed.splitlines() if line.startswith("$ ")]
      assert runs, f"{' '.join(command)} printed no command:\n{printed}"
      for run in runs:  # what the launcher would start is a command main accepts
        if "simper_jax.main" in run:
          parse_main_flags(run[run.index("simper_jax.main") + 1:])
    elif command[0] == "python" and command[1].startswith("benchmarks/"):
      assert os.path.isfile(os.path.join(REPO, command[1])), command[1]
      config = next((a for a in command if a.startswith("--config=")), None)
      if config:
        parse_main_flags([config])
    elif command[:3] == ["python", "-m", "pytest"]:
      assert os.path.exists(os.path.join(REPO, command[3].split("::")[0])), command
    elif command[:3] == ["python", "-m", "simper_jax.report"]:
      assert [a.split("=")[0] for a in command[3:]] == ["--workdir"], command
    elif command[:3] == ["python", "-m", "simper_jax.predict"]:
      from simper_jax import predict  # pylint: disable=g-import-not-at-top
      parsed = flags.FlagValues()
      predict.define_flags(parsed)
      parsed(["predict", *command[3:]])  # an unknown flag or a bad value raises
      assert parsed.video or parsed.series, command
    elif command[:3] == ["python", "-m", "simper_jax.config_reference"]:
      assert set(command[3:]) <= {"--write"}, command  # not run: it would rewrite the page
    else:
      # Set-up (venv, pip, activate, the browser the report test drives) and tools outside
      # the project (tensorboard, the site's mkdocs).
      assert command[0] in ("python3", ".", "pip", "tensorboard", "(command", "apt-get",
                            "mkdocs"), f"{where}: {command}"


def launch_module(script: str):
  """launch/NAME.py loaded as a module, so its dry run is a call here rather than a process
  (a process spends 3 s importing what this one has already imported)."""
  name = os.path.splitext(os.path.basename(script))[0]
  spec = importlib.util.spec_from_file_location(f"launch_{name}", os.path.join(REPO, script))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _with_dry_run(args: list[str]) -> list[str]:
  """Inserts --dry-run before a `--` that passes flags on to the runs."""
  cut = args.index("--") if "--" in args else len(args)
  return args[:cut] + ["--dry-run"] + args[cut:]


def test_the_documented_missing_data_message_is_what_the_command_prints(tmp_path):
  block = next(text for language, text in doc_blocks()
               if not language and text.startswith("$ python -m simper_jax.main"))
  command, *shown = block.splitlines()
  result = subprocess.run([sys.executable] + shlex.split(command[2:])[1:], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": "/root"})
  assert result.returncode == 2
  printed = result.stderr.splitlines()
  for line in shown:
    if line != "...":
      assert line in printed, f"README shows {line!r}; the command printed:\n{result.stderr}"


def test_the_documented_tpu_dry_run_is_what_the_script_prints():
  blocks = doc_blocks()
  index = next(i for i, (language, text) in enumerate(blocks) if "launch/tpu.py" in text)
  command = shell_commands(blocks[index][1])[0]
  shown = [line for line in blocks[index + 1][1].splitlines() if line.startswith("$ gcloud")]
  result = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  printed = [line for line in result.stdout.splitlines() if line.startswith("$ gcloud")]
  assert printed == shown


def test_the_site_builds_strict(tmp_path):
  """mkdocs.yml's strict build: a broken link or anchor, a page left out of the navigation, an
  unreadable docstring or a missing snippet file is an error. The test extra installs mkdocs;
  outside CI a checkout without it skips, under CI the test fails."""
  if importlib.util.find_spec("mkdocs") is None and not os.environ.get("CI"):
    pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
  result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
  assert result.returncode == 0, result.stdout + result.stderr
  for page in ("index.html", "api/index.html", "configs/index.html", "changelog/index.html"):
    assert os.path.isfile(tmp_path / "site" / page), page
  with open(tmp_path / "site" / "api" / "index.html") as f:
    api = f.read()
  # mkdocstrings rendered the docstrings (not just the ::: lines).
  assert "load_encoder" in api and "doc-heading" in api
  with open(tmp_path / "site" / "changelog" / "index.html") as f:
    assert "Faults a long run meets" in f.read()  # CHANGELOG.md was included


def test_the_config_reference_is_what_the_configs_say():
  with open(config_reference.PAGE) as f:
    written = f.read()
  assert written == config_reference.page(), (
      "docs/configs.md differs from the configs: run python -m simper_jax.config_reference "
      "--write")


@pytest.mark.parametrize("name", config_reference.CONFIG_FILES)
def test_every_config_field_has_a_comment(name):
  _, fields = config_reference.config_fields(name)
  assert len(fields) > 50
  missing = [f.path for f in fields if not f.comment]
  assert not missing, f"configs/{name}.py: no comment where these are first assigned: {missing}"
