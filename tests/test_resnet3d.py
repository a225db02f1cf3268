"""ResNet3D-18: torchvision r3d_18's layers and parameter counts, with time kept."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import models
from simper_jax.models import resnet3d
from tiny import xla_optimizations

# torchvision.models.video.r3d_18(): trainable parameters of each part (DATASETS.md; the
# counts torchvision's model gives with sum(p.numel() for p in module.parameters())).
R3D_18 = {"stem": 28_352, "stage1": 442_880, "stage2": 1_557_760, "stage3": 6_228_480,
          "stage4": 24_908_800}
R3D_18_BACKBONE = 33_166_272


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def full_size_params():
  # eval_shape: the counts without materializing 33M parameters.
  variables = jax.eval_shape(lambda: resnet3d.Model().init(jax.random.key(0),
                                                           jnp.zeros((1, 4, 16, 16, 3))))
  return variables["params"]


def test_parameter_counts_per_stage_match_torchvision(full_size_params):
  params = full_size_params
  assert _count({k: v for k, v in params.items() if k.startswith("stem")}) == R3D_18["stem"]
  for stage in range(1, 5):
    found = _count({k: v for k, v in params.items() if k.startswith(f"stage{stage}_")})
    assert found == R3D_18[f"stage{stage}"], f"stage {stage}"
  backbone = _count({k: v for k, v in params.items() if k != "projection"})
  assert backbone == R3D_18_BACKBONE
  assert _count(params["projection"]) == 512 + 1  # the 1×1 projection replacing Dense(400)


def test_layers_are_torchvisions():
  params = jax.eval_shape(lambda: resnet3d.Model().init(
      jax.random.key(0), jnp.zeros((1, 4, 16, 16, 3))))["params"]
  assert params["stem_conv"]["kernel"].shape == (3, 7, 7, 3, 64)
  assert "bias" not in params["stem_conv"]
  block = params["stage2_block1"]
  assert block["Conv_0"]["kernel"].shape == (3, 3, 3, 64, 128)
  assert block["Conv_2"]["kernel"].shape == (1, 1, 1, 64, 128)  # the shortcut
  assert "Conv_2" not in params["stage1_block1"] and "Conv_2" not in params["stage2_block2"]


def test_output_is_one_value_per_frame_and_time_is_not_strided():
  model = resnet3d.Model(widths=(4, 8, 8, 8))
  video = jax.random.uniform(jax.random.key(1), (2, 12, 16, 16, 3))
  # Jitted, as in training (one compilation per function, not one per operation); shapes
  # alone by eval_shape, which compiles nothing.
  variables = jax.jit(model.init)(jax.random.key(0), video)
  apply = jax.jit(model.apply)
  out = apply(variables, video)
  assert out.shape == (2, 12) and out.dtype == jnp.float32
  # Every stage keeps the 12 frames (torchvision's strides would leave 12 → 6 → 3 → 2).
  _, state = jax.eval_shape(functools.partial(model.apply, capture_intermediates=True,
                                              mutable=["intermediates"]), variables, video)
  for stage in range(1, 5):
    features = state["intermediates"][f"stage{stage}_block2"]["__call__"][0]
    assert features.shape[1] == 12, f"stage {stage} strides time"
  # And frames stay local: the last frame's value does not move when the first frame changes
  # by more than the receptive field away (stem 3 + 16 convs of 3 frames: 17 frames each side
  # would reach; with 40 frames, frame 39 is out of reach of frame 0).
  long_video = jax.random.uniform(jax.random.key(2), (1, 40, 16, 16, 3))
  base = apply(variables, long_video)
  moved = apply(variables, long_video.at[:, 0].add(1.0))
  np.testing.assert_allclose(moved[:, -1], base[:, -1], rtol=0, atol=0)
  assert abs(float(moved[0, 0] - base[0, 0])) > 0


def test_spatial_stride_matches_torchvision_output_sizes():
  # torchvision r3d_18 on 112×112: stem 56, stages 56, 28, 14, 7.
  model = resnet3d.Model(widths=(2, 2, 2, 2))
  video = jnp.zeros((1, 2, 112, 112, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), video)  # shapes: nothing computed
  _, state = jax.eval_shape(functools.partial(model.apply, capture_intermediates=True,
                                              mutable=["intermediates"]), variables, video)
  sizes = [state["intermediates"][f"stage{s}_block2"]["__call__"][0].shape[2:4]
           for s in range(1, 5)]
  assert sizes == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_bfloat16_compute_keeps_float32_params_and_output():
  model = resnet3d.Model(widths=(4, 4, 4, 4), dtype="bfloat16")
  video = jnp.ones((1, 4, 8, 8, 1)) * 0.5
  variables = jax.jit(model.init)(jax.random.key(0), video)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables["params"]))
  out = jax.jit(model.apply)(variables, video)
  assert out.dtype == jnp.float32 and out.shape == (1, 4)


def test_registered_by_name():
  assert models.get("resnet3d18") is resnet3d.Model
  assert set(models.model_kwargs({"name": "resnet3d18", "widths": (8,) * 4, "frame_depth": 10,
                                  "dtype": "float32"})) == {"widths", "dtype"}


@pytest.mark.slow
def test_fsdp_and_bfloat16_train_resnet3d18(tmp_path):
  """The Countix tiny config (ResNet3D-18) on 8 devices: split 4 ways over fsdp it gives the
  data-parallel losses, its kernels are sharded; in bf16 it stays close to them."""
  from configs import countix  # pylint: disable=g-import-not-at-top
  from simper_jax import train  # pylint: disable=g-import-not-at-top

  def run(name, **overrides):
    config = countix.get_config("tiny")
    config.data.data_dir = str(tmp_path / "tfds")
    config.model.widths = (8, 8, 8, 8)
    config.num_steps = 2
    for field, value in overrides.items():
      section, key = field.split(".") if "." in field else (None, field)
      (config[section] if section else config)[key] = value
    return train.train(config, str(tmp_path / name))

  data_state, data_history, _ = run("data")
  fsdp_state, fsdp_history, _ = run("fsdp", mesh=(("data", 2), ("fsdp", 4)))
  np.testing.assert_allclose([l for _, l in fsdp_history], [l for _, l in data_history],
                             rtol=1e-5)
  kernel = fsdp_state.params["encoder"]["stage4_block2"]["Conv_0"]["kernel"]
  assert "fsdp" in kernel.sharding.spec
  assert kernel.addressable_shards[0].data.size == kernel.size // 4
  # bfloat16 compiled as a user's run is: how close it stays depends on the compiler's rounding.
  with xla_optimizations():
    _, bf16_history, _ = run("bf16", mesh=(("data", 2), ("fsdp", 4)),
                             **{"model.dtype": "bfloat16"})
  assert np.all(np.isfinite([l for _, l in bf16_history]))
  np.testing.assert_allclose([l for _, l in bf16_history], [l for _, l in data_history],
                             rtol=0.05)
