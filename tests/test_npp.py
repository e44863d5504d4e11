"""The NPP stage (seed 000): seasons, PAR sums, trend, reference, baselines, the stage on the tiny city."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from urbaneo.align import open_aligned
from urbaneo.artifacts.cog import validate_cog
from urbaneo.artifacts.stac import load_items
from urbaneo.models import st_mae
from urbaneo.stages.npp import baselines, data, evaluate, predict, train


def _daily(start: str, end: str, value=1.0) -> xr.DataArray:
    time = pd.date_range(start, end, freq="D")
    return xr.DataArray(np.full((len(time), 2, 2), value), dims=("time", "y", "x"), coords={"time": time})


def test_calendar_seasons_in_time_order():
    days = pd.to_datetime(["2020-01-15", "2020-03-01", "2020-07-01", "2020-10-01", "2020-12-31"])
    np.testing.assert_array_equal(predict.season_index(days, southern=False), [3, 0, 1, 2, 3])
    np.testing.assert_array_equal(predict.season_index(days, southern=True), [1, 2, 3, 0, 1])
    by_season = np.arange(8.0).reshape(2, 4)  # (year, season index)
    series = predict.chronological(by_season)
    np.testing.assert_array_equal(series, [3, 0, 1, 2, 7, 4, 5, 6])  # winter, spring, summer, autumn
    np.testing.assert_array_equal(predict.from_chronological(series, 2), by_season)


def test_par_season_sums_count_complete_seasons_only():
    sums = predict.par_season_sums(_daily("2020-01-01", "2020-12-31"), [2020], southern=False)
    # 2020 is a leap year: winter Jan + Feb (29 days) + Dec = 91, spring 92, summer 92, autumn 91 days
    np.testing.assert_array_equal(sums[0, :, 0, 0], [92, 92, 91, 91])
    gappy = _daily("2020-01-01", "2020-12-31").drop_sel(time=pd.Timestamp("2020-07-04"))
    sums = predict.par_season_sums(gappy, [2020, 2021], southern=False)
    assert np.isnan(sums[0, 1]).all() and np.isfinite(sums[0, [0, 2, 3]]).all()
    assert np.isnan(sums[1]).all()  # a year without data


def test_forecast_par_keeps_the_seasonal_pattern():
    years = 4
    city = np.tile([600.0, 800.0, 450.0, 300.0], (years, 1))  # spring, summer, autumn, winter
    pattern = np.array([[0.9, 1.1], [1.0, 1.0]])
    sums = city[:, :, None, None] * pattern
    out = predict.forecast_par(sums, 3, preset="demo", seed=0, epochs=300)
    assert np.isnan(out["sums"][:3]).all() and np.isfinite(out["sums"][3]).all()
    forecast = out["sums"][3]
    np.testing.assert_allclose(forecast / forecast.mean(axis=(1, 2), keepdims=True), np.broadcast_to(pattern, (4, 2, 2)),
                               rtol=1e-6)  # the forecast map has the training years' pattern
    assert np.abs(forecast.mean(axis=(1, 2)) - city[3]).mean() / city[3].mean() < 0.1
    sums[1, 2] = np.nan
    with pytest.raises(Exception, match="no complete PAR"):
        predict.forecast_par(sums, 3, preset="demo", seed=0, epochs=5)


def test_trend_and_annual():
    years = [2019, 2020, 2021]
    annual = np.stack([np.full((2, 2), 100.0 + 10 * i) for i in range(3)])
    annual[0, 0, 0] = np.nan  # two years left: still a slope
    annual[:2, 1, 1] = np.nan  # one year: none
    t = predict.trend(annual, years)
    np.testing.assert_allclose(t[[0, 0, 1], [0, 1, 0]], 10.0)
    assert np.isnan(t[1, 1])
    seasons = np.ones((1, 4, 2, 2))
    seasons[0, 2, 0, 0] = np.nan
    a = predict.annual(seasons)
    assert a[0, 1, 1] == 4 and np.isnan(a[0, 0, 0])


def test_seasonal_median_and_climatology_fill():
    refl = np.array([1.0, 3.0, 5.0, np.nan])[:, None, None, None] * np.ones((4, 1, 1, 2))
    refl[3, 0, 0, 1] = 7.0
    year, season = np.array([2020, 2020, 2021, 2021]), np.array([0, 0, 0, 1])
    med = predict.seasonal_median(refl, year, season, [2020, 2021])
    assert med[0, 0, 0, 0, 0] == 2.0 and med[1, 0, 0, 0, 0] == 5.0
    assert np.isnan(med[1, 1, 0, 0, 0]) and med[1, 1, 0, 0, 1] == 7.0
    filled = predict.climatology_fill(med)
    assert filled[1, 1, 0, 0, 0] == 7.0  # no other year: the season's city median
    assert not np.isnan(filled[:, :2]).any()


def test_scores_by_hand():
    s = evaluate.scores([1.0, 2.0, 4.0, np.nan], [1.0, 3.0, 3.0, 5.0])
    assert s["n"] == 3 and s["mae"] == pytest.approx(2 / 3) and s["bias"] == pytest.approx(0.0)
    assert s["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert s["r2"] == pytest.approx(1 - 2 / (24 / 9))
    assert evaluate.scores([np.nan], [1.0])["n"] == 0


def test_reference_seasons_from_8_day_composites():
    starts = [pd.Timestamp(2020, 1, 1) + pd.Timedelta(days=d) for d in range(0, 366, 8)]
    ref = xr.DataArray(np.full((len(starts), 1, 1), 0.01, np.float32), dims=("time", "y", "x"),
                       coords={"time": starts}, attrs={"period": "8-day"})
    seasonal, annual = evaluate.reference_seasons(ref, [2020], southern=False)
    counts = np.bincount(predict.season_index(pd.DatetimeIndex(starts), False), minlength=4)
    np.testing.assert_allclose(seasonal[0, :, 0, 0], counts * 10.0, rtol=1e-6)  # kg -> g C m-2
    assert annual[0, 0, 0] == pytest.approx(46 * 10.0, rel=1e-6)
    missing = ref.drop_isel(time=20)  # one composite of summer missing
    seasonal, annual = evaluate.reference_seasons(missing, [2020], southern=False)
    assert np.isnan(seasonal[0, 1, 0, 0]) and np.isnan(annual[0, 0, 0]) and np.isfinite(seasonal[0, 0, 0, 0])


@pytest.mark.parametrize("method", baselines.METHODS)
def test_baselines_learn_a_smooth_relation(method):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (400, 5))
    y = 100 * x[:, 0] + 50 * x[:, 1] * x[:, 2] + rng.normal(0, 2, 400)
    pred = baselines.fit_predict(method, x[:300], y[:300], x[300:], seed=0)
    mae = np.abs(pred - y[300:]).mean()
    assert mae < 0.35 * np.abs(y[300:] - y[:300].mean()).mean()  # far better than the mean
    again = baselines.fit_predict(method, x[:300], y[:300], x[300:], seed=0)
    np.testing.assert_array_equal(pred, again)


def test_paper_preset_trains_one_step_and_is_table_4s():
    """st-MAE paper preset: one AdamW step on CPU; its GFLOPs per image are Table 4's 18.84."""
    model = st_mae.build(train.hyperparameters("paper", None, "osm", None))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(1, 3, 224, 224)
    mask = model.choose_mask(1, None, torch.Generator().manual_seed(0))
    loss = model.loss(x, model(x, torch.tensor([1]), mask), mask)
    loss.backward()
    opt.step()
    assert model(x, torch.tensor([1]), mask).shape == (1, 196, 16 * 16 * 3) and torch.isfinite(loss)
    assert evaluate.gflops_per_image(model, 224) == pytest.approx(18.84, abs=0.01)


