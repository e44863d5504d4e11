"""Artifact writers: COGs that validate and carry their metadata, deterministic vectors, PNGs and metrics."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from urbaneo import lcz_classes as lcz
from urbaneo.artifacts.cog import validate_cog, write_cog
from urbaneo.artifacts.metrics import read_metrics, write_metrics
from urbaneo.artifacts.quicklook import overlay, quicklook
from urbaneo.artifacts.vector import FIXED_DATE, write_vector
from urbaneo.errors import InputError
from urbaneo.grid import Grid

# big enough for an overview level at 512-pixel blocks
BIG = Grid(32650, 660000.0, 3550000.0, 30.0, 1000, 640)
SMALL = Grid(32650, 668010.0, 3545010.0, 100.0, 48, 36)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _float_map(grid: Grid) -> np.ndarray:
    y, x = np.mgrid[0 : grid.height, 0 : grid.width]
    npp = (300 + 200 * np.sin(x / 37.0) * np.cos(y / 23.0)).astype("float32")
    npp[:40, :60] = np.nan  # a no-data corner
    return np.stack([npp, npp * 0.5])


def _class_map(grid: Grid) -> np.ndarray:
    y, x = np.mgrid[0 : grid.height, 0 : grid.width]
    codes = ((x // 7 + 3 * (y // 5)) % 17 + 1).astype("uint8")
    codes[codes == 5] = 6  # LCZ 5 absent: the legend must leave it out
    codes[:2] = 0  # no data
    return codes


def test_float_cog_metadata_and_validity(tmp_path):
    data = _float_map(BIG)
    out = write_cog(tmp_path / "npp.tif", data, BIG, nodata=float("nan"), band_names=["npp_summer", "npp_half"],
                    units=["gC m-2", "gC m-2"], tags={"product": "npp", "season": "summer"})
    assert out == tmp_path / "npp.tif"
    assert validate_cog(out) == (True, [], [])
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32650 and src.transform == BIG.transform and src.shape == BIG.shape
        assert math.isnan(src.nodata)
        assert src.descriptions == ("npp_summer", "npp_half")
        assert src.units == ("gC m-2", "gC m-2")
        assert src.tags()["product"] == "npp" and "TIFFTAG_DATETIME" not in src.tags()
        assert src.overviews(1) == [2]
        assert src.block_shapes[0] == (512, 512)
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "3"
        np.testing.assert_array_equal(src.read(), data)  # lossless, NaN where it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npp.tif"]  # no temp or .aux.xml left
    # the `rio cogeo validate` command users run says the same
    rio = Path(sys.executable).with_name("rio")
    done = subprocess.run([str(rio), "cogeo", "validate", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and "is a valid cloud optimized GeoTIFF" in done.stdout


def _first_ifd_tags(raw: bytes) -> set[int]:
    """Tag numbers of a classic little-endian TIFF's first image directory."""
    assert raw[:4] == b"II*\x00"
    offset = int.from_bytes(raw[4:8], "little")
    count = int.from_bytes(raw[offset : offset + 2], "little")
    return {int.from_bytes(raw[offset + 2 + 12 * i : offset + 4 + 12 * i], "little") for i in range(count)}


def test_cog_rewrite_is_byte_identical(tmp_path):
    data = _float_map(BIG)
    kwargs = dict(nodata=float("nan"), band_names=["a", "b"], units="K", scale=0.5, offset=1.0)
    first = write_cog(tmp_path / "a.tif", data, BIG, **kwargs).read_bytes()
    second = write_cog(tmp_path / "b.tif", data.copy(), BIG, **kwargs).read_bytes()
    assert first == second
    tags = _first_ifd_tags(first)
    assert 256 in tags and 42112 in tags  # ImageWidth and GDAL_METADATA: the parse is right
    assert 306 not in tags and b"DATETIME" not in first.upper()  # no TIFF DateTime tag, no date metadata
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.scales == (0.5, 0.5) and src.offsets == (1.0, 1.0) and src.units == ("K", "K")


