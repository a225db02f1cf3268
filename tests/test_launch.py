"""launch/tpu.py and launch/sweep.py: the command sequences they print, their errors, and a
real two-point sweep on the tiny config."""

import json
import os
import shlex
import subprocess
import sys
import tarfile

import pytest

from tiny import PLAIN_EVALUATION
from tiny import in_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "launch"))
import sweep  # noqa: E402  pylint: disable=g-import-not-at-top
import tpu  # noqa: E402  pylint: disable=g-import-not-at-top


def run(script, *args, env=None):
  return subprocess.run([sys.executable, os.path.join(REPO, "launch", script), *args],
                        capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def commands_of(output: str) -> list[list[str]]:
  return [shlex.split(line[2:]) for line in output.splitlines() if line.startswith("$ ")]


def test_tpu_dry_run_for_a_v4_32_pod_slice():
  result = run("tpu.py", "--name=simper-v4", "--zone=us-central2-b", "--accelerator=v4-32",
               "--project=my-project", "--dry-run", "--",
               "--config=configs/scamps.py", "--workdir=/mnt/shared/scamps")
  assert result.returncode == 0, result.stderr
  assert "v4-32: 4 host(s)" in result.stdout
  create, archive, scp, install, start = commands_of(result.stdout)
  where = ["--zone=us-central2-b", "--project=my-project"]
  assert create == ["gcloud", "compute", "tpus", "tpu-vm", "create", "simper-v4", *where,
                    "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base"]
  assert archive[:4] == ["git", "-C", REPO, "archive"] and archive[-1] == "HEAD"
  tarball = archive[5].split("=", 1)[1]
  assert scp == ["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball,
                 "simper-v4:simper_jax.tar.gz", "--worker=all", *where]
  for ssh in (install, start):  # every worker, same TPU
    assert ssh[:7] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "simper-v4", "--worker=all"]
    assert ssh[7:9] == where
  install_script = install[9].removeprefix("--command=")
  assert "tar -xzf simper_jax.tar.gz -C ~/simper_jax" in install_script
  assert "pip install -q -e . 'jax[tpu]'" in install_script
  run_script = start[9].removeprefix("--command=")
  # The same main command on every worker; --multihost so they join through jax.distributed.
  assert shlex.split(run_script.split("&&", 1)[1].split("2>&1")[0]) == [
      ".venv/bin/python", "-m", "simper_jax.main", "--config=configs/scamps.py",
      "--workdir=/mnt/shared/scamps", "--multihost"]


def test_the_archive_holds_the_committed_package():
  if subprocess.run(["git", "-C", REPO, "rev-parse", "--is-inside-work-tree"],
                    capture_output=True).returncode:
    pytest.skip("not a git checkout")
  result = run("tpu.py", "--name=x", "--zone=z", "--accelerator=v4-8", "--dry-run", "--",
               "--config=configs/scamps.py")
  archive = commands_of(result.stdout)[1]
  assert "--multihost" not in result.stdout  # one host: no jax.distributed needed
  subprocess.run(archive, check=True)
  with tarfile.open(archive[5].split("=", 1)[1]) as f:
    names = set(f.getnames())
  assert {"setup.cfg", "simper_jax/main.py", "configs/scamps.py"} <= names
  assert not any(n.startswith((".venv", "workdir")) for n in names)


@pytest.mark.parametrize("accelerator", ["v4-30", "v5litepod-12", "v7-8", "tpu"])
def test_an_unknown_accelerator_fails_before_any_command(accelerator):
  result = run("tpu.py", "--name=x", "--zone=z", f"--accelerator={accelerator}", "--",
               "--config=configs/scamps.py")
  assert result.returncode == 1
  assert f"--accelerator='{accelerator}' is not a TPU type this script knows" in result.stderr
  assert "v4-N with N a multiple of 8" in result.stderr and "$ " not in result.stdout


def test_missing_gcloud_fails_before_any_command(tmp_path):
  env = {**os.environ, "PATH": str(tmp_path)}  # a PATH with no gcloud on it
  result = run("tpu.py", "--name=x", "--zone=z", "--accelerator=v4-32", "--",
               "--config=configs/scamps.py", env=env)
  assert result.returncode == 1 and "gcloud not found on PATH" in result.stderr
  assert "$ " not in result.stdout


