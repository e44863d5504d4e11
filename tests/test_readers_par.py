"""PAR reader: CF-NetCDF, GeoTIFF stacks and HDF4 onto a grid, window sums, city means, describe, bad input.

Real files: the tiny demo city's par/par_daily.nc and the MODIS MOD10A2 HDF4-EOS granule in
tests/data/real (snow cover, so it tests the general HDF4 path; the PAR logic is tested on a
GLASS-like HDF4 file written here with pyhdf).
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from pyproj import CRS, Transformer
from rasterio.transform import from_origin
from scipy.interpolate import RegularGridInterpolator

from conftest import TINY_CITY
from urbaneo.errors import InputError
from urbaneo.grid import city_grid
from urbaneo.readers import par as P

MOD10A2 = "MOD10A2.A2022033.h09v05.061.2022042050729.hdf"
MODIS_TILE = 1111950.5197  # m: the MODIS sinusoidal tile size (36 x 18 tiles)
MODIS_HALF_X = 18 * MODIS_TILE  # x of the grid's west edge is -18 tiles, y of its north edge +9 tiles


@pytest.fixture(scope="module")
def grid():
    return city_grid(TINY_CITY["aoi"], res=30)


@pytest.fixture(scope="module")
def demo_nc(tiny_city):
    return tiny_city / "par" / "par_daily.nc"


@pytest.fixture(scope="module")
def demo_par(demo_nc, grid):
    return P.read_par(demo_nc, grid)


@pytest.fixture(scope="module")
def demo_ds(demo_nc):
    with xr.open_dataset(demo_nc) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def nc_tif(demo_ds):
    """write_tif on the grid of the tiny city's NetCDF (0.05 degree cell centres)."""
    west, north = float(demo_ds.lon.min()) - 0.025, float(demo_ds.lat.max()) + 0.025
    return functools.partial(write_tif, transform=from_origin(west, north, 0.05, 0.05))


def write_nc(path, values, dims, coords, attrs=None, extra=None, name="par"):
    """A small NetCDF holding ``name`` (units MJ m-2 d-1 unless attrs say otherwise)."""
    ds = xr.Dataset({name: (dims, np.asarray(values, "f4"), {"units": "MJ m-2 d-1", **(attrs or {})}),
                     **(extra or {})}, coords=coords)
    ds.to_netcdf(path)
    return path


def write_tif(path, data, *, crs="EPSG:4326", transform=from_origin(118.6, 32.2, 0.05, 0.05), units="MJ m-2 d-1",
              descriptions=None):
    data = np.asarray(data, "f4").reshape((-1, *np.shape(data)[-2:]))
    with rasterio.open(path, "w", driver="GTiff", count=len(data), height=data.shape[1], width=data.shape[2],
                       dtype="float32", crs=crs, transform=transform, nodata=np.nan) as dst:
        dst.write(data)
        if units:
            dst.units = [units] * len(data)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path


def demo_coords(demo_ds, days):
    return {"time": demo_ds.time.values[:days], "lat": demo_ds.lat.values, "lon": demo_ds.lon.values}


def demo_shape(demo_ds, days):
    return days, demo_ds.sizes["lat"], demo_ds.sizes["lon"]


# --------------------------------------------------------------------------------------------
# The demo city's CF-NetCDF
# --------------------------------------------------------------------------------------------


def test_demo_netcdf_is_daily_par_on_the_grid(demo_par, demo_ds, grid):
    assert demo_par.dims == ("time", "y", "x") and demo_par.shape == (731, *grid.shape)
    assert demo_par.dtype == np.float32 and demo_par.attrs["units"] == "MJ m-2 d-1"
    assert np.issubdtype(demo_par.time.dtype, np.datetime64)
    assert str(demo_par.time.values[0])[:10] == "2020-01-01" and str(demo_par.time.values[-1])[:10] == "2021-12-31"
    assert demo_par.rio.crs.to_epsg() == grid.epsg and not demo_par.isnull().any()
    # Bilinear between the 0.05 degree cell centres, checked at three pixels and two days.
    x, y = grid.xy()
    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    for day in (10, 200):
        interp = RegularGridInterpolator((demo_ds.lat.values[::-1], demo_ds.lon.values),
                                         demo_ds.par.values[day][::-1])
        for row, col in ((0, 0), (20, 30), (grid.height - 1, grid.width - 1)):
            lon, lat = to_lonlat.transform(x[col], y[row])
            assert float(demo_par[day, row, col]) == pytest.approx(float(interp([lat, lon])[0]), rel=1e-5)


