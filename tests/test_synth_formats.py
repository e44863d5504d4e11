"""Writers of the demo city's non-image inputs: readable by the usual readers, byte-identical reruns."""

from __future__ import annotations

import datetime as dt
import gzip

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS

from urbaneo.errors import InputError
from urbaneo.readers.tables import SOIL_COLUMNS, SPECIES_COLUMNS
from urbaneo.synth import climate as C
from urbaneo.synth import formats as F

AOI = (118.70, 32.00, 118.80, 32.10)
DAYS = pd.date_range("2023-06-01", periods=10)


def _bytes(path) -> bytes:
    return path.read_bytes()


# --- PAR NetCDF ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def par() -> xr.DataArray:
    lons, lats = C.par_grid(118.75, 32.05, half_width_deg=0.2)
    return C.par_field(lons, lats, DAYS, np.random.default_rng(0))


def test_par_netcdf_cf_readable(tmp_path, par):
    path = F.write_par_netcdf(tmp_path / "par.nc", par)
    with xr.open_dataset(path) as ds:  # CF decoding on
        assert np.issubdtype(ds.time.dtype, np.datetime64)
        assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2023-06-01")
        assert ds.time.encoding["units"] == "days since 1970-01-01"
        assert ds.time.encoding["calendar"] == "standard"
        assert "crs" in ds.variables and ds.crs.attrs["grid_mapping_name"] == "latitude_longitude"
        assert ds.par.attrs["grid_mapping"] == "crs" and ds.par.attrs["units"] == "MJ m-2 d-1"
        assert ds.par.encoding["zlib"] and ds.par.encoding["_FillValue"] == pytest.approx(-9999.0)
        assert ds.lat.attrs["units"] == "degrees_north" and ds.lat.attrs["axis"] == "Y"
        assert ds.lon.attrs["standard_name"] == "longitude" and ds.lon.attrs["axis"] == "X"
        assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["source"] == "urbaneo synthetic demo city"
        assert "history" not in ds.attrs and "date_created" not in ds.attrs
        np.testing.assert_array_equal(ds.par.values, par.values)


def test_par_netcdf_fill_and_byte_identical(tmp_path, par):
    holed = par.copy()
    holed[0, 0, 0] = np.nan
    a = F.write_par_netcdf(tmp_path / "a.nc", holed)
    b = F.write_par_netcdf(tmp_path / "b.nc", holed)
    assert _bytes(a) == _bytes(b)
    with xr.open_dataset(a) as ds:
        assert np.isnan(ds.par.values[0, 0, 0])
    with pytest.raises(InputError, match="dims"):
        F.write_par_netcdf(tmp_path / "c.nc", par.transpose("lat", "lon", "time"))
    assert not (tmp_path / "c.nc").exists()


# --- stations ------------------------------------------------------------------------------------------
def test_stations_csv(tmp_path):
    rng = np.random.default_rng(1)
    stations = C.station_network(AOI, rng, n=15)
    hourly = C.station_hourly(stations, DAYS[:3], rng)
    st_path, hr_path = F.write_stations(tmp_path / "a", stations, hourly)
    st = pd.read_csv(st_path)
    assert list(st.columns) == ["station_id", "name", "lon", "lat", "elevation_m"] and len(st) == 15
    hr = pd.read_csv(hr_path)
    assert list(hr.columns) == ["station_id", "time", "temp_c", "precip_mm", "rh_pct", "solar_wm2", "wind_ms"]
    assert len(hr) == 15 * 3 * 24 and hr.time.str.endswith("Z").all()
    assert pd.to_datetime(hr.time, utc=True).min() == pd.Timestamp("2023-05-31T16:00Z")
    assert hr.temp_c.between(5, 45).all() and hr.rh_pct.between(0, 100).all()
    assert (hr.precip_mm >= 0).all() and (hr.solar_wm2 >= 0).all() and hr.solar_wm2.max() < 1200
    raw = _bytes(hr_path)
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip with mtime 0
    assert not raw[3] & 0x08  # no FNAME field in the header
    assert gzip.decompress(raw).startswith(b"station_id,time,temp_c,")
    F.write_stations(tmp_path / "b", stations, hourly)
    assert raw == _bytes(tmp_path / "b" / "hourly.csv.gz")
    assert _bytes(st_path) == _bytes(tmp_path / "b" / "stations.csv")
    with pytest.raises(InputError, match="missing columns"):
        F.write_stations(tmp_path / "c", stations.drop(columns="elevation_m"), hourly)


