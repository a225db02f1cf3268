"""What the tests share: the tiny RotatingDigits config, running the command line, copies of
shared runs. (Imported by conftest.py after it has set up JAX's environment.)"""

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import unittest.mock

import jax

from configs import rotating_digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Evaluation without the held-out calibration part and the shifted test sets (2-3 s of a tiny
# run), for runs whose tests compare training or read only the MAE.
PLAIN_EVALUATION = ("--config.eval.calibration_fraction=0.0", "--config.eval.ood_shifts=()")


def run_main(*args, timeout=300) -> subprocess.CompletedProcess:
  """`python -m simper_jax.main ARGS` in the repository, output captured."""
  return subprocess.run([sys.executable, "-m", "simper_jax.main", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def run_main_here(*args) -> subprocess.CompletedProcess:
  """`python -m simper_jax.main ARGS` through the command's own parse_flags and main, in this
  process with fresh flags: what the command prints and its exit status, without the 3-8 s a
  new process spends importing JAX and compiling. For the mistakes a run finds after it has
  started (a config value, the data, the workdir); `run_main` keeps checking, in a real
  process, that `python -m` wires parse_flags and main this way."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from simper_jax import main  # pylint: disable=g-import-not-at-top
  argv = ["main", *args]
  parsed = flags.FlagValues()
  defined = main.define_flags(parsed, argv)
  return in_process(argv, lambda: main.main(main.parse_flags(argv, parsed), defined, parsed))


def run_command_here(module, *args) -> subprocess.CompletedProcess:
  """`python -m simper_jax.predict ARGS` (or select: `module` is the command's module) through
  its own parse_flags and main in this process, with fresh flags, as `run_main_here`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  argv = [module.__name__.rpartition(".")[2], *args]
  parsed = flags.FlagValues()
  defined = module.define_flags(parsed)
  return in_process(argv, lambda: module.main(module.parse_flags(argv, parsed), defined))


def in_process(argv: list[str], command) -> subprocess.CompletedProcess:
  """Runs `command()` as a process would run it, from the repository's folder: its stdout and
  stderr, and its exit status (0, or SystemExit's code; os._exit, which main calls after a
  RunError, ends the call instead of this process)."""
  def exit_now(code):
    raise SystemExit(code)
  out, err = io.StringIO(), io.StringIO()
  previous = os.getcwd()
  os.chdir(REPO)
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
        unittest.mock.patch.object(os, "_exit", exit_now):
      command()
    code = 0
  except SystemExit as stop:
    code = stop.code
  finally:
    os.chdir(previous)
  return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def tiny_config(data_dir: str, **overrides):
  """configs/rotating_digits.py:tiny reading data from `data_dir`; `overrides` are dotted
  fields, e.g. tiny_config(d, num_steps=3, **{"model.dtype": "bfloat16"})."""
  config = rotating_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)
  return config


def start_main(*args) -> subprocess.Popen:
  """`python -m simper_jax.main ARGS` started in the repository, its output merged into one
  text pipe. The child starts with Ctrl-C's default disposition whatever this process's is:
  a signal ignored here would be ignored there too (exec keeps SIG_IGN), and a Ctrl-C test
  would wait on a run that never hears it."""
  ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  if ignored:
    signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    return subprocess.Popen([sys.executable, "-m", "simper_jax.main", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  finally:
    if ignored:
      signal.signal(signal.SIGINT, signal.SIG_IGN)


def signal_dispositions(pid: int) -> str:
  """The kernel's view of a process's signals (Linux /proc: the ignored and caught masks),
  for a failure message."""
  try:
    with open(f"/proc/{pid}/status") as f:
      return " ".join(line.strip() for line in f if line.startswith(("SigIgn", "SigCgt")))
  except OSError:
    return "(no /proc)"


def signal_at_line(process, prefix: str, signum: int, timeout: float = 240) -> list[str]:
  """Reads `process`'s (text, merged) output until a line starts with `prefix`, sends it
  `signum`, and returns every line it printed, to its end — or, if it has not ended
  `timeout` s later, kills it and returns what it printed with a last line saying so (a
  bounded wait: a signal that went unheard fails its test instead of holding the suite)."""
  output = []
  for line in process.stdout:
    output.append(line)
    if line.startswith(prefix):
      dispositions = signal_dispositions(process.pid)
      process.send_signal(signum)
      break
  else:
    return output
  try:
    rest, _ = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    rest, _ = process.communicate()
    rest += (f"\n[test] still running {timeout:g} s after signal {signum}; killed. Its signal "
             f"masks when it was sent: {dispositions}\n")
  return output + rest.splitlines(keepends=True)


def copy_of(workdir: str, parent) -> str:
  """A copy of a shared run's workdir (conftest's tiny_run, ...) under `parent`, for a test
  that writes into it."""
  return shutil.copytree(workdir, os.path.join(str(parent), os.path.basename(workdir)))


@contextlib.contextmanager
def xla_optimizations():
  """XLA's optimizations on for what is compiled inside, as in a user's run (conftest.py turns
  most of them off for the tests' tiny programs)."""
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", previous)
