"""The urban stage (seed 003) on the tiny city: train every method, predict, evaluate, publish; bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import torch

from urbaneo.artifacts import stac
from urbaneo.artifacts.cog import validate_cog
from urbaneo.config import load_city
from urbaneo.errors import InputError
from urbaneo.grid import Grid
from urbaneo.inventory import build_inventory, write_inventory
from urbaneo.stages.urban.baselines import SvmBaseline
from urbaneo.stages.urban.data import IGNORE, Region, load_region, normalise
from urbaneo.stages.urban.evaluate import evaluate
from urbaneo.stages.urban.model import DEEP, METHODS, hyperparameters, load_model, prediction_files
from urbaneo.stages.urban.predict import COLOURS, predict, predict_region, to_mask
from urbaneo.stages.urban.publish import polygons, product_params, publish
from urbaneo.stages.urban.train import train
from urbaneo.tiles import make_tiles

EPOCHS = 2  # the plumbing, not the skill: the demo run trains the preset's epochs


@pytest.fixture(scope="module")
def stage(tiny_urban, tmp_path_factory):
    """Every method trained, predicted and evaluated on the tiny region, and the product published."""
    out = tmp_path_factory.mktemp("urban_stage")
    city = load_city(tiny_urban / "tiny.yaml")
    tiles = out / "urban.parquet"
    make_tiles(city, "urban", "demo", 0, tiny_urban / "viirs.zarr", tiles)
    models = {m: out / m / "model.pt" for m in METHODS}
    for method, path in models.items():
        train(method, tiny_urban, tiles, path, preset="demo", seed=0, max_epochs=EPOCHS, progress=False)
    predict(models, tiny_urban, tiles, out, progress=False)
    files = {m: (models[m], *prediction_files(out, m)) for m in METHODS}
    res = out / "results"
    metrics = evaluate(tiny_urban, tiles, files, res / "metrics.json", res / "metrics.png", res / "methods.png",
                       preset="demo")
    run = out / "run"
    write_inventory(build_inventory(city), out / "inventory.json")
    stac.register_inputs(run, "tiny", out / "inventory.json", period=(2020, 2021))
    item = publish(run, "tiny", tiny_urban, models, out / "ifcn" / "mask.tif", res / "metrics.json",
                   res / "metrics.png", res / "methods.png", res, params=product_params("demo", 0, EPOCHS, None),
                   period=(2020, 2021))
    return {"out": out, "tiles": tiles, "models": models, "metrics": metrics, "run": run, "item": item,
            "res": res, "region": load_region(tiny_urban)}


def test_model_files_hold_what_each_method_learned(stage):
    for method, path in stage["models"].items():
        model = load_model(path)
        assert model["method"] == method and model["preset"] == "demo"
        if method in DEEP:
            assert len(model["history"]["epoch"]) == EPOCHS and model["hyperparameters"]["epochs"] == EPOCHS
            assert math.isfinite(model["history"]["train_loss"][-1])
            # only IFCN lowers the learning rate of its first four convolutions (the paper's change)
            assert model["hyperparameters"]["low_lr_mult"] == (0.1 if method == "ifcn" else 1.0)
        x = np.zeros((2, 1, 64, 64), np.float32)
        p = model["probability"](x)
        assert p.shape == (2, 64, 64) and ((p >= 0) & (p <= 1)).all()
        assert not list(path.parent.glob(".*.partial"))  # the resumable checkpoint goes once training ends
    # the SVM is saved as plain arrays and predicts the same after the round trip
    svm = load_model(stage["models"]["svm"])
    x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    refit = SvmBaseline.from_state({k: v.numpy() for k, v in svm["state"].items()})
    assert np.array_equal(svm["probability"](x), refit.predict(x, 64 / 36).astype(np.float32))


def test_every_method_maps_the_region_on_the_label_grid(stage):
    region = stage["region"]
    for method in METHODS:
        mask_path, chips_path = prediction_files(stage["out"], method)
        ok, errors, _ = validate_cog(mask_path)
        assert ok, errors
        with rasterio.open(mask_path) as src:
            assert (src.width, src.height) == (region.fine_grid.width, region.fine_grid.height)
            assert src.transform == region.fine_grid.transform and src.nodata == IGNORE
            assert src.colormap(1)[1][:3] == COLOURS[1][:3]
            assert set(np.unique(src.read(1)).tolist()) <= {0, 1, IGNORE}
        test = np.load(chips_path)
        assert test.dtype == np.uint8 and test.shape[1:] == (64, 64)


def test_metrics_follow_tables_2_to_4(stage):
    m = stage["metrics"]
    assert set(m["methods"]) == set(METHODS) and m["chips"]["test"] > 0
    assert m["held_out_town"]["town"] is not None and m["chips"]["dropped_for_held_out_town"]
    for method, entry in m["methods"].items():
        for key in ("tp", "fp", "fn", "precision", "recall", "f1", "kappa", "oa", "mean_iu", "fwavacc"):
            assert key in entry["test_chips"] and key in entry["held_out_town"], (method, key)
        assert entry["towns"] and all({"sid", "ted", "si_pred", "te_truth_m"} <= set(t) for t in entry["towns"].values())
    # the paper preset's complexity is in the metrics, so the architecture is known even untrained
    ifcn = m["methods"]["ifcn"]["complexity"]["paper"]
    assert ifcn["params"] == 134_269_992 and ifcn["gflops"] == pytest.approx(42.3, abs=0.05)
    assert set(m["goal"]) == {f"{w}_{k}" for w in ("test_chips", "held_out_town") for k in ("kappa", "f1")}
    written = json.loads((stage["res"] / "metrics.json").read_text())
    assert written["methods"]["ifcn"]["test_chips"]["tp"] == m["methods"]["ifcn"]["test_chips"]["tp"]
    for png in ("metrics.png", "methods.png"):
        assert (stage["res"] / png).read_bytes()[:4] == b"\x89PNG"


def test_published_product_and_models_validate_offline(stage, tiny_urban):
    run, item_id = stage["run"], stage["item"]
    assert stac.validate_catalog(run / "catalog.json") == []
    items = stac.load_items(run)
    item = items[item_id]
    assert set(item["assets"]) == {"mask", "polygons", "overlay", "metrics", "table", "methods", "loss"}
    assert (stage["res"] / "loss.png").read_bytes()[:4] == b"\x89PNG"  # one panel per deep method
    derived = {link["href"].split("/")[-1].removesuffix(".json") for link in item["links"] if link["rel"] == "derived_from"}
    assert any(d.startswith("model-urban-ifcn-tiny-") for d in derived)
    assert any(d.startswith("input-viirs-tiny-") for d in derived) and any(d.startswith("input-urban_labels") for d in derived)
    models = [i for i in items.values() if i["collection"] == "models"]
    assert sorted(i["properties"]["urbaneo:key"] for i in models) == sorted(
        f"urban-{m}" for m in (*DEEP, "svm"))
    ifcn = next(i for i in models if i["properties"]["urbaneo:key"] == "urban-ifcn")
    assert ifcn["properties"]["mlm:framework"] == "PyTorch" and ifcn["properties"]["mlm:hyperparameters"]["epochs"] == EPOCHS
    # an identical second publication is the same version: nothing new
    before = sorted(items)
    again = publish(run, "tiny", tiny_urban, stage["models"], stage["out"] / "ifcn" / "mask.tif",
                    stage["res"] / "metrics.json", stage["res"] / "metrics.png", stage["res"] / "methods.png",
                    stage["res"], params=product_params("demo", 0, EPOCHS, None), period=(2020, 2021))
    assert again == item_id and sorted(stac.load_items(run)) == before
    # the product file on disk is the published polygons' source: their area is the mask's urban area
    import geopandas as gpd

    with rasterio.open(stage["res"] / "urban_mask.tif") as src:
        urban_m2 = (src.read(1) == 1).sum() * 900.0
    assert gpd.read_file(stage["res"] / "urban_polygons.gpkg")["area_m2"].sum() == pytest.approx(urban_m2)


def test_polygons_cover_the_mask_exactly():
    grid = Grid(32650, 0.0, 300.0, 30.0, 10, 10)
    mask = np.zeros((10, 10), np.uint8)
    mask[1:4, 1:3] = 1  # 6 pixels
    mask[6, 6] = mask[7, 7] = 1  # diagonal neighbours: one 8-connected polygon
    mask[0, 9] = IGNORE
    gdf = polygons(mask, grid)
    assert list(gdf["area_m2"]) == [6 * 900.0, 2 * 900.0] and list(gdf["polygon_id"]) == [1, 2]
    assert gdf.crs.to_epsg() == 32650


def _square_region(radiance: np.ndarray) -> Region:
    grid = Grid(32650, 0.0, 50_000.0, 500.0, radiance.shape[1], radiance.shape[0])
    fine = Grid(32650, 240.0, 49_970.0, 30.0, 820, 820)  # offset from the 500 m cells, as the aligned grids are
    return Region(2021, radiance.astype(np.float32), np.zeros(fine.shape, np.uint8), grid, fine)


def test_region_windows_put_predictions_back_where_they_came_from():
    radiance = np.zeros((50, 50), np.float32)
    radiance[10:30, 15:25] = 50.0  # a bright 10 x 5 km block
    radiance[45:, :] = np.nan  # no data along the bottom
    region = _square_region(radiance)
    t = float(normalise(np.array([5.0]))[0])
    prob = predict_region(lambda x: (x[:, 0] > t).astype(np.float32), region, 64, 36, progress=False)
    mask = to_mask(prob)
    assert mask.shape == region.fine_grid.shape
    # the block is 10 x 5 km: on the 30 m grid its mapped area is within a few edge pixels of that
    area = (mask == 1).sum() * 900.0
    assert area == pytest.approx(50e6, rel=0.05)
    # edges land within one pixel of the network's grid (36/64 of 500 m = 281 m in the demo preset)
    x, y = region.fine_grid.xy()
    m = 281.25
    inside = np.ix_((y < 45_000 - m) & (y > 35_000 + m), (x > 7_500 + m) & (x < 12_500 - m))
    outside = np.ix_((y > 45_000 + m) | (y < 35_000 - m), np.ones(x.size, bool))
    assert (mask[inside] == 1).all() and not (mask[outside] == 1).any()
    assert (mask[np.ix_(y < 50_000 - 45 * 500 - 500, x < 25_000)] == IGNORE).all()  # no data, no prediction


def test_negative_and_saturated_lights_train_and_predict(tiny_urban, tmp_path):
    """VIIRS noise below zero and saturated / flaring pixels: the input stays finite and bounded."""
    radiance = np.full((60, 60), -1.5, np.float32)
    radiance[20:40, 20:40] = 60.0
    radiance[5, 5] = 1e6  # a saturated flare
    x = normalise(radiance)
    assert np.isfinite(x).all() and x.min() == 0.0 and x.max() < 2.5
    region = _square_region(radiance)
    prob = predict_region(lambda c: np.clip(c[:, 0], 0, 1), region, 64, 36, progress=False)
    assert np.nanmax(prob) <= 1.0 and np.isfinite(prob).mean() > 0.9


def test_bad_model_file_is_one_line(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read as an urban model file"):
        load_model(bad)
    torch.save({"format": "other"}, bad)
    with pytest.raises(InputError, match="not an urban model file"):
        load_model(bad)
    with pytest.raises(InputError, match="unknown urban method 'svn'"):
        hyperparameters("svn", "demo")


def test_mask_on_another_grid_is_refused(stage, tiny_urban, tmp_path):
    from urbaneo.artifacts.cog import write_cog

    files = {m: (stage["models"][m], *prediction_files(stage["out"], m)) for m in METHODS}
    wrong = tmp_path / "mask.tif"
    write_cog(wrong, np.zeros((8, 8), np.uint8), Grid(32650, 0.0, 240.0, 30.0, 8, 8), nodata=IGNORE, band_names="urban")
    files["svm"] = (files["svm"][0], wrong, files["svm"][2])
    with pytest.raises(InputError, match="mask of shape"):
        evaluate(tiny_urban, stage["tiles"], files, tmp_path / "m.json", tmp_path / "t.png", tmp_path / "f.png",
                 preset="demo")


@pytest.mark.filterwarnings("ignore:.*no urban-land label file")
def test_label_raster_that_misses_the_region_is_one_line(tiny_city, tmp_path):
    """A construction-land label from somewhere else stops the alignment, naming the file; nothing is written."""
    import yaml

    from urbaneo import align
    from conftest import tiny_city_file

    src_path = sorted((tiny_city / "labels").glob("urban_*.tif"))[-1]
    moved = tmp_path / "labels" / src_path.name
    moved.parent.mkdir()
    with rasterio.open(src_path) as src:
        profile, data = src.profile, src.read()
    t = profile["transform"]
    profile["transform"] = rasterio.Affine(t.a, t.b, t.c + 2_000_000, t.d, t.e, t.f)  # 2000 km east
    with rasterio.open(moved, "w", **profile) as dst:
        dst.write(data)
    city_file = tiny_city_file(tiny_city, tmp_path)
    data = yaml.safe_load(city_file.read_text())
    data["inputs"]["urban_labels"] = str(tmp_path / "labels" / "urban_*.tif")
    city_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "urban_labels.zarr"
    with pytest.raises(InputError) as err:
        align.align(load_city(city_file), "urban_labels", out)
    assert str(moved) in str(err.value) and "does not overlap" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_region_smaller_than_one_chip_says_how_large_it_must_be():
    from urbaneo.tiles import checkerboard_chips

    grid = Grid(32650, 0.0, 15_000.0, 500.0, 30, 30)
    with pytest.raises(InputError, match="at least 36x36 pixels .enlarge region_buffer_km"):
        checkerboard_chips(grid, 1, 36, valid=np.ones(grid.shape, bool))