def test_lcz_class_cog_has_colour_table(tmp_path):
    codes = _class_map(BIG)
    out = write_cog(tmp_path / "lcz.tif", codes, BIG, nodata=0, band_names="lcz", colormap=lcz.colormap())
    assert validate_cog(out)[0]
    with rasterio.open(out) as src:
        assert src.colormap(1)[1] == (0x8C, 0x00, 0x00, 255)  # LCZ 1 "#8c0000"
        assert src.colormap(1)[17] == (0x6A, 0x6A, 0xFF, 255)  # LCZ G water
        assert src.colorinterp[0] == rasterio.enums.ColorInterp.palette
        assert src.nodata == 0 and src.dtypes[0] == "uint8" and src.descriptions == ("lcz",)
        # mode overviews keep codes valid: no averaged in-between classes appear
        overview = src.read(1, out_shape=(BIG.height // 4, BIG.width // 4))
        assert set(np.unique(overview)) <= set(np.unique(codes))
        np.testing.assert_array_equal(src.read(1), codes)
    again = write_cog(tmp_path / "lcz2.tif", codes, BIG, nodata=0, band_names="lcz", colormap=lcz.colormap())
    assert again.read_bytes() == out.read_bytes()


def test_cog_rejects_misuse_without_output(tmp_path):
    codes = _class_map(SMALL)
    with pytest.raises(ValueError, match="nearest or mode"):
        write_cog(tmp_path / "x.tif", codes, SMALL, nodata=0, band_names="lcz", colormap=lcz.colormap(),
                  overview_resampling="average")
    with pytest.raises(ValueError, match="does not fit the grid"):
        write_cog(tmp_path / "x.tif", codes[:-1], SMALL, nodata=0, band_names="lcz")
    with pytest.raises(ValueError, match="not a valid uint8"):
        write_cog(tmp_path / "x.tif", codes, SMALL, nodata=float("nan"), band_names="lcz")
    with pytest.raises(ValueError, match="2 values for 1 bands"):
        write_cog(tmp_path / "x.tif", codes, SMALL, nodata=0, band_names=["a", "b"])
    with pytest.raises(ValueError, match="TIFFTAG_DATETIME"):
        write_cog(tmp_path / "x.tif", codes, SMALL, nodata=0, band_names="lcz", tags={"TIFFTAG_DATETIME": "now"})
    assert list(tmp_path.iterdir()) == []


def _polygons() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"cls": [3, 1, 2, 1], "area_m2": [4.0, 1.0, 2.5, 9.0], "name": ["c", "a", "b", "a2"]},
        geometry=[box(0, 0, 2, 2), Point(5, 5).buffer(1), box(10, 10, 12, 11), box(20, 0, 23, 3)],
        crs="EPSG:32650")


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_vector_round_trip_sorted_and_byte_identical(tmp_path, suffix):
    gdf = _polygons()
    first = write_vector(tmp_path / f"urban{suffix}", gdf)
    # same rows in another order, written later: identical bytes
    second = write_vector(tmp_path / f"again{suffix}", gdf.iloc[::-1], layer="urban")
    assert first.read_bytes() == second.read_bytes()
    back = gpd.read_file(first) if suffix == ".gpkg" else gpd.read_parquet(first)
    assert back.crs.to_epsg() == 32650
    assert back["cls"].tolist() == [1, 1, 2, 3] and back["name"].tolist() == ["a", "a2", "b", "c"]
    assert back.geometry.geom_equals(gdf.set_index("name").loc[back["name"]].geometry.reset_index(drop=True)).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def test_geojson_is_wgs84_sorted_and_byte_identical(tmp_path):
    gdf = _polygons()
    first = write_vector(tmp_path / "plan.geojson", gdf)
    second = write_vector(tmp_path / "again.geojson", gdf.iloc[::-1], layer="plan")
    assert first.read_bytes() == second.read_bytes()  # the name member is the layer, not the temporary file
    back = gpd.read_file(first)
    assert back.crs.to_epsg() == 4326 and back["name"].tolist() == ["a", "a2", "b", "c"]
    assert back.to_crs(32650).geometry.area.round(1).tolist() == gdf.set_index("name").loc[back["name"]].area.round(1).tolist()


def test_gpkg_last_change_is_fixed(tmp_path):
    import sqlite3
    import pyogrio

    out = write_vector(tmp_path / "plan.gpkg", _polygons())
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT table_name, last_change FROM gpkg_contents").fetchall() == [("plan", FIXED_DATE)]
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None  # the global option is restored


