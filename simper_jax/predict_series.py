"""The rate of your own recordings, by a trained time-series encoder or a reading of the input:
`python -m simper_jax.predict --series=FILE_OR_DIR --workdir=RUN | --method=spectral_peak`.

Each recording is read as the time-series builder reads it (data/timeseries.py: time column,
gaps, resampling to the rate, z-scores; a trained run's own builder settings, or the flags'
for a method). The signal a rate is read from is then the encoder's feature signal (clips of
the run's length, back to back within each gap-free segment, concatenated) read by the run's
own FFT readout (its band and harmonic), or the input's channels read by `--method`
(evaluate.INPUT_BASELINES: the summed spectral peak, or the autocorrelation peak). Rates come
per sliding window (`--window_seconds`, `--step_seconds`, never across a gap) and over the
longest segment, in Hz and per minute.

Each window and the whole come with a confidence (the spectral peak's, `uncertainty`); with a
trained run evaluated with calibration (its uncertainty.npz), also a calibrated interval and an
out-of-distribution flag. `--min_confidence` drops the windows below it.

Written into --output (default: beside the recording) for each recording <name>:
  <name>.rate.csv       start_s, end_s, rate_hz, confidence[, low, high, ood_score, ood] of
                        each window
  <name>.spectrum.csv   the longest segment's spectrum
  <name>.rate.png       rate over time, and that spectrum
and for a folder, rates.csv: one row per recording (its error, if it had one).
"""

import os
import time

import numpy as np

from simper_jax import errors
from simper_jax import figures
from simper_jax import uncertainty
from simper_jax.data import timeseries


InputError = errors.InputError  # predict's: one error type for the whole command


class MethodReader:
  """One of evaluate.INPUT_BASELINES on the recording's own channels."""

  def __init__(self, method: str, *, band, harmonic: float, sample_rate: float,
               source_rate: float, time_column: str):
    from simper_jax import evaluate  # pylint: disable=g-import-not-at-top
    self.read = evaluate.INPUT_BASELINES[method]
    self.band, self.harmonic, self.name = tuple(band), harmonic, method
    self.config = timeseries.make_config(sample_rate=sample_rate, source_rate=source_rate,
                                         time_column=time_column)
    self.fps = sample_rate
    self.calibration = None  # a reading of the input has no run to calibrate it on

  def signal(self, values: np.ndarray) -> np.ndarray:
    """[n, C] z-scored channels → the signal windows are cut from: the channels themselves."""
    return values

  def rates(self, windows: np.ndarray) -> tuple[np.ndarray, dict]:
    """[K, W, C] → ([K] Hz, {'confidence': [K], ...})."""
    return self.read(windows, self.fps, self.band, self.harmonic)

  def spectrum(self, signal: np.ndarray):
    from simper_jax import evaluate  # pylint: disable=g-import-not-at-top
    x = evaluate.input_spectrum(signal[None])[0]
    freqs, _ = evaluate.power_spectrum(x[:, 0], self.fps)
    power = sum(evaluate.power_spectrum(x[:, c], self.fps)[1] for c in range(x.shape[1]))
    return freqs, power


class EncoderReader:
  """A trained time-series run's encoder, read by the run's own FFT readout."""

  def __init__(self, workdir: str):
    from simper_jax import checkpoint  # pylint: disable=g-import-not-at-top
    from simper_jax import evaluate  # pylint: disable=g-import-not-at-top
    config, self.module, self.variables, settings = checkpoint.load_run(
        workdir, lambda c: c["data"]["name"] == "timeseries",
        "a time-series run (configs/timeseries.py) for --series")
    fields = {k: v for k, v in config["data"]["builder"].items()
              if k in timeseries.TimeseriesConfig.__dataclass_fields__ and k != "source"}
    fields["columns"] = tuple(fields.get("columns", ()))
    self.config = timeseries.make_config(**fields)
    self.fps, self.band = float(settings["fps"]), tuple(settings["band"])
    self.harmonic = settings["harmonic"]
    self.clip = self.config.num_samples
    self.encode = evaluate.jitted_encode(self.module)
    self._fft = evaluate.fft_readout
    self._power = evaluate.power_spectrum
    self.name = f"the encoder of {workdir}"
    self.calibration, self.readout = uncertainty.RunCalibration.of_run(workdir), "fft"

  def signal(self, values: np.ndarray) -> np.ndarray:
    """[n, C] → the feature signal of the segment's whole clips, concatenated, [n', 1]."""
    num_clips = len(values) // self.clip
    if num_clips == 0:
      return np.zeros((0, 1))
    clips = values[:num_clips * self.clip].reshape(num_clips, self.clip, 1, 1, -1)
    signals = np.asarray(self.encode(self.variables, clips.astype(np.float16)))
    return signals.reshape(-1, 1).astype(np.float64)

  def rates(self, windows: np.ndarray) -> tuple[np.ndarray, dict]:
    """[K, W, 1] → ([K] Hz, {'confidence': [K], ...}) by the run's FFT readout."""
    return self._fft(windows[..., 0], self.fps, self.band, self.harmonic)

  def spectrum(self, signal: np.ndarray):
    return self._power(signal[:, 0], self.fps)


def series_paths(series: str) -> list[str]:
  """[series] for a file; for a folder, its recordings (as the builder finds them)."""
  if os.path.isdir(series):
    try:
      return [path for _, path in sorted(timeseries.scan(series).videos.items())]
    except errors.DataError as e:
      raise InputError(f"--series={series}: {e}") from e
  if not os.path.exists(series):
    raise InputError(f"--series={series}: no such file or folder.")
  return [series]


