"""Several processes for real: `jax.distributed` on localhost, 2 processes × 4 CPU devices.

Each test starts `python -m simper_jax.main` twice with --coordinator_address/--num_processes/
--process_id (as on a GPU cluster; --multihost does the same on a TPU pod) and compares with one
process of 8 devices, run in the test process itself.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from simper_jax import checkpoint
from simper_jax import train
from tiny import PLAIN_EVALUATION
from tiny import tiny_config

pytestmark = pytest.mark.slow  # every test here starts several processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_processes(data_dir, workdir, *flags, num_processes=2,
                    config="configs/rotating_digits.py:tiny"):
  """Starts the run's processes, 8 / num_processes CPU devices each."""
  with socket.socket() as s:  # a free port for the coordinator
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={8 // num_processes}"}
  command = [sys.executable, "-m", "simper_jax.main", f"--config={config}",
             f"--config.data.data_dir={data_dir}", f"--workdir={workdir}",
             f"--coordinator_address=localhost:{port}", f"--num_processes={num_processes}",
             *flags]
  return [subprocess.Popen(command + [f"--process_id={i}"], cwd=REPO, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
          for i in range(num_processes)]


def finish(processes, timeout=300):
  """Waits for every process; returns (exit codes, outputs)."""
  outputs = [p.communicate(timeout=timeout)[0] for p in processes]
  return [p.returncode for p in processes], outputs


def losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line)["train/loss"] for line in f]


# Parameters whose gradient is zero in exact arithmetic, so that it is rounding noise that
# differs with the reduction order (1 vs 2 processes): the conv biases, which BatchNorm
# subtracts again, and the last BatchNorm's scale, since the loss's similarities are nearly
# invariant to the feature signal's scale. Adam divides by the gradient's scale and turns that
# noise into steps of up to ±lr in either run, possibly of opposite signs, so for these we can
# only check |difference| <= 2 × lr × steps.
NOISE_DRIVEN = {"['Conv_0']['bias']", "['Conv_1']['bias']", "['BatchNorm_1']['scale']"}


def assert_same_params(a, b, steps, learning_rate=1e-3):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
    name = jax.tree_util.keystr(path)
    if name in NOISE_DRIVEN:
      assert np.abs(np.asarray(x) - np.asarray(y)).max() <= 2 * learning_rate * steps, name
    else:
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6,
                                 err_msg=name)


def test_two_processes_match_one_process_of_eight_devices(data_dir, tmp_path):
  state, _, _ = train.train(tiny_config(data_dir, num_steps=3), str(tmp_path / "one"))
  codes, outputs = finish(start_processes(data_dir, tmp_path / "two", "--config.num_steps=3",
                                          *PLAIN_EVALUATION))
  assert codes == [0, 0], outputs
  assert "8 cpu device(s) in 2 process(es)" in outputs[0]
  # Only process 0 prints progress and results.
  assert "Test results at step 3" in outputs[0] and "Test results" not in outputs[1]
  # The same three losses, and the same parameters from the checkpoint both processes wrote.
  np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-5)
  assert len(losses(tmp_path / "two")) == 3
  _, two_variables = checkpoint.load_encoder(str(tmp_path / "two"))
  assert_same_params(two_variables["params"], jax.device_get(state.params["encoder"]), steps=3)

  # Downstream: the 2-process checkpoint loads in a plain single-device CPU process.
  script = ("import sys, numpy as np, jax; from simper_jax import checkpoint; "
            "assert jax.device_count() == 1; m, v = checkpoint.load_encoder(sys.argv[1]); "
            "x = np.random.default_rng(0).uniform(size=(2, 24, 8, 8, 1)).astype(np.float32); "
            "np.save(sys.argv[2], np.asarray(m.apply(v, x)))")
  subprocess.run([sys.executable, "-c", script, str(tmp_path / "two"), str(tmp_path / "out.npy")],
                 cwd=REPO, check=True, env={**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""})
  module = train.make_model(tiny_config(data_dir))
  x = np.random.default_rng(0).uniform(size=(2, 24, 8, 8, 1)).astype(np.float32)
  expected = module.apply(two_variables, x)  # as evaluated in this process
  np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.asarray(expected), rtol=1e-5,
                             atol=1e-6)


