"""The LCZ stage (seed 002): scenes and their fractions, the city map, the stage on the tiny city, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from conftest import align_tiny

from urbaneo import align
from urbaneo.artifacts.cog import validate_cog
from urbaneo.artifacts.stac import load_items
from urbaneo.errors import InputError
from urbaneo.grid import Grid
from urbaneo.models import su_net
from urbaneo.stages.lcz import data as lcz_data
from urbaneo.stages.lcz import model as lcz_model
from urbaneo.stages.lcz import predict as lcz_predict
from urbaneo.stages.lcz import train as lcz_train


def _scenes(fractions, split) -> lcz_data.Scenes:
    n = len(fractions)
    return lcz_data.Scenes(np.zeros((n, 4, 8, 8), np.float32), np.asarray(fractions, np.float32), np.asarray(split),
                           np.zeros(n, int), np.zeros(n, int), 0.9, 2021, Grid(32650, 0, 0, 3, 8, 8),
                           np.zeros((8, 8), np.uint8))


def _one_hot(code: int, share: float = 1.0) -> list[float]:
    f = np.full(17, (1 - share) / 16)
    f[code - 1] = share
    return f.tolist()


def test_pure_and_mixed_scenes_and_classes_without_pure_ones():
    scenes = _scenes([_one_hot(2), _one_hot(2, 0.95), _one_hot(11, 0.5), _one_hot(17), _one_hot(5, 0.89)],
                     ["train", "train", "train", "test", "val"])
    np.testing.assert_array_equal(scenes.pure, [True, True, False, True, False])
    np.testing.assert_array_equal(scenes.dominant, [2, 2, 11, 17, 5])
    assert scenes.counts()["train"] == {"pure": 2, "mixed": 1} and scenes.counts()["mixed_to_pure"] == 2 / 3
    # every class present somewhere (each scene holds a little of all) but only LCZ 2 is pure in training
    assert scenes.classes_without_pure_scenes("train") == [c for c in range(1, 18) if c != 2]
    assert lcz_train.check_training_scenes(scenes, "tiles.parquet")[:2] == [1, 3]
    with pytest.raises(InputError, match="tiles.parquet: no pure training scene"):
        lcz_train.check_training_scenes(_scenes([_one_hot(3, 0.5)] * 2, ["train", "train"]), "tiles.parquet")
    with pytest.raises(InputError, match="no mixed training scene"):
        lcz_train.check_training_scenes(_scenes([_one_hot(3)] * 2, ["train", "train"]), "tiles.parquet")


def test_label_year_is_the_images_or_the_nearest(caplog):
    labels = xr.DataArray(np.zeros(3), dims="year", coords={"year": [2019, 2020, 2022]})
    assert lcz_data.label_year(labels, "2020-10-12", "l.zarr") == 2020
    assert lcz_data.label_year(labels, "2021-06-01", "l.zarr") == 2022  # a tie goes to the later map
    assert "no LCZ labels for 2021" in caplog.text
    assert lcz_data.label_year(labels, None, "l.zarr") == 2022


def test_scene_pairs_turn_both_scenes_alike_and_cycle_the_smaller_set():
    pure = np.arange(2 * 4 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 4)
    mixed = -np.arange(3 * 4 * 4 * 4, dtype=np.float32).reshape(3, 4, 4, 4)
    pairs = lcz_data.ScenePairs(pure, np.array([2, 9]), mixed, np.eye(17, dtype=np.float32)[:3], augment=True)
    assert len(pairs) == 3
    torch.manual_seed(3)
    (p, m), (cls, frac, target) = pairs[2]
    assert int(cls) == 1 and frac.argmax() == 2 and torch.equal(m, target)
    # the same quarter turn / flip on both: find the one that maps the raw pure scene onto p
    raw_p, raw_m = torch.from_numpy(pure[0]), torch.from_numpy(mixed[2])

    def turn(x, k, flip):
        x = torch.rot90(x, k, (1, 2))
        return x.flip(2) if flip else x

    found = [(k, flip) for k in range(4) for flip in (False, True) if torch.equal(turn(raw_p, k, flip), p)]
    assert found, "the pure scene is not a turn or flip of the original"
    assert torch.equal(turn(raw_m, *found[0]), m)


class _MeanClass(torch.nn.Module):
    """Stands in for SU-Net's heads: abundance 1 for LCZ 2 where a window is bright, LCZ 11 where dark."""

    def __init__(self, net):
        super().__init__()

    def forward(self, x):
        bright = (x[:, 0].mean((1, 2)) > 0).float()
        out = torch.zeros(len(x), 17)
        out[:, 1], out[:, 10] = bright, 1 - bright
        return out, out