def test_st_mae_training_resumes_to_the_same_file(tmp_path, monkeypatch, tiny_aligned):
    acq = data.load(tiny_aligned / "resources/align/tiny")
    straight = tmp_path / "straight.pt"
    train.train(acq, "rgb", straight, max_epochs=3, progress=False)

    calls = {"n": 0}
    loss = st_mae.StMAE.loss

    def crashing(self, *args):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] > 1:  # killed in the second epoch
                raise KeyboardInterrupt
        return loss(self, *args)

    out = tmp_path / "killed.pt"
    monkeypatch.setattr(st_mae.StMAE, "loss", crashing)
    with pytest.raises(KeyboardInterrupt):
        train.train(acq, "rgb", out, max_epochs=3, progress=False)
    assert not out.exists() and len(list(tmp_path.glob(".killed.pt.*.partial"))) == 1
    monkeypatch.setattr(st_mae.StMAE, "loss", loss)
    train.train(acq, "rgb", out, max_epochs=3, progress=False)
    assert out.read_bytes() == straight.read_bytes() and not list(tmp_path.glob(".*.partial"))


# --- the stage on the tiny city (the session's `snakemake all` run) ---------------------------------


def test_npp_stage_publishes_every_product(tiny_run):
    out = tiny_run / "results/demo/tiny/npp"
    metrics = json.loads((out / "metrics.json").read_text())
    held = metrics["heldout"]
    assert held["year"] == 2021 and set(held["methods"]) == {
        "st_mae", "st_mae_calibrated", "npp_function_conventional", "npp_function_conventional_calibrated",
        "linear_regression", "mlp", "dbn"}
    calibration = held["calibration"]
    assert calibration["fitted_on"] == [2020] and calibration["published"] == [0.5139, -1.9818]
    n = {m["season_cells"]["n"] for m in held["methods"].values()}
    assert len(n) == 1 and n.pop() > 0  # every method on the same cells
    for m in held["methods"].values():
        assert all(np.isfinite(m["season_cells"][k]) for k in ("mae", "rmse", "bias"))
    assert set(metrics["per_year"]) == {"2020", "2021"} and "summer" in metrics["per_year"]["2021"]
    assert set(metrics["par_rnn_table3"]) == {"15d", "30d", "60d", "90d"}
    assert all(0 < v["loss_ratio"] < 1 for v in metrics["par_rnn_table3"].values())
    table4 = metrics["compute_table4"]["models"]
    assert table4["st-MAE (paper, not trained here)"]["gflops_per_image"] == pytest.approx(18.84, abs=0.01)
    assert table4["st-MAE rgb (demo)"]["train_gflop"] > 0
    timings = json.loads((out / "timings.json").read_text())
    assert timings["models"]["rgb"]["train_seconds"] > 0 and timings["models"]["rgb"]["cost"] > 0
    assert metrics["osm_mask"] == "osm" and metrics["missing_seasons"] == "none"

    items = load_items(tiny_run / "results/demo")
    product = [i for i in items.values() if i["collection"] == "npp" and i["properties"]["urbaneo:city"] == "tiny"]
    models = {i["properties"]["urbaneo:key"] for i in items.values() if i["collection"] == "models"}
    assert len(product) == 1 and {"npp-rgb", "npp-false_colour"} <= models
    derived = {link["href"].split("/")[-1] for link in product[0]["links"] if link["rel"] == "derived_from"}
    assert any(d.startswith("model-npp-rgb-tiny-") for d in derived) and any(d.startswith("input-osm") for d in derived)
    folder = next((tiny_run / "results/demo/stac/npp").glob("npp-tiny-*"))
    for name in ("npp_seasonal", "npp_annual", "npp_trend", "composites", "par_seasonal", "par_forecast"):
        assert validate_cog(folder / f"{name}.tif")[0], name
    import rasterio

    with rasterio.open(folder / "npp_seasonal.tif") as src:
        assert src.count == 8 and src.descriptions[0] == "2020-spring"
        assert "fpar_clip" in " ".join(src.tags())
        values = src.read()
    assert np.isfinite(values).mean() > 0.99 and np.nanmax(values) > 10  # gaps filled, vegetation found
    for png in ("npp_annual.png", "npp_trend.png", "metrics.png", "methods.png", "longterm.png"):
        assert (out / png).stat().st_size > 5000
    longterm = json.loads((folder / "longterm.json").read_text())
    assert list(longterm["models"]) == ["trained to 2020"]  # two years: the product's own model only
    assert longterm["models"]["trained to 2020"]["2021"]["mae"] == pytest.approx(
        held["methods"]["st_mae"]["season_cells"]["mae"], rel=0.2)


