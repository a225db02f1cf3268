"""The paper's experiments as commands: nested training fractions, the zero-shot frequency
split, the view-strength sweep's curves, the data-efficiency grid and the report, opened in a
real headless browser."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from simper_jax import errors
from simper_jax import outputs
from simper_jax import run
from simper_jax import train
from simper_jax.data import pipeline
from simper_jax.data import rotating_digits as rd
from tiny import REPO, in_process, tiny_config

sys.path.insert(0, os.path.join(REPO, "launch"))
import data_efficiency  # noqa: E402  pylint: disable=g-import-not-at-top
import sweep  # noqa: E402  pylint: disable=g-import-not-at-top

from configs import rotating_digits  # noqa: E402  pylint: disable=g-import-not-at-top


# ---------------------------------------------------------------------------------------------
# Data efficiency: nested subsets.
# ---------------------------------------------------------------------------------------------
def test_training_fractions_are_nested_and_drawn_by_the_seed():
  subsets = {f: set(pipeline.fraction_indices(1000, f, seed=3)[0])
             for f in (1.0, 0.5, 0.2, 0.1, 0.05)}
  assert {f: len(s) for f, s in subsets.items()} == {1.0: 1000, 0.5: 500, 0.2: 200, 0.1: 100,
                                                     0.05: 50}
  assert subsets[0.05] < subsets[0.1] < subsets[0.2] < subsets[0.5] < subsets[1.0]
  assert set(pipeline.fraction_indices(1000, 0.1, seed=4)[0]) != subsets[0.1]
  assert len(pipeline.fraction_indices(10, 0.01, seed=0)[0]) == 1  # never empty
  sources = {"train": list(range(20)), "test": list(range(5))}
  assert pipeline.with_train_fraction(sources, 1.0, seed=0) is sources
  cut = pipeline.with_train_fraction(sources, 0.25, seed=0)
  assert cut["test"] is sources["test"] and len(cut["train"]) == 5
  assert list(cut["train"].indices) == sorted(pipeline.fraction_indices(20, 0.25, 0)[0])


@pytest.mark.slow  # four tiny runs through the loop
def test_train_fraction_cuts_pretraining_and_readouts_and_composes_with_label_fraction(
    data_dir, tmp_path, capsys):
  config = tiny_config(data_dir, num_steps=1, **{"data.train_fraction": 0.5})
  run.train_and_evaluate(config, str(tmp_path / "half"))
  out = capsys.readouterr().out
  assert "Data: 8 training clips of (24, 8, 8, 1) (50 % of the split)" in out
  assert "feature signals of the 8 train and 16 test clips" in out  # readouts fit on the 8
  config = tiny_config(data_dir, method="supervised", num_steps=1,
                       **{"data.train_fraction": 0.75, "supervised.label_fraction": 0.75})
  train.train(config, str(tmp_path / "nested"))
  # ceil(0.75 · ceil(0.75 · 16)) = 9 clips
  assert "Data: 9 training clips of (24, 8, 8, 1) (56.25 % of the split)" in \
      capsys.readouterr().out


@pytest.mark.parametrize("value", [0.0, 1.5, -0.5])
def test_a_bad_train_fraction_is_named(value, data_dir):
  config = tiny_config(data_dir)
  config.data.train_fraction = value
  with pytest.raises(errors.ConfigError, match=r"config.data.train_fraction=.*expected the "
                                               r"share of the training split to use, in \(0, 1\]"):
    train.check_config(config, 8)


# ---------------------------------------------------------------------------------------------
# Zero-shot: training bands, regions of the test labels.
# ---------------------------------------------------------------------------------------------
def test_frequencies_are_uniform_over_the_union_of_the_bands():
  rng = np.random.default_rng(0)
  bands = ((0.5, 2.0), (3.0, 5.0))
  draws = np.array([rd.draw_frequency(rng, bands) for _ in range(7000)])
  in_first, in_second = (draws >= 0.5) & (draws <= 2.0), (draws >= 3.0) & (draws <= 5.0)
  assert np.all(in_first | in_second)
  assert np.mean(in_first) == pytest.approx(1.5 / 3.5, abs=0.02)  # by width, not per band
  assert np.histogram(draws[in_second], bins=4)[0].min() > 900  # flat inside a band
  # One band is one uniform draw, as before bands existed: prepared data stays the same.
  assert rd.draw_frequency(np.random.default_rng(5), ((0.5, 5.0),)) == \
      np.random.default_rng(5).uniform(0.5, 5.0)


def test_the_builder_leaves_the_bands_out_of_train_only(tmp_path):
  builder = rd.RotatingDigits(
      config=rd.make_config(num_train=24, num_test=40, num_frames=20, image_size=8,
                            freq_range=(1.0, 3.0), train_bands=((1.0, 1.5), (2.5, 3.0))),
      data_dir=str(tmp_path / "tfds"), file_format="array_record")
  builder.download_and_prepare()
  sources = builder.as_data_source()
  frequency = lambda split: np.array([sources[split][i]["frequency"]
                                      for i in range(len(sources[split]))])
  train_f, test_f = frequency("train"), frequency("test")
  assert np.all((train_f <= 1.5) | (train_f >= 2.5))
  assert np.any((test_f > 1.5) & (test_f < 2.5))  # the test split covers the gap
  # Without bands the prepared folder keeps the name it had before the field existed.
  quick = rotating_digits.get_config("quick").data.builder.to_dict()
  assert rd.make_config(**quick).name == "sklearn_16px_90f_09b291b0"
  assert rd.make_config(**{**quick, "train_bands": ((0.5, 2.0),)}).name != \
      "sklearn_16px_90f_09b291b0"


@pytest.mark.parametrize("bands, message", [
    (((0.5, 6.0),), "expected \\(low, high\\) pairs with low < high inside freq_range"),
    (((2.0, 1.0),), "expected \\(low, high\\) pairs"),
    (((0.5, 2.0), (1.5, 3.0)), "the bands overlap")])
def test_bad_train_bands_are_named(bands, message):
  with pytest.raises(errors.DataError, match=f"data.builder.train_bands=.*{message}"):
    rd.make_config(freq_range=(0.5, 5.0), train_bands=bands)


def test_zero_shot_regions_of_the_test_labels():
  labels = np.array([0.6, 1.9, 2.5, 3.5, 4.9, 0.2, 5.5])
  regions = outputs.label_regions(labels, [(0.5, 2.0), (3.0, 5.0)])
  assert {k: list(np.flatnonzero(v)) for k, v in regions.items()} == {
      "seen": [0, 1, 3, 4], "interpolation": [2], "extrapolation": [5, 6]}
  assert list(outputs.label_regions(labels[:2], [(0.5, 2.0)])) == ["seen"]  # empty: left out
  assert outputs.unseen_bands([(0.5, 2.0), (3.0, 5.0)], 0.5, 5.0) == [(2.0, 3.0)]
  assert outputs.unseen_bands([(0.5, 3.0)], 0.5, 5.0) == [(3.0, 5.0)]
  assert outputs.unseen_bands([(1.0, 2.0)], 0.5, 5.0) == [(0.5, 1.0), (2.0, 5.0)]
  predictions = {"fft": (labels + np.arange(7), labels), "per_video": (labels[:2], labels[:2]),
                 # as many videos as clips, scored against the videos' own rates
                 "per_video_7": (labels, labels + 0.1)}
  by_region = outputs.region_results(predictions, labels, [(0.5, 2.0), (3.0, 5.0)])
  assert by_region["extrapolation"]["fft"]["mae"] == pytest.approx(5.5)  # errors 5 and 6
  assert by_region["interpolation"]["fft"]["mae"] == pytest.approx(2.0)
  assert all(list(r) == ["fft"] for r in by_region.values())  # no clip to place


def test_zero_shot_variants_set_the_training_bands_and_the_evaluation_split():
  config = rotating_digits.get_config("quick,interpolation")
  assert config.data.builder.train_bands == ((0.5, 2.0), (3.0, 5.0))
  assert config.eval.seen_bands == config.data.builder.train_bands
  assert rotating_digits.get_config("extrapolation").eval.seen_bands == ((0.5, 3.0),)
  assert rotating_digits.get_config("quick").eval.seen_bands == ()
  with pytest.raises(ValueError, match="pick one"):
    rotating_digits.get_config("interpolation,extrapolation")


# ---------------------------------------------------------------------------------------------
# View strength: one knob at a time.
# ---------------------------------------------------------------------------------------------
def test_the_view_strength_sweep_gives_one_curve_per_method_and_knob():
  config = rotating_digits.get_config("quick")
  points = rotating_digits.get_sweep("quick", "view_strength")
  tests = [{"fft": {"mae": float(i)}} for i in range(len(points))]
  curves = sweep.one_knob_curves(config, points, tests)
  assert list(curves) == ["simper: simper.speed_range", "simper: simper.num_speeds",
                          "simclr: augment.crop_area"]
  speed = curves["simper: simper.speed_range"]["fft"]
  assert [round(x, 2) for x, _ in speed] == [1.22, 1.56, 2.24, 4.0, 9.09]  # high / low
  base = next(i for i, p in enumerate(points)
              if p == {"method": "simper", "simper.speed_range": (0.5, 2.0)})
  # The config's own setting (M = 5) is on the M curve too, in its place.
  assert curves["simper: simper.num_speeds"]["fft"] == [(2.0, 5.0), (3.0, 6.0), (5.0, base),
                                                        (8.0, 7.0)]
  crop = curves["simclr: augment.crop_area"]["fft"]
  assert [round(x, 2) for x, _ in crop] == [1.11, 1.43, 2.0, 3.33, 10.0]
  # A grid changes several fields per point: no one-knob curves.
  grid = rotating_digits.get_sweep("quick")
  assert sweep.one_knob_curves(config, grid, [{"fft": {"mae": 0.0}}] * len(grid)) is None


# ---------------------------------------------------------------------------------------------
# The data-efficiency command, figures of every run, and the report in a browser.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
  """launch/data_efficiency.py on the tiny config: SimPer at 100 % and 50 %, with figures."""
  parent = tmp_path_factory.mktemp("grid")
  args = [sys.executable, os.path.join(REPO, "launch", "data_efficiency.py"),
          "--config=configs/rotating_digits.py:tiny", "--methods=simper", "--fractions=1,0.5",
          f"--workdir={parent}", "--", f"--config.data.data_dir={parent / 'tfds'}",
          "--config.num_steps=2", "--config.eval.figures=True"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  result = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  # Again, in this process (nothing is left to start): it resumes, nothing reruns.
  again = in_process(args[1:], lambda: data_efficiency.main(args[2:]))
  assert again.stdout.count("# done: results.json exists") == 2, again.stdout + again.stderr
  return parent


@pytest.mark.slow
def test_the_data_efficiency_grid_writes_its_table_plot_and_runs(grid_dir):
  with open(grid_dir / "data_efficiency.json") as f:
    saved = json.load(f)
  assert saved["fractions"] == [1.0, 0.5] and set(saved["test"]["simper"]) == {"1", "0.5"}
  for fraction in ("1", "0.5"):
    with open(grid_dir / "simper" / f"fraction={fraction}" / "results.json") as f:
      assert saved["test"]["simper"][fraction] == json.load(f)["test"]
    with open(grid_dir / "simper" / f"fraction={fraction}" / "config.json") as f:
      assert json.load(f)["data"]["train_fraction"] == float(fraction)
  table = (grid_dir / "data_efficiency.md").read_text()
  assert "| simper | fft | " in table and "| 100 % | 50 % |" in table
  assert (grid_dir / "data_efficiency.png").stat().st_size > 10_000
  figures = sorted(os.listdir(grid_dir / "simper" / "fraction=1" / "figures"))
  assert figures == sorted(f"{name}.{ext}" for name in ("ood_scores", "predicted_vs_true",
                                                        "risk_coverage", "spectra", "training",
                                                        "umap")
                           for ext in ("png", "csv"))


@pytest.mark.slow
def test_the_report_renders_its_tables_and_images_in_a_headless_browser(grid_dir, tmp_path):
  result = subprocess.run([sys.executable, "-m", "simper_jax.report", f"--workdir={grid_dir}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
  assert result.returncode == 0, result.stderr
  page = (grid_dir / "report.html").read_text()
  assert 'src="data:image/png;base64,' in page and ".png\"" not in page  # all embedded
  assert "](simper/fraction=1/figures/umap.png)" in (grid_dir / "report.md").read_text()
  # Moved away from its folder, the HTML must still show everything: nothing is linked.
  moved = tmp_path / "report.html"
  shutil.copy(grid_dir / "report.html", moved)

  chromedriver = shutil.which("chromedriver")
  if not chromedriver:
    if os.environ.get("CI"):
      pytest.fail("chromedriver is not installed: the test command installs chromium and "
                  "chromium-driver (docs/getting-started.md, the test command).")
    pytest.skip("no chromedriver here (apt-get install chromium chromium-driver)")
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  options = webdriver.ChromeOptions()
  for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
    options.add_argument(argument)
  driver = webdriver.Chrome(options=options,
                            service=webdriver.ChromeService(executable_path=chromedriver))
  try:
    driver.get(moved.as_uri())
    tables = driver.execute_script(
        "return Array.from(document.querySelectorAll('table')).map("
        "t => [t.rows.length, t.getBoundingClientRect().height]);")
    # Each image drawn on a canvas: a figure's background is opaque, so a PNG that the
    # browser could not decode to its last row leaves transparent pixels.
    images = driver.execute_script("""
        return Array.from(document.images).map(image => {
          const canvas = document.createElement('canvas');
          canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
          const context = canvas.getContext('2d');
          context.drawImage(image, 0, 0);
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          let transparent = 0;
          for (let i = 3; i < pixels.length; i += 4) transparent += pixels[i] === 0;
          return [image.complete, image.naturalWidth, image.getBoundingClientRect().width,
                  transparent];
        });""")
    title = driver.title
    driver.save_screenshot(str(tmp_path / "report.png"))
  finally:
    driver.quit()
  assert title.startswith("simper_jax report")
  # The grid's table, then per run: results and config differences (the second run only).
  assert len(tables) >= 4 and all(rows >= 2 and height > 20 for rows, height in tables)
  # The grid's plot and six figures per run, each decoded by the browser and laid out.
  assert len(images) == 1 + 2 * 6
  assert all(done and natural > 100 and width > 100 and transparent == 0
             for done, natural, width, transparent in images), images


def test_a_workdir_saved_before_train_fraction_existed_resumes_only_at_the_old_behaviour(
    data_dir, tmp_path):
  from simper_jax import checkpoint  # pylint: disable=g-import-not-at-top
  config = tiny_config(data_dir)
  saved = json.loads(config.to_json_best_effort())
  del saved["data"]["train_fraction"], saved["data"]["builder"]["train_bands"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  checkpoint.check_workdir_config(str(tmp_path), config)  # 1.0 and no bands: what it did
  config.data.train_fraction = 0.5
  with pytest.raises(errors.ConfigError, match="data.train_fraction: saved 1.0, now 0.5"):
    checkpoint.check_workdir_config(str(tmp_path), config)


def test_compare_adds_a_table_per_zero_shot_region(tmp_path):
  """Finished runs are not rerun; their regions become tables of the comparison."""
  metrics = lambda mae: {"fft": {"mae": mae}, "1nn": {"mae": 2 * mae}}
  for method, mae in (("simper", 0.01), ("simclr", 0.5)):
    (tmp_path / method).mkdir()
    (tmp_path / method / "results.json").write_text(json.dumps({
        "unit": "Hz", "test": metrics(mae),
        "test_by_region": {"seen": metrics(mae / 2), "extrapolation": metrics(mae * 3)}}))
  result = subprocess.run([sys.executable, os.path.join(REPO, "launch", "compare.py"),
                           "--config=configs/rotating_digits.py:tiny,extrapolation",
                           "--methods=simper,simclr", f"--workdir={tmp_path}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
  assert result.returncode == 0, result.stderr
  text = (tmp_path / "comparison.md").read_text()
  assert "### seen" in text and "### extrapolation" in text and "### interpolation" not in text
  extrapolation = text.split("### extrapolation")[1]
  assert "| simper | 0.0300 | 0.0600 |" in extrapolation
  assert "| simclr | 1.5000 | 3.0000 |" in extrapolation
