"""Landsat reader: scene discovery, calibration and masks on a grid, date mosaics, describe, bad input.

Real files: the C2 L2 Amazon scene in tests/data/real; the tiny demo city's C2 L1 scenes; a
Collection 1 (BQA) scene rebuilt here from a demo scene.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbaneo.errors import InputError
from urbaneo.grid import Grid, city_grid, warp_to_grid
from urbaneo.readers import landsat as ls

AMAZON_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
AMAZON_AOI = (-65.5, -3.2, -64.9, -2.6)  # inside the scene footprint (lon -66.2..-64.2, lat -3.9..-1.9)
from conftest import TINY_CITY

TINY_AOI = TINY_CITY["aoi"]


@pytest.fixture(scope="module")
def amazon(real_data) -> Path:
    return real_data / "landsat8-c2l2-amazon-riotilerpds"


@pytest.fixture(scope="module")
def tiny_grid() -> Grid:
    return city_grid(TINY_AOI)


@pytest.fixture(scope="module")
def tiny_stack(tiny_city, tiny_grid):
    return ls.read_landsat(tiny_city / "landsat", tiny_grid)


def copy_scene(folder: Path, dest: Path) -> Path:
    out = dest / folder.name
    shutil.copytree(folder, out)
    for f in out.iterdir():
        f.chmod(0o644)
    return out


def first_scene(tiny_city) -> Path:
    return sorted((tiny_city / "landsat").iterdir())[1]  # row 38, the first date (row 37 sorts first by name)


def rewrite_tif(path: Path, data: np.ndarray, *, crs="keep") -> None:
    with rasterio.open(path) as src:
        profile = src.profile
    if crs != "keep":
        profile["crs"] = crs
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]), 1)


def read_tif(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def ndvi(reflectance):
    nir, red = reflectance.sel(band="nir"), reflectance.sel(band="red")
    return (nir - red) / (nir + red)


# --- discovery -------------------------------------------------------------------------------


def test_discover_tiny_city_scenes_in_order(tiny_city):
    scenes = ls.discover_scenes(tiny_city / "landsat")
    assert len(scenes) == 9  # 2 years x 4 seasons, one date split across WRS rows 37 and 38
    keys = [(s.date, s.wrs_path, s.wrs_row) for s in scenes]
    assert keys == sorted(keys)
    split = [s for s in scenes if s.date == scenes[6].date]
    assert [s.wrs_row for s in split] == [37, 38]
    s = scenes[0]
    assert (s.level, s.collection, s.spacecraft, s.tier) == (1, 2, "LC08", "T1")
    assert s.date == dt.date(2020, 1, 7) and s.season() == "winter" and s.season(southern=True) == "summer"
    assert {k: p.name for k, p in s.bands.items()} == {
        name: f"{s.product_id}_B{n}.TIF" for name, n in (("blue", 2), ("green", 3), ("red", 4), ("nir", 5))}
    assert s.qa.name.endswith("_QA_PIXEL.TIF") and s.mtl.name.endswith("_MTL.txt")
    # a glob, and a single file of a scene (its siblings make the scene)
    assert [x.date.year for x in ls.discover_scenes(str(tiny_city / "landsat" / "*_2021*"))] == [2021] * 5
    one = ls.discover_scenes(s.bands["red"])
    assert [x.product_id for x in one] == [s.product_id]


def test_discover_real_level2(amazon):
    (s,) = ls.discover_scenes(amazon)
    assert (s.product_id, s.level, s.collection, s.wrs_path, s.wrs_row) == (AMAZON_ID, 2, 2, 1, 62)
    assert s.bands["nir"].name == f"{AMAZON_ID}_SR_B5.TIF" and s.qa.name == f"{AMAZON_ID}_QA_PIXEL.TIF"
    assert s.date == dt.date(2020, 10, 31)
    assert (s.season(), s.season(southern=True)) == ("autumn", "spring")


# --- one scene on a grid ---------------------------------------------------------------------


def test_read_scene_level1_toa_matches_the_files(tiny_city, tiny_grid, tmp_path):
    folder = first_scene(tiny_city)
    (scene,) = ls.discover_scenes(folder)
    ds = ls.read_scene(scene, tiny_grid)
    assert ds.reflectance.dims == ("band", "y", "x") and ds.reflectance.dtype == np.float32
    assert list(ds.band.values) == ["blue", "green", "red", "nir"]
    assert ds.rio.crs.to_epsg() == tiny_grid.epsg

    # The demo scene is on the same 30 m lattice: the grid is a window of the files, so bilinear
    # returns the native pixels and TOA must equal the MTL formula applied to the raw DN.
    with rasterio.open(scene.bands["red"]) as src:
        col, row = ~src.transform @ (tiny_grid.xmin, tiny_grid.ymax)
        window = rasterio.windows.Window(round(col), round(row), tiny_grid.width, tiny_grid.height)
        dn = src.read(1, window=window)
    mtl = ls.read_mtl(scene.mtl)
    expected = ls.toa_reflectance(dn, *ls.level1_reflectance_constants(mtl, 4))
    np.testing.assert_allclose(ds.reflectance.sel(band="red").values, expected, rtol=1e-6)

    with rasterio.open(scene.qa) as src:
        qa = src.read(1, window=window)
    bits = ls.decode_qa_pixel(qa)
    np.testing.assert_array_equal(ds.cloud.values, bits["cloud"] | bits["dilated_cloud"])
    np.testing.assert_array_equal(ds.shadow.values, bits["shadow"])
    np.testing.assert_array_equal(ds.water.values, bits["water"])
    usable = ~(bits["fill"] | bits["cloud"] | bits["dilated_cloud"] | bits["shadow"] | bits["cirrus"] | bits["snow"])
    np.testing.assert_array_equal(ds.usable.values, usable)
    assert ds.cloud.values.any() and ds.usable.values.any()

    # The JSON MTL gives the same numbers when it is the only one.
    copy = copy_scene(folder, tmp_path)
    (copy / f"{scene.product_id}_MTL.txt").unlink()
    (js,) = ls.discover_scenes(copy)
    assert js.mtl.suffix == ".json"
    np.testing.assert_array_equal(ls.read_scene(js, tiny_grid).reflectance.values, ds.reflectance.values)


def test_shadow_with_clear_bit_is_not_usable(tiny_city, tiny_grid, tmp_path):
    # USGS sets "clear" on shadow pixels (clear = not cloud): the reader must not trust it.
    copy = copy_scene(first_scene(tiny_city), tmp_path)
    qa_path = next(copy.glob("*_QA_PIXEL.TIF"))
    qa = ls.encode_qa_pixel(False, False, True, False, False, False) * np.ones(read_tif(qa_path).shape, np.uint16)
    assert ls.decode_qa_pixel(qa)["clear"].all()
    rewrite_tif(qa_path, qa)
    ds = ls.read_scene(ls.discover_scenes(copy)[0], tiny_grid)
    assert ds.shadow.values.all() and not ds.usable.values.any()


def test_collection1_bqa_scene(tiny_city, tiny_grid, tmp_path):
    """A Collection 1 scene (BQA, L1_METADATA_FILE/RADIOMETRIC_RESCALING) reads like its C2 twin."""
    c2_folder = first_scene(tiny_city)
    (c2,) = ls.discover_scenes(c2_folder)
    pid = c2.product_id.replace("_02_T1", "_01_T1")
    out = tmp_path / pid
    out.mkdir()
    for name in ("B2", "B3", "B4", "B5"):
        shutil.copy(c2_folder / f"{c2.product_id}_{name}.TIF", out / f"{pid}_{name}.TIF")
    bits = ls.decode_qa_pixel(read_tif(c2.qa))
    cloud = bits["cloud"] | bits["dilated_cloud"]
    # C1 BQA: clear 2720; cloud bit + high confidence +80; high shadow confidence +256; high cirrus +4096
    bqa = 2720 + 80 * cloud + 256 * bits["shadow"] + 4096 * bits["cirrus"]
    bqa[bits["fill"]] = 1
    shutil.copy(c2.qa, out / f"{pid}_BQA.TIF")
    rewrite_tif(out / f"{pid}_BQA.TIF", bqa)
    mtl = ls.read_mtl(c2.mtl)
    groups = {"PRODUCT_METADATA": {"SPACECRAFT_ID": '"LANDSAT_8"', "SENSOR_ID": '"OLI_TIRS"'},
              "IMAGE_ATTRIBUTES": {"SUN_ELEVATION": mtl["IMAGE_ATTRIBUTES"]["SUN_ELEVATION"]},
              "RADIOMETRIC_RESCALING": mtl["LEVEL1_RADIOMETRIC_RESCALING"]}
    lines = ["GROUP = L1_METADATA_FILE"]
    for g, fields in groups.items():
        lines += [f"  GROUP = {g}", *(f"    {k} = {v}" for k, v in fields.items()), f"  END_GROUP = {g}"]
    (out / f"{pid}_MTL.txt").write_text("\n".join([*lines, "END_GROUP = L1_METADATA_FILE", "END", ""]))

    (c1,) = ls.discover_scenes(out)
    assert (c1.collection, c1.level, c1.qa.name) == (1, 1, f"{pid}_BQA.TIF")
    a, b = ls.read_scene(c1, tiny_grid), ls.read_scene(c2, tiny_grid)
    np.testing.assert_array_equal(a.reflectance.values, b.reflectance.values)
    for k in ("fill", "cloud", "shadow", "cirrus", "usable"):
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)
    assert not a.water.values.any()  # C1 has no water bit
    info = ls.describe(out)
    assert (info["collection"], info["spacecraft"], info["sensor"]) == (1, "LANDSAT_8", "OLI_TIRS")


def test_real_level2_scene_on_a_city_grid(amazon):
    grid = city_grid(AMAZON_AOI, res=300)
    assert grid.epsg == 32720  # the city's own UTM (south); the scene is in EPSG:32620
    (scene,) = ls.discover_scenes(amazon)
    ds = ls.read_scene(scene, grid, southern=True)
    assert ds.attrs["season"] == "spring" and ds.attrs["quantity"] == "surface reflectance"
    rho = ds.reflectance.values
    fill = ds.fill.values
    assert not fill.any()  # the AOI is inside the footprint, away from the fill collar
    # C2 SR is 2.75e-5 * DN - 0.2 with DN in 1..65535: over this (cloudy) scene within -0.2 .. 1.4
    assert np.isfinite(rho).all() and rho.min() > -0.2 and rho.max() < 1.4
    assert 0.3 < float(np.mean(rho)) < 0.7  # bright clouds
    # SOURCE.txt: cloud bit on 69 % of all pixels, i.e. on all but 0.06 % of the image (CLOUD_COVER 99.94)
    assert ds.cloud.values.mean() > 0.99
    assert ds.usable.values.mean() < 0.01


def test_real_level2_all_cloud_scene_is_skipped(amazon):
    grid = city_grid(AMAZON_AOI, res=600)
    with pytest.warns(ls.SceneSkipped, match=rf"{AMAZON_ID}_QA_PIXEL.TIF: only .* usable"):
        with pytest.raises(InputError, match="no usable Landsat date") as err:
            ls.read_landsat(amazon, grid, southern=True)
    assert str(err.value).startswith(str(amazon))
    ds = ls.read_landsat(amazon, grid, southern=True, min_usable=0.0)
    assert ds.reflectance.dims == ("time", "band", "y", "x")
    assert list(ds.season.values) == ["spring"] and list(ds.scenes.values) == [AMAZON_ID]


# --- stacks of dates -------------------------------------------------------------------------


def test_read_landsat_tiny_city(tiny_city, tiny_grid, tiny_stack):
    ds = tiny_stack
    assert ds.reflectance.dims == ("time", "band", "y", "x") and ds.reflectance.dtype == np.float32
    assert ds.usable.dims == ("time", "y", "x") and ds.usable.dtype == bool
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert list(ds.season.values) == ["winter", "spring", "summer", "autumn"] * 2
    assert list(ds.season_index.values) == [3, 0, 1, 2] * 2
    assert ds.time.dt.year.values.tolist() == [2020] * 4 + [2021] * 4
    # One date lies across two WRS rows: one time step, both scenes, no fill left over the city.
    assert not ds.fill.values.any() and np.isfinite(ds.reflectance.values).all()
    (split,) = [i for i, s in enumerate(ds.scenes.values) if " " in s]
    assert len(ds.scenes.values[split].split()) == 2
    day = ds.time.values[split].astype("datetime64[D]").item()
    for scene in (s for s in ls.discover_scenes(tiny_city / "landsat") if s.date == day):
        alone = ls.read_scene(scene, tiny_grid)
        assert 0.2 < alone.fill.values.mean() < 0.8  # each row alone leaves a hole
        covered = ~alone.fill.values
        np.testing.assert_array_equal(ds.fill.values[split][covered], False)


def test_summer_ndvi_above_winter_on_vegetation(tiny_city, tiny_grid, tiny_stack):
    v = ndvi(tiny_stack.reflectance).where(tiny_stack.usable)
    for year in (2020, 2021):
        lcz = warp_to_grid(tiny_city / "labels" / f"lcz_{year}.tif", tiny_grid, resampling="nearest")[0]
        vegetated = np.isin(lcz, [11, 12, 13, 14])  # LCZ A-D: trees, bush, low plants
        assert vegetated.sum() > 100
        by_season = {}
        for t in np.flatnonzero(tiny_stack.time.dt.year.values == year):
            values = v.values[t][vegetated]
            by_season[str(tiny_stack.season.values[t])] = np.nanmean(values)
        assert by_season["summer"] > by_season["winter"] + 0.1, by_season


def test_read_landsat_skips_all_cloud_scene(tiny_city, tiny_grid, tmp_path):
    scenes = sorted((tiny_city / "landsat").iterdir())
    cloudy = copy_scene(scenes[1], tmp_path)
    copy_scene(scenes[2], tmp_path)
    qa_path = next(cloudy.glob("*_QA_PIXEL.TIF"))
    shape = read_tif(qa_path).shape
    rewrite_tif(qa_path, ls.encode_qa_pixel(np.zeros(shape, bool), True, False, False, False, False))
    with pytest.warns(ls.SceneSkipped, match=rf"{qa_path.name}: only 0.0% of the grid is usable"):
        ds = ls.read_landsat(tmp_path, tiny_grid)
    assert ds.sizes["time"] == 1 and ds.scenes.values[0] == scenes[2].name
    # Only the all-cloud scene left: no date is usable -> InputError naming the input.
    shutil.rmtree(tmp_path / scenes[2].name)
    with pytest.warns(ls.SceneSkipped), pytest.raises(InputError, match="no usable Landsat date") as err:
        ls.read_landsat(tmp_path, tiny_grid)
    assert str(err.value).startswith(str(tmp_path) + ": ")


# --- describe --------------------------------------------------------------------------------


def test_describe_real_level2(amazon):
    info = ls.describe(amazon)
    json.dumps(info, allow_nan=False)
    assert {"kind", "collection", "level", "date", "bands", "cloud_fraction", "crs", "bounds", "resolution",
            "path", "season", "sensor"} <= set(info)
    assert (info["kind"], info["collection"], info["level"], info["date"]) == ("landsat", 2, 2, "2020-10-31")
    assert (info["crs"], info["wrs_path"], info["wrs_row"], info["sensor"]) == ("EPSG:32620", 1, 62, "OLI_TIRS")
    assert info["hemisphere"] == "south" and info["season"] == "spring"
    mtl = ls.read_mtl(amazon / f"{AMAZON_ID}_MTL.txt")
    # cloud or dilated cloud over non-fill pixels vs the scene's CLOUD_COVER of 99.94 %
    assert info["cloud_fraction"] == pytest.approx(mtl["IMAGE_ATTRIBUTES"]["CLOUD_COVER"] / 100, abs=0.001)
    # independent check of the statistics straight from the files
    qa = read_tif(amazon / f"{AMAZON_ID}_QA_PIXEL.TIF")
    for name, n in (("blue", 2), ("nir", 5)):
        dn = read_tif(amazon / f"{AMAZON_ID}_SR_B{n}.TIF")
        sr = dn[(qa & 1 == 0) & (dn > 0)] * 2.75e-05 - 0.2
        stats = info["bands"][name]
        assert stats["band"] == f"SR_B{n}"
        assert (stats["min"], stats["mean"], stats["max"]) == pytest.approx((sr.min(), sr.mean(), sr.max()), abs=1e-5)
    # SOURCE.txt's "cloud bit set on 69 % of pixels" counts the 31 % fill collar too
    assert info["cloud_fraction"] * np.mean(qa & 1 == 0) == pytest.approx(0.693, abs=0.002)
    # any file of the scene describes the scene
    assert ls.describe(amazon / f"{AMAZON_ID}_MTL.json")["bands"] == info["bands"]


def test_describe_tiny_level1(tiny_city):
    folder = first_scene(tiny_city)
    info = ls.describe(folder)
    assert (info["level"], info["collection"], info["season"], info["hemisphere"]) == (1, 2, "winter", "north")
    assert info["quantity"] == "TOA reflectance" and info["resolution"] == [30.0, 30.0]
    qa = ls.decode_qa_pixel(read_tif(next(folder.glob("*_QA_PIXEL.TIF"))))
    cloud = (qa["cloud"] | qa["dilated_cloud"])[~qa["fill"]].mean()
    assert info["cloud_fraction"] == pytest.approx(cloud, abs=1e-6) and 0 < cloud < 1
    assert 0.0 < info["bands"]["red"]["min"] < info["bands"]["red"]["mean"] < info["bands"]["red"]["max"] < 1.0
    with pytest.raises(InputError, match="holds 9 Landsat scenes; point at one scene folder or file"):
        ls.describe(tiny_city / "landsat")


# --- bad input -------------------------------------------------------------------------------


def test_missing_band_file(tiny_city, tmp_path):
    copy = copy_scene(first_scene(tiny_city), tmp_path)
    band = next(copy.glob("*_B4.TIF"))
    band.unlink()
    with pytest.raises(InputError) as err:
        ls.discover_scenes(tmp_path)
    assert str(err.value) == f"{band}: missing band file (red, B4) of scene {copy.name}"
    with pytest.raises(InputError, match=r"_B4.TIF: missing band file \(red, B4\)"):
        ls.describe(copy)


def test_missing_optional_band_requested(tiny_city, tiny_grid):
    (scene,) = ls.discover_scenes(first_scene(tiny_city))
    with pytest.raises(InputError, match=rf"{scene.product_id}_B6.TIF: missing band file \(swir1, B6\)"):
        ls.read_scene(scene, tiny_grid, bands=("red", "swir1"))
    with pytest.raises(ValueError, match="unknown band 'pan'"):
        ls.read_scene(scene, tiny_grid, bands=("pan",))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_band_geotiff(tiny_city, tiny_grid, tmp_path, damage):
    copy = copy_scene(first_scene(tiny_city), tmp_path)
    band = next(copy.glob("*_B3.TIF"))
    data = band.read_bytes()
    band.write_bytes(data[:2048] if damage == "truncated" else b"\x00not a tiff" * 300)
    (scene,) = ls.discover_scenes(copy)
    for call in (lambda: ls.read_scene(scene, tiny_grid), lambda: ls.describe(copy)):
        with pytest.raises(InputError, match="cannot be read") as err:
            call()
        assert str(err.value).startswith(f"{band}: ") and "\n" not in str(err.value)


def test_truncated_real_band(amazon, tmp_path):
    for f in amazon.glob(f"{AMAZON_ID}_*"):
        if f.suffix in (".TIF", ".txt"):
            shutil.copy(f, tmp_path / f.name)
    band = tmp_path / f"{AMAZON_ID}_SR_B3.TIF"
    band.chmod(0o644)
    band.write_bytes((amazon / band.name).read_bytes()[:2048])
    (scene,) = ls.discover_scenes(tmp_path)
    with pytest.raises(InputError, match=rf"{band.name}: cannot be read"):
        ls.read_scene(scene, city_grid(AMAZON_AOI, res=600))


def test_band_without_crs(tiny_city, tiny_grid, tmp_path):
    copy = copy_scene(first_scene(tiny_city), tmp_path)
    band = next(copy.glob("*_B2.TIF"))
    rewrite_tif(band, read_tif(band), crs=None)
    (scene,) = ls.discover_scenes(copy)
    for call in (lambda: ls.read_scene(scene, tiny_grid), lambda: ls.describe(copy)):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == f"{band}: raster has no CRS (georeferencing is missing)"


def test_mtl_missing_constants(tiny_city, tiny_grid, tmp_path):
    copy = copy_scene(first_scene(tiny_city), tmp_path)
    mtl = next(copy.glob("*_MTL.txt"))
    mtl.write_text("".join(line for line in mtl.read_text().splitlines(keepends=True)
                           if "REFLECTANCE_MULT_BAND_4" not in line))
    (scene,) = ls.discover_scenes(copy)
    for call in (lambda: ls.read_scene(scene, tiny_grid), lambda: ls.describe(copy)):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == f"{mtl}: missing LEVEL1_RADIOMETRIC_RESCALING REFLECTANCE_MULT_BAND_4"


def test_grid_outside_the_scene(tiny_city, tmp_path):
    far = city_grid((119.5, 32.5, 119.51, 32.51))  # ~70 km from the demo scenes
    (scene,) = ls.discover_scenes(first_scene(tiny_city))
    with pytest.raises(InputError, match="does not overlap the city grid") as err:
        ls.read_scene(scene, far)
    assert str(err.value).startswith(str(scene.qa))
    copy_scene(first_scene(tiny_city), tmp_path)
    with pytest.warns(ls.SceneSkipped, match="does not overlap the grid"):
        with pytest.raises(InputError, match=f"{tmp_path}: no usable Landsat date"):
            ls.read_landsat(tmp_path, far)


def test_no_scene_found(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=f"{tmp_path}: no Landsat scene here"):
        ls.discover_scenes(tmp_path)
    with pytest.raises(InputError, match="pattern matches no file"):
        ls.discover_scenes(str(tmp_path / "LC08_*"))
    with pytest.raises(InputError, match="not a Landsat product id"):
        ls.discover_scenes(tmp_path / "notes.txt")


def test_mixed_levels_rejected(tiny_city, amazon, tiny_grid):
    # TOA (L1) and surface reflectance (L2) must not end up in one stack
    with pytest.raises(InputError, match="holds both Level-1 and Level-2 scenes"):
        ls.read_landsat([first_scene(tiny_city), amazon], tiny_grid)
