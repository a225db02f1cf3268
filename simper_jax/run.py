"""Evaluating a run: train then evaluate (`train_and_evaluate`), or the latest checkpoint
(`evaluate_checkpoint`, --mode=eval); the test split's feature signals, every readout, their
confidences and calibrated intervals (`simper_jax.uncertainty`), results.json, the prediction
tables and the figures.

`train.py` is the training loop alone; what happens to the encoder it leaves is here.
"""

import contextlib
import os
import time

import jax
import ml_collections
import numpy as np
from tensorboardX import SummaryWriter

from simper_jax import checkpoint
from simper_jax import errors
from simper_jax import evaluate
from simper_jax import outputs
from simper_jax import figures
from simper_jax import finetune
from simper_jax import sharding
from simper_jax import train
from simper_jax import uncertainty
from simper_jax import workdir as run_files
from simper_jax.data import pipeline
from simper_jax.train import log


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, devices=None) -> dict:
  """Trains (resuming if possible), then evaluates; results also go to workdir/results.json."""
  with train.workdir_lock(workdir):
    config = pipeline.with_label_key(config, log)
    state, _, ctx = train.train(config, workdir, devices)
    return evaluate_encoder(config, workdir, ctx["model"],
                            {"params": state.params["encoder"],
                             "batch_stats": state.batch_stats["encoder"]},
                            ctx["sources"], ctx["sharding"], step=int(state.step),
                            tensorboard=True)


def evaluate_encoder(config, workdir, model, variables, sources, batch_sharding, *, step: int,
                     tensorboard: bool = False) -> dict:
  """All readouts of the encoder on the test split, how sure each prediction is, calibrated
  intervals and OOD flags; table, results.json, predictions.csv, uncertainty.npz, figures;
  with `tensorboard`, the metrics as scalars in workdir/tensorboard too.

  The readouts of `eval.protocol` (`evaluate.evaluate_protocol`: FFT, 1-NN, linear probe,
  train mean; by the heart-rate protocol for rPPG, with a row per `eval.classic_methods` and
  SNR, with counts for Countix, without the FFT readout for targets that are not
  frequencies); fine-tuning for each of `eval.finetune_fractions`. With
  `eval.calibration_fraction` > 0, whole recordings of the training split are held out: the
  readouts are fitted on the rest, their residuals there calibrate the intervals
  (`uncertainty.calibrate`) and their feature spectra set the OOD threshold: test data
  chooses nothing.
  """
  t0 = time.time()
  labelled = bool(config.data.label_key)
  encode = evaluate.make_encoder_fn(model, variables, batch_sharding)
  features = split_features(config, encode, sources, labelled, step)
  log(f"Computed the feature signals in {time.time() - t0:.0f} s (compilation included); "
      f"readouts ...")
  if labelled:
    features, sources = labelled_only(features, sources, config.data.label_key)
  parts = calibration_parts(config, features, sources) if "train" in features else None
  ood, ood_scores = ({}, None) if parts is None else ood_evaluation(
      config, encode, parts, features["test"], sources["test"])
  if not labelled:
    return unlabelled_evaluation(config, workdir, features["test"], step, ood, ood_scores)
  results, readouts, cal_readouts = labelled_readouts(config, model, variables, batch_sharding,
                                                      features, sources, parts)
  calibrated, intervals = uncertainty.calibrate(cal_readouts, readouts, config.eval.coverage)
  for name, metrics in uncertainty.selective_metrics(readouts).items():
    results[name].update(metrics, **calibrated.get(name, {}))
  seen_bands = [tuple(band) for band in config.eval.get("seen_bands", ())]
  test = features["test"]
  by_region = (outputs.region_results(readouts, test["label"], seen_bands) if seen_bands
               else {})
  if seen_bands and ood:
    uncertainty.add_region_aurocs(ood, test["label"], seen_bands)
  log_results(config, results, by_region, seen_bands, ood, parts,
              f"Test results at step {step} ({len(test['label'])} clips; evaluation took "
              f"{time.time() - t0:.0f} s)")
  ood_sets = ood.pop("scores_by_set", None)
  ood.pop("mahalanobis_test", None)
  if jax.process_index() == 0:
    payload = {"step": step, "method": config.method, "label": config.data.label_key,
               "unit": config.eval.get("unit", ""),
               "fft_harmonic": results.get("fft", {}).get("harmonic", 1),
               "coverage": config.eval.coverage if parts else None,
               "calibration": parts.summary() if parts else None, "test": results,
               "ood": ood or None, "predictions": "predictions.csv"}
    if by_region:
      payload.update(seen_bands=seen_bands, test_by_region=by_region)
    table = uncertainty.prediction_table(readouts, intervals, clip_ids(test), ood_scores,
                                         ood.get("threshold"))
    written = [outputs.write_csv(workdir, "predictions.csv", table)]
    if parts:
      written.append(uncertainty.save(workdir, cal_readouts, parts.ood_reference, ood,
                                      coverage=config.eval.coverage))
    path, replaced = outputs.write_results(workdir, payload)
    log(f"Wrote {path}, " + ", ".join(written) + "." + (f" {replaced}" if replaced else ""))
    if config.eval.get("figures", True):
      draw_figures(config, workdir, test, readouts, results.get("fft", {}).get("harmonic") or 1,
                   seen_bands, ood_sets=ood_sets, ood_threshold=ood.get("threshold"))
    if tensorboard:
      write_scalars(workdir, results, step)
  return results