def test_vector_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="gpkg or .parquet"):
        write_vector(tmp_path / "x.shp", _polygons())
    assert list(tmp_path.iterdir()) == []


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_quicklooks_are_valid_and_byte_identical(tmp_path):
    from PIL import Image

    npp = _float_map(SMALL)[0]
    a = quicklook(tmp_path / "npp.png", npp, SMALL, title="NPP summer 2021", units="gC m-2")
    b = quicklook(tmp_path / "npp2.png", npp.copy(), SMALL, title="NPP summer 2021", units="gC m-2")
    assert a.read_bytes() == b.read_bytes()
    assert _png_size(a) == (750, 510)  # 7.5 in wide at 100 dpi; height follows the 3:4 grid
    codes = _class_map(SMALL)
    c = quicklook(tmp_path / "lcz.png", codes, SMALL, kind="classes", title="LCZ 2021", classes=lcz.CLASSES)
    d = quicklook(tmp_path / "lcz2.png", codes, SMALL, kind="classes", title="LCZ 2021", classes=lcz.CLASSES)
    assert c.read_bytes() == d.read_bytes() != a.read_bytes()
    for png in (a, c):
        with Image.open(png) as img:
            img.load()
            assert img.format == "PNG" and not img.text  # no Software or date text chunks
            pixels = np.asarray(img.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # a drawn map, not a blank canvas
    # LCZ 1's colour is drawn; LCZ 5 (absent from the map) is neither drawn nor in the legend
    with Image.open(c) as img:
        colours = {tuple(p) for p in np.asarray(img.convert("RGB")).reshape(-1, 3)}
    assert (0x8C, 0x00, 0x00) in colours and (0xFF, 0x66, 0x00) not in colours


def test_pareto_fronts_png(tmp_path):
    from urbaneo.artifacts.quicklook import pareto_fronts

    fronts = {"ours": np.array([[3.0, 0.5, 2.0], [1.0, 0.2, 1.0]]), "other": np.array([[2.0, 0.4, 2.0]]),
              "empty": np.zeros((0, 3))}
    out = pareto_fronts(tmp_path / "p.png", fronts, ("CSP", "BI"), "cost", "fronts", highlight="ours")
    again = pareto_fronts(tmp_path / "p2.png", fronts, ("CSP", "BI"), "cost", "fronts", highlight="ours")
    assert out.read_bytes() == again.read_bytes() and _png_size(out) == (1000, 400)


def test_overlay_png(tmp_path):
    y, x = np.mgrid[0 : SMALL.height, 0 : SMALL.width]
    lights = 60 * np.exp(-((x - 24) ** 2 + (y - 18) ** 2) / 80.0)
    out = overlay(tmp_path / "urban.png", lights, lights > 20, SMALL, "urban land over night lights",
                  units="nW cm-2 sr-1", mask_label="urban land")
    again = overlay(tmp_path / "urban2.png", lights, lights > 20, SMALL, "urban land over night lights",
                    units="nW cm-2 sr-1", mask_label="urban land")
    assert out.read_bytes() == again.read_bytes()
    assert _png_size(out)[0] == 750


def test_metrics_json_is_stable(tmp_path):
    metrics = {"oa": np.float32(0.8123456789), "kappa": 0.71234567, "n": np.int64(1200), "mae": float("nan"),
               "per_class": {"2": 0.5, "10": -0.0, "1": 1 / 3}, "curve": np.array([1.0, 2.0000001]), "ok": True,
               "nothing": None}
    out = write_metrics(tmp_path / "m.json", metrics)
    noisy = dict(metrics, kappa=0.71234567 + 1e-12, curve=np.array([1.0 - 1e-13, 2.0]))  # float noise
    assert write_metrics(tmp_path / "m2.json", noisy).read_bytes() == out.read_bytes()
    text = out.read_text()
    assert list(json.loads(text)) == sorted(metrics)
    back = read_metrics(out)
    assert back["oa"] == 0.812346 and back["kappa"] == 0.712346 and back["n"] == 1200 and back["ok"] is True
    assert back["mae"] is None and back["per_class"] == {"1": 0.333333, "10": 0.0, "2": 0.5}
    assert back["curve"] == [1.0, 2.0] and "NaN" not in text and "-0.0" not in text


def test_read_metrics_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        read_metrics(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match=r"bad\.json: metrics must be a JSON object"):
        read_metrics(bad)
    with pytest.raises(InputError, match=r"missing\.json: metrics file not found"):
        read_metrics(tmp_path / "missing.json")


def test_confusion_png(tmp_path):
    from PIL import Image

    from urbaneo.artifacts.quicklook import confusion

    cm = np.zeros((17, 17), dtype=np.int64)
    cm[2, 2], cm[2, 5], cm[5, 5], cm[13, 13], cm[13, 15], cm[15, 15] = 90, 10, 40, 28, 2, 30
    cm[16, 16] = 5
    cm[0, 16] = 0  # LCZ 1 absent from the reference, as in the paper's Wuhan data
    cm[7, 15] = 0
    cm[15, 7] = 3  # LCZ 8 is predicted but has no reference sample: a row with zero reference
    labels = [f"{code} {name}" for code, (name, _) in lcz.CLASSES.items()]
    out = confusion(tmp_path / "cm.png", cm, labels, "Pure scene classification")
    again = confusion(tmp_path / "cm2.png", cm.copy(), labels, "Pure scene classification")
    assert out == tmp_path / "cm.png" and out.read_bytes() == again.read_bytes()
    counts = confusion(tmp_path / "counts.png", cm, labels, "counts", normalise=None)
    assert counts.read_bytes() != out.read_bytes()
    with Image.open(out) as img:
        img.load()
        assert img.format == "PNG" and not img.text
        assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 20
    with pytest.raises(ValueError, match="one label per class"):
        confusion(tmp_path / "bad.png", cm, labels[:3], "bad")
    # an empty matrix still draws (every cell grey) rather than failing
    assert confusion(tmp_path / "empty.png", np.zeros((3, 3), int), ["a", "b", "c"], "empty").stat().st_size > 0
