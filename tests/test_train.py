"""The training loop end to end on the tiny config: sharding, determinism, resume, bad input."""

import json
import os

import jax
import numpy as np
import pytest

from simper_jax import checkpoint
from simper_jax import train
from tiny import PLAIN_EVALUATION
from tiny import run_main_here
from tiny import signal_at_line
from tiny import tiny_config


def tensorboard_scalars(folder: str) -> set[tuple[str, int]]:
  """(tag, step) of every scalar in the TensorBoard event files of `folder`. The files are
  TFRecords of Event protos; read here by hand, as neither TensorFlow nor TensorBoard is a
  dependency (tensorboardX, which writes them, has the proto but no reader)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  found = set()
  for name in os.listdir(folder):
    with open(os.path.join(folder, name), "rb") as f:
      data = f.read()
    offset = 0
    while offset < len(data):  # [length u64][crc u32][record][crc u32]
      length = int.from_bytes(data[offset:offset + 8], "little")
      event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
      found |= {(value.tag, event.step) for value in event.summary.value}
      offset += 16 + length
  return found


def params_of(state):
  return jax.tree.map(np.asarray, jax.device_get(state.params))


def test_tiny_run_end_to_end_and_load_encoder(tiny_run):
  workdir = tiny_run.workdir
  assert set(tiny_run.results) == {"fft", "1nn", "linear_probe", "train_mean"}
  with open(os.path.join(workdir, "results.json")) as f:
    saved = json.load(f)
  assert saved["step"] == 4 and saved["test"]["fft"]["mae"] == tiny_run.results["fft"]["mae"]
  # The run was made in this process (the tiny_run fixture): it left no file of its own open.
  assert not [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(
      f"/proc/self/fd/{fd}").startswith(os.path.realpath(workdir))]
  scalars = tensorboard_scalars(os.path.join(workdir, "tensorboard"))
  assert {step for tag, step in scalars if tag == "train/loss"} == {1, 2, 3, 4}
  assert ("eval/fft/mae", 4) in scalars and ("eval/linear_probe/mae", 4) in scalars

  module, variables = checkpoint.load_encoder(workdir)
  assert set(variables) == {"params", "batch_stats"}
  # The FFT readout's settings travel with the encoder (the README's snippet reads them); the
  # harmonic, chosen on the training split, from results.json.
  assert saved["fft_harmonic"] == tiny_run.results["fft"]["harmonic"] in (1, 2, 3)
  assert checkpoint.readout_settings(workdir) == {"fps": 30.0, "band": (0.5, 5.0),
                                                  "harmonic": saved["fft_harmonic"]}
  video = np.random.default_rng(0).uniform(size=(2, 24, 8, 8, 1)).astype(np.float32)
  signals = module.apply(variables, video)
  assert signals.shape == (2, 24)
  # The same numbers as the final state of the run, restored from an older step too.
  module_2, variables_2 = checkpoint.load_encoder(workdir, step=2)
  assert not np.allclose(np.asarray(module_2.apply(variables_2, video)), np.asarray(signals))


def test_same_seed_same_loss_on_one_and_eight_devices(data_dir, tmp_path):
  config = tiny_config(data_dir, num_steps=3)
  _, one, _ = train.train(config, str(tmp_path / "one"), devices=jax.devices()[:1])
  state8, eight, _ = train.train(config, str(tmp_path / "eight"))
  assert [s for s, _ in one] == [1, 2, 3]
  np.testing.assert_allclose(one[-1][1], eight[-1][1], rtol=1e-5)
  assert len(state8.params["encoder"]["Conv_0"]["kernel"].sharding.device_set) == 8


def test_resume_after_step_2_matches_an_uninterrupted_run(data_dir, tmp_path):
  straight_state, straight, _ = train.train(tiny_config(data_dir, num_steps=4),
                                            str(tmp_path / "straight"))
  workdir = str(tmp_path / "resumed")
  train.train(tiny_config(data_dir, num_steps=2), workdir)  # stops after the step-2 checkpoint
  resumed_state, resumed, _ = train.train(tiny_config(data_dir, num_steps=4), workdir)
  assert [s for s, _ in resumed] == [3, 4]
  np.testing.assert_allclose(resumed[-1][1], straight[-1][1], rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               params_of(resumed_state), params_of(straight_state))


@pytest.mark.parametrize("override, message", [
    ({"simper.num_speeds": 1}, r"simper.num_speeds=1: SimPer contrasts M >= 2 speeds"),
    ({"simper.window": 25}, r"simper.window=25: expected 1 <= window <= the clip length"),
    ({"simper.similarity": "dot"}, r"simper.similarity='dot': expected one of"),
    ({"simper.speed_range": (2.0, 1.0)}, r"simper.speed_range=\(2.0, 1.0\)"),
    ({"simper.dft": "fast"}, r"simper.dft='fast': expected one of \('fft', 'matmul'\)"),
    ({"model.name": "resnet99"}, r"model.name='resnet99'"),
    ({"batch_size": 6}, r"batch_size=6: expected a positive multiple of the 8 devices"),
])
def test_bad_config_values_are_named(data_dir, tmp_path, override, message):
  with pytest.raises(ValueError, match=message):
    train.train(tiny_config(data_dir, **override), str(tmp_path / "bad"))


def test_workdir_of_another_config_is_refused(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train.train(tiny_config(data_dir, num_steps=1), workdir)
  with pytest.raises(ValueError, match=r"different config \(simper.label_temperature: saved 0.1, "
                                       r"now 0.5\).*new --workdir"):
    train.train(tiny_config(data_dir, num_steps=2, **{"simper.label_temperature": 0.5}), workdir)
  # How the similarities are computed is not what is learned: a run resumes with the other.
  _, history, _ = train.train(tiny_config(data_dir, num_steps=2, **{"simper.dft": "matmul"}),
                              workdir)
  assert [step for step, _ in history] == [2]


def test_missing_mnist_is_a_clear_error(data_dir, tmp_path):
  config = tiny_config(data_dir, **{"data.builder.digits": "mnist",
                                    "data.manual_dir": str(tmp_path / "nowhere")})
  with pytest.raises(FileNotFoundError, match=r"nowhere/mnist\.npz' does not exist"):
    train.train(config, str(tmp_path / "run"))


def test_load_encoder_without_a_checkpoint(tmp_path):
  with pytest.raises(FileNotFoundError, match="No checkpoint under"):
    checkpoint.load_encoder(str(tmp_path))


@pytest.mark.slow
def test_sigterm_saves_exits_and_the_rerun_matches_an_uninterrupted_run(data_dir, tmp_path):
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  steps = 100  # with log_every=1, over 90 steps of slack for the signal to land before the end
  args = ["--config=configs/rotating_digits.py:tiny", f"--config.data.data_dir={data_dir}",
          "--config.checkpoint_every=1000", f"--workdir={tmp_path / 'stopped'}"]
  repo = os.path.dirname(os.path.dirname(__file__))
  process = subprocess.Popen(
      [sys.executable, "-m", "simper_jax.main", *args, f"--config.num_steps={steps}"], cwd=repo,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  output = signal_at_line(process, "step      5/", signal.SIGTERM)  # once training has started
  assert process.wait(timeout=300) == 143, "".join(output)
  message = next(line for line in output if line.startswith("SIGTERM received"))
  stopped_at = int(message.split("at step ")[1].split("/")[0])
  assert 5 <= stopped_at < steps
  assert checkpoint.make_manager(str(tmp_path / "stopped"), tiny_config(data_dir)).latest_step() \
      == stopped_at
  # Resumed for three more steps, not to the end: num_steps does not change the schedules,
  # and three steps past the checkpoint show the restored state and data stream. The rerun
  # is the command's parse_flags and main in this process; its evaluation is the plain one
  # (eval settings may differ between a run and its resumption).
  end = stopped_at + 3
  rerun = run_main_here(*args, f"--config.num_steps={end}", *PLAIN_EVALUATION)
  assert rerun.returncode == 0 and f"Resumed from {tmp_path / 'stopped'} at step {stopped_at}" \
      in rerun.stdout, rerun.stderr
  state, _, _ = train.train(tiny_config(data_dir, num_steps=end, checkpoint_every=1000),
                            str(tmp_path / "uninterrupted"))
  _, resumed = checkpoint.load_encoder(str(tmp_path / "stopped"))
  for a, b in zip(jax.tree.leaves(resumed["params"]), jax.tree.leaves(params_of(state)["encoder"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_bad_config_value_is_a_message_not_a_traceback(tmp_path):
  result = run_main_here("--config=configs/rotating_digits.py:tiny",
                         "--config.mesh=(('data', 3),)", f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 2
  assert ("Error: config.mesh=(('data', 3),): the axis sizes multiply to 3, which does not "
          "divide the 8 devices.") in result.stderr
  assert "Traceback" not in result.stderr


def test_data_iterator_restored_mid_epoch_continues_the_uninterrupted_stream():
  """The iterator's state, saved in the middle of an epoch (and across an epoch boundary),
  restores to the very batches an uninterrupted iterator yields next."""
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  source = [{"video": np.full((2, 2, 2, 1), i, np.uint8), "label": np.float32(i)}
            for i in range(10)]  # 10 examples, batches of 4: epochs end mid-batch
  ids = lambda batch: batch["label"].astype(int).tolist()
  uninterrupted = pipeline.train_iterator(source, global_batch_size=4, seed=3, label_key="label")
  stream = [ids(next(uninterrupted)) for _ in range(8)]
  assert sorted(sum(stream[:5], [])) == sorted(list(range(10)) * 2)  # two epochs, none dropped
  for stop in (1, 3):  # mid-epoch; and after the batch that crosses the first epoch's end
    first = pipeline.train_iterator(source, global_batch_size=4, seed=3, label_key="label")
    for _ in range(stop):
      next(first)
    state = first.get_state()
    resumed = pipeline.train_iterator(source, global_batch_size=4, seed=3, label_key="label")
    resumed.set_state(state)
    assert [ids(next(resumed)) for _ in range(8 - stop)] == stream[stop:]


def test_batches_carry_each_examples_index_and_epoch():
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  source = [{"video": np.full((2, 2, 2, 1), i, np.uint8), "label": np.float32(i)}
            for i in range(10)]
  iterator = pipeline.train_iterator(source, global_batch_size=4, seed=3, label_key="label")
  batches = [next(iterator) for _ in range(5)]  # 20 examples: two epochs, the 3rd batch split
  for batch in batches:
    assert batch["index"].dtype == np.int32 and batch["epoch"].dtype == np.int32
    np.testing.assert_array_equal(batch["index"], batch["label"])  # label i is example i
    np.testing.assert_array_equal(batch["index"], batch["video"][:, 0, 0, 0, 0])
  epochs = np.concatenate([b["epoch"] for b in batches])
  np.testing.assert_array_equal(epochs, [0] * 10 + [1] * 10)


def test_device_prefetch_reads_ahead_and_reports_the_consumed_state():
  from simper_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  source = [{"video": np.full((2, 2, 2, 1), i, np.uint8), "label": np.float32(i)}
            for i in range(10)]
  make = lambda: pipeline.train_iterator(source, global_batch_size=4, seed=3, label_key="label")
  reference, host = make(), make()
  transferred = []
  batches = pipeline.DevicePrefetch(host, lambda b: transferred.append(b) or b, size=2)
  for k in range(4):
    expected = next(reference)
    batch = next(batches)
    np.testing.assert_array_equal(batch["index"], expected["index"])
    assert len(transferred) == k + 2  # the next batch is already on the device
    assert batches.get_state() == reference.get_state() != host.get_state()
  resumed = make()
  resumed.set_state(batches.get_state())
  np.testing.assert_array_equal(next(resumed)["index"], next(reference)["index"])
