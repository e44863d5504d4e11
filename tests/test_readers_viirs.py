"""VIIRS night-lights reader: the real Burundi monthly set, the demo city's annual files, bad input."""

from __future__ import annotations

import gzip
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.features import geometry_mask

from urbaneo.errors import InputError
from urbaneo.grid import Grid, city_grid
from urbaneo.readers.viirs import (clean, composite_monthly, describe, period_of, read_viirs, read_viirs_native,
                                   year_of)

from conftest import TINY_CITY

TINY_AOI = TINY_CITY["aoi"]
BUJUMBURA = (29.37, -3.39)  # SOURCE.txt: the brightest cluster
# tests/data/real holds a crop of the gridfinder rasters (SOURCE.txt): columns 45..146 and rows 122..313 of
# their 445 x 520 grid, i.e. 102 x 192 pixels over lon 29.19..29.61, lat -3.61..-2.81 around Bujumbura.
# The numbers below that come from the pixels were computed on the crop with plain numpy / shapely.
SHAPE = (192, 102)


@pytest.fixture(scope="module")
def burundi(real_data):
    return real_data / "viirs-ntl-burundi-gridfinder"


@pytest.fixture(scope="module")
def months(burundi):
    files = sorted((burundi / "monthly_2016").glob("VIIRS_2016_*.tif"))
    assert len(files) == 12
    return files


def _lonlat(da, iy, ix):
    return Transformer.from_crs(da.rio.crs, "EPSG:4326", always_xy=True).transform(da.x.values[ix], da.y.values[iy])


def test_names():
    assert year_of("VNL_v21_npp_2020_global_vcmslcfg_c202205302300.average_masked.dat.tif.gz") == 2020
    assert year_of("SVDNB_npp_20160101-20160131_00N060W_vcmcfg_v10_c201603132032.avg_rade9h.tif") == 2016
    assert year_of("VIIRS_2016_07.tif") == 2016 and year_of("ntl.tif") is None
    assert period_of("VNL_v2_npp_2016_global_vcmslcfg_c202102150000.average_masked.tif") == "annual"
    assert period_of("SVDNB_npp_20160101-20160131_00N060W_vcmcfg_v10_c201603132032.avg_rade9h.tif") == "monthly"
    assert period_of("SVDNB_npp_20150101-20151231_00N060W_vcm-orm_v10_c201701311200.avg_rade9.tif") == "annual"
    assert period_of("VIIRS_2016_07.tif") == "monthly" and period_of("ntl.tif") == "unknown"


def test_burundi_70th_percentile_equals_gridfinder(burundi, months):
    data, profile = composite_monthly(months, percentile=70)
    assert data.dtype == np.float32 and data.shape == SHAPE and profile["crs"].to_epsg() == 4326
    with rasterio.open(burundi / "ntl_gridfinder_tests.tif") as src:
        reference = src.read(1)
        assert src.transform.almost_equals(profile["transform"])
    aoi = gpd.read_file(burundi / "aoi_burundi.geojson").to_crs(4326)
    inside = ~geometry_mask(aoi.geometry, out_shape=reference.shape, transform=profile["transform"])
    # 18002 of the crop's 19584 pixel centres are in the AOI (shapely.contains_xy on the centres)
    assert inside.sum() > 17_500
    # SOURCE.txt: equal to 5e-7 inside the AOI (outside it the reference is 0, its nodata)
    assert np.abs(data[inside] - reference[inside]).max() <= 5e-7
    assert np.abs(composite_monthly(months, percentile=50)[0] - data)[inside].max() > 0.1


def test_burundi_stack_on_grids(months):
    with rasterio.open(months[0]) as src:
        t = src.transform
    native = Grid(4326, t.c, t.f, t.a, SHAPE[1], SHAPE[0])
    raw = read_viirs(months, native, clip_negative=False, outlier_factor=None)
    np.testing.assert_allclose(raw.values, composite_monthly(months)[0], atol=1e-5)
    assert raw.attrs["period"] == "monthly stack" and raw.attrs["percentile"] == 70.0 and raw.attrs["year"] == 2016

    region = city_grid((29.2, -3.6, 29.6, -3.2), res=500)  # UTM 35S around Bujumbura, coarser than VIIRS
    da = read_viirs(months[0].parent, region)
    assert da.dims == ("y", "x") and da.dtype == np.float32 and da.rio.crs.to_epsg() == 32735
    assert da.attrs["resampling"] == "average" and da.attrs["n_outliers"] == 0  # the percentile drops fires
    assert da.attrs["n_negative"] > 0 and np.nanmin(da.values) >= 0
    lon, lat = _lonlat(da, *np.unravel_index(np.nanargmax(da.values), da.shape))
    assert abs(lon - BUJUMBURA[0]) < 0.03 and abs(lat - BUJUMBURA[1]) < 0.03
    fine = read_viirs(months, city_grid((29.35, -3.4, 29.36, -3.39), res=30))
    assert fine.attrs["resampling"] == "bilinear" and np.isfinite(fine.values).all()