def test_city_map_puts_each_window_where_it_came_from(monkeypatch):
    monkeypatch.setattr(su_net, "SceneHeads", _MeanClass)
    grid = Grid(32650, 0.0, 640.0, 3.0, 200, 136)
    pixels = np.zeros((4, 136, 200), np.float32)
    pixels[:, :, 100:] = 1.0  # bright east half
    pixels[:, :40, :40] = np.nan  # a corner without image data
    data = {"img": 32, "mean": torch.full((4,), 0.5), "std": torch.ones(4)}
    abundances, cells = lcz_predict.map_city(None, data, pixels, grid, progress=False)
    assert cells.res == 24.0 and (cells.height, cells.width) == (17, 25) and abundances.shape == (17, 17, 25)
    codes = lcz_predict.classes_of(abundances)
    assert (codes[5:, :10] == 11).all() and (codes[:, 15:] == 2).all()  # the halves, away from the seam
    assert (codes[:5, :5] == lcz_model.NODATA).all() and np.isnan(abundances[:, :5, :5]).all()
    np.testing.assert_allclose(np.nansum(abundances, 0)[codes > 0], 1.0, rtol=1e-6)


# --- the stage on the tiny city (the session's `snakemake all` run) ---------------------------------


def test_lcz_stage_publishes_maps_metrics_and_items(tiny_run):
    out = tiny_run / "results/demo/tiny/lcz"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["table2"]) == {"su_net", "random_forest", "paper_experiment_a"}
    for method in ("su_net", "random_forest"):
        row = metrics["table2"][method]
        assert set(row) == {"oa", "precision", "recall", "opa", "p_precision", "p_recall", "mae"}
        assert 0 <= row["oa"] <= 1 and 0 <= row["mae"] < 0.2
        assert row["recall"] == pytest.approx(metrics[method]["pure"]["oa"])  # eq. 5 is the OA for one label each
    scenes = metrics["scenes"]
    assert scenes["all"]["pure"] > 0 and scenes["all"]["mixed"] > 0 and metrics["paper_mixed_to_pure"] == 2.0
    assert metrics["classes_without_pure_scenes"]  # reported; the model was trained anyway
    assert metrics["complexity"]["paper"]["gflops_psc_net"] == pytest.approx(11.9, abs=0.1)
    assert metrics["map"]["cells"] > 0 and 0 <= metrics["map"]["oa"] <= 1
    for png in ("table.png", "confusion.png", "pseudo_confusion.png", "baseline_confusion.png", "lcz.png",
                "abundance.png"):
        assert (out / png).stat().st_size > 5000, png

    items = load_items(tiny_run / "results/demo")
    product = [i for i in items.values() if i["collection"] == "lcz" and i["properties"]["urbaneo:city"] == "tiny"]
    assert len(product) == 1
    assert any(i["collection"] == "models" and i["properties"]["urbaneo:key"] == "lcz" for i in items.values())
    folder = next((tiny_run / "results/demo/stac/lcz").glob("lcz-tiny-*"))
    assert validate_cog(folder / "lcz.tif")[0] and validate_cog(folder / "abundance.tif")[0]
    with rasterio.open(folder / "lcz.tif") as src:
        codes = src.read(1)
        assert src.colormap(1)[17][:3] == (106, 106, 255) and src.nodata == 0  # LCZ G water's colour
    with rasterio.open(folder / "abundance.tif") as src:
        assert src.count == 17 and src.descriptions[0] == "lcz1"
        abundances = src.read()
    mapped = codes > 0
    assert mapped.mean() > 0.9 and set(np.unique(codes[mapped])) <= set(range(1, 18))
    np.testing.assert_allclose(abundances[:, mapped].sum(0), 1.0, atol=1e-4)
    np.testing.assert_array_equal(abundances.argmax(0)[mapped] + 1, codes[mapped])