# --- soil ----------------------------------------------------------------------------------------------
def test_soil_csv(tmp_path):
    plain = F.soil_samples(AOI, np.random.default_rng(2), spacing_m=1000)
    city = F.soil_samples(AOI, np.random.default_rng(2), spacing_m=1000,
                          built_fraction=lambda lon, lat: np.ones_like(lon))
    path = F.write_soil(tmp_path / "soil.csv", city)
    soil = pd.read_csv(path)
    assert list(soil.columns) == SOIL_COLUMNS and soil.sample_id.is_unique
    assert set(soil.depth_cm) == {"0-20", "20-40"} and len(soil) == 2 * 9 * 11  # 9.4 x 11.1 km at 1 km
    assert soil.som_g_kg.between(2, 50).all() and soil.ph.between(4.5, 8.5).all()
    assert soil.tn_g_kg.between(0.1, 3).all() and soil.tp_g_kg.between(0.2, 1.3).all()
    assert soil.cec_cmol_kg.between(5, 40).all() and soil.bulk_density_g_cm3.between(1.0, 1.75).all()
    np.testing.assert_allclose(soil[["sand_pct", "silt_pct", "clay_pct"]].sum(axis=1), 100, atol=0.11)
    top = soil[soil.depth_cm == "0-20"].som_g_kg.to_numpy()
    assert (soil[soil.depth_cm == "20-40"].som_g_kg.to_numpy() < top).all()
    assert city.som_g_kg.mean() < 0.8 * plain.som_g_kg.mean()  # built-up land: less organic matter
    # spatially smooth: neighbours along a row differ far less than the field's spread
    row = plain[plain.depth_cm == "0-20"].som_g_kg.to_numpy()[:9]  # the first row of 9 points
    assert np.abs(np.diff(row)).mean() < plain.som_g_kg.std()
    F.write_soil(tmp_path / "again.csv", city)
    assert _bytes(path) == _bytes(tmp_path / "again.csv")


# --- species -------------------------------------------------------------------------------------------
def test_species_csv(tmp_path):
    path = F.write_species(tmp_path / "species.csv", np.random.default_rng(3))
    sp = pd.read_csv(path)
    assert list(sp.columns) == SPECIES_COLUMNS and len(sp) == 24 and sp.species_id.is_unique
    assert set(sp.life_form) == {"tree", "shrub", "grass", "bamboo"}
    assert "Cinnamomum camphora" in set(sp.scientific_name)
    for col in ["respiration_ratio", "survival_rate", "growth_stage_coef", "drought_tolerance", "shade_tolerance"]:
        assert sp[col].between(0, 1).all(), col
    by_form = sp.groupby("life_form").mean(numeric_only=True)
    assert by_form.loc["tree", "carbon_rate_kgco2_m2_yr"] > by_form.loc["grass", "carbon_rate_kgco2_m2_yr"]
    assert by_form.loc["tree", "procurement_cost_cny_m2"] > 3 * by_form.loc["grass", "procurement_cost_cny_m2"]
    assert by_form.loc["tree", "height_m"] > by_form.loc["shrub", "height_m"] > by_form.loc["grass", "height_m"]
    # C_i = 44/12 GPP_i (1 - R_i): eq. 6 and eq. 31 of seed 001 agree
    np.testing.assert_allclose(sp.carbon_rate_kgco2_m2_yr, 44 / 12 * sp.gpp_kgc_m2_yr * (1 - sp.respiration_ratio),
                               atol=1e-3)
    F.write_species(tmp_path / "again.csv", np.random.default_rng(3))
    assert _bytes(path) == _bytes(tmp_path / "again.csv")
    assert len(F.species_table(np.random.default_rng(0), n=20).life_form.unique()) == 4