def test_real_month_fires_are_outliers(months):
    october = months[9]  # SOURCE.txt: October holds isolated very high pixels
    raw = read_viirs_native(october, clip_negative=False, outlier_factor=None)
    da = read_viirs_native(october)
    assert da.rio.crs.to_epsg() == 4326 and da.shape == SHAPE
    # 6 in the crop (12 in the whole file): counted with numpy alone, October > 20 and > 5 x the median of
    # its 3 x 3 neighbourhood (edges repeated), at rows/cols (1, 27), (2, 27), (10, 24), (11, 24), (13, 23), (13, 24)
    assert da.attrs["n_outliers"] == 6 and da.attrs["n_negative"] == int((raw.values < 0).sum())
    changed = (raw.values != da.values) & (raw.values > 0)
    assert changed.sum() == 6 and raw.values[changed].min() > 20 and da.values[changed].max() < 20
    assert raw.values[1, 27] == pytest.approx(106.48) and da.values[1, 27] < 5  # a two-pixel fire (full file: 123, 72)
    crop = read_viirs_native(october, bounds=(29.3, -3.5, 29.4, -3.3))
    x0, y0, x1, y1 = crop.rio.bounds()  # whole pixels covering the bounds: 0.1 x 0.2 deg is 24 x 48 px,
    assert crop.shape == (49, 25)  # one more each way as the pixel edges are not on 29.3 / -3.5
    assert x0 <= 29.3 < x0 + crop.rio.resolution()[0] and y1 >= -3.3 > y1 - crop.rio.resolution()[0]


def test_eog_monthly_folder_skips_coverage_files(months, tmp_path):
    for i, month in enumerate(months[:3]):
        stem = f"SVDNB_npp_2016{i + 1:02d}01-2016{i + 1:02d}28_00N000E_vcmcfg_v10_c201700000000"
        shutil.copy(month, tmp_path / f"{stem}.avg_rade9h.tif")
        shutil.copy(months[9], tmp_path / f"{stem}.cf_cvg.tif")  # stands for the cloud-free coverage counts
    native = read_viirs_native(tmp_path, clip_negative=False, outlier_factor=None)
    assert native.attrs["period"] == "monthly stack" and native.attrs["sources"].count("avg_rade9h") == 3
    np.testing.assert_allclose(native.values, composite_monthly(months[:3])[0])


def test_burundi_describe(months):
    facts = describe(months[0])
    assert facts["kind"] == "viirs" and facts["year"] == 2016 and facts["period"] == "monthly"
    assert facts["crs"] == "EPSG:4326" and facts["shape"] == list(SHAPE)
    stats = facts["stats"]
    # numpy on the cropped January file: min -0.64, max 9.46 (the whole file's max, at Bujumbura), mean -0.0707
    assert stats["min"] == pytest.approx(-0.64) and stats["max"] == pytest.approx(9.46)
    assert stats["mean"] == pytest.approx(-0.0707, abs=1e-4) and 0 < stats["share_negative"] < 1