def split_features(config, encode, sources: dict, labelled: bool, step: int) -> dict:
  """{split: `evaluate.compute_features` output} of the test split, and of the training split
  where something is fitted on it or calibrated with it."""
  e = config.eval
  present = sources["test"][0]
  keys = tuple(dict.fromkeys(
      (evaluate.feature_keys(e) if labelled else ())
      + tuple(k for k in outputs.UNLABELLED_KEYS if k in present)))
  calibrating = e.get("calibration_fraction", 0.0) > 0
  # Without labels the training split is read only for the OOD reference.
  splits = ("train", "test") if labelled or calibrating else ("test",)
  log(f"\nEvaluating the encoder of step {step}: feature signals of the "
      + " and ".join(f"{len(sources[split])} {split}" for split in splits) + " clips ...")
  features = {}
  for split in splits:
    batches = pipeline.eval_batches(sources[split], batch_size=e.batch_size,
                                    label_key=config.data.label_key, keys=keys)
    # The classic methods need no training, but calibrating them reads the held-out training
    # clips' colours; the input baselines choose their harmonic on the training clips' inputs.
    keep_inputs = (bool(e.get("input_baselines"))
                   or (bool(e.get("classic_methods")) and (split == "test" or calibrating)))
    features[split] = evaluate.compute_features(encode, batches, mean_rgb=keep_inputs)
  return features


def labelled_readouts(config, model, variables, batch_sharding, features: dict, sources: dict,
                      parts) -> tuple[dict, dict, dict]:
  """Every readout, fitted on the training split (without its calibration part, `parts`),
  on the test split and on the calibration part: ({readout: test metrics}, {readout:
  `evaluate.Readout` on test}, {readout: the same on the calibration part, or {}})."""
  e = config.eval
  fit = parts.fit if parts else features["train"]
  fit_source = parts.fit_source if parts else sources["train"]
  test = features["test"]
  results, readouts = evaluate.evaluate_protocol(e, config.data.fps, fit, test)
  cal_readouts = (evaluate.evaluate_protocol(e, config.data.fps, fit, parts.cal)[1] if parts
                  else {})
  for fraction in e.get("finetune_fractions", ()):
    name = f"finetune_{100 * fraction:g}%"
    splits = {"test": (sources["test"], test)}
    if parts:
      splits["cal"] = (parts.cal_source, parts.cal)
    tuned = finetune_readouts(config, model, variables, fit_source, fit, fraction, splits,
                              batch_sharding)
    readouts[name] = tuned["test"]
    results[name] = evaluate.regression_metrics(tuned["test"].pred, tuned["test"].true)
    if parts:
      cal_readouts[name] = tuned["cal"]
  return results, readouts, cal_readouts