def test_demo_seasonal_cycle(demo_par):
    months = P.city_series(demo_par).groupby(lambda t: (t.year, t.month)).sum()
    for year in (2020, 2021):
        assert months[(year, 7)] > 1.5 * months[(year, 1)]


def test_start_end_keep_part_of_the_series(demo_nc, demo_par, grid):
    july = P.read_par(demo_nc, grid, start="2020-07-01", end="2020-07-31")
    assert july.sizes["time"] == 31
    np.testing.assert_array_equal(july.values, demo_par.sel(time=slice("2020-07-01", "2020-07-31")).values)
    with pytest.raises(InputError, match="par_daily.nc: no PAR day between 2030-01-01"):
        P.read_par(demo_nc, grid, start="2030-01-01")


def test_city_series_is_the_grid_mean(demo_par):
    series = P.city_series(demo_par)
    assert len(series) == 731 and isinstance(series.index, pd.DatetimeIndex)
    assert series.iloc[100] == pytest.approx(float(demo_par[100].mean()), rel=1e-6)
    assert series.attrs["units"] == "MJ m-2 d-1"


# --------------------------------------------------------------------------------------------
# Window sums
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("days, per_year", [(15, 24), (30, 12), (60, 6), (90, 4)])
def test_aggregate_windows_and_sums(demo_par, days, per_year):
    sums = P.aggregate(demo_par, days)
    assert sums.sizes["time"] == 2 * per_year and sums.attrs["window_days"] == days
    starts = pd.DatetimeIndex(sums.window_start.values)
    assert starts[0] == pd.Timestamp("2020-01-01") and starts[per_year] == pd.Timestamp("2021-01-01")
    assert (starts[1] - starts[0]).days == days
    assert ((pd.DatetimeIndex(sums.window_end.values) - starts).days == days - 1).all()
    # Every window is the sum of its own days; together they cover day-of-year 1 .. per_year*days.
    daily = demo_par.sel(time=slice(str(starts[3].date()), str(sums.window_end.values[3])[:10]))
    assert daily.sizes["time"] == days
    np.testing.assert_allclose(sums[3].values, daily.sum("time").values, rtol=1e-5)
    doy = pd.DatetimeIndex(demo_par.time.values).day_of_year
    covered = demo_par.isel(time=np.flatnonzero(doy <= per_year * days))
    assert float(sums.sum()) == pytest.approx(float(covered.sum()), rel=1e-5)


def test_aggregate_summer_beats_winter(demo_par):
    sums = P.aggregate(demo_par, 90)
    quarters = P.city_series(sums)  # windows start on day-of-year 1, 91, 181, 271
    assert str(quarters.index[2].date()) == "2020-06-29" and str(sums.window_end.values[2])[:10] == "2020-09-26"
    assert quarters.iloc[2] > 1.3 * quarters.iloc[0] and quarters.iloc[6] > 1.3 * quarters.iloc[4]
    assert quarters.iloc[2] == pytest.approx(P.city_series(demo_par)["2020-06-29":"2020-09-26"].sum(), rel=1e-5)


def test_aggregate_drops_incomplete_windows(demo_par):
    part = demo_par.sel(time=slice("2020-01-10", "2020-03-31")).drop_sel(time=["2020-02-20"])
    starts = [str(t)[:10] for t in P.aggregate(part, 15).window_start.values]
    # 01-01 is cut by the start, 02-15 by the gap, 03-31 by the end
    assert starts == ["2020-01-16", "2020-01-31", "2020-03-01", "2020-03-16"]
    with pytest.raises(InputError, match="par_daily.nc: no complete 90-day window"):
        P.aggregate(part, 90)


