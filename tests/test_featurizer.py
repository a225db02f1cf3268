"""The 3D-CNN's two convolution implementations give the same values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax import sharding
from simper_jax.models import featurizer3d


def _reference_conv(x, kernel):
  """XLA's 3D convolution in the usual [N, T, H, W, C] layout, on time-minor input/output."""
  x = jnp.transpose(x, (0, 3, 1, 2, 4))  # [N, H, W, T, C] -> [N, T, H, W, C]
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1, 1), "SAME",
                                   dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  return jnp.transpose(y, featurizer3d.TIME_MINOR)


@pytest.mark.parametrize("conv", [featurizer3d.conv3d_im2col, featurizer3d.conv3d_xla])
@pytest.mark.parametrize("kernel_shape", [(5, 3, 3, 4, 6), (3, 3, 3, 1, 2), (4, 2, 2, 3, 5),
                                          (1, 1, 1, 2, 3), (3, 1, 3, 2, 2)])
def test_time_minor_convs_equal_the_usual_3d_conv_with_gradients(conv, kernel_shape):
  # H, W, T all different, so a transposed axis or kernel cannot pass.
  x = jax.random.normal(jax.random.key(0), (2, 6, 5, 7, kernel_shape[3]))
  kernel = jax.random.normal(jax.random.key(1), kernel_shape)
  cotangent = jax.random.normal(jax.random.key(2), x.shape[:4] + (kernel_shape[4],))
  np.testing.assert_allclose(conv(x, kernel), _reference_conv(x, kernel), rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda x, k: jnp.sum(conv(x, k) * cotangent)
  ours = jax.grad(loss(conv), argnums=(0, 1))(x, kernel)
  reference = jax.grad(loss(_reference_conv), argnums=(0, 1))(x, kernel)
  for a, b in zip(ours, reference):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_pool_is_a_2x2_spatial_max_pool():
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3, 4))  # time-minor, odd H dropped
  expected = jax.lax.reduce_window(x[:, :6], -jnp.inf, jax.lax.max, (1, 2, 2, 1, 1),
                                   (1, 2, 2, 1, 1), "VALID")
  np.testing.assert_array_equal(featurizer3d.spatial_max_pool(x), expected)


def test_model_is_the_same_function_and_parameters_with_either_conv():
  video = jax.random.uniform(jax.random.key(0), (2, 12, 10, 10, 1))
  xla = featurizer3d.Model(widths=(4, 8), temporal_kernel=3, conv_impl="xla")
  im2col = featurizer3d.Model(widths=(4, 8), temporal_kernel=3, conv_impl="im2col")
  # Each computation jitted, as in training: one compilation, not one per operation.
  variables = jax.jit(xla.init)(jax.random.key(1), video)
  assert jax.tree.structure(variables) == jax.tree.structure(
      jax.jit(im2col.init)(jax.random.key(1), video))
  assert set(variables["params"]) >= {"Conv_0", "Conv_1", "Conv_2"}  # nn.Conv's names

  def loss(model):
    def fn(params):
      signals, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                               video, train=True, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(signals))
    return jax.jit(jax.value_and_grad(fn))(variables["params"])

  (value_a, grads_a), (value_b, grads_b) = loss(xla), loss(im2col)
  np.testing.assert_allclose(value_a, value_b, rtol=1e-5)
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_a))
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * scale)


def test_auto_uses_im2col_on_cpu_only():
  conv = featurizer3d.Conv3D(2, (3, 3, 3), impl="auto")
  x = jnp.ones((1, 5, 5, 4, 1))
  variables = conv.init(jax.random.key(0), x)
  primitives = {e.primitive.name for e in jax.make_jaxpr(
      lambda v: conv.apply(v, x))(variables).jaxpr.eqns}
  assert jax.default_backend() == "cpu" and "concatenate" in primitives
  with pytest.raises(ValueError, match="Unknown conv impl 'fast'"):
    featurizer3d.Conv3D(2, (3, 3, 3), impl="fast").init(jax.random.key(0), x)


class _PlainFeaturizer(nn.Module):
  """The featurizer written the obvious way, in [N, T, H, W, C] with Flax's layers."""

  @nn.compact
  def __call__(self, video, train):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)
    x = video
    for width in (4, 8):
      x = nn.relu(norm()(nn.Conv(width, (3, 3, 3), padding="SAME")(x)))
      x = nn.max_pool(x, (1, 2, 2), strides=(1, 2, 2))
    x = nn.relu(norm()(nn.Conv(1, (1, 1, 1))(x)))
    return jnp.mean(x, axis=(2, 3, 4))


@pytest.mark.parametrize("conv_impl", ["im2col", "xla"])
def test_model_in_time_minor_layout_is_the_plain_featurizer(conv_impl):
  # T, H, W all different and H odd after one pool, so a wrong axis cannot pass.
  video = jax.random.uniform(jax.random.key(0), (3, 11, 14, 10, 1))
  model = featurizer3d.Model(widths=(4, 8), temporal_kernel=3, conv_impl=conv_impl)
  variables = jax.jit(model.init)(jax.random.key(1), video)
  train_mode = lambda module: jax.jit(lambda v, x: module.apply(v, x, train=True,
                                                                mutable=["batch_stats"]))
  ours, our_stats = train_mode(model)(variables, video)
  plain, plain_stats = train_mode(_PlainFeaturizer())(variables, video)
  assert ours.shape == (3, 11)
  np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(our_stats), jax.tree.leaves(plain_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cpu_compiler_options_keep_batchnorm_reductions_plain_and_equal():
  # 40 frames: XLA:CPU's tree-reduction rewrite turns the BatchNorm statistics (and their
  # gradients) over a dimension longer than 32 into slow reduce-windows
  # (sharding.CPU_COMPILER_OPTIONS says why); the options keep plain reductions, with the
  # values of the default compilation.
  video = jax.random.uniform(jax.random.key(0), (2, 40, 8, 8, 1))
  model = featurizer3d.Model(widths=(4, 8), temporal_kernel=3)
  variables = jax.jit(model.init)(jax.random.key(1), video)
  loss = lambda params, video: jnp.sum(jnp.sin(model.apply(
      {"params": params, "batch_stats": variables["batch_stats"]}, video, train=True,
      mutable=["batch_stats"])[0]))
  grad = jax.value_and_grad(loss)
  options = sharding.compiler_options()
  assert options == sharding.CPU_COMPILER_OPTIONS  # the test devices are CPUs
  default = jax.jit(grad).lower(variables["params"], video).compile()
  plain = jax.jit(grad, compiler_options=options).lower(variables["params"], video).compile()
  assert "reduce-window" in default.as_text()
  assert "reduce-window" not in plain.as_text()
  (value_a, grads_a), (value_b, grads_b) = (default(variables["params"], video),
                                            plain(variables["params"], video))
  np.testing.assert_allclose(value_a, value_b, rtol=1e-5)
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_a))
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * scale)