def test_lcz_training_resumes_to_the_same_file(tmp_path, monkeypatch, tiny_aligned):
    aligned, tiles = tiny_aligned / "resources/align/tiny", tiny_aligned / "resources/tiles/tiny/lcz.parquet"
    straight = tmp_path / "straight.pt"
    lcz_train.train(aligned, tiles, straight, preset="demo", seed=0, max_epochs=3, progress=False)

    calls = {"n": 0}
    losses = su_net.task_losses

    def crashing(*args):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] > 2:  # killed in the second epoch (two batches an epoch)
                raise KeyboardInterrupt
        return losses(*args)

    out = tmp_path / "killed.pt"
    monkeypatch.setattr(su_net, "task_losses", crashing)
    with pytest.raises(KeyboardInterrupt):
        lcz_train.train(aligned, tiles, out, preset="demo", seed=0, max_epochs=3, progress=False)
    assert not out.exists() and len(list(tmp_path.glob(".killed.pt.*.partial"))) == 1
    monkeypatch.setattr(su_net, "task_losses", losses)
    lcz_train.train(aligned, tiles, out, preset="demo", seed=0, max_epochs=3, progress=False)
    assert out.read_bytes() == straight.read_bytes() and not list(tmp_path.glob(".*.partial"))


def test_bad_model_file_is_one_line(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot read as an LCZ model file") as err:
        lcz_model.load_model(bad)
    assert str(bad) in str(err.value)
    torch.save({"format": "something else"}, bad)
    with pytest.raises(InputError, match="not an LCZ model file"):
        lcz_model.load_model(bad)


# --- label rasters a user brings ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_labels(tiny_city, tmp_path_factory):
    root = tmp_path_factory.mktemp("lcz_labels")
    return root, align_tiny(tiny_city, root, "lcz_labels")


def _rewrite(src_path, dst_path, crs, transform, data):
    with rasterio.open(src_path) as src:
        profile = src.profile | {"crs": crs, "transform": transform, "width": data.shape[1], "height": data.shape[0]}
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data, 1)


