"""Label and reference readers: LCZ maps (both codings), urban land (raster, polygons), MOD17 NPP reference."""

from __future__ import annotations

import json
import shutil
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, box

from urbaneo.errors import InputError
from urbaneo.grid import Grid, city_grid
from urbaneo.readers import labels as L

from conftest import TINY_CITY

PARIS_GRID = Grid(32631, 442480.0, 5418020.0, 100.0, 166, 121)  # the file's own grid (SOURCE.txt)
# SOURCE.txt counts {1:183, 2:11950, ..., 101:1841, 102:1, 104:111, 105:82, 107:82} with A-G mapped to 11-17
PARIS_COUNTS = {1: 183, 2: 11950, 3: 1216, 4: 1326, 5: 658, 6: 1299, 8: 1337, 11: 1841, 12: 1, 14: 111, 15: 82,
                17: 82}


@pytest.fixture(scope="module")
def paris(real_data):
    return real_data / "lcz-map-wudapt-paris" / "lcz_zonePreanalyse.tif"


@pytest.fixture(scope="module")
def city30():
    return city_grid(TINY_CITY["aoi"], 30)


def _counts(values) -> dict:
    u, c = np.unique(np.asarray(values), return_counts=True)
    return {int(k): int(n) for k, n in zip(u, c) if k != 0}


def _write(path, data, *, crs="EPSG:32650", transform=Affine(100, 0, 664500, 0, -100, 3546800), nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype.name, crs=crs, transform=transform, nodata=nodata) as ds:
        ds.write(data, 1)
    return path


# --- LCZ ---------------------------------------------------------------------------------------------
def test_paris_legacy_coding_maps_to_1_17_on_its_own_grid(paris):
    da = L.read_lcz(paris, PARIS_GRID)
    assert da.dtype == np.uint8 and da.dims == ("y", "x") and da.shape == (121, 166)
    assert da.attrs["source_coding"] == "legacy" and da.attrs["resampling"] == "nearest"
    assert da.rio.crs.to_epsg() == 32631
    assert _counts(da.values) == PARIS_COUNTS  # e.g. 101 (A) -> 11 with its 1841 pixels
    assert (da.values == 0).sum() == 0  # the crop has no nodata


def test_paris_finer_grid_is_nearest_and_coarser_grid_is_mode(paris):
    own = L.read_lcz(paris, PARIS_GRID).values
    fine = Grid(32631, 444980.0, 5415020.0, 25.0, 80, 60)  # inside the map, 4 x 4 cells per LCZ pixel
    da = L.read_lcz(paris, fine)
    assert da.attrs["resampling"] == "nearest"
    col, row = 25, 30  # the LCZ pixel under the grid's corner
    np.testing.assert_array_equal(da.values, np.repeat(np.repeat(own[row:row + 15, col:col + 20], 4, 0), 4, 1))

    coarse = Grid(2154, 640000.0, 6870000.0, 300.0, 40, 30)  # Lambert-93, another CRS and extent
    da = L.read_lcz(paris, coarse)
    assert da.attrs["resampling"] == "mode" and da.rio.crs.to_epsg() == 2154
    counts = _counts(da.values)
    assert set(counts) <= set(PARIS_COUNTS)
    assert max(counts, key=counts.get) == 2  # compact midrise dominates Paris as in the source
    assert 0 < (da.values == 0).sum() < da.size  # the grid reaches beyond the map


def test_paris_describe(paris):
    facts = L.describe(paris)
    assert facts["kind"] == "lcz_labels" and facts["coding"] == "legacy" and facts["crs"] == "EPSG:32631"
    assert facts["resolution"] == [100.0, 100.0] and facts["bounds"] == [442480.0, 5405920.0, 459080.0, 5418020.0]
    assert {int(k): v["pixels"] for k, v in facts["classes"].items()} == PARIS_COUNTS
    assert facts["classes"]["11"]["name"] == "A Dense trees"
    json.dumps(facts)


def test_demo_lcz_standard_coding(tiny_city, city30):
    path = tiny_city / "labels" / "lcz_2021.tif"
    with rasterio.open(path) as src:
        raw = src.read(1)
        own = Grid(src.crs.to_epsg(), src.bounds.left, src.bounds.top, 100.0, src.width, src.height)
    da = L.read_lcz(path, own)
    assert da.attrs["source_coding"] == "standard"
    np.testing.assert_array_equal(da.values, raw)
    on_city = L.read_lcz(path, city30)
    assert on_city.shape == city30.shape and on_city.attrs["resampling"] == "nearest"
    assert set(_counts(on_city.values)) <= set(_counts(raw))
    assert L.describe(path)["coding"] == "standard"


