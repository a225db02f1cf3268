"""What a user meets at the command line: each mistake is one line and exit 2; Ctrl-C saves;
--mode=eval never evaluates with the wrong config nor replaces a result silently."""

import glob
import json
import os
import signal
import subprocess

import pytest

from simper_jax import checkpoint
from simper_jax import train
from tiny import PLAIN_EVALUATION
from tiny import copy_of
from tiny import run_main
from tiny import run_main_here
from tiny import signal_at_line
from tiny import start_main
from tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "--config=configs/rotating_digits.py:tiny"


@pytest.fixture(scope="module")
def trained(tiny_run, tmp_path_factory):
  """A workdir with a finished tiny run (4 steps) and its results.json: a copy of the
  session's, which these tests write into."""
  return copy_of(tiny_run.workdir, tmp_path_factory.mktemp("trained"))


def assert_one_line_error(result, expected: str):
  """Exit 2, stderr is exactly one 'Error: ...' line containing `expected`, and stdout shows
  nothing that suggests the run began."""
  assert result.returncode == 2, result.stdout + result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
  assert expected in lines[0], lines[0]
  assert not any(word in result.stdout for word in ("Workdir", "Data:", "step ", "Preparing"))


@pytest.mark.parametrize("args, expected", [
    ((TINY, "--config.batchsize=8"),
     "--config.batchsize: the config has no field 'batchsize'. Did you mean \"batch_size\""),
    (("--config=configs/nope.py",),
     "--config=configs/nope.py: the file configs/nope.py does not exist; the configs here are "
     "configs/countix.py, configs/lst.py, configs/pure.py, configs/rotating_digits.py"),
    (("--config=configs/rotating_digits.py:fast",),
     "--config=configs/rotating_digits.py:fast: Unknown variant(s) ['fast'] for "
     "configs/rotating_digits.py; expected some of quick, tiny, interpolation, "
     "extrapolation."),
    ((TINY, "--config.simper.speed_range=(0.5,)"),
     "config.simper.speed_range=(0.5,): expected (low, high), two numbers with 0 < low"),
    ((TINY, "--config.augment.crop_area=(0.5, 1.5)"),
     "config.augment.crop_area=(0.5, 1.5): expected (low, high), two numbers with 0 < low <= "
     "high <= 1."),
    ((TINY, "--config.batch_size=abc"), "--config.batch_size=abc: invalid literal for int()"),
    ((), "--config is required"),
])
def test_command_line_mistakes_are_one_line_and_exit_2(args, expected, tmp_path):
  result = run_main(*args, f"--workdir={tmp_path / 'run'}")
  assert_one_line_error(result, expected)
  assert not (tmp_path / "run").exists()


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("mine")
  assert_one_line_error(run_main_here(TINY, f"--workdir={path}"),
                        f"--workdir={path} is a file; expected a directory")
  assert path.read_text() == "mine"


def test_eval_without_a_checkpoint_is_refused(tmp_path):
  result = run_main_here(TINY, "--mode=eval", f"--workdir={tmp_path / 'empty'}")
  assert_one_line_error(result, f"--mode=eval: the workdir {tmp_path / 'empty'} holds no "
                                f"checkpoint")
  assert not (tmp_path / "empty").exists()  # nothing created


def test_a_truncated_prepared_file_is_named_with_how_to_redo_it(data_dir, tmp_path):
  damaged = str(tmp_path / "tfds")
  subprocess.run(["cp", "-r", data_dir, damaged], check=True)
  path, = glob.glob(f"{damaged}/rotating_digits/*/1.0.0/*-train.array_record-*")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  result = run_main_here(TINY, f"--config.data.data_dir={damaged}",
                         f"--workdir={tmp_path / 'run'}")
  assert_one_line_error(result, f"The prepared train file {path} is damaged")
  assert "Delete the folder" in result.stderr and "prepare it anew" in result.stderr
  # Nothing is left in the workdir that would refuse the corrected command as "a different
  # config".
  assert not (tmp_path / "run" / "config.json").exists()


