"""MoCo v2 (Chen et al. 2020) on the feature signal: a momentum encoder and a queue of keys.

The query is view 1 through the encoder and an MLP projector; its key is view 2 through the
*momentum* encoder and projector (an EMA of the online ones, `moco.momentum`), never trained by
the optimizer. InfoNCE (τ = `moco.temperature`) against the key and a queue of the last
`moco.queue_size` keys, which are then enqueued. The momentum weights, their own BatchNorm
statistics, the queue and its pointer live in the train state's `extra`, so they are
checkpointed and a resumed run continues exactly. MoCo's shuffled BatchNorm is not
reproduced: under jit the key encoder's BatchNorm sees the whole global batch at once.
"""

import functools

import jax
import jax.numpy as jnp

from simper_jax.methods import base


def check_config(config, fail) -> None:
  c = config.moco
  base.check_window(fail, config, "moco")
  base.check_positive(fail, c, "moco", "temperature")
  base.check_momentum(fail, c.momentum, "moco.momentum")
  base.check_widths(fail, c.projector, "moco.projector")
  if not (isinstance(c.queue_size, int) and c.queue_size > 0
          and c.queue_size % config.batch_size == 0):
    fail("moco.queue_size", f"expected a positive multiple of the global batch "
                            f"(batch_size={config.batch_size}): each step enqueues one key per "
                            f"clip.")


def build(config, **unused_context) -> base.Method:
  c = config.moco
  projector = base.MLP(tuple(c.projector), batch_norm=c.projector_batch_norm)

  def init_extra(key, params, batch_stats):
    queue = base.l2_normalize(jax.random.normal(key, (c.queue_size, c.projector[-1])))
    return {"target": {"params": params, "batch_stats": batch_stats}, "queue": queue,
            "pointer": jnp.zeros((), jnp.int32)}

  project = functools.partial(base.encode_and_project, projector)

  def loss(params, batch_stats, extra, encode, views, aux, labels, step):
    del aux, labels, step
    queries, stats = project(params, batch_stats, encode, views[:, 0])
    target = jax.lax.stop_gradient(extra["target"])
    keys, target_stats = project(target["params"], target["batch_stats"], encode, views[:, 1])
    keys = jax.lax.stop_gradient(keys)
    value = base.info_nce_with_queue(queries, keys, extra["queue"], c.temperature)
    return value, (stats, {"per_example": {"keys": base.l2_normalize(keys)},
                           "latest": {"target_batch_stats": target_stats}})

  def update_extra(extra, params, batch_stats, aux_out, step):
    del batch_stats, step
    queue, pointer = base.enqueue(extra["queue"], extra["pointer"],
                                  aux_out["per_example"]["keys"])
    target = {"params": base.ema(extra["target"]["params"], params, c.momentum),
              "batch_stats": aux_out["latest"]["target_batch_stats"]}
    return {"target": target, "queue": queue, "pointer": pointer}

  return base.Method(
      window=c.window,
      make_views=lambda key, clip: base.two_views(key, clip, window=c.window,
                                                  augment_kwargs=config.augment.to_dict()),
      init_heads=lambda key, length: base.init_heads(key, length, projector=projector),
      init_extra=init_extra, loss=loss, update_extra=update_extra)