def test_lcz_coding_can_be_forced(paris):
    with pytest.raises(InputError, match=r"lcz_zonePreanalyse.tif: LCZ codes \[101, 102, 104, 105, 107\] are "
                                         r"not in the standard coding"):
        L.read_lcz(paris, PARIS_GRID, coding="standard")
    assert L.read_lcz(paris, PARIS_GRID, coding="legacy").attrs["source_coding"] == "legacy"


@pytest.mark.parametrize("codes, message", [
    ([1, 2, 18, 50], r"LCZ codes \[18, 50\] are outside both codings"),
    ([1, 12, 105], r"mixes the two LCZ codings: \[12\] .* and \[105\]"),
    ([1.0, 2.5, 3.0], r"class map holds non-integer values, e.g. \[2.5\]"),
])
def test_lcz_bad_codes(tmp_path, city30, codes, message):
    data = np.resize(np.array(codes, dtype="float32" if isinstance(codes[0], float) else "uint8"), (20, 20))
    path = _write(tmp_path / "lcz_bad.tif", data)
    with pytest.raises(InputError, match=rf"lcz_bad.tif: {message}"):
        L.read_lcz(path, city30)


def test_lcz_float_nodata_is_nodata(tmp_path, city30):
    data = np.full((20, 20), 3.0, np.float32)
    data[:10] = -1.0
    path = _write(tmp_path / "lcz_float.tif", data, nodata=-1.0)
    da = L.read_lcz(path, Grid(32650, 664500.0, 3546800.0, 100.0, 20, 20))
    assert (da.values[:10] == 0).all() and (da.values[10:] == 3).all()


def test_unreadable_label_rasters(tmp_path, paris, city30):
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(paris.read_bytes()[:2048])
    with pytest.raises(InputError, match="truncated.tif: cannot be read as a raster"):
        L.read_lcz(truncated, PARIS_GRID)
    no_crs = _write(tmp_path / "no_crs.tif", np.ones((20, 20), np.uint8), crs=None)
    with pytest.raises(InputError, match="no_crs.tif: raster has no CRS"):
        L.read_lcz(no_crs, city30)
    with pytest.raises(InputError, match="lcz_zonePreanalyse.tif: does not overlap the grid EPSG:32650"):
        L.read_lcz(paris, city30)  # Paris labels on a Nanjing grid
    with pytest.raises(InputError, match="missing.tif: file not found"):
        L.read_urban(tmp_path / "missing.tif", city30)


# --- urban land ----------------------------------------------------------------------------------------
def test_demo_urban_raster(tiny_city, city30):
    path = tiny_city / "labels" / "urban_2021.tif"
    da = L.read_urban(path, city30)
    assert da.dtype == np.uint8 and da.shape == city30.shape and da.attrs["nodata"] == 255
    with rasterio.open(path) as src:  # both grids are snapped to 30 m, so cells are copied exactly
        window = rasterio.windows.from_bounds(*city30.bounds, transform=src.transform)
        raw = src.read(1, window=window)
    np.testing.assert_array_equal(da.values, raw)
    assert 0.1 < da.values.mean() < 0.9  # the tiny city is partly built
    facts = L.describe(path)
    assert facts["kind"] == "urban_labels" and set(facts["values"]) == {"0", "1"}


def test_urban_values_for_other_class_codes(tmp_path):
    grid = Grid(32650, 664500.0, 3546800.0, 30.0, 10, 10)
    data = np.full((10, 10), 10, np.uint8)  # FROM-GLC-like: 10 cropland, 80 impervious, 0 nodata
    data[:4] = 80
    data[-1] = 0
    path = _write(tmp_path / "fromglc.tif", data, transform=grid.transform, nodata=0)
    da = L.read_urban(path, grid, urban_values={80})
    assert (da.values[:4] == 1).all() and (da.values[4:9] == 0).all() and (da.values[9] == 255).all()
    with pytest.warns(UserWarning, match=r"fromglc.tif: no pixel under the grid has an urban value \[1.0\]"):
        assert (L.read_urban(path, grid).values[:9] == 0).all()