def log_results(config, results: dict, by_region: dict, seen_bands: list, ood: dict, parts,
                title: str) -> None:
  """The results table (and one per zero-shot region), what the intervals were calibrated on,
  and the OOD report."""
  e = config.eval
  unit = e.get("unit", "")
  if parts and len(parts.cal["signals"]) < uncertainty.min_calibration(e.coverage):
    log(f"The calibration part holds {len(parts.cal['signals'])} clips: a finite interval at "
        f"eval.coverage={e.coverage:g} needs at least "
        f"{uncertainty.min_calibration(e.coverage)}, so every interval is infinite (raise "
        f"eval.calibration_fraction, or lower eval.coverage).")
  log(f"\n{title}{', MAE in ' + unit if unit else ''}"
      + (f"; intervals at {e.coverage:g} nominal coverage, calibrated on {parts.describe()}"
         if parts else "; no calibration (eval.calibration_fraction=0)")
      + f":\n{outputs.format_table(results)}")
  for region, region_metrics in by_region.items():
    log(f"\n{region} (clips whose label is {outputs.REGION_WORDS[region]} the training bands "
        f"{seen_bands}):\n{outputs.format_table(region_metrics)}")
  if ood:
    log(uncertainty.describe_ood(ood))


def write_scalars(workdir: str, results: dict, step: int) -> None:
  """Each readout's numeric metrics as TensorBoard scalars eval/<readout>/<metric>, in an
  event file of workdir/tensorboard beside the training's (TensorBoard reads them all)."""
  with contextlib.closing(SummaryWriter(f"{workdir}/tensorboard")) as writer:
    for readout, metrics in results.items():
      for name, value in metrics.items():
        # Not an undefined Pearson r or width, nor a dict of them.
        if isinstance(value, (int, float)) and np.isfinite(value):
          writer.add_scalar(f"eval/{readout}/{name}", value, step)


def clip_ids(split: dict) -> np.ndarray:
  """[N] one name per clip: 'video/clip' where the data has them, else its row number."""
  if "video_id" in split:
    videos = [v.decode() if isinstance(v, bytes) else str(v) for v in split["video_id"]]
    clips = split.get("clip_index", np.arange(len(videos)))
    return np.asarray([f"{v}/{int(c)}" for v, c in zip(videos, clips)])
  return np.arange(len(split["signals"])).astype(str)


class CalibrationParts:
  """The training split divided for calibration: `fit` (the readouts' training clips and the
  OOD reference) and `cal` (held out: residuals and OOD scores of unseen recordings), as
  `compute_features` dicts and data sources."""

  def __init__(self, features: dict, source, mask: np.ndarray, groups: np.ndarray, fps: float,
               seed: int):
    take = lambda rows: {k: v[rows] for k, v in features.items()}
    self.fit, self.cal = take(~mask), take(mask)
    self.fit_source = pipeline.Subset(source, np.flatnonzero(~mask))
    self.cal_source = pipeline.Subset(source, np.flatnonzero(mask))
    self.groups = (len(np.unique(groups[~mask])), len(np.unique(groups[mask])))
    self.ood_reference = uncertainty.ood_reference(
        uncertainty.ood_features(self.fit["signals"], fps), seed)

  def describe(self) -> str:
    return (f"{len(self.cal['signals'])} held-out training clips of {self.groups[1]} "
            f"recordings (the readouts fitted on the other {len(self.fit['signals'])})")

  def summary(self) -> dict:
    return {"fit_clips": len(self.fit["signals"]), "calibration_clips": len(self.cal["signals"]),
            "fit_groups": self.groups[0], "calibration_groups": self.groups[1]}