@pytest.mark.parametrize("days", [7, 365, 0])
def test_aggregate_rejects_other_window_lengths(demo_par, days):
    with pytest.raises(ValueError, match="15, 30, 60, 90 days"):
        P.aggregate(demo_par, days)


# --------------------------------------------------------------------------------------------
# Other CF layouts and units
# --------------------------------------------------------------------------------------------


def test_projected_netcdf_in_w_m2(tmp_path, grid):
    # A linear field on a south-up 1 km UTM grid: bilinear reproduces it exactly, so every pixel is checked.
    xs = np.arange(grid.xmin - 5000, grid.bounds[2] + 5000, 1000.0) + 500
    ys = np.arange(grid.bounds[1] - 5000, grid.ymax + 5000, 1000.0) + 500  # ascending: south first
    field = lambda x, y, t: 100 + 0.001 * (x - xs[0]) + 0.002 * (y - ys[0]) + 10 * t  # noqa: E731
    values = np.stack([field(xs[None, :], ys[:, None], t) for t in range(2)])
    crs_var = xr.DataArray(0, attrs=CRS.from_epsg(grid.epsg).to_cf())
    path = write_nc(tmp_path / "flux.nc", values, ("time", "y", "x"),
                    {"time": pd.date_range("2020-06-01", periods=2).to_numpy(),
                     "x": ("x", xs, {"standard_name": "projection_x_coordinate", "units": "m"}),
                     "y": ("y", ys, {"standard_name": "projection_y_coordinate", "units": "m"})},
                    attrs={"units": "W m-2", "grid_mapping": "crs",
                           "standard_name": "surface_downwelling_photosynthetic_radiative_flux_in_air"},
                    extra={"crs": crs_var}, name="rad")
    par = P.read_par(path, grid)
    gx, gy = grid.xy()
    for t in range(2):
        expected = field(gx[None, :], gy[:, None], t) * 0.0864
        np.testing.assert_allclose(par[t].values, expected, rtol=1e-5)
    assert P.describe(path)["variable"] == "rad"


@pytest.mark.parametrize("units, factor", [("MJ/m2/day", 1.0), ("W/m^2", 0.0864), ("kJ m-2 d-1", 1e-3)])
def test_unit_spellings(units, factor):
    assert P.units_factor(units, "f.nc") == pytest.approx(factor)


# --------------------------------------------------------------------------------------------
# GeoTIFF stacks
# --------------------------------------------------------------------------------------------


def test_geotiff_stack_equals_the_netcdf(nc_tif, tmp_path, demo_ds, demo_par, grid):
    par = demo_ds.par.values
    nc_tif(tmp_path / "PAR_20200101.tif", par[0])
    nc_tif(tmp_path / "PAR_2020-01-02.tif", par[1])
    nc_tif(tmp_path / "GLASS_PAR.A2020003.tif", par[2])
    nc_tif(tmp_path / "later.tif", par[3:6], descriptions=["2020-01-04", "20200105", "PAR 2020-01-06"])
    stack = P.read_par(tmp_path, grid)
    assert [str(t)[:10] for t in stack.time.values] == [f"2020-01-0{d}" for d in range(1, 7)]
    np.testing.assert_allclose(stack.values, demo_par.values[:6], rtol=1e-5)
    facts = P.describe(tmp_path / "later.tif")
    assert facts["format"] == "geotiff" and facts["days"] == 3 and facts["time_end"] == "2020-01-06"


def test_date_from_name():
    assert P.date_from_name("GLASS04B01.V42.A2020366.2021001.hdf") == pd.Timestamp("2020-12-31")
    assert P.date_from_name("PAR_20210228.tif") == pd.Timestamp("2021-02-28")
    assert P.date_from_name("PAR_20210229.tif") is None and P.date_from_name("par.tif") is None


# --------------------------------------------------------------------------------------------
# HDF4
# --------------------------------------------------------------------------------------------