def test_urban_polygons_are_rasterised_by_cell_centre(tmp_path, city30):
    x0, y0, _, y1 = city30.bounds
    # edges 60 % into the border cells: 9 x 7 cell centres inside (all_touched would give 11 x 9)
    poly = box(x0 + 30 * 2.6, y1 - 30 * 10.4, x0 + 30 * 12.4, y1 - 30 * 2.6)
    frame = gpd.GeoDataFrame({"name": ["district"]}, geometry=[poly], crs=city30.crs).to_crs("EPSG:4326")
    for name in ("urban.gpkg", "urban.geojson"):
        frame.to_file(tmp_path / name)
        da = L.read_urban(tmp_path / name, city30)
        assert da.values.sum() == 9 * 7 and set(np.unique(da.values)) == {0, 1}
        assert da.values[3:10, 3:12].all()
    facts = L.describe(tmp_path / "urban.gpkg")
    assert facts["kind"] == "urban_labels" and facts["features"] == 1 and facts["crs"] == "EPSG:4326"


def test_bad_urban_polygons(tmp_path, city30):
    gpd.GeoDataFrame(geometry=[Point(118.75, 32.035)], crs="EPSG:4326").to_file(tmp_path / "points.gpkg")
    with pytest.raises(InputError, match=r"points.gpkg: urban land must be polygons, found \['Point'\]"):
        L.read_urban(tmp_path / "points.gpkg", city30)
    gpd.GeoDataFrame(geometry=[box(2.3, 48.8, 2.4, 48.9)], crs="EPSG:4326").to_file(tmp_path / "paris.geojson")
    with pytest.raises(InputError, match="paris.geojson: does not overlap the city grid"):
        L.read_urban(tmp_path / "paris.geojson", city30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyogrio warns that the file will have no CRS: the point here
        gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]).to_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputError, match="nocrs.shp: has no CRS"):
        L.read_urban(tmp_path / "nocrs.shp", city30)
    (tmp_path / "broken.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="broken.gpkg: cannot be read as vector data"):
        L.read_urban(tmp_path / "broken.gpkg", city30)


# --- NPP reference -------------------------------------------------------------------------------------
def _copy_recoded(src_path, dst_path, edit):
    with rasterio.open(src_path) as src:
        profile, data = src.profile, src.read(1)
        scales, tags = src.scales, src.tags()
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(edit(data.copy()), 1)
        dst.scales = scales
        dst.update_tags(**tags)
    return dst_path


def test_demo_npp_reference_on_its_own_grid(tiny_city):
    files = sorted((tiny_city / "npp_reference").glob("*.tif"))
    assert len(files) == 46 * len(TINY_CITY["years"])
    da = L.read_npp_reference(tiny_city / "npp_reference")
    assert da.dims == ("time", "y", "x") and da.dtype == np.float32 and da.sizes["time"] == len(files)
    assert str(da.time.values[0])[:10] == "2020-01-01" and str(da.time.values[1])[:10] == "2020-01-09"
    assert str(da.time.values[-1])[:10] == "2021-12-27"
    assert da.attrs["units"] == "kg C m-2 per 8-day composite" and da.attrs["period"] == "8-day"
    assert "sinu" in da.rio.crs.to_wkt().lower() and abs(da.rio.resolution()[0] - 463.3127) < 1e-3
    with rasterio.open(files[20]) as src:  # counts x 0.0001 on the file's own pixels
        np.testing.assert_allclose(da.values[20], src.read(1) * 1e-4, rtol=1e-6)
    season = da.mean(("y", "x")).groupby("time.season").mean()
    assert float(season.sel(season="JJA")) > 3 * float(season.sel(season="DJF"))  # growing season


def test_npp_codes_become_nan(tiny_city, tmp_path):
    src = sorted((tiny_city / "npp_reference").glob("*.tif"))[20:23]
    codes = (32766, 32762, 32767)  # water, urban, fill

    def recode(data):
        data[0, :3] = codes
        return data

    for path in src:
        _copy_recoded(path, tmp_path / path.name, recode)
    da = L.read_npp_reference(tmp_path)
    assert np.isnan(da.values[:, 0, :3]).all() and np.isfinite(da.values[:, 1:]).all()
    facts = L.describe(tmp_path)
    assert facts["coded_pixels"] == {"fill": 3, "urban/built-up": 3, "water": 3} and facts["files"] == 3


def test_npp_averaged_onto_a_city_grid(tiny_city, city30):
    files = sorted((tiny_city / "npp_reference").glob("*.tif"))[::8]
    native = L.read_npp_reference(files)
    da = L.read_npp_reference(files, city30)
    assert da.shape == (native.sizes["time"], *city30.shape) and da.rio.crs.to_epsg() == 32650
    assert np.isfinite(da.values).all()
    lo, hi = native.min(("y", "x")).values, native.max(("y", "x")).values
    inner = da.values.reshape(len(lo), -1)
    assert (inner.min(axis=1) >= lo - 1e-6).all() and (inner.max(axis=1) <= hi + 1e-6).all()


def test_npp_annual_products_and_appeears_names(tiny_city, tmp_path):
    first = sorted((tiny_city / "npp_reference").glob("*.tif"))[0]
    for year, value in ((2020, 5000), (2021, 32700)):  # 32700 is still valid in MOD17A3
        _copy_recoded(first, tmp_path / f"MOD17A3HGF.061_Npp_500m_doy{year}001_aid0001.tif",
                      lambda d, v=value: np.full_like(d, v))
    da = L.read_npp_reference(tmp_path)
    assert da.attrs["period"] == "annual" and da.attrs["units"] == "kg C m-2 yr-1"
    assert [str(t)[:10] for t in da.time.values] == ["2020-01-01", "2021-01-01"]
    np.testing.assert_allclose(da.values[:, 0, 0], [0.5, 3.27], rtol=1e-6)
    shutil.copy(first, tmp_path / first.name)
    with pytest.raises(InputError, match="mixes 8-day .MOD17A2. and annual .MOD17A3. products"):
        L.read_npp_reference(tmp_path)


def test_bad_npp_reference(tiny_city, tmp_path, city30):
    good = sorted((tiny_city / "npp_reference").glob("*.tif"))[0]
    renamed = shutil.copy(good, tmp_path / "npp_january.tif")
    with pytest.raises(InputError, match="npp_january.tif: not a MOD17 file name"):
        L.read_npp_reference([renamed])
    truncated = tmp_path / "MOD17A2HGF.A2020009.h28v05.061.x.tif"
    truncated.write_bytes(good.read_bytes()[:400])  # the demo files are small: cut inside the header
    with pytest.raises(InputError, match=r"MOD17A2HGF.A2020009.h28v05.061.x.tif: cannot be read as a raster"):
        L.read_npp_reference([good, truncated])
    fill = _copy_recoded(good, tmp_path / "MOD17A2HGF.A2020017.h28v05.061.fill.tif", lambda d: np.full_like(d, 32767))
    with pytest.raises(InputError, match="has no valid NPP pixel over the grid"):
        L.read_npp_reference([fill])
    with pytest.raises(InputError, match=r"A2020001.h28v05.061.synthetic_PsnNet.tif: does not overlap the grid"):
        L.read_npp_reference([good], Grid(32631, 442480.0, 5418020.0, 100.0, 166, 121))
    with pytest.raises(InputError, match=r"day of year 400 does not exist in 2020"):
        L.read_npp_reference([shutil.copy(good, tmp_path / "MOD17A2HGF.A2020400.h28v05.061.tif")])


def test_reference_grid_crop_and_describe(tiny_city):
    folder = tiny_city / "npp_reference"
    whole = L.reference_grid(folder)
    assert whole.epsg == 0 and whole.wkt and whole.shape == (4, 7)
    one_pixel = L.reference_grid(folder, aoi=(118.7501, 32.0351, 118.7502, 32.0352))
    assert one_pixel.shape == (1, 1)
    assert L.read_npp_reference(folder, aoi=(118.7501, 32.0351, 118.7502, 32.0352)).shape == (92, 1, 1)
    assert L.read_npp_reference(str(folder / "*.A2021*.tif")).sizes["time"] == 46  # a glob pattern
    facts = L.describe(folder)
    assert facts["kind"] == "npp_reference" and facts["product"] == "MOD17A2HGF" and facts["files"] == 92
    assert facts["first"] == "2020-01-01" and facts["units"] == "kg C m-2 per 8-day composite"
    assert facts["valid_fraction"] == 1.0 and facts["crs"].startswith("+proj=sinu")
    json.dumps(facts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.describe(sorted(folder.glob("*.tif"))[0])["files"] == 1