def calibration_parts(config, features: dict, sources: dict) -> CalibrationParts | None:
  """The calibration part of the training split (`uncertainty.calibration_split`: whole
  recordings, `eval.calibration_fraction` of them), or None when calibration is off or the
  training split has fewer than two recordings (said)."""
  fraction = config.eval.get("calibration_fraction", 0.0)
  if fraction <= 0:
    return None
  train_features = features["train"]
  groups = (np.asarray(clip_ids(train_features)) if "video_id" not in train_features else
            np.asarray([v.decode() if isinstance(v, bytes) else str(v)
                        for v in train_features["video_id"]]))
  if len(np.unique(groups)) < 2:
    log(f"No calibration: the training split has {len(np.unique(groups))} recording(s), and "
        f"holding one out leaves nothing to fit on (no intervals, no OOD threshold).")
    return None
  mask = uncertainty.calibration_split(groups, fraction, seed=config.seed)
  train_ids = np.char.add("train/", clip_ids(train_features))
  uncertainty.check_disjoint(train_ids[mask],
                             test=np.char.add("test/", clip_ids(features["test"])),
                             probe_fit=train_ids[~mask])
  return CalibrationParts(train_features, sources["train"], mask, groups, config.data.fps,
                          config.seed)


def ood_evaluation(config, encode, parts: CalibrationParts, test: dict,
                   test_source) -> tuple[dict, np.ndarray]:
  """How unlike the training clips each test clip is (`uncertainty.ood_report`), and the same
  for test clips made unlike them on purpose (`eval.ood_shifts`, at most `eval.ood_shift_clips`
  of them each): (report, [M] test scores)."""
  e, fps = config.eval, config.data.fps
  count = min(len(test_source), e.get("ood_shift_clips", 256))
  rows = np.sort(np.random.default_rng(config.seed).choice(len(test_source), count,
                                                           replace=False))
  shifted = {}
  for k, name in enumerate(e.get("ood_shifts", ())):
    shift, rng = uncertainty.SHIFTS[name], np.random.default_rng([config.seed, k])
    batches = pipeline.eval_batches(pipeline.Subset(test_source, rows), batch_size=e.batch_size,
                                    label_key=None)
    shifted[name] = evaluate.compute_features(
        encode, ({**batch, "video": shift(rng, batch["video"], fps)} for batch in batches))
  report = uncertainty.ood_report(
      parts.ood_reference, uncertainty.ood_features(parts.cal["signals"], fps),
      uncertainty.ood_features(test["signals"], fps),
      {name: uncertainty.ood_features(f["signals"], fps) for name, f in shifted.items()})
  return report, report["scores_by_set"]["test"]


def unlabelled_evaluation(config, workdir: str, test: dict, step: int, ood: dict,
                          ood_scores: np.ndarray | None) -> dict:
  """Without labels no error can be computed: each test clip's FFT-readout rate, its
  confidence and OOD flag go to workdir/predictions.csv, each video's to
  predictions_by_video.csv (printed), the spectra to workdir/figures, and results.json says
  so."""
  e = config.eval
  unit = e.get("unit", "")
  harmonic = e.get("fft_harmonic") or 1
  by_clip, by_video = outputs.unlabelled_predictions(
      test, fps=config.data.fps, band=tuple(e.band), harmonic=harmonic,
      protocol=e.get("protocol", "frequency"), unit=unit, ood_scores=ood_scores,
      ood_threshold=ood.get("threshold"))
  log(f"\nNo labels (config.data.label_key is None: data.builder.labels=False, or no numeric "
      f"labels.csv column nor signals/): no error can be computed. The linear probe, 1-NN and "
      f"fine-tuning need labels and are skipped, and no interval can be calibrated. The FFT "
      f"readout's rate of each test video (the median over its clips), read at harmonic "
      f"{harmonic}, with its confidence:\n"
      f"{by_video.head(20).to_string(index=False)}"
      + (f"\n… {len(by_video) - 20} more." if len(by_video) > 20 else "")
      + f"\nWithout labels the harmonic cannot be chosen (eval.fft_harmonic=None reads the "
        f"first): a feature signal may oscillate at a multiple of the rate (a swing passes its "
        f"centre twice a cycle), reading it that many times too high. Check a few videos whose "
        f"rate you know, then --mode=eval with --config.eval.fft_harmonic=2 (or 3) if needed; "
        f"or label a handful and let the run choose it on them.")
  if ood:
    log(uncertainty.describe_ood(ood))
  ood_sets = ood.pop("scores_by_set", None)
  ood.pop("mahalanobis_test", None)
  if jax.process_index() == 0:
    paths = [outputs.write_csv(workdir, "predictions.csv", by_clip),
             outputs.write_csv(workdir, "predictions_by_video.csv", by_video)]
    log(f"Wrote {paths[0]} ({len(by_clip)} test clips) and {paths[1]} ({len(by_video)} "
        f"videos).")
    if e.get("figures", True):
      out_dir = os.path.join(workdir, "figures")
      written = [figures.spectra(test["signals"], None, config.data.fps, out_dir,
                                 harmonic=e.get("fft_harmonic") or 1)[0]]
      metrics_path = os.path.join(workdir, "metrics.jsonl")
      if os.path.exists(metrics_path) and os.path.getsize(metrics_path):
        written.append(figures.training_curves(metrics_path, out_dir)[0])
      if ood_sets:
        written.append(figures.ood_scores(ood_sets, ood["threshold"], out_dir)[0])
      log(f"Drew {len(written)} figures into {out_dir}.")
    written, replaced = outputs.write_results(workdir, {
        "step": step, "method": config.method, "label": None, "unit": e.get("unit", ""),
        "fft_harmonic": e.get("fft_harmonic") or 1, "test": {}, "ood": ood or None,
        "predictions": "predictions.csv", "predictions_by_video": "predictions_by_video.csv"})
    log(f"Wrote {written}." + (f" {replaced}" if replaced else ""))
  return {}