def predict_recording(path: str, reader, *, out_dir: str, window_seconds: float,
                      step_seconds: float, min_confidence: float = 0.0) -> dict:
  """Reads one recording, writes its outputs, returns its summary row."""
  from simper_jax import predict  # pylint: disable=g-import-not-at-top  (the command's module)
  started = time.time()
  try:
    recording = timeseries.load_recording(path, reader.config)
  except errors.DataError as e:
    raise InputError(str(e)) from e
  window = max(2, round(window_seconds * reader.fps))
  step = max(1, round(step_seconds * reader.fps))
  parts, longest = [], None
  for start_s, values, _ in recording.segments:
    signal = reader.signal(values)
    if longest is None or len(signal) > len(longest):
      longest = signal
    if len(signal) < window:
      continue
    offsets = np.arange(0, len(signal) - window + 1, step)
    windows = np.stack([signal[o:o + window] for o in offsets])
    rates, details = reader.rates(windows)
    parts.append({"starts_s": start_s + offsets / reader.fps,
                  "ends_s": start_s + (offsets + window) / reader.fps, "rates": rates,
                  "confidence": details["confidence"], "windows": windows})
  if not parts:
    raise InputError(f"{path}: no gap-free stretch as long as one window of "
                     f"{window_seconds:g} s (--window_seconds); "
                     f"{timeseries.describe(recording)}.")
  result = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
  whole, whole_details = reader.rates(longest[None])
  result["whole_rate"] = float(whole[0])
  result["whole_confidence"] = float(whole_details["confidence"][0]) * (
      uncertainty.window_agreement(result["rates"], result["whole_rate"],
                                   tolerance=reader.fps / window / reader.harmonic))
  result = predict.trust_windows(result, "rates", reader, reader.fps,
                                 min_confidence=min_confidence, path=path)
  freqs, power = reader.spectrum(longest)
  name = os.path.splitext(os.path.basename(path))[0]
  png, windows_csv = figures.heart_rate_over_time(
      result["starts_s"], result["ends_s"], result["rates"], result["whole_rate"], freqs, power,
      band_bpm=reader.band, out_dir=out_dir, name=f"{name}.rate",
      title=f"{os.path.basename(path)} — {reader.name}", quantity="rate", unit="Hz",
      whole="longest segment",
      columns={key: result[key] for key in predict.WINDOW_COLUMNS if key in result})
  return {"recording": path, "seconds": sum(len(v) for _, v, _ in recording.segments)
          / reader.config.sample_rate, "segments": len(recording.segments),
          "rate_hz": result["whole_rate"], "rate_per_min": 60 * result["whole_rate"],
          "confidence": result["whole_confidence"], "low": result.get("whole_low", ""),
          "high": result.get("whole_high", ""),
          "median_window_hz": float(np.median(result["rates"])),
          "windows": len(result["rates"]), "dropped_windows": result["dropped"],
          "ood_windows": result.get("ood_windows", ""), "error": "", "result": result,
          "starts_s": result["starts_s"], "ends_s": result["ends_s"], "rates": result["rates"],
          "written": [windows_csv, os.path.join(out_dir, f"{name}.spectrum.csv"), png],
          "elapsed": time.time() - started}


SUMMARY_FIELDS = ("recording", "seconds", "segments", "rate_hz", "rate_per_min", "confidence",
                  "low", "high", "median_window_hz", "windows", "dropped_windows", "ood_windows",
                  "error")


def run(series: str, reader, *, output: str | None, window_seconds: float,
        step_seconds: float, min_confidence: float = 0.0) -> tuple[list[dict], int]:
  """Every recording of --series; (summary rows, exit status: 0, or 2 if one failed)."""
  # predict's loop and summary (the module is imported by then: it is the command).
  from simper_jax import predict  # pylint: disable=g-import-not-at-top
  predict.describe_calibration(reader)
  rows, folder_out = predict.run_each(
      series, series_paths(series), output=output, print_one=print_recording,
      key="recording", predict_one=lambda path, out_dir: predict_recording(
          path, reader, out_dir=out_dir, window_seconds=window_seconds,
          step_seconds=step_seconds, min_confidence=min_confidence))
  if folder_out:
    summary = os.path.join(folder_out, "rates.csv")
    predict.write_summary(rows, summary, relative_to=series, fields=SUMMARY_FIELDS,
                          float_format=".4g")
    print(f"Wrote {summary}.")
  return rows, 2 if any(row["error"] for row in rows) else 0


def print_recording(row: dict, *, index: str = "", windows: bool = True) -> None:
  from simper_jax import predict  # pylint: disable=g-import-not-at-top  (the command's module)
  r = row["result"]
  print(f"{index}{row['recording']}: {row['seconds']:.1f} s in {row['segments']} segment(s); "
        f"rate over the longest segment {row['rate_hz']:.3f} Hz"
        f"{predict.interval_text(r, 'whole_low', 'whole_high', '.3f')} "
        f"({row['rate_per_min']:.1f} per min; confidence {row['confidence']:.2f}), median of "
        f"{row['windows']} windows {row['median_window_hz']:.3f} Hz ({row['elapsed']:.1f} s).",
        flush=True)
  predict.print_trust(r)
  if windows:
    predict.print_windows(r, "rates", "rate (Hz)", ".3f")
  print(f"  Wrote {', '.join(row['written'])}.", flush=True)
