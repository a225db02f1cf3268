"""The faults a long run meets, each done for real: two runs on one workdir, a full disk
while saving, a damaged latest checkpoint, a loss that turns NaN at a chosen step."""

import dataclasses
import errno
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import checkpoint
from simper_jax import errors
from simper_jax import run
from simper_jax import train
from simper_jax import workdir as run_files
from simper_jax.methods import simper as simper_method
from tiny import REPO
from tiny import copy_of
from tiny import run_main
from tiny import run_main_here
from tiny import start_main
from tiny import tiny_config

TINY = "--config=configs/rotating_digits.py:tiny"


def metrics_steps(workdir) -> list[int]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line)["step"] for line in f]


# ---------------------------------------------------------------------------------------------
# Two runs on one workdir.
# ---------------------------------------------------------------------------------------------
def hold_lock(workdir) -> subprocess.Popen:
  """Another process holding `workdir`'s lock until its stdin closes (it prints "held")."""
  code = textwrap.dedent(f"""
      import sys
      from simper_jax import workdir
      with workdir.held({str(workdir)!r}):
        print("held", flush=True)
        sys.stdin.read()
  """)
  process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline() == "held\n"
  return process


def test_a_workdir_held_by_another_process_is_refused_untouched(data_dir, tmp_path):
  workdir = tmp_path / "run"
  holder = hold_lock(workdir)
  try:
    before = sorted(os.listdir(workdir))
    with pytest.raises(errors.RunError, match=rf"The workdir {workdir} is in use by another run "
                                              rf"\(pid {holder.pid} on .*, started .*: -c\)"):
      run.train_and_evaluate(tiny_config(str(data_dir), num_steps=2), str(workdir))
    assert sorted(os.listdir(workdir)) == before == [run_files.LOCK_FILE]
  finally:
    holder.stdin.close()
    holder.wait(timeout=30)
  # Released by its holder: the run now trains.
  _, history, _ = train.train(tiny_config(str(data_dir), num_steps=2), str(workdir))
  assert [step for step, _ in history] == [1, 2]


def test_a_lock_whose_holder_died_is_taken_over_with_a_line(tmp_path, capsys):
  workdir = tmp_path / "run"
  holder = hold_lock(workdir)
  holder.kill()  # kill -9: no clean release; the kernel frees the lock, the file still names it
  holder.wait(timeout=30)
  with run_files.held(str(workdir)):
    pass
  assert (f"Took over the workdir lock {workdir / run_files.LOCK_FILE} from a run that is no "
          f"longer running (pid {holder.pid} on ") in capsys.readouterr().out


def test_the_lock_is_the_processs_own_to_take_again_and_leaves_no_empty_workdir(tmp_path):
  workdir = tmp_path / "run"
  with run_files.held(str(workdir)):
    with run_files.held(str(workdir)):  # train inside train_and_evaluate
      assert os.listdir(workdir) == [run_files.LOCK_FILE]
  assert not workdir.exists()  # a run stopped before writing anything leaves nothing
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(errors.ConfigError, match="notes.txt is a file; expected a directory"):
    with run_files.held(str(tmp_path / "notes.txt")):
      pass


@pytest.mark.slow  # two processes of the command line
def test_the_same_command_twice_one_trains_the_other_is_refused(data_dir, tmp_path):
  workdir = tmp_path / "run"
  args = (TINY, f"--config.data.data_dir={data_dir}", "--config.num_steps=20",
          "--config.log_every=5", "--config.checkpoint_every=5", f"--workdir={workdir}")
  first = start_main(*args)
  output = []
  for line in first.stdout:  # the first is training
    output.append(line)
    if line.startswith("step "):
      break
  # Paused while the second starts: a tiny run can otherwise finish in the seconds the second
  # takes to import JAX, and the second would find the workdir free.
  first.send_signal(signal.SIGSTOP)
  try:
    second = run_main(*args)
  finally:
    first.send_signal(signal.SIGCONT)
  rest, _ = first.communicate(timeout=300)
  output.append(rest)
  assert first.returncode == 0, "".join(output)
  assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr
  assert second.stderr.startswith(f"Error: The workdir {workdir} is in use by another run (pid "
                                  f"{first.pid} on "), second.stderr
  # The first's files are a lone run's: each log point once, its own checkpoints only.
  assert metrics_steps(workdir) == [5, 10, 15, 20]
  assert run_files.checkpoint_steps(str(workdir)) == [10, 15, 20]
  with open(workdir / "results.json") as f:
    assert json.load(f)["step"] == 20