def test_hdf4_real_modis_granule(real_data):
    pytest.importorskip("pyhdf")
    path = real_data / "modis-hdf4eos-mod10a2-stactools" / MOD10A2
    assert P.hdf4_datasets(path) == {"Maximum_Snow_Extent": (2400, 2400), "Eight_Day_Snow_Cover": (2400, 2400)}
    values, geo = P.read_hdf4_sds(path, "Maximum_Snow_Extent")
    assert values.shape == (2400, 2400) and values.dtype == np.float32
    h, v = 9, 5  # tile h09v05
    expected = (-MODIS_HALF_X + h * MODIS_TILE, MODIS_HALF_X / 2 - (v + 1) * MODIS_TILE,
                -MODIS_HALF_X + (h + 1) * MODIS_TILE, MODIS_HALF_X / 2 - v * MODIS_TILE)
    np.testing.assert_allclose(geo.bounds, expected, atol=0.01)
    assert geo.res == pytest.approx((MODIS_TILE / 2400, MODIS_TILE / 2400))
    assert "+proj=sinu" in geo.crs.to_proj4() and "+R=6371007.181" in geo.crs.to_proj4()
    assert P.date_from_name(path.name) == pd.Timestamp("2022-02-02")
    codes = set(np.unique(values[~np.isnan(values)]).tolist())
    assert codes <= {0, 1, 11, 25, 37, 39, 50, 100, 200, 254} and {25, 200} <= codes  # 255 = fill is NaN
    part, part_geo = P.read_hdf4_sds(path, "Maximum_Snow_Extent", window=rasterio.windows.Window(100, 50, 20, 10))
    np.testing.assert_array_equal(part, values[50:60, 100:120])
    assert part_geo.bounds[0] == pytest.approx(expected[0] + 100 * geo.res[0])
    with pytest.raises(InputError, match=f"{MOD10A2}: no PAR dataset .*it has: Maximum_Snow_Extent, "
                                         "Eight_Day_Snow_Cover"):
        P.describe(path)


def dms(degrees: float) -> float:
    d = int(degrees)
    return d * 1_000_000 + round((degrees - d) * 60) * 1000


def write_glass_hdf(path, raw, *, struct=True):
    """A GLASS-like daily PAR granule: int16 SDS "PAR" in W m-2, scale and offset, fill -1, geographic grid."""
    from pyhdf.SD import SD, SDC

    f = SD(str(path), SDC.WRITE | SDC.CREATE)
    sds = f.create("PAR", SDC.INT16, raw.shape)
    sds.setfillvalue(-1)
    sds[:] = raw.astype("i2")
    for name, kind, value in (("scale_factor", SDC.FLOAT64, 0.1), ("add_offset", SDC.FLOAT64, 100.0),
                              ("units", SDC.CHAR8, "W m-2"), ("long_name", SDC.CHAR8, "daily mean PAR")):
        sds.attr(name).set(kind, value)
    sds.endaccess()
    if struct:  # 0.05 degree cells, lon 118.5 .. 119.0, lat 32.3 .. 31.8, corners in packed DMS
        f.attr("StructMetadata.0").set(SDC.CHAR8, (
            'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="GLASS_Grid"\n'
            f"\t\tXDim={raw.shape[1]}\n\t\tYDim={raw.shape[0]}\n"
            f"\t\tUpperLeftPointMtrs=({dms(118.5):.6f},{dms(32.3):.6f})\n"
            f"\t\tLowerRightMtrs=({dms(119.0):.6f},{dms(31.8):.6f})\n"
            "\t\tProjection=GCTP_GEO\n\t\tGROUP=DataField\n\t\t\tOBJECT=DataField_1\n"
            '\t\t\t\tDataFieldName="PAR"\n\t\t\tEND_OBJECT=DataField_1\n\t\tEND_GROUP=DataField\n'
            "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"))
    f.end()
    return path


