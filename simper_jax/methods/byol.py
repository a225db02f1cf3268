"""BYOL (Grill et al. 2020) on the feature signal: online network + predictor, EMA target.

Two views of a clip (as SimCLR's). Online: encoder → projector → predictor; target: an EMA of
the online encoder and projector, whose momentum rises from `byol.base_momentum` (0.996) to 1
on a cosine over the run's nominal length (num_epochs, as the learning rate's schedule). Loss: the normalized MSE (2 − 2·cos) of each view's prediction
against the target projection of the other view, both directions summed. The target's weights
and its own BatchNorm statistics live in the train state's `extra` (checkpointed).
"""

import functools

import jax

from simper_jax.methods import base


def check_config(config, fail) -> None:
  c = config.byol
  base.check_window(fail, config, "byol")
  base.check_momentum(fail, c.base_momentum, "byol.base_momentum")
  base.check_widths(fail, c.projector, "byol.projector")
  base.check_widths(fail, c.predictor, "byol.predictor")


def build(config, *, total_steps: int, **unused_context) -> base.Method:
  c = config.byol
  projector = base.MLP(tuple(c.projector), batch_norm=True)
  predictor = base.MLP(tuple(c.predictor), batch_norm=True)

  def init_extra(key, params, batch_stats):
    del key
    online = lambda tree: {"encoder": tree["encoder"],
                           "heads": {"projector": tree["heads"]["projector"]}}
    return {"target": {"params": online(params), "batch_stats": online(batch_stats)}}

  project = functools.partial(base.encode_and_project, projector)

  def loss(params, batch_stats, extra, encode, views, aux, labels, step):
    del aux, labels, step
    b = views.shape[0]
    both = views.reshape((-1,) + views.shape[2:])  # [B·2, L, H, W, C]: one BatchNorm batch
    z, stats = project(params, batch_stats, encode, both)
    p, predictor_stats = base.apply_mlp(predictor, params["heads"]["predictor"],
                                        batch_stats["heads"]["predictor"], z)
    stats["heads"]["predictor"] = predictor_stats
    target = jax.lax.stop_gradient(extra["target"])
    z_target, target_stats = project(target["params"], target["batch_stats"], encode, both)
    p, z_target = p.reshape(b, 2, -1), jax.lax.stop_gradient(z_target).reshape(b, 2, -1)
    value = (base.normalized_mse(p[:, 0], z_target[:, 1])
             + base.normalized_mse(p[:, 1], z_target[:, 0]))
    return value, (stats, {"per_example": {}, "latest": {"target_batch_stats": target_stats}})

  def update_extra(extra, params, batch_stats, aux_out, step):
    del batch_stats
    momentum = base.cosine_momentum(step, total_steps, c.base_momentum)
    online = {"encoder": params["encoder"], "heads": {"projector": params["heads"]["projector"]}}
    return {"target": {"params": base.ema(extra["target"]["params"], online, momentum),
                       "batch_stats": aux_out["latest"]["target_batch_stats"]}}

  return base.Method(
      window=c.window,
      make_views=lambda key, clip: base.two_views(key, clip, window=c.window,
                                                  augment_kwargs=config.augment.to_dict()),
      init_heads=lambda key, length: base.init_heads(key, length, projector=projector,
                                                     predictor=predictor),
      init_extra=init_extra, loss=loss, update_extra=update_extra)