# ---------------------------------------------------------------------------------------------
# A full disk.
# ---------------------------------------------------------------------------------------------
def small_filesystem(path, size: str) -> bool:
  """Mounts a tmpfs of `size` at `path` where this machine allows it (root, mount(8))."""
  path.mkdir()
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False) if shutil.which("mount") else None
  return bool(result) and result.returncode == 0


@pytest.mark.slow  # two processes of the command line
def test_a_disk_that_fills_while_saving_is_one_line_and_the_run_resumes(data_dir, tmp_path):
  disk = tmp_path / "disk"
  if not small_filesystem(disk, "400k"):
    pytest.skip("no tmpfs can be mounted here; the injected ENOSPC test covers the handling")
  try:
    args = (TINY, f"--config.data.data_dir={data_dir}", "--config.num_steps=20",
            f"--workdir={disk / 'run'}")
    full = run_main(*args)  # a checkpoint is ~130 kB: the fourth does not fit
    assert full.returncode == 2, full.stdout + full.stderr
    assert "Traceback" not in full.stderr and len(full.stderr.splitlines()) == 1, full.stderr
    steps = run_files.checkpoint_steps(str(disk / "run"))
    assert full.stderr.startswith("Error: No space left on device while writing checkpoint "
                                  f"{steps[-1] + 2} ({disk / 'run' / 'checkpoints'}/"), full.stderr
    assert (f"checkpoint {steps[-1]} is complete" in full.stderr
            and f"run the same command again to resume from step {steps[-1]}" in full.stderr)
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)  # space freed
    resumed = run_main_here(*args)  # the disk has room again: in this process
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from {disk / 'run'} at step {steps[-1]}" in resumed.stdout
    assert metrics_steps(disk / "run") == list(range(1, 21))  # each step once
  finally:
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_met_in_process_is_a_run_error_naming_file_and_resume_step(
    data_dir, tmp_path, monkeypatch):
  """The same handling where no filesystem can be mounted: ENOSPC injected at the write of
  the third checkpoint, as Orbax's save raises it."""
  workdir = tmp_path / "run"
  real_save, saved = checkpoint.save, []

  def save(manager, step, *args, **kwargs):
    if len(saved) == 2:
      raise ValueError(f'RESOURCE_EXHAUSTED: Error writing local file "{workdir}/checkpoints/'
                       f'{step}.orbax-checkpoint-tmp/state/_sharding": No space left on device '
                       f"[os_error_code='28']")
    saved.append(step)
    real_save(manager, step, *args, **kwargs)

  monkeypatch.setattr(checkpoint, "save", save)
  with pytest.raises(errors.RunError) as raised:
    train.train(tiny_config(str(data_dir), num_steps=8), str(workdir))
  assert str(raised.value) == (
      f"No space left on device while writing checkpoint 6 ({workdir}/checkpoints/6.orbax-"
      f"checkpoint-tmp/state/_sharding): checkpoint 4 is complete; once space is freed, run the "
      f"same command again to resume from step 4.")
  error = OSError(errno.ENOSPC, "No space left on device", "/w/metrics.jsonl")
  assert run_files.disk_full_path(RuntimeError("wrapped")) is None
  assert run_files.disk_full_path(ValueError(error)) == "/w/metrics.jsonl"


# ---------------------------------------------------------------------------------------------
# A damaged checkpoint, a cut metrics line.
# ---------------------------------------------------------------------------------------------
def damage_latest(workdir) -> str:
  """Truncates the data file of the latest checkpoint's state to half; returns its path."""
  step = checkpoint.latest_step(workdir)
  path, = glob.glob(os.path.join(workdir, "checkpoints", str(step), "state", "d", "*"))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  return path