def test_demo_city_annual_lights(tiny_city):
    grid = city_grid(TINY_AOI, res=500, buffer_m=8000)
    totals = {}
    for year in (2020, 2021):
        da = read_viirs(tiny_city / "viirs", grid, year=year)
        assert da.attrs["year"] == year and da.attrs["period"] == "annual" and np.isfinite(da.values).all()
        iy, ix = np.unravel_index(np.argmax(da.values), da.shape)
        cx, cy = (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2
        assert np.hypot(da.x.values[ix] - cx, da.y.values[iy] - cy) < 2000  # brightest at the city centre
        totals[year] = float(da.sum())
    assert totals[2021] >= totals[2020]  # the city grows
    # the demo's flares are single bright pixels far from towns: the outlier rule removes them
    raw = read_viirs_native(tiny_city / "viirs", year=2021, outlier_factor=None)
    cleaned = read_viirs_native(tiny_city / "viirs", year=2021)
    assert float(raw.max()) > 100 and float(cleaned.max()) < 60
    assert cleaned.attrs["n_outliers"] == int((raw.values != cleaned.values).sum()) >= 2
    assert describe(sorted((tiny_city / "viirs").glob("*2021*"))[0])["period"] == "annual"


def test_gzipped_composite(tiny_city, tmp_path):
    (annual,) = sorted((tiny_city / "viirs").glob("*_2021_*.tif"))
    packed = tmp_path / (annual.name + ".gz")
    with open(annual, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    np.testing.assert_array_equal(read_viirs_native(packed).values, read_viirs_native(annual).values)


# --- bad input: one InputError naming the file ----------------------------------------------


def test_negative_and_saturated_values_are_counted():
    radiance = np.array([[-0.5, 0.2, 0.3, 0.2], [0.1, 3000.0, 2500.0, 0.2], [0.2, 2800.0, 2900.0, 0.1],
                         [0.3, 0.2, -0.1, 0.2]], np.float32)
    data, counts = clean(radiance, saturation=1000.0, outlier_factor=None)
    assert counts == {"n_negative": 2, "n_saturated": 4, "n_outliers": 0}
    assert data.min() == 0.0 and data.max() == 1000.0
    kept, _ = clean(radiance, clip_negative=False, saturation=None, outlier_factor=None)
    np.testing.assert_array_equal(kept, radiance)


def test_stack_with_mismatched_grid(months, tmp_path):
    odd = tmp_path / "VIIRS_2016_13.tif"
    with rasterio.open(months[1]) as src:
        profile, data = src.profile, src.read()
    profile["transform"] = profile["transform"] * profile["transform"].translation(1, 0)  # one pixel east
    with rasterio.open(odd, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(InputError, match=r"VIIRS_2016_13\.tif: is on another grid than VIIRS_2016_01\.tif"):
        composite_monthly([months[0], odd])
    with pytest.raises(InputError, match=r"VIIRS_2016_13\.tif: is on another grid"):
        read_viirs([months[0], odd], city_grid((29.2, -3.6, 29.6, -3.2), res=500))


def test_corrupt_file(months, tmp_path):
    bad = tmp_path / "VIIRS_2016_01.tif"
    bad.write_bytes(months[0].read_bytes()[:2048])
    with pytest.raises(InputError, match=r"VIIRS_2016_01\.tif: cannot be read as a raster"):
        read_viirs_native(bad)
    with pytest.raises(InputError, match=r"VIIRS_2016_01\.tif: cannot be read as a raster"):
        composite_monthly([bad, months[1]])
    with pytest.raises(InputError, match=r"VIIRS_2016_01\.tif: cannot be read as a raster"):
        describe(bad)


def test_file_without_crs(months, tmp_path):
    bad = tmp_path / "VIIRS_2016_02.tif"
    with rasterio.open(months[1]) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs")
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(InputError, match=r"VIIRS_2016_02\.tif: raster has no CRS"):
        read_viirs(bad, city_grid((29.2, -3.6, 29.6, -3.2), res=500))
    with pytest.raises(InputError, match=r"VIIRS_2016_02\.tif: raster has no CRS"):
        describe(bad)


def test_grid_outside_the_data(months, tiny_city):
    nanjing = city_grid(TINY_AOI, res=500)
    with pytest.raises(InputError, match=r"VIIRS_2016_01\.tif: does not overlap the city grid EPSG:32650"):
        read_viirs(months, nanjing)
    with pytest.raises(InputError, match=r"\.tif: does not overlap the bounds"):
        read_viirs_native(sorted((tiny_city / "viirs").glob("*2021*")), bounds=(29.0, -4.0, 29.5, -3.5))


def test_year_selection(tiny_city, tmp_path):
    folder = tiny_city / "viirs"
    shutil.copy(sorted(folder.glob("*_2020_*"))[0], tmp_path / "ntl.tif")
    with pytest.raises(InputError, match=r"viirs: holds VIIRS files of several years \(2020, 2021\)"):
        read_viirs_native(folder)
    with pytest.raises(InputError, match=r"viirs: no VIIRS composite of 2019 \(file names hold 2020, 2021\)"):
        read_viirs_native(folder, year=2019)
    with pytest.raises(InputError, match=r"holds VIIRS files of several years \(2021 and names without a year\)"):
        read_viirs_native([*sorted(folder.glob("*_2021_*")), tmp_path / "ntl.tif"])