def test_hdf4_glass_like_par(tmp_path, grid):
    pytest.importorskip("pyhdf")
    cols = np.arange(10)
    raw = np.broadcast_to(1600 + 10 * cols, (10, 10)).copy()  # linear in longitude
    raw[-1] = -1  # fill along the southern row, away from the city
    path = write_glass_hdf(tmp_path / "GLASS04B01.V42.A2020183.2020200.hdf", raw)
    par = P.read_par(path, grid)
    assert [str(t)[:10] for t in par.time.values] == ["2020-07-01"]
    lon, _ = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(*np.meshgrid(*grid.xy()))
    col = (lon - 118.5) / 0.05 - 0.5  # fractional column of each pixel centre
    expected = 0.1 * (1600 + 10 * col - 100) * 0.0864  # scale * (stored - offset), W m-2 -> MJ m-2 d-1
    np.testing.assert_allclose(par[0].values, expected, rtol=1e-5)
    facts = P.describe(path)
    assert (facts["format"], facts["variable"], facts["units"], facts["days"]) == ("hdf4", "PAR", "W m-2", 1)
    assert facts["bounds"] == pytest.approx([118.5, 31.8, 119.0, 32.3])
    assert facts["stats"]["valid_fraction"] == 0.9 and facts["stats"]["min"] == pytest.approx(1500 * 0.00864)


# --------------------------------------------------------------------------------------------
# Bad input: one InputError naming the file
# --------------------------------------------------------------------------------------------


def test_all_missing_netcdf(tmp_path, demo_ds, grid):
    path = write_nc(tmp_path / "empty.nc", np.full(demo_shape(demo_ds, 3), np.nan), ("time", "lat", "lon"),
                    demo_coords(demo_ds, 3))
    with pytest.raises(InputError, match=r"empty.nc: PAR is all missing \(NaN/fill\)"):
        P.read_par(path, grid)
    with pytest.raises(InputError, match=r"empty.nc: PAR is all missing \(NaN/fill\)$"):
        P.describe(path)


def test_no_georeferencing(nc_tif, tmp_path, demo_ds, grid):
    bare = write_nc(tmp_path / "bare.nc", demo_ds.par.values[:2], ("time", "a", "b"),
                    {"time": demo_ds.time.values[:2]})
    with pytest.raises(InputError, match="bare.nc: par has no georeferencing"):
        P.read_par(bare, grid)
    xy = write_nc(tmp_path / "xy.nc", demo_ds.par.values[:2], ("time", "y", "x"),
                  {"time": demo_ds.time.values[:2], "y": np.arange(demo_ds.sizes["lat"]) * 1000.0,
                   "x": np.arange(demo_ds.sizes["lon"]) * 1000.0})
    with pytest.raises(InputError, match="xy.nc: par has projected x/y coordinates but no grid_mapping"):
        P.read_par(xy, grid)
    tif = nc_tif(tmp_path / "PAR_20200101.tif", demo_ds.par.values[0], crs=None)
    with pytest.raises(InputError, match="PAR_20200101.tif: raster has no CRS"):
        P.read_par(tif, grid)


def test_grid_outside_the_data(demo_nc):
    paris = city_grid((2.30, 48.84, 2.36, 48.88), res=30)
    with pytest.raises(InputError, match="par_daily.nc: PAR data does not cover the city grid EPSG:32631"):
        P.read_par(demo_nc, paris)


def test_netcdf_without_par_variable(tmp_path, demo_ds, grid):
    coords = demo_coords(demo_ds, 2)
    ds = xr.Dataset({"temperature": (("time", "lat", "lon"), np.zeros(demo_shape(demo_ds, 2))),
                     "fpar": (("time", "lat", "lon"), np.zeros(demo_shape(demo_ds, 2)),
                              {"long_name": "fraction of absorbed photosynthetically active radiation"})},
                    coords=coords)
    ds.to_netcdf(tmp_path / "other.nc")
    with pytest.raises(InputError, match=r"other.nc: no PAR variable .*it has: temperature, fpar\)"):
        P.read_par(tmp_path / "other.nc", grid)


