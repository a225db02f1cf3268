"""SimCLR (Chen et al. 2020) on the feature signal: two views, an MLP projector, NT-Xent.

Views: two random windows of a clip at its own speed (no speed change: SimCLR knows nothing of
periodicity), each with the invariant augmentations of docs/method.md §2. The projector reads
the encoder's feature signal [L] of each view. Negatives: every other view in the *global*
batch (`base.nt_xent` under jit over the whole batch).
"""

from simper_jax.methods import base


def check_config(config, fail) -> None:
  c = config.simclr
  base.check_window(fail, config, "simclr")
  base.check_positive(fail, c, "simclr", "temperature")
  base.check_widths(fail, c.projector, "simclr.projector")
  base.check_in_batch_negatives(fail, config, "SimCLR")


def build(config, **unused_context) -> base.Method:
  c = config.simclr
  projector = base.MLP(tuple(c.projector), batch_norm=c.projector_batch_norm)

  def loss(params, batch_stats, extra, encode, views, aux, labels, step):
    del extra, aux, labels, step
    z, stats = project_two_views(params, batch_stats, encode, projector, views)
    return base.nt_xent(z[:, 0], z[:, 1], c.temperature), (stats, base.no_aux_out())

  return base.Method(
      window=c.window,
      make_views=lambda key, clip: base.two_views(key, clip, window=c.window,
                                                  augment_kwargs=config.augment.to_dict()),
      init_heads=lambda key, length: base.init_heads(key, length, projector=projector),
      loss=loss)


def project_two_views(params, batch_stats, encode, projector, views):
  """views [B, 2, L, H, W, C] -> projections [B, 2, D] and the new batch statistics (encoder
  and projector). Both views go through the encoder in one call, so BatchNorm sees them all."""
  z, stats = base.encode_and_project(projector, params, batch_stats, encode,
                                     views.reshape((-1,) + views.shape[2:]))
  return z.reshape(views.shape[0], 2, -1), stats
