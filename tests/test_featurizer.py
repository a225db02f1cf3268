"""The 3D-CNN's two convolution implementations give the same values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simper_jax.models import featurizer3d


def _xla_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1, 1), "SAME",
                                      dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))


@pytest.mark.parametrize("kernel_shape", [(5, 3, 3, 4, 6), (3, 3, 3, 1, 2), (4, 2, 2, 3, 5),
                                          (1, 1, 1, 2, 3)])
def test_im2col_conv_equals_xla_conv_with_gradients(kernel_shape):
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 5, kernel_shape[3]))
  kernel = jax.random.normal(jax.random.key(1), kernel_shape)
  cotangent = jax.random.normal(jax.random.key(2), x.shape[:4] + (kernel_shape[4],))
  np.testing.assert_allclose(featurizer3d.conv3d_im2col(x, kernel), _xla_conv(x, kernel),
                             rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda x, k: jnp.sum(conv(x, k) * cotangent)
  ours = jax.grad(loss(featurizer3d.conv3d_im2col), argnums=(0, 1))(x, kernel)
  reference = jax.grad(loss(_xla_conv), argnums=(0, 1))(x, kernel)
  for a, b in zip(ours, reference):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_model_is_the_same_function_and_parameters_with_either_conv():
  video = jax.random.uniform(jax.random.key(0), (2, 12, 10, 10, 1))
  xla = featurizer3d.Model(widths=(4, 8), temporal_kernel=3, conv_impl="xla")
  im2col = featurizer3d.Model(widths=(4, 8), temporal_kernel=3, conv_impl="im2col")
  variables = xla.init(jax.random.key(1), video)
  assert jax.tree.structure(variables) == jax.tree.structure(
      im2col.init(jax.random.key(1), video))
  assert set(variables["params"]) >= {"Conv_0", "Conv_1", "Conv_2"}  # nn.Conv's names

  def loss(model):
    def fn(params):
      signals, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                               video, train=True, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(signals))
    return jax.value_and_grad(fn)(variables["params"])

  (value_a, grads_a), (value_b, grads_b) = loss(xla), loss(im2col)
  np.testing.assert_allclose(value_a, value_b, rtol=1e-5)
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_a))
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * scale)


def test_auto_uses_im2col_on_cpu_only():
  conv = featurizer3d.Conv3D(2, (3, 3, 3), impl="auto")
  x = jnp.ones((1, 4, 5, 5, 1))
  variables = conv.init(jax.random.key(0), x)
  primitives = {e.primitive.name for e in jax.make_jaxpr(
      lambda v: conv.apply(v, x))(variables).jaxpr.eqns}
  assert jax.default_backend() == "cpu" and "concatenate" in primitives
  with pytest.raises(ValueError, match="Unknown conv impl 'fast'"):
    featurizer3d.Conv3D(2, (3, 3, 3), impl="fast").init(jax.random.key(0), x)