def test_geotiff_stack_without_dates(nc_tif, tmp_path, demo_ds, grid):
    one = nc_tif(tmp_path / "par_stack.tif", demo_ds.par.values[0])
    with pytest.raises(InputError, match="par_stack.tif: no date in the file name"):
        P.read_par(one, grid)
    many = nc_tif(tmp_path / "par_many.tif", demo_ds.par.values[:3], descriptions=["2020-01-01", "", "x"])
    with pytest.raises(InputError, match="par_many.tif: band 2 of 3 has no date"):
        P.read_par(many, grid)


def test_units_missing_or_unknown(nc_tif, tmp_path, demo_ds, grid):
    tif = nc_tif(tmp_path / "PAR_20200101.tif", demo_ds.par.values[0], units=None)
    with pytest.raises(InputError, match="PAR_20200101.tif: PAR has no units"):
        P.read_par(tif, grid)
    declared = [P.read_par(tif, grid, units=u).values for u in ("W m-2", "MJ m-2 d-1")]  # by the caller instead
    np.testing.assert_allclose(declared[0], declared[1] * 0.0864, rtol=1e-6)
    nc = write_nc(tmp_path / "photons.nc", demo_ds.par.values[:2], ("time", "lat", "lon"), demo_coords(demo_ds, 2),
                  attrs={"units": "umol m-2 s-1"})
    with pytest.raises(InputError, match="photons.nc: PAR units 'umol m-2 s-1' are not supported"):
        P.read_par(nc, grid)


def test_same_day_in_two_files(nc_tif, tmp_path, demo_ds, grid):
    nc_tif(tmp_path / "PAR_20200101.tif", demo_ds.par.values[0])
    nc_tif(tmp_path / "PAR.A2020001.tif", demo_ds.par.values[0])
    with pytest.raises(InputError, match="PAR_20200101.tif: 2020-01-01 is also in PAR.A2020001.tif"):
        P.read_par(tmp_path, grid)


def test_hdf4_without_pyhdf(monkeypatch, real_data, grid):
    for module in ("pyhdf", "pyhdf.SD", "pyhdf.error"):
        monkeypatch.setitem(sys.modules, module, None)  # `import pyhdf...` now raises ImportError
    path = real_data / "modis-hdf4eos-mod10a2-stactools" / MOD10A2
    message = f"{path}: reading HDF4 needs the optional extra: pip install 'urbaneo[hdf4]' (pyhdf)"
    with pytest.raises(InputError) as err:
        P.read_par(path, grid)
    assert str(err.value) == message
    with pytest.raises(InputError) as err:
        P.read_hdf4_sds(path, "Maximum_Snow_Extent")
    assert str(err.value) == message


def test_hdf4_without_struct_metadata(tmp_path, grid):
    pytest.importorskip("pyhdf")
    path = write_glass_hdf(tmp_path / "GLASS.A2020001.hdf", np.full((10, 10), 1600), struct=False)
    with pytest.raises(InputError, match="GLASS.A2020001.hdf: no HDF-EOS StructMetadata.0"):
        P.read_par(path, grid)


@pytest.mark.parametrize("kind", ["netcdf", "geotiff", "hdf4", "text"])
def test_corrupt_files(tmp_path, demo_nc, demo_ds, real_data, grid, kind):
    if kind == "hdf4":
        pytest.importorskip("pyhdf")
        source, name = real_data / "modis-hdf4eos-mod10a2-stactools" / MOD10A2, "GLASS.A2020001.hdf"
    elif kind == "geotiff":
        source = write_tif(tmp_path / "full.tif", np.random.default_rng(0).random((300, 300)))
        name = "PAR_20200101.tif"
    else:
        source, name = demo_nc, "PAR_daily.nc"
    bad = tmp_path / name
    bad.write_bytes(b"PAR,2020-01-01\n1,2\n" if kind == "text" else source.read_bytes()[:2048])
    expected = "not a NetCDF, GeoTIFF or HDF4 file" if kind == "text" else "cannot be read"
    with pytest.raises(InputError, match=f"{name}: {expected}"):
        P.read_par(bad, grid)
