"""Synthetic hourly temperature maps, written as CF-convention NetCDF in ERA5's layout
(`skt` in K, coordinates `valid_time`, `latitude`, `longitude`; values packed as int16 with
`scale_factor`, `add_offset` and `_FillValue`), in two files split along time, so that the real
LST builder, unchanged, reads them (`configs/lst.py` `synthetic` and `tiny`, tests).

Each cell's temperature is a mean that falls with latitude, plus a diurnal cycle peaking at
14:00 local solar time (longitude shifts it) whose amplitude varies in space, plus weather: a
spatially smooth anomaly that persists from day to day (an AR(1) process on daily steps,
interpolated to hours) and small hourly noise. A "sea" region holds no values, and random
"cloud" gaps of a few hours remove patches: the missing values the builder must drop or fill.
Persistence is what makes the next day's mean predictable from the last days.
"""

import dataclasses
import os
import tempfile

import cv2
import numpy as np
import tensorflow_datasets as tfds

FILL_VALUE = -32767
SCALE_FACTOR = 0.002  # K per int16 step: 230–330 K fits in ±32 000 steps
ADD_OFFSET = 280.0


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
  """What to write. The whole set is a pure function of its fields."""
  num_days: int = 40
  num_latitudes: int = 32
  num_longitudes: int = 48
  resolution: float = 0.25  # degrees per cell
  diurnal_amplitude: tuple[float, float] = (4.0, 12.0)  # K, half the day–night swing
  weather_std: float = 3.0  # K, the daily anomaly's spread
  persistence: float = 0.8  # the anomaly's day-to-day correlation
  cloud_gaps: int = 30  # patches of missing values
  seed: int = 0


def temperatures(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                               np.ndarray]:
  """(hours since the start [H], latitudes [Y], longitudes [X], temperature [H, Y, X] in K with
  NaN where missing)."""
  rng = np.random.default_rng(spec.seed)
  hours = np.arange(24 * spec.num_days)
  lats = 50.0 - spec.resolution * np.arange(spec.num_latitudes)  # north to south, as ERA5
  lons = 5.0 + spec.resolution * np.arange(spec.num_longitudes)
  smooth = lambda field, sigma: cv2.GaussianBlur(field.astype(np.float32), (0, 0), sigma)
  mean = 288.0 - 0.6 * (lats[:, None] - lats.mean()) + 2 * smooth(
      rng.normal(0, 3, (spec.num_latitudes, spec.num_longitudes)), 4)
  low, high = spec.diurnal_amplitude
  amplitude = np.clip(low + (high - low) * smooth(rng.uniform(0, 1, mean.shape), 6), low, high)
  local_hour = (hours[:, None, None] + lons[None, None, :] / 15.0) % 24
  diurnal = amplitude * np.cos(2 * np.pi * (local_hour - 14.0) / 24)
  # Weather: daily anomalies, AR(1) across days, smooth in space, interpolated to hours.
  daily = np.empty((spec.num_days + 1,) + mean.shape)
  daily[0] = smooth(rng.normal(0, 1, mean.shape), 5)
  for day in range(1, spec.num_days + 1):
    fresh = smooth(rng.normal(0, 1, mean.shape), 5)
    daily[day] = spec.persistence * daily[day - 1] + np.sqrt(1 - spec.persistence**2) * fresh
  daily *= spec.weather_std / max(daily.std(), 1e-6)
  position = hours / 24.0
  below = np.floor(position).astype(int)
  weight = (position - below)[:, None, None]
  weather = (1 - weight) * daily[below] + weight * daily[below + 1]
  values = mean + diurnal + weather + rng.normal(0, 0.3, diurnal.shape)
  # Sea: a region with no values; clouds: patches missing for a few hours.
  yy, xx = np.mgrid[:spec.num_latitudes, :spec.num_longitudes]
  sea = ((yy - 0.9 * spec.num_latitudes) ** 2 / (0.3 * spec.num_latitudes) ** 2
         + (xx - 0.1 * spec.num_longitudes) ** 2 / (0.25 * spec.num_longitudes) ** 2) < 1
  values[:, sea] = np.nan
  for _ in range(spec.cloud_gaps):
    hour, length = rng.integers(0, len(hours)), rng.integers(2, 9)
    y, x, size = rng.integers(0, spec.num_latitudes), rng.integers(0, spec.num_longitudes), 4
    values[hour:hour + length, y:y + size, x:x + size] = np.nan
  return hours, lats, lons, values.astype(np.float32)


def write(directory: str, spec: SyntheticSpec, num_files: int = 2) -> list[str]:
  """Writes the maps as `num_files` NetCDF files along time; returns their paths."""
  import xarray as xr  # pylint: disable=g-import-not-at-top
  hours, lats, lons, values = temperatures(spec)
  times = np.datetime64("2020-06-01T00:00") + hours.astype("timedelta64[h]")
  os.makedirs(directory, exist_ok=True)
  paths = []
  for part, rows in enumerate(np.array_split(np.arange(len(hours)), num_files)):
    dataset = xr.Dataset(
        {"skt": (("valid_time", "latitude", "longitude"), values[rows],
                 {"units": "K", "long_name": "Skin temperature", "standard_name": "unknown"})},
        coords={"valid_time": ("valid_time", times[rows], {"standard_name": "time"}),
                "latitude": ("latitude", lats, {"units": "degrees_north",
                                                "standard_name": "latitude"}),
                "longitude": ("longitude", lons, {"units": "degrees_east",
                                                  "standard_name": "longitude"})},
        attrs={"Conventions": "CF-1.7", "source": "simper_jax synthetic ERA5-like skt"})
    path = os.path.join(directory, f"era5_skt_synthetic_{part:02d}.nc")
    dataset.to_netcdf(path, engine="h5netcdf", encoding={"skt": {
        "dtype": "int16", "scale_factor": SCALE_FACTOR, "add_offset": ADD_OFFSET,
        "_FillValue": FILL_VALUE}})
    paths.append(path)
  return paths


def prepare(builder, fmt: str, spec: SyntheticSpec) -> None:
  """Writes the synthetic files to a temporary directory and prepares `builder` from them with
  the real reader."""
  del fmt
  with tempfile.TemporaryDirectory(prefix="simper_synthetic_lst_") as manual_dir:
    print(f"Writing {spec.num_days} days of synthetic hourly {spec.num_latitudes}×"
          f"{spec.num_longitudes} temperature maps as CF NetCDF (ERA5 layout, packed int16) to "
          f"{manual_dir} ...", flush=True)
    write(manual_dir, spec)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
