"""Land-surface temperature (LST): forecast a tile's next-day mean temperature from the last
days of hourly temperature maps (docs/temperature.md).

The paper's LST files are not public; this reads the open, documented form of the same data:
gridded hourly temperature as CF-convention NetCDF, dimensions (time, latitude, longitude),
e.g. ERA5 `skt` (skin temperature, K) as the Copernicus store delivers it, one file or many
(concatenated along time, sorted, duplicate times dropped). xarray decodes the CF attributes:
packed values (`scale_factor`, `add_offset`), `_FillValue` and `missing_value` become floats
and NaN. Variable and coordinate names are config fields; coordinates left None are found by
what the file declares (`axis`, `standard_name`, `units`, a datetime type), then by the usual
names.

The task built here:
  tiles     the grid cut into `tile_size` × `tile_size` cells, row-major (a remainder at the
            edge is left out); a grid smaller than one tile is an error naming both sizes.
  input     `window_hours` hours of a tile, every `stride_hours` hours: a "video"
            [T, tile, tile, 1], uint8, normalized per dataset: (x − lo) / (hi − lo) with lo,
            hi the 0.5 and 99.5 percentiles of the training period's values (written to
            normalization.json beside the prepared files), clipped to [0, 1].
  target    `temperature`: the tile's mean over the `target_hours` hours that follow the
            window (default 24 h: the next day's mean), in the file's units. `persistence`,
            the mean of the window's own last `target_hours`, is the reference forecast
            ("tomorrow as today") a learned one must beat.
  split     by time: the first (1 − test_fraction) of the days train, the rest test; no
            window (input and target hours) crosses the boundary.
  missing   a tile-window with more than `max_missing` of its values missing (sea in a
            land-only product, cloud gaps, hours absent from the files) is dropped and counted;
            the rest are filled with the tile's mean at that hour (or the window's mean).
"""

import dataclasses
import glob
import json
import math
import os
import time
import warnings

import numpy as np
import tensorflow_datasets as tfds

from simper_jax.data import common

NETCDF_PATTERNS = ("*.nc", "*.nc4", "*.netcdf", "*.cdf")
LAYOUT = ("  one or more CF-convention NetCDF files (*.nc) of hourly gridded temperature, "
          "dimensions (time, latitude, longitude)\n"
          "e.g. ERA5 hourly single levels, variable 'skt' (skin temperature), from the "
          "Copernicus Climate Data Store: https://cds.climate.copernicus.eu")
_PERCENTILES = (0.5, 99.5)
_MAX_NORMALIZATION_SAMPLES = 2_000_000


@dataclasses.dataclass(eq=False)
class LstConfig(tfds.core.BuilderConfig):
  """How examples are made. The config name is derived from the fields (see `make_config`).

  Attributes:
    variable: the temperature variable in the files (ERA5: "skt").
    time_name, latitude_name, longitude_name: coordinate names; None → found in the file.
    tile_size: grid cells per tile side.
    window_hours: T, hours (maps) of input per example.
    target_hours: hours after the window whose mean is the target.
    stride_hours: hours between the starts of consecutive windows of a tile.
    test_fraction: the last share of the days that is the test split.
    max_missing: largest share of missing values a tile-window may have.
    source: "manual_dir" for the user's files; synthetic sets carry their settings here.
  """
  variable: str = "skt"
  time_name: str | None = None
  latitude_name: str | None = None
  longitude_name: str | None = None
  tile_size: int = 16
  window_hours: int = 72
  target_hours: int = 24
  stride_hours: int = 24
  test_fraction: float = 0.2
  max_missing: float = 0.2
  source: str = "manual_dir"


def make_config(**fields) -> LstConfig:
  return common.named_config(LstConfig, "{variable}_{tile_size}px_{window_hours}h", **fields)


