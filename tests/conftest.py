"""Test setup: 8 CPU devices, so meshes and sharding are exercised for real; one persistent
compilation cache for the whole test run, subprocesses included; the slow end-to-end files
scheduled first, so that the two pytest-xdist workers finish together."""

import contextlib
import io
import os
import signal
import types

# Must happen before jax is imported anywhere.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The cache train.use_compilation_cache picks, set here for the test process and, through the
# environment, every `python -m simper_jax.main` the tests start (JAX reads these at import):
# a program compiled once — the tiny train step, by a test or by a subprocess — is loaded by
# every later test and process instead of compiled again.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "simper_jax", "jax"))
# Every program, however quick to compile: the tests start dozens of processes that compile
# the same small evaluation programs (0.1-0.5 s each); read from the cache, a tiny run takes
# 6.1 s instead of 7.6 s (measured 2026-12-05).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The tests' programs are tiny and run a few times: optimizing them (LLVM's passes) costs more
# than it saves. JAX's own switch for that case turns XLA's backend optimizations off; the
# computation (the HLO) is the same, its rounding may differ in the last bits. A test that
# measures rounding itself (bfloat16 against float32) asks for the optimizations back
# (tiny.xla_optimizations).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# umap-learn's functions are numba-compiled in every new process (about 9 s, 24 s with its
# first import in a new venv) to embed a few dozen test clips, which plain Python does in 2 s.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

# A test run started in the background by a non-interactive shell (`.ci/run &`) inherits
# SIGINT ignored: Python then installs no KeyboardInterrupt handler and passes the ignoring on
# to every subprocess, and the Ctrl-C tests would test nothing. Put Python's own handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
  signal.signal(signal.SIGINT, signal.default_int_handler)

import jax  # noqa: E402
import pytest  # noqa: E402

from tiny import tiny_config  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _eight_devices():
  assert jax.device_count() == 8, "tests expect 8 host devices (see tests/conftest.py)"


# ---------------------------------------------------------------------------------------------
# What many tests read, made once per test process (per pytest-xdist worker). Tests must not
# change them: one that writes into a run copies it first (tiny.copy_of).
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """The tiny RotatingDigits (configs/rotating_digits.py:tiny), prepared; tests that prepare
  other variants of it (bands, sizes) add their folders beside it."""
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("tfds"))
  pipeline.get_builder(tiny_config(path).data)
  return path


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory) -> types.SimpleNamespace:
  """A finished, evaluated tiny SimPer run: `.workdir` (4 steps, checkpoints at 2 and 4,
  results.json, metrics.jsonl, TensorBoard events), `.config`, and `.results`, what
  train_and_evaluate returned."""
  from simper_jax import run  # pylint: disable=g-import-not-at-top
  config = tiny_config(data_dir, num_steps=4)
  workdir = str(tmp_path_factory.mktemp("tiny_run") / "run")
  results = run.train_and_evaluate(config, workdir)
  return types.SimpleNamespace(workdir=workdir, config=config, results=results)


@pytest.fixture(scope="session")
def scamps_data_dir(tmp_path_factory) -> str:
  """Where the tiny synthetic SCAMPS (configs/scamps.py:tiny) is written and prepared."""
  return str(tmp_path_factory.mktemp("scamps_tfds"))


@pytest.fixture(scope="session")
def tiny_scamps_run(scamps_data_dir, tmp_path_factory) -> types.SimpleNamespace:
  """A finished tiny heart-rate run (configs/scamps.py:tiny: TS-CAN, every readout, the
  classic methods and fine-tuning): `.workdir`, `.config`, `.results` and `.output`, what it
  printed."""
  from configs import scamps  # pylint: disable=g-import-not-at-top
  from simper_jax import run  # pylint: disable=g-import-not-at-top
  config = scamps.get_config("tiny")
  config.data.data_dir = scamps_data_dir
  workdir = str(tmp_path_factory.mktemp("tiny_scamps_run") / "run")
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    results = run.train_and_evaluate(config, workdir)
  return types.SimpleNamespace(workdir=workdir, config=config, results=results,
                               output=output.getvalue())


# Seconds each file's slowest tests took in a fresh clone's suite run from a cold cache (2
# cores, 2026-12-05, `pytest --durations=60`: the tests over 4 s, summed per file). Only the
# order matters: longest first, so that neither worker is left alone with a long file at the
# end.
FILE_SECONDS = {
    "test_multihost.py": 124, "test_experiments.py": 73, "test_resnet3d.py": 59,
    "test_methods.py": 47, "test_faults.py": 40, "test_launch.py": 37, "test_cli.py": 35,
    "test_timeseries.py": 34, "test_docs.py": 32, "test_video_folder.py": 28,
    "test_mesh.py": 27, "test_predict.py": 25, "test_train.py": 23, "test_featurizer.py": 10,
    "test_figures.py": 9,
}


def pytest_collection_modifyitems(config, items):
  """Files in the order of FILE_SECONDS, then those with the most slow tests (stable
  otherwise): pytest-xdist (`--dist loadfile`) hands files to its workers in this order, so
  the long ones start at once instead of leaving one worker alone with them at the end."""
  del config
  slow_per_file = {}
  for item in items:
    slow_per_file[item.fspath] = (slow_per_file.get(item.fspath, 0)
                                  + (item.get_closest_marker("slow") is not None))
  items.sort(key=lambda item: (-FILE_SECONDS.get(item.fspath.basename, 0),
                               -slow_per_file[item.fspath]))