def labelled_only(features: dict, sources: dict, label_key: str) -> tuple[dict, dict]:
  """The clips with a label (not NaN) of each split's features and data source: a folder of
  the user's videos may label some videos, or some segments, and not others (their clips
  trained the self-supervised methods all the same)."""
  kept = {split: np.isfinite(f["label"]) for split, f in features.items()}
  if all(mask.all() for mask in kept.values()):
    return features, sources
  log("Unlabelled clips left out of the readouts: " + ", ".join(
      f"{int((~mask).sum())} of {len(mask)} {split}" for split, mask in kept.items()) + ".")
  for split, mask in kept.items():
    if not mask.any():
      raise errors.DataError(f"No {split} clip has a label {label_key!r}: nothing to fit or "
                             f"score the readouts on (label more videos, or another split).")
  return ({split: {k: v[kept[split]] for k, v in f.items()} for split, f in features.items()},
          {**sources, **{split: pipeline.Subset(sources[split], np.flatnonzero(mask))
                         for split, mask in kept.items()}})




def draw_figures(config, workdir: str, test: dict, readouts: dict, harmonic: int,
                 seen_bands: list, ood_sets: dict | None = None,
                 ood_threshold: float | None = None) -> None:
  """workdir/figures (`figures.draw_run`) from the evaluation's features and readouts."""
  started = time.time()
  labels = test["label"]
  written = figures.draw_run(
      os.path.join(workdir, "figures"), metrics_path=os.path.join(workdir, "metrics.jsonl"),
      test=test, predictions={name: (r.pred, r.true) for name, r in readouts.items()},
      fps=config.data.fps, unit=config.eval.get("unit", ""),
      label_hz=evaluate.LABEL_HZ[config.eval.get("protocol", "frequency")], harmonic=harmonic,
      probe_inputs=evaluate.spectrum_features(test["signals"]),
      unseen_bands=(outputs.unseen_bands(seen_bands, float(labels.min()), float(labels.max()))
                    if seen_bands else ()), band=tuple(config.eval.band),
      risk_coverage_curves={
          name: uncertainty.risk_coverage_curve(np.abs(r.pred - r.true), r.details["confidence"])
          for name, r in readouts.items()},
      ood_sets=ood_sets, ood_threshold=ood_threshold)
  log(f"Drew {len(written)} figures into {os.path.join(workdir, 'figures')} "
      f"({time.time() - started:.0f} s).")