def test_sigterm_to_one_process_stops_both_at_one_step_and_the_rerun_matches(data_dir, tmp_path):
  steps = 100
  flags = (f"--config.num_steps={steps}", "--config.checkpoint_every=1000")
  processes = start_processes(data_dir, tmp_path / "stopped", *flags)
  output = []
  for line in processes[0].stdout:  # process 0 logs; the signal goes to process 1 only
    output.append(line)
    if line.startswith("step      5/"):
      processes[1].send_signal(signal.SIGTERM)
      break
  codes, rest = finish(processes)
  output = "".join(output) + rest[0]
  assert codes == [143, 143], (output, rest[1])
  message = next(line for line in output.splitlines() if line.startswith("SIGTERM received"))
  stopped_at = int(message.split("at step ")[1].split("/")[0])
  assert 5 <= stopped_at < steps and "on every process" in message
  manager = checkpoint.make_manager(str(tmp_path / "stopped"), tiny_config(data_dir))
  assert manager.latest_step() == stopped_at

  # The same checkpoint resumed by a single process (a smaller slice): it reads process 0's
  # iterator state, so its next two steps see the batches the 2-process rerun sees.
  shutil.copytree(tmp_path / "stopped", tmp_path / "one_process")
  train.train(tiny_config(data_dir, num_steps=stopped_at + 2, checkpoint_every=1000),
              str(tmp_path / "one_process"))

  # The reruns go three steps past the checkpoint, not to the end: num_steps does not change
  # the schedules. What is compared is parameters and losses: the evaluation is the plain
  # one, without calibration and shifted sets (the SCAMPS test below evaluates them).
  rerun_flags = (f"--config.num_steps={stopped_at + 3}", "--config.checkpoint_every=1000",
                 *PLAIN_EVALUATION)
  codes, outputs = finish(start_processes(data_dir, tmp_path / "stopped", *rerun_flags))
  assert codes == [0, 0], outputs
  assert f"at step {stopped_at} (" in outputs[0]
  np.testing.assert_allclose(losses(tmp_path / "one_process")[-2:],
                             losses(tmp_path / "stopped")[stopped_at:stopped_at + 2], rtol=1e-5)
  # Against a 2-process run never interrupted: same reduction order, so equal to rounding.
  codes, outputs = finish(start_processes(data_dir, tmp_path / "uninterrupted", *rerun_flags))
  assert codes == [0, 0], outputs
  _, resumed = checkpoint.load_encoder(str(tmp_path / "stopped"))
  _, uninterrupted = checkpoint.load_encoder(str(tmp_path / "uninterrupted"))
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_two_processes_prepare_evaluate_and_fine_tune_like_one(tmp_path, tiny_scamps_run):
  """The rPPG path: process 0 writes and prepares synthetic SCAMPS while process 1 waits;
  heart-rate readouts and fine-tuning run on global batches; one results.json, as the same
  config's run in one process of 8 devices (the session's, on its own copy of the data)."""
  codes, outputs = finish(start_processes(str(tmp_path / "tfds"), tmp_path / "two",
                                          config="configs/scamps.py:tiny"))
  assert codes == [0, 0], outputs
  assert outputs[0].count("Synthetic labels:") == 1 and "Synthetic labels:" not in outputs[1]
  one = tiny_scamps_run.results
  with open(tmp_path / "two" / "results.json") as f:
    two = json.load(f)["test"]
  assert set(two) == set(one) and "finetune_50%" in two
  for readout, metrics in one.items():
    np.testing.assert_allclose(two[readout]["mae"], metrics["mae"], rtol=1e-3, atol=1e-3,
                               err_msg=readout)