# ---------------------------------------------------------------------------------------------
# Reading the files.
# ---------------------------------------------------------------------------------------------
def netcdf_files(manual_dir: str) -> list[str]:
  """The NetCDF files in `manual_dir`; DataNotFoundError when there are none."""
  if not manual_dir or not os.path.isdir(manual_dir):
    raise common.DataNotFoundError(
        f"LST not found: the directory {manual_dir} does not exist.\nPut the NetCDF files in "
        f"the manual_dir (config.data.manual_dir):\n{LAYOUT}")
  files = sorted({f for pattern in NETCDF_PATTERNS
                  for f in glob.glob(os.path.join(manual_dir, pattern))})
  if not files:
    raise common.DataNotFoundError(
        f"LST: {manual_dir} holds no NetCDF file ({', '.join(NETCDF_PATTERNS)}).\nPut the "
        f"NetCDF files in the manual_dir (config.data.manual_dir):\n{LAYOUT}")
  return files


def _coordinate(array, path: str, given: str | None, kind: str) -> str:
  """The name of `array`'s dimension that is its `kind` ("time", "latitude", "longitude")."""
  dims = list(array.dims)
  if given:
    if given not in dims:
      raise common.DataError(f"{path}: {array.name!r} has no dimension {given!r} (its dimensions "
                             f"are {dims}); set data.builder.{kind}_name to one of them.")
    return given
  axis = {"time": "T", "latitude": "Y", "longitude": "X"}[kind]
  units = {"time": (), "latitude": ("degrees_north", "degree_north", "degrees_n"),
           "longitude": ("degrees_east", "degree_east", "degrees_e")}[kind]
  names = {"time": ("time", "valid_time", "t"), "latitude": ("latitude", "lat", "y", "nav_lat"),
           "longitude": ("longitude", "lon", "x", "nav_lon")}[kind]
  for dim in dims:
    coord = array.coords.get(dim)
    attrs = coord.attrs if coord is not None else {}
    if (attrs.get("axis") == axis or attrs.get("standard_name") == kind
        or str(attrs.get("units", "")).lower() in units
        or (kind == "time" and coord is not None and np.issubdtype(coord.dtype, np.datetime64))):
      return dim
  for dim in dims:
    if dim.lower() in names:
      return dim
  raise common.DataError(f"{path}: cannot tell which dimension of {array.name!r} is {kind} (its "
                         f"dimensions are {dims}); set data.builder.{kind}_name.")


def open_temperature(files: list[str], config: LstConfig):
  """The variable of every file, decoded (CF scale/offset/fill → float, NaN), concatenated
  along time, as a lazy xarray.DataArray with dimensions (time, latitude, longitude).

  Raises:
    DataError naming the file: the variable is missing (with the variables it has), a
      dimension cannot be identified, extra dimensions, times that are not evenly spaced.
  """
  import xarray as xr  # pylint: disable=g-import-not-at-top  (only LST needs it)
  arrays = []
  for path in files:
    try:
      dataset = xr.open_dataset(path, mask_and_scale=True, decode_times=True)
    except Exception as e:  # pylint: disable=broad-except
      raise common.DataError(f"{path}: not a NetCDF file xarray can read ({type(e).__name__}: "
                             f"{e}).") from e
    if config.variable not in dataset.data_vars:
      raise common.DataError(
          f"{path}: no variable {config.variable!r}; it has {sorted(dataset.data_vars)}. Set "
          f"data.builder.variable to the temperature variable.")
    array = dataset[config.variable]
    extra = [d for d in array.dims if array.sizes[d] == 1]
    array = array.squeeze(extra, drop=True) if extra else array
    names = [_coordinate(array, path, getattr(config, f"{kind}_name"), kind)
             for kind in ("time", "latitude", "longitude")]
    others = [d for d in array.dims if d not in names]
    if others:
      raise common.DataError(f"{path}: {config.variable!r} has the dimensions {list(array.dims)}; "
                             f"expected only time, latitude and longitude (found {names}).")
    array = array.transpose(*names).rename(dict(zip(names, ("time", "latitude", "longitude"))))
    array.attrs["source_file"] = path
    arrays.append(array)
  array = arrays[0] if len(arrays) == 1 else xr.concat(arrays, dim="time",
                                                       combine_attrs="drop_conflicts")
  array = array.sortby("time")
  _, first = np.unique(array["time"].values, return_index=True)
  array = array.isel(time=np.sort(first))  # files that overlap in time: each hour once
  times = array["time"].values
  if len(times) < 2:
    raise common.DataError(f"{files[0]}: {len(times)} time step(s); expected an hourly series.")
  hour = np.timedelta64(1, "h")
  if not np.issubdtype(times.dtype, np.datetime64) or np.any(np.diff(times) % hour):
    raise common.DataError(f"{', '.join(files)}: the times are not whole hours apart (the first "
                           f"are {times[:3]}); expected hourly maps.")
  # Hours absent from the files become missing values on the regular hourly grid.
  regular = np.arange(times[0], times[-1] + hour, hour)
  if len(regular) != len(times):
    array = array.reindex(time=regular)
  return array