def test_eval_with_another_config_is_refused_and_results_are_untouched(trained, data_dir):
  with open(os.path.join(trained, "results.json"), "rb") as f:
    before = f.read()
  result = run_main_here(TINY, "--config.simper.num_speeds=4",
                         f"--config.data.data_dir={data_dir}", "--mode=eval",
                         f"--workdir={trained}")
  assert_one_line_error(result, f"The workdir {trained} holds a run of a different config "
                                f"(simper.num_speeds: saved 3, now 4)")
  with open(os.path.join(trained, "results.json"), "rb") as f:
    assert f.read() == before
  assert not os.path.exists(os.path.join(trained, "results.previous.json"))


@pytest.mark.slow  # a whole --mode=eval
def test_eval_with_its_own_config_says_which_results_it_replaces(trained, data_dir):
  result = run_main_here(TINY, f"--config.data.data_dir={data_dir}", "--mode=eval",
                         f"--workdir={trained}")
  assert result.returncode == 0, result.stderr
  assert "It replaces the results of step 4, kept as" in result.stdout
  with open(os.path.join(trained, "results.previous.json")) as f:
    assert json.load(f)["step"] == 4


@pytest.mark.slow
def test_first_ctrl_c_saves_the_step_reached_and_exits_130(data_dir, tmp_path):
  workdir = tmp_path / "run"
  args = (TINY, f"--config.data.data_dir={data_dir}", "--config.num_steps=100000",
          "--config.checkpoint_every=100000", f"--workdir={workdir}")
  process = start_main(*args)
  output = signal_at_line(process, "step      5/", signal.SIGINT)
  assert process.wait(timeout=300) == 130, "".join(output)
  assert "Traceback" not in "".join(output)
  message = next(line for line in output if line.startswith("Ctrl-C received: saved a "
                                                            "checkpoint at step "))
  stopped_at = int(message.split("at step ")[1].split("/")[0])
  assert 5 <= stopped_at < 100000
  assert checkpoint.latest_step(str(workdir)) == stopped_at
  # The rerun resumes there (a short run: num_steps may change on resume; in this process,
  # evaluated without calibration and shifted sets).
  rerun = run_main_here(*args[:-3], f"--config.num_steps={stopped_at + 2}",
                        "--config.checkpoint_every=100000", f"--workdir={workdir}",
                        *PLAIN_EVALUATION)
  assert rerun.returncode == 0, rerun.stderr
  assert f"Resumed from {workdir} at step {stopped_at}" in rerun.stdout


def test_second_ctrl_c_in_the_loop_interrupts_at_once(capsys):
  with train.preemption_notice() as stop_requested:
    assert stop_requested(1) is None
    os.kill(os.getpid(), signal.SIGINT)  # the first: a request, answered at the step boundary
    assert stop_requested(2) == signal.SIGINT
    assert "Ctrl-C: saving a checkpoint at the end of this step" in capsys.readouterr().out
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)  # the second: Python's own handler, at once
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_ctrl_c_stays_ignored_in_the_loop():
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a background job
  try:
    with train.preemption_notice() as stop_requested:
      os.kill(os.getpid(), signal.SIGINT)
      assert stop_requested(1) is None
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_ctrl_c_outside_the_training_loop_stops_at_once_without_a_traceback(data_dir, tmp_path):
  process = start_main(TINY, f"--config.data.data_dir={data_dir}", "--config.num_steps=100000",
                       "--config.checkpoint_every=100000", f"--workdir={tmp_path / 'run'}")
  # Before the loop has installed its handler: Python's own KeyboardInterrupt, which main
  # turns into a message and exit 130.
  output = signal_at_line(process, "Compiling the train step", signal.SIGINT)
  assert process.wait(timeout=300) == 130, "".join(output)
  text = "".join(output)
  assert "Stopped by Ctrl-C" in text and "Traceback" not in text


def test_resumed_run_logs_each_step_once_in_metrics_jsonl(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train.train(tiny_config(data_dir, num_steps=4, checkpoint_every=2), workdir)
  # A kill after step 4 was logged but before it was saved: only step 2's checkpoint is left.
  subprocess.run(["rm", "-r", os.path.join(workdir, "checkpoints", "4")], check=True)
  train.train(tiny_config(data_dir, num_steps=4, checkpoint_every=2), workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == [1, 2, 3, 4]