def test_ablation_reports_every_variant_and_the_effects_sign(tiny_aligned, tmp_path):
    proc = _cli("npp", "ablation", "--aligned", tiny_aligned / "resources/align/tiny", "--max-epochs", "1",
                "--no-progress", "--metrics", tmp_path / "ablation.json", "--table", tmp_path / "ablation.png")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "ablation.json").read_text())
    names = set(metrics["variants"])
    assert {"frozen 4", "frozen 0", "from scratch", "no season embedding", "random mask", "mask ratio 0.95",
            "projection 8"} <= names
    rows = metrics["variants"]
    assert rows["no season embedding"]["settings"]["season_layers"] == 0
    assert rows["random mask"]["settings"]["mask_mode"] == "random"
    assert metrics["osm_mask_effect"] == pytest.approx(rows["random mask"]["heldout_mse"]
                                                       - rows["from scratch"]["heldout_mse"], abs=1e-5)
    assert all(np.isfinite(r["heldout_mse"]) for r in rows.values())
    assert len({r["heldout_mse"] for r in rows.values()}) > len(rows) // 2  # the settings change the model
    assert "OSM mask effect" in proc.stdout and (tmp_path / "ablation.png").stat().st_size > 5000
    # on the same random masks, a randomly masked model scores exactly as under its own masks
    assert rows["random mask"]["heldout_mse_random_masks"] == rows["random mask"]["heldout_mse"]
    assert metrics["osm_mask_effect_same_masks"] is not None