# --- population GeoTIFF --------------------------------------------------------------------------------
def test_population_geotiff(tmp_path):
    counts = np.random.default_rng(4).gamma(2.0, 800.0, (300, 20))  # > 256 rows: tiled
    counts[0, 0] = np.nan
    transform = Affine(1 / 120, 0, 118.5, 0, -1 / 120, 32.3)  # 30 arc-seconds
    path = F.write_population(tmp_path / "pop.tif", counts, transform)
    with rasterio.open(path) as ds:
        assert ds.crs == CRS.from_epsg(4326) and ds.nodata == -1 and ds.dtypes[0] == "float32"
        assert ds.transform.almost_equals(transform) and ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.compression.value == "DEFLATE"
        data = ds.read(1)
    assert data[0, 0] == -1
    np.testing.assert_allclose(data[1:, :], counts[1:, :].astype("f4"))
    F.write_population(tmp_path / "again.tif", counts, transform)
    assert _bytes(path) == _bytes(tmp_path / "again.tif")
    assert not list(tmp_path.glob("*.aux.xml"))
    with pytest.raises(InputError, match=">= 0"):
        F.write_population(tmp_path / "bad.tif", -counts, transform)


# --- MODIS sinusoidal NPP reference --------------------------------------------------------------------
def test_modis_tiles():
    assert F.modis_tile_of_lonlat(118.75, 32.0) == "h28v05"
    assert F.modis_tile_of_lonlat(0.5, 0.5) == "h18v08"
    assert F.MODIS_500M == pytest.approx(463.3127, abs=1e-4)


def test_npp_reference_geotiffs(tmp_path):
    transform, shape = F.modis_500m_grid(AOI)
    assert shape[0] > 20 and shape[1] > 18
    rng = np.random.default_rng(5)
    npp = {dt.date(2023, 1, 9): rng.normal(0.02, 0.01, shape),
           pd.Timestamp("2023-07-12"): rng.normal(0.05, 0.01, shape)}  # DOY 193
    npp[dt.date(2023, 1, 9)][0, 0] = np.nan
    paths = F.write_npp_reference(tmp_path / "a", npp, transform)
    assert [p.name for p in paths] == ["MOD17A2HGF.A2023009.h28v05.061.synthetic_PsnNet.tif",
                                       "MOD17A2HGF.A2023193.h28v05.061.synthetic_PsnNet.tif"]
    with rasterio.open(paths[0]) as ds:
        assert CRS.from_user_input(ds.crs) == CRS.from_proj4(F.MODIS_SINUSOIDAL)
        assert ds.transform.a == pytest.approx(463.3127, abs=1e-4) and ds.dtypes[0] == "int16"
        assert ds.nodata == 32767 and ds.scales[0] == pytest.approx(1e-4) and ds.offsets[0] == 0
        assert ds.tags(1)["scale_factor"] == "0.0001" and ds.tags(1)["units"] == "kg C/m^2/8day"
        dn = ds.read(1)
    assert dn[0, 0] == 32767
    np.testing.assert_allclose(dn[1:, 1:] * 1e-4, npp[dt.date(2023, 1, 9)][1:, 1:], atol=5.1e-5)
    again = F.write_npp_reference(tmp_path / "b", npp, transform)
    assert [_bytes(p) for p in paths] == [_bytes(p) for p in again]
    with pytest.raises(InputError, match="8-day"):
        F.write_npp_reference(tmp_path / "c", {dt.date(2023, 1, 10): npp[dt.date(2023, 1, 9)]}, transform)
    with pytest.raises(InputError, match="sinusoidal"):
        F.write_npp_reference(tmp_path / "c", npp, transform, crs="EPSG:4326")
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())