# ---------------------------------------------------------------------------------------------
# Tiles and windows.
# ---------------------------------------------------------------------------------------------
def window_starts(num_hours: int, *, window: int, target: int, stride: int,
                  test_fraction: float) -> dict[str, np.ndarray]:
  """{split: first hour of each window}: the first (1 − test_fraction) of the days train,
  the rest test, and no window's input or target hours cross the boundary."""
  boundary = int(round((1 - test_fraction) * (num_hours // 24))) * 24
  span = window + target
  return {"train": np.arange(0, boundary - span + 1, stride),
          "test": np.arange(boundary, num_hours - span + 1, stride)}


def tile_windows(values: np.ndarray, starts: np.ndarray, *, window: int, target: int,
                 max_missing: float):
  """The examples of one tile's series.

  Args:
    values: [time, tile, tile] float, NaN where missing.
  Yields:
    (start, input [window, tile, tile] with missing values filled, target (mean of the
    following `target` steps), persistence (mean of the window's last `target` steps: the
    forecast "tomorrow as today"), missing share) for each start whose missing share (input
    and target hours) is at most `max_missing`; (start, None, None, None, share) for the
    others.
  """
  for start in starts:
    block = values[start:start + window + target]
    missing = float(np.mean(np.isnan(block)))
    if (missing > max_missing or np.isnan(block[window:]).all()
        or np.isnan(block[max(0, window - target):window]).all()):
      yield int(start), None, None, None, missing
      continue
    inputs = block[:window]
    if np.isnan(inputs).any():
      with warnings.catch_warnings():  # an hour missing in the whole tile: "mean of empty"
        warnings.simplefilter("ignore", RuntimeWarning)
        hourly = np.nanmean(inputs, axis=(1, 2), keepdims=True)
      hourly = np.where(np.isnan(hourly), np.nanmean(inputs), hourly)
      inputs = np.where(np.isnan(inputs), hourly, inputs)
    yield (int(start), inputs, float(np.nanmean(block[window:])),
           float(np.nanmean(block[max(0, window - target):window])), missing)


def normalization(array, boundary: int, seed: int = 0) -> tuple[float, float]:
  """(lo, hi): the 0.5 and 99.5 percentiles of the training period's values, from at most
  `_MAX_NORMALIZATION_SAMPLES` of them (a random subset of time steps)."""
  per_step = array.sizes["latitude"] * array.sizes["longitude"]
  keep = min(boundary, max(1, _MAX_NORMALIZATION_SAMPLES // per_step))
  steps = np.sort(np.random.default_rng(seed).permutation(boundary)[:keep])
  values = np.asarray(array.isel(time=steps).values, np.float64).ravel()
  values = values[np.isfinite(values)]
  if not len(values):
    raise common.DataError(f"{array.attrs.get('source_file')}: every value of the training "
                           f"period is missing.")
  lo, hi = np.percentile(values, _PERCENTILES)
  return float(lo), float(hi if hi > lo else lo + 1.0)


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Per-dataset normalization to [0, 255]: (x − lo) / (hi − lo), clipped."""
  return np.round(np.clip((values - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


class Lst(common.Builder):
  """Hourly temperature tiles → the next day's mean temperature (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [LstConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "video": tfds.features.Tensor(shape=(c.window_hours, c.tile_size, c.tile_size, 1),
                                          dtype=np.uint8, doc="normalized temperature maps"),
            "temperature": tfds.features.Scalar(dtype=np.float32,
                                                doc="mean over the target hours, file units"),
            "persistence": tfds.features.Scalar(
                dtype=np.float32, doc="mean of the window's last target_hours: a reference "
                                      "forecast"),
            "tile_row": tfds.features.Scalar(dtype=np.int32),
            "tile_col": tfds.features.Scalar(dtype=np.int32),
            "start": tfds.features.Text(doc="time of the window's first map (ISO 8601)"),
            "missing": tfds.features.Scalar(dtype=np.float32,
                                            doc="share of values missing (and filled)"),
        }),
        supervised_keys=("video", "temperature"),
    )

  def check_manual_dir(self, manual_dir):
    """Opens the files and checks the grid; DataNotFoundError / DataError naming the problem."""
    manual_dir = os.fspath(manual_dir) if manual_dir else None
    array = open_temperature(netcdf_files(manual_dir), self.builder_config)
    tile = self.builder_config.tile_size
    grid = (array.sizes["latitude"], array.sizes["longitude"])
    if min(grid) < tile:
      raise common.DataError(
          f"{array.attrs.get('source_file')}: the grid is {grid[0]}×{grid[1]} cells, smaller "
          f"than one tile of data.builder.tile_size={tile}×{tile}.")
    return array

  def _split_generators(self, dl_manager):
    c = self.builder_config
    array = self.check_manual_dir(getattr(dl_manager, "_manual_dir", None))
    starts = window_starts(array.sizes["time"], window=c.window_hours, target=c.target_hours,
                           stride=c.stride_hours, test_fraction=c.test_fraction)
    for split, split_starts in starts.items():
      if not len(split_starts):
        raise common.DataError(
            f"LST: the {split} period is too short for one window of {c.window_hours} h plus "
            f"{c.target_hours} h of target ({array.sizes['time']} hours in all, "
            f"test_fraction={c.test_fraction}).")
    boundary = int(starts["test"][0])
    lo, hi = normalization(array, boundary)
    os.makedirs(os.fspath(self.data_dir), exist_ok=True)
    with open(os.path.join(os.fspath(self.data_dir), "normalization.json"), "w") as f:
      json.dump({"lo": lo, "hi": hi, "units": array.attrs.get("units", ""),
                 "percentiles": _PERCENTILES, "train_test_boundary":
                 str(array["time"].values[boundary])}, f, indent=2)
    print(f"[lst] {array.sizes['time']} maps of {array.sizes['latitude']}×"
          f"{array.sizes['longitude']} cells, hourly; test from "
          f"{str(array['time'].values[boundary])[:16]}; normalized to [{lo:.2f}, {hi:.2f}] "
          f"{array.attrs.get('units', '')}.", flush=True)
    return {split: self._generate_examples(split, array, split_starts, lo, hi)
            for split, split_starts in starts.items()}

  def _generate_examples(self, split, array, starts, lo, hi):
    c = self.builder_config
    tile = c.tile_size
    rows, cols = array.sizes["latitude"] // tile, array.sizes["longitude"] // tile
    times = array["time"].values
    kept = dropped = 0
    started = time.time()
    for r in range(rows):
      for col in range(cols):
        # One tile's whole series at a time: memory stays at time × tile² values.
        values = np.asarray(array.isel(latitude=slice(r * tile, (r + 1) * tile),
                                       longitude=slice(col * tile, (col + 1) * tile)).values,
                            np.float64)
        for start, inputs, target, persistence, missing in tile_windows(
            values, starts, window=c.window_hours, target=c.target_hours,
            max_missing=c.max_missing):
          if inputs is None:
            dropped += 1
            continue
          kept += 1
          yield f"{r:04d}_{col:04d}_{start:08d}", {
              "video": to_uint8(inputs, lo, hi)[..., None],
              "temperature": np.float32(target), "persistence": np.float32(persistence),
              "tile_row": r, "tile_col": col,
              "start": str(times[start])[:19], "missing": np.float32(missing)}
      print(f"[lst {split}] tile row {r + 1}/{rows}: {kept} examples "
            f"({time.time() - started:.0f} s)", flush=True)
    print(f"[lst {split}] {kept} examples from {rows * cols} tiles; {dropped} tile-windows "
          f"dropped with more than {100 * c.max_missing:g} % of their values missing.",
          flush=True)
    if not kept:
      raise common.DataError(f"LST: every tile-window of the {split} split has more than "
                             f"{100 * c.max_missing:g} % missing values (data.builder.max_missing).")