def test_a_damaged_checkpoint_is_moved_aside_and_the_run_resumes_from_the_one_before(
    tiny_run, tmp_path, capsys):
  workdir = copy_of(tiny_run.workdir, tmp_path)  # checkpoints 2 and 4
  damage_latest(workdir)
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 5, "train/lo')  # a crash while the line was written
  with pytest.raises(errors.RunError, match=r"The checkpoint of step 4 cannot be read \(.*"
                                            r"/checkpoints/4/state.*\); --mode=eval reads the "
                                            r"latest checkpoint and does not fall back"):
    run.evaluate_checkpoint(tiny_run.config, workdir)
  state, _, _ = train.train(tiny_run.config, workdir)
  out = capsys.readouterr().out
  assert (f"The checkpoint of step 4 cannot be read ({workdir}/checkpoints/4/state" in out
          and f"moved it to {workdir}/checkpoints_damaged/4 (kept, not deleted)" in out)
  assert f"Resumed from {workdir} at step 2" in out
  assert "1 line cut short by an interrupted write, dropped." in out
  assert os.path.isdir(os.path.join(workdir, "checkpoints_damaged", "4", "state"))
  assert metrics_steps(workdir) == [1, 2, 3, 4]
  # Steps 3 and 4 again from checkpoint 2: the parameters of the run that was never damaged.
  _, redone = checkpoint.load_encoder(workdir, step=4)
  _, original = checkpoint.load_encoder(tiny_run.workdir, step=4)
  for a, b in zip(jax_leaves(redone), jax_leaves(original)):
    np.testing.assert_array_equal(a, b)
  assert int(state.step) == 4


def jax_leaves(tree) -> list:
  import jax  # pylint: disable=g-import-not-at-top
  return [np.ravel(x) for x in jax.tree.leaves(tree)]


# ---------------------------------------------------------------------------------------------
# A loss that turns NaN.
# ---------------------------------------------------------------------------------------------
def nan_at(monkeypatch, step: int) -> None:
  """SimPer's loss, NaN at `step` (1-based, as the log counts) and only there."""
  build = simper_method.build

  def build_with_nan(*args, **kwargs):
    method = build(*args, **kwargs)

    def loss(params, batch_stats, extra, encode, views, aux, labels, state_step):
      value, rest = method.loss(params, batch_stats, extra, encode, views, aux, labels,
                                state_step)
      return value * jnp.where(state_step == step - 1, jnp.nan, 1.0), rest

    return dataclasses.replace(method, loss=loss)

  monkeypatch.setattr(simper_method, "build", build_with_nan)


def test_a_nan_loss_stops_the_run_before_any_checkpoint_holds_it(data_dir, tmp_path,
                                                                  monkeypatch):
  nan_at(monkeypatch, 5)
  workdir = str(tmp_path / "run")
  config = tiny_config(str(data_dir), num_steps=10, log_every=10, checkpoint_every=2)
  with pytest.raises(errors.RunError) as raised:
    train.train(config, workdir)
  message = str(raised.value)
  # Seen at the checkpoint of step 6 (the log line is at 10): nothing saved after step 4.
  assert message.startswith("The loss (or a gradient) was not finite at step 5 (loss nan); the "
                            "run stopped at step 6 with nothing saved after it "
                            "(config.nonfinite='stop'): the last good checkpoint is step 4, the "
                            "step before it."), message
  assert "config.learning_rate=" in message and "--config.nonfinite=skip" in message
  assert run_files.checkpoint_steps(workdir) == [2, 4]


def test_nonfinite_skip_leaves_the_step_out_and_counts_it(data_dir, tmp_path, monkeypatch,
                                                          capsys):
  nan_at(monkeypatch, 3)
  workdir = str(tmp_path / "run")
  config = tiny_config(str(data_dir), num_steps=3, log_every=1, checkpoint_every=2,
                       nonfinite="skip")
  state, history, _ = train.train(config, workdir)
  assert "| skipped 1 non-finite step (1 in all)" in capsys.readouterr().out
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(line)["train/skipped_steps"] for line in f] == [0, 0, 1]
  assert np.isnan(history[-1][1]) and int(state.step) == 3  # the step counted, its loss not
  # The skipped step changed nothing: step 3's encoder (params, BatchNorm statistics) is
  # step 2's.
  _, at_2 = checkpoint.load_encoder(workdir, step=2)
  _, at_3 = checkpoint.load_encoder(workdir, step=3)
  for a, b in zip(jax_leaves(at_2), jax_leaves(at_3)):
    np.testing.assert_array_equal(a, b)