def finetune_readouts(config, model, variables, fit_source, fit: dict, fraction: float,
                      splits: dict, batch_sharding) -> dict:
  """Fine-tunes on `fraction` of the fitting clips' labels; {split: `evaluate.Readout`} of
  its predictions on each of `splits` ({name: (data source, its `compute_features` dict)}).

  Confidence: the bootstrap spread of ridge heads on the fine-tuned encoder's features of the
  labelled clips (`evaluate.probe_readout`) — not an ensemble of fine-tuned encoders, which
  would cost as many fine-tunings: it says how well the few labels pin a reading down from
  these features.
  """
  e = config.eval
  # The head reads what the linear probe reads: for heart rate, the in-band spectrum.
  band = tuple(e.band) if e.get("protocol") == "heart_rate" else None
  spectrum_band = (config.data.fps, band) if band else None
  encoder, head = finetune.finetune(
      model, variables, fit_source, fit["signals"], fit["label"], fraction=fraction,
      steps=e.finetune_steps, batch_size=e.finetune_batch_size,
      learning_rate=e.finetune_learning_rate, probe_l2=e.probe_l2,
      label_key=config.data.label_key, seed=config.seed, batch_sharding=batch_sharding,
      spectrum_band=spectrum_band, log=log)
  encode = evaluate.make_encoder_fn(model, encoder, batch_sharding)

  def inputs(source):  # the fine-tuned head's inputs: [N, F] spectra of the tuned features
    batches = pipeline.eval_batches(source, batch_size=e.batch_size,
                                    label_key=config.data.label_key)
    signals = evaluate.compute_features(encode, batches)["signals"]
    return evaluate.spectrum_features(signals, fps=config.data.fps if band else None, band=band)

  labelled = pipeline.fraction_indices(len(fit_source), fraction, config.seed)[0]
  labelled_inputs = inputs(pipeline.Subset(fit_source, labelled))
  kernel, bias = (np.asarray(head["params"]["Dense_0"][k]) for k in ("kernel", "bias"))
  out = {}
  for name, (source, split) in splits.items():
    split_inputs = inputs(source)
    _, details = evaluate.probe_readout(labelled_inputs, fit["label"][labelled], split_inputs,
                                        e.probe_l2)
    out[name] = evaluate.Readout(split_inputs @ kernel[:, 0] + bias[0], split["label"], {},
                                 details)
  return out


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """--mode=eval: evaluates the latest checkpoint in `workdir`.

  The config must be the one that trained it (the same check as a resumed run; `eval.*`
  fields may differ), so that results.json always describes the run in config.json.
  """
  with train.workdir_lock(workdir):
    return _evaluate_checkpoint(config, workdir)


def _evaluate_checkpoint(config, workdir):
  devices = jax.devices()
  config = pipeline.with_label_key(config, log)
  train.check_config(config, len(devices))
  train.use_compilation_cache(config)
  mesh = sharding.make_mesh(config.get("mesh", train.DEFAULT_MESH), devices)
  checkpoint.check_workdir_config(workdir, config, evaluating=True)
  step = checkpoint.latest_step(workdir)
  if step is None:
    raise errors.ConfigError(
        f"--mode=eval: the workdir {workdir} holds no checkpoint (checkpoints/<step>/); train "
        f"into it first (--mode=train, the default) or give the --workdir of a trained run.")
  log(f"Workdir: {workdir}; evaluating the checkpoint of step {step}.")
  try:
    module, variables = checkpoint.load_encoder(workdir, step=step)
    checkpoint.require_finite(variables, os.path.join(workdir, "checkpoints", str(step), "state"))
  except errors.ConfigError:
    raise
  except checkpoint.DAMAGE_ERRORS as e:  # as checkpoint.restore: a damaged step
    run_files.silence_background_stderr()
    raise errors.RunError(
        f"The checkpoint of step {step} cannot be read ({checkpoint.damage(e)}); --mode=eval "
        f"reads the latest checkpoint and does not fall back to an older one. Resume training "
        f"with the same command (it moves the damaged step aside and continues from the one "
        f"before), then evaluate.") from None
  builder = pipeline.get_builder(config.data, log=log)
  train.check_feature_keys(config, builder)
  sources = pipeline.with_train_fraction(builder.as_data_source(),
                                         config.data.get("train_fraction", 1.0), config.seed)
  return evaluate_encoder(config, workdir, module, variables, sources,
                          sharding.batch_sharding(mesh), step=step)