def _aligned_copy(tiny_run, tmp_path, *, osm=True):
    src = tiny_run / "resources/align/tiny"
    dst = tmp_path / "aligned"
    for name in ("landsat", "par", "npp_reference") + (("osm",) if osm else ()):
        shutil.copytree(src / f"{name}.zarr", dst / f"{name}.zarr")
    return dst


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "urbaneo.cli", *map(str, args)], capture_output=True, text=True)


def test_a_city_without_osm_masks_at_random(tiny_run, tmp_path):
    aligned = _aligned_copy(tiny_run, tmp_path, osm=False)
    proc = _cli("npp", "train", "--kind", "rgb", "--aligned", aligned, "--no-osm", "--max-epochs", "1", "--no-progress",
                "--out", tmp_path / "mae_rgb.pt")
    assert proc.returncode == 0, proc.stderr
    assert "the city has no OSM: st-MAE masks at random" in proc.stderr
    assert train.load_model(tmp_path / "mae_rgb.pt")[2]["hyperparameters"]["mask_mode"] == "random"
    shutil.copy(tiny_run / "resources/demo/npp/tiny/mae_false_colour.pt", tmp_path)
    predict.make_maps(aligned, {"rgb": tmp_path / "mae_rgb.pt", "false_colour": tmp_path / "mae_false_colour.pt"},
                  tmp_path / "maps.nc", max_epochs=5, osm=False)
    ds, _ = predict.open_maps(tmp_path / "maps.nc")
    assert ds.attrs["osm_mask"].startswith("random")


def test_a_season_without_a_usable_scene_is_reported(tiny_run, tmp_path, caplog):
    aligned = _aligned_copy(tiny_run, tmp_path)
    cube = open_aligned(aligned / "landsat.zarr", "base").load()
    summer = int(np.flatnonzero((cube["season_index"].values == 1) & (cube["time"].dt.year.values == 2020))[0])
    cube["usable"][summer] = False
    shutil.rmtree(aligned / "landsat.zarr")
    for var in cube.variables.values():
        var.encoding.clear()
    cube.to_zarr(aligned / "landsat.zarr", group="base", zarr_format=2, consolidated=False)
    models = {k: tiny_run / f"resources/demo/npp/tiny/mae_{k}.pt" for k in ("rgb", "false_colour")}
    info = predict.make_maps(aligned, models, tmp_path / "maps.nc", max_epochs=5)
    assert info["missing_seasons"] == ["2020 summer"] and "no usable Landsat scene in 2020 summer" in caplog.text
    ds, _ = predict.open_maps(tmp_path / "maps.nc")
    assert np.isnan(ds["npp"].sel(year=2020, season="summer")).all() and np.isnan(ds["npp_annual"].sel(year=2020)).all()
    assert np.isfinite(ds["npp_annual"].sel(year=2021)).mean() > 0.99
    assert ds.attrs["missing_seasons"] == "2020 summer"


def test_models_of_the_wrong_composite_stop_with_one_line(tiny_run, tmp_path):
    models = {k: tiny_run / "resources/demo/npp/tiny/mae_rgb.pt" for k in ("rgb", "false_colour")}
    with pytest.raises(Exception, match="mae_rgb.pt: is the st-MAE of the rgb composite, not of false_colour"):
        predict.make_maps(tiny_run / "resources/align/tiny", models, tmp_path / "maps.nc", max_epochs=5)
    assert not (tmp_path / "maps.nc").exists()


def test_an_unreadable_maps_file_is_one_line(tmp_path):
    bad = tmp_path / "maps.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(Exception, match=r"maps.nc: cannot read as the NPP maps NetCDF"):
        predict.open_maps(bad)