def test_label_map_in_another_crs_is_reprojected_nearest(tiny_labels, tmp_path):
    from rasterio.warp import calculate_default_transform, reproject

    root, city = tiny_labels
    original = align.open_aligned(root / "lcz_labels.zarr", "vhr")["lcz"].sel(year=2021).values
    source = city["inputs"]["lcz_labels"].replace("*", "2021")
    with rasterio.open(source) as src:
        # ~10 m in degrees: finer than the 100 m label, so the round trip barely moves a boundary
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds,
                                                               resolution=(1e-4, 1e-4))
        data = np.zeros((height, width), np.uint8)
        reproject(src.read(1), data, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:4326", resampling=rasterio.enums.Resampling.nearest)
    folder = tmp_path / "labels"
    folder.mkdir()
    _rewrite(source, folder / "lcz_2021.tif", "EPSG:4326", transform, data)
    moved = {**city, "years": [2021], "inputs": {**city["inputs"], "lcz_labels": str(folder / "lcz_*.tif")}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        align.align(moved, "lcz_labels", tmp_path / "lcz_labels.zarr")
    again = align.open_aligned(tmp_path / "lcz_labels.zarr", "vhr")["lcz"].sel(year=2021).values
    assert set(np.unique(again)) <= set(np.unique(original)) | {0}  # nearest: no invented classes
    assert (again == original).mean() > 0.97


def test_label_map_that_misses_the_city_is_one_line(tiny_labels, tmp_path):
    from affine import Affine

    _, city = tiny_labels
    source = city["inputs"]["lcz_labels"].replace("*", "2021")
    folder = tmp_path / "labels"
    folder.mkdir()
    with rasterio.open(source) as src:
        far = Affine(src.transform.a, 0, src.transform.c + 500_000, 0, src.transform.e, src.transform.f)
        _rewrite(source, folder / "lcz_2021.tif", src.crs, far, src.read(1))
    moved = {**city, "years": [2021], "inputs": {**city["inputs"], "lcz_labels": str(folder / "lcz_*.tif")}}
    with pytest.raises(InputError, match="does not overlap the grid") as err:
        align.align(moved, "lcz_labels", tmp_path / "out.zarr")
    assert "lcz_2021.tif" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.zarr").exists()


def test_wudapt_legacy_coding_trains_like_the_standard_one(tiny_labels, tmp_path):
    """A WUDAPT map (A-G as 101-107) aligns to the same 1-17 labels as the LCZ Generator coding."""
    root, city = tiny_labels
    original = align.open_aligned(root / "lcz_labels.zarr", "vhr")["lcz"].sel(year=2021).values
    source = city["inputs"]["lcz_labels"].replace("*", "2021")
    folder = tmp_path / "labels"
    folder.mkdir()
    with rasterio.open(source) as src:
        codes = src.read(1)
        legacy = np.where(codes >= 11, codes + 90, codes).astype(np.uint8)
        assert (legacy > 100).any()
        _rewrite(source, folder / "lcz_2021.tif", src.crs, src.transform, legacy)
    moved = {**city, "years": [2021], "inputs": {**city["inputs"], "lcz_labels": str(folder / "lcz_*.tif")}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        align.align(moved, "lcz_labels", tmp_path / "lcz_labels.zarr")
    np.testing.assert_array_equal(align.open_aligned(tmp_path / "lcz_labels.zarr", "vhr")["lcz"].sel(year=2021).values,
                                  original)


def test_unusable_scenes_are_one_line(tiny_aligned, tmp_path):
    """A pure share outside (0.5, 1], a label map without labels under the scenes, labels on another
    grid, an empty tile index: one InputError line each, before any model is trained."""
    from urbaneo.tiles import read_index, write_index

    aligned, tiles = tiny_aligned / "resources/align/tiny", tiny_aligned / "resources/tiles/tiny/lcz.parquet"
    with pytest.raises(InputError, match=r"pure_share: must be in \(0.5, 1\], got 0.4"):
        lcz_data.load_scenes(aligned, tiles, pure_share=0.4)

    labels = align.open_aligned(aligned / "lcz_labels.zarr", "vhr").load()
    cases = {"unlabelled": (labels.assign(lcz=labels["lcz"] * 0), tiles, "labels less than 50% of every 64 px scene"),
             "shifted": (labels.assign_coords(x=labels["x"] + 3.0), tiles, "is not on the VHR image's grid"),
             "no tile": (labels, tmp_path / "empty.parquet", "holds no tile")}
    write_index(read_index(tiles).iloc[:0], tmp_path / "empty.parquet")
    for name, (ds, index, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "gf2.zarr").symlink_to(aligned / "gf2.zarr")
        ds.to_zarr(folder / "lcz_labels.zarr", group="vhr", zarr_format=2, consolidated=False)
        with pytest.raises(InputError, match=message) as err:
            lcz_data.load_scenes(folder, index)
        assert "\n" not in str(err.value), name
