"""LST: the builder on tiny CF-convention NetCDF files (packed values, fill values, names)."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
import xarray as xr

from simper_jax.data import common
from simper_jax.data import lst
from tiny import run_main_here

DAYS, NY, NX = 6, 8, 12
T0 = np.datetime64("2021-01-01T00:00")


def _field(seed=0):
  """Hourly temperatures [hours, NY, NX] in K with a diurnal cycle, and NaN holes."""
  rng = np.random.default_rng(seed)
  hours = np.arange(24 * DAYS)
  values = (280 + 8 * np.cos(2 * np.pi * (hours - 14) / 24)[:, None, None]
            + rng.normal(0, 1, (len(hours), NY, NX)) + 0.1 * np.arange(NX))
  values[:, :4, :4] = np.nan  # "sea": the top-left 4×4 tile has no values at all
  values[30:33, 5, 6] = np.nan  # a cloud gap in another tile
  return hours, values


def _write(path, values, hours, *, names=("time", "lat", "lon"), variable="LST", packed=True,
           declare=True):
  """A CF NetCDF: packed int16 with scale_factor/add_offset/_FillValue when `packed`."""
  time_name, lat_name, lon_name = names
  attrs = lambda **a: a if declare else {}
  dataset = xr.Dataset(
      {variable: ((time_name, lat_name, lon_name), values.astype(np.float32), {"units": "K"})},
      coords={time_name: (time_name, T0 + hours.astype("timedelta64[h]"),
                          attrs(standard_name="time")),
              lat_name: (lat_name, np.linspace(40, 39, NY), attrs(units="degrees_north")),
              lon_name: (lon_name, np.linspace(0, 2, NX), attrs(units="degrees_east"))})
  encoding = ({variable: {"dtype": "int16", "scale_factor": 0.01, "add_offset": 280.0,
                          "_FillValue": -32767}} if packed else {})
  dataset.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def _prepare(manual_dir, data_dir, **fields):
  fields = {"variable": "LST", "tile_size": 4, "window_hours": 24, "target_hours": 24,
            "stride_hours": 12, "test_fraction": 1 / 3, "max_missing": 0.2, **fields}
  builder = lst.Lst(config=lst.make_config(**fields), data_dir=str(data_dir),
                    file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir)))
  return builder


@pytest.fixture(scope="module")
def packed_two_files(tmp_path_factory):
  """The field as two packed NetCDF files split along time (the second written first)."""
  directory = tmp_path_factory.mktemp("lst_manual")
  hours, values = _field()
  _write(directory / "b_second_half.nc", values[72:], hours[72:])
  _write(directory / "a_first_half.nc", values[:72], hours[:72])
  return directory, values


def test_packed_values_fill_values_and_targets(packed_two_files, tmp_path):
  manual, values = packed_two_files
  builder = _prepare(manual, tmp_path)
  sources = builder.as_data_source()
  # 3 × 2 tiles of 4×4, one all "sea" (dropped in every window); 6 days: days 1–4 train, 5–6
  # test; 24-h windows + 24-h targets every 12 h: train starts 0,12,…,48; test start 96.
  assert len(sources["train"]) == 5 * 5 and len(sources["test"]) == 1 * 5
  by_key = {}
  for split in ("train", "test"):
    for i in range(len(sources[split])):
      ex = sources[split][i]
      by_key[(int(ex["tile_row"]), int(ex["tile_col"]), ex["start"].decode())] = ex
  assert not any(key[:2] == (0, 0) for key in by_key)  # the sea tile
  # The target of tile (1, 1) from hour 12: the mean of hours 36–59 of the original floats,
  # as decoded from int16 × 0.01 + 280 (the packing's precision).
  ex = by_key[(1, 1, "2021-01-01T12:00:00")]
  expected = np.nanmean(values[36:60, 4:8, 4:8])
  assert float(ex["temperature"]) == pytest.approx(expected, abs=0.01)
  # Persistence: the mean of the window's own last 24 h (here the whole 24-h window).
  assert float(ex["persistence"]) == pytest.approx(np.nanmean(values[12:36, 4:8, 4:8]),
                                                   abs=0.01)
  # A window with the cloud gap (hours 30–32 at cell (5, 6), tile (1, 1)) reports it.
  gap = by_key[(1, 1, "2021-01-02T00:00:00")]
  assert float(gap["missing"]) == pytest.approx(3 / (48 * 16))
  # Normalization: the training period's percentiles, written beside the files.
  with open(os.path.join(builder.data_dir, "normalization.json")) as f:
    norm = json.load(f)
  train_values = values[:96][np.isfinite(values[:96])]
  assert norm["lo"] == pytest.approx(np.percentile(train_values, 0.5), abs=0.02)
  assert norm["units"] == "K"
  video = ex["video"].astype(np.float64) / 255 * (norm["hi"] - norm["lo"]) + norm["lo"]
  inputs = np.clip(values[12:36, 4:8, 4:8], norm["lo"], norm["hi"])
  known = np.isfinite(inputs)
  np.testing.assert_allclose(video[..., 0][known], inputs[known],
                             atol=(norm["hi"] - norm["lo"]) / 510 + 0.01)
  # The cloud gap (hours 30–32, cell (1, 2) of the tile) holds the tile's mean of that hour.
  hour_means = np.nanmean(np.clip(values[30:33, 4:8, 4:8], norm["lo"], norm["hi"]), axis=(1, 2))
  np.testing.assert_allclose(video[18:21, 1, 2, 0], hour_means, atol=0.15)


def test_no_window_crosses_the_split(packed_two_files, tmp_path):
  manual, _ = packed_two_files
  sources = _prepare(manual, tmp_path).as_data_source()
  boundary = T0 + np.timedelta64(96, "h")
  for split in ("train", "test"):
    for i in range(len(sources[split])):
      start = np.datetime64(sources[split][i]["start"].decode())
      end = start + np.timedelta64(48, "h")  # input and target hours
      assert (end <= boundary) if split == "train" else (start >= boundary)
  starts = lst.window_starts(24 * 10, window=24, target=24, stride=6, test_fraction=0.3)
  assert starts["train"].max() + 48 <= 7 * 24 <= starts["test"].min()


def test_too_many_missing_values_drop_a_window(tmp_path, capfd):
  hours, values = _field()
  values[0:20, 4:8, 0:4] = np.nan  # tile (1, 0): 20 of the 48 hours of its first window
  _write(tmp_path / "x.nc", values, hours)
  sources = _prepare(tmp_path, tmp_path / "tfds").as_data_source()
  starts = {(int(sources["train"][i]["tile_row"]), int(sources["train"][i]["tile_col"]),
             sources["train"][i]["start"].decode()) for i in range(len(sources["train"]))}
  assert (1, 0, "2021-01-01T00:00:00") not in starts
  assert (1, 0, "2021-01-02T00:00:00") in starts
  assert "6 tile-windows dropped with more than 20 % of their values missing" in \
      capfd.readouterr().out  # 5 sea + 1 cloud


def test_names_found_from_the_file_or_given(tmp_path):
  hours, values = _field()
  # ERA5's names, undeclared (no attributes): found by name; time by its datetime type.
  _write(tmp_path / "era5.nc", values, hours, names=("valid_time", "latitude", "longitude"),
         variable="LST", declare=False, packed=False)
  assert len(_prepare(tmp_path, tmp_path / "a").as_data_source()["train"]) == 25
  os.remove(tmp_path / "era5.nc")
  # Odd names, declared by units: found.
  _write(tmp_path / "odd.nc", values, hours, names=("t_axis", "row", "col"), packed=False)
  assert len(_prepare(tmp_path, tmp_path / "a2").as_data_source()["test"]) == 5
  # Odd names, undeclared: the error says which one to set, and setting it works.
  _write(tmp_path / "odd.nc", values, hours, names=("t_axis", "row", "col"), packed=False,
         declare=False)
  with pytest.raises(common.DataError, match=r"cannot tell which dimension .* is latitude"):
    _prepare(tmp_path, tmp_path / "b")
  builder = _prepare(tmp_path, tmp_path / "c", latitude_name="row", longitude_name="col")
  assert len(builder.as_data_source()["test"]) == 5
  with pytest.raises(common.DataError, match=r"no dimension 'rows' \(its dimensions are "
                                             r"\['t_axis', 'row', 'col'\]\)"):
    _prepare(tmp_path, tmp_path / "d", latitude_name="rows", longitude_name="col")


def test_a_missing_variable_lists_those_the_file_has(packed_two_files, tmp_path):
  manual, _ = packed_two_files
  with pytest.raises(common.DataError, match=r"a_first_half.nc: no variable 'skt'; it has "
                                             r"\['LST'\]"):
    _prepare(manual, tmp_path, variable="skt")


def test_grid_smaller_than_a_tile_and_missing_files_are_named(packed_two_files, tmp_path):
  manual, _ = packed_two_files
  with pytest.raises(common.DataError, match=r"the grid is 8×12 cells, smaller than one tile "
                                             r"of data.builder.tile_size=16×16"):
    _prepare(manual, tmp_path, tile_size=16)
  with pytest.raises(common.DataNotFoundError, match="holds no NetCDF file"):
    _prepare(tmp_path, tmp_path / "tfds")
  with pytest.raises(common.DataNotFoundError, match="does not exist"):
    _prepare(tmp_path / "nowhere", tmp_path / "tfds")


def test_absent_hours_become_missing_values(tmp_path):
  hours, values = _field()
  keep = np.ones(len(hours), bool)
  keep[50:53] = False  # three hours absent from the file
  _write(tmp_path / "gappy.nc", values[keep], hours[keep])
  array = lst.open_temperature([str(tmp_path / "gappy.nc")], lst.make_config(variable="LST"))
  assert array.sizes["time"] == len(hours)
  assert np.isnan(array.values[50:53]).all() and not np.isnan(array.values[49, 5, 5])


@pytest.mark.parametrize("config, message", [
    ("configs/lst.py", "Error: LST not found: the directory {} does not exist."),
    ("configs/countix.py", "Error: Countix not found: the directory {} does not exist."),
])
def test_plain_configs_without_data_exit_2_and_say_where_they_looked(tmp_path, config, message):
  result = run_main_here(f"--config={config}", f"--config.data.data_dir={tmp_path / 'tfds'}",
                    f"--config.data.manual_dir={tmp_path / 'nothing'}",
                    f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert message.format(tmp_path / "nothing") in result.stderr
  assert not (tmp_path / "work").exists()