def test_accelerator_hosts():
  hosts = {name: tpu.parse_accelerator(name).hosts
           for name in ("v4-8", "v4-32", "v4-128", "v5p-8", "v5p-64", "v5litepod-8",
                        "v5litepod-16", "v6e-4", "v6e-64")}
  assert hosts == {"v4-8": 1, "v4-32": 4, "v4-128": 16, "v5p-8": 1, "v5p-64": 8,
                   "v5litepod-8": 1, "v5litepod-16": 4, "v6e-4": 1, "v6e-64": 16}


def test_sweep_dry_run_lists_every_point_of_the_shipped_sweep():
  result = run("sweep.py", "--config=configs/rotating_digits.py:quick", "--workdir=sw",
               "--dry-run")
  assert result.returncode == 0, result.stderr
  commands = commands_of(result.stdout)
  assert "# 16 runs" in result.stdout and len(commands) == 16
  seen = set()
  for command in commands:
    assert command[1:4] == ["-m", "simper_jax.main", "--config=configs/rotating_digits.py:quick"]
    overrides = tuple(a for a in command if a.startswith("--config.simper."))
    assert len(overrides) == 4
    seen.add(overrides)
  assert len(seen) == 16  # every point of the 2×2×2×2 grid once
  assert len({c[-1] for c in commands}) == 16 and all(c[-1].startswith("--workdir=sw/")
                                                      for c in commands)
  assert "--config.simper.speed_range=(0.5, 3.0)" in {a for c in commands for a in c}


def test_sweep_field_that_is_not_in_the_config_is_named(tmp_path):
  path = tmp_path / "bad_sweep.py"
  path.write_text(f"import sys; sys.path.insert(0, {REPO!r})\n"
                  "from configs.rotating_digits import get_config\n"
                  "def get_sweep(arg):\n  return [{'simper.num_sped': 3}]\n")
  result = run("sweep.py", f"--config={path}", "--workdir=sw", "--dry-run")
  assert result.returncode == 1
  assert "sweep point 0 of" in result.stderr and "'simper.num_sped'" in result.stderr


@pytest.mark.slow
def test_a_two_point_sweep_runs_each_point_in_its_workdir_and_skips_finished_ones(tmp_path):
  path = tmp_path / "tiny_sweep.py"
  path.write_text(f"import sys; sys.path.insert(0, {REPO!r})\n"
                  "from configs.rotating_digits import get_config\n"
                  "def get_sweep(arg):\n"
                  "  return [{'simper.speed_range': r} for r in ((0.5, 2.0), (0.8, 1.5))]\n")
  # The runs evaluate without calibration and shifted sets: the sweep reads their MAE.
  args = (f"--config={path}:tiny", f"--workdir={tmp_path / 'sweep'}", "--",
          f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.num_steps=2",
          *PLAIN_EVALUATION)
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  result = run("sweep.py", *args, env=env)
  assert result.returncode == 0, result.stdout + result.stderr
  workdirs = sorted(d for d in os.listdir(tmp_path / "sweep")
                    if os.path.isdir(tmp_path / "sweep" / d))
  assert workdirs == ["00_speed_range=0.5-2.0", "01_speed_range=0.8-1.5"]
  with open(tmp_path / "sweep" / "sweep.json") as f:
    summary = json.load(f)
  assert summary["runs"] == workdirs and set(summary["run_seconds"]) == set(workdirs)
  # One field varies: a curve per readout against high / low of the range (4 and 1.875).
  assert [x for x, _ in summary["curves"]["simper: simper.speed_range"]["fft"]] == [1.875, 4.0]
  assert os.path.exists(tmp_path / "sweep" / "sweep.png")
  assert "| 00_speed_range=0.5-2.0 |" in (tmp_path / "sweep" / "sweep.md").read_text()
  for name, speed_range in zip(workdirs, ([0.5, 2.0], [0.8, 1.5])):
    with open(tmp_path / "sweep" / name / "config.json") as f:
      assert json.load(f)["simper"]["speed_range"] == speed_range
    assert os.path.exists(tmp_path / "sweep" / name / "results.json")
  assert "00_speed_range=0.5-2.0: MAE fft" in result.stdout
  again = in_process(["sweep.py", *args], lambda: sweep.main(list(args)))  # nothing to start
  assert again.returncode == 0 and again.stdout.count("# done: results.json exists") == 2
