"""Seed 001's planning site: the indices by hand (eqs. 3-6), the Kalman smoother (eq. 8), the heat-island fit
(eq. 5), and build_site on the tiny city's aligned sources, with its one-line errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from urbaneo import align
from urbaneo.errors import InputError
from urbaneo.grid import Grid
from urbaneo.stages.vegplan import site as vs
from urbaneo.readers.tables import SPECIES_COLUMNS, read_species

from conftest import align_tiny

SOURCES = ("gf2", "landsat", "osm", "population", "soil", "stations", "lcz_labels")


@pytest.fixture(scope="session")
def tiny_site_root(tiny_city, tmp_path_factory) -> Path:
    """The tiny city's sources of the site aligned as resources/align/tiny would be (city file inside)."""
    root = tmp_path_factory.mktemp("vegplan_site")
    align_tiny(tiny_city, root, *SOURCES)
    return root


@pytest.fixture(scope="module")
def city(tiny_site_root):
    from urbaneo.config import load_city

    return load_city(tiny_site_root / "tiny.yaml")


@pytest.fixture(scope="module")
def built(tiny_site_root, city) -> tuple[xr.Dataset, str]:
    """The tiny city's site and the warnings building it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = vs.build_site(tiny_site_root, city["inputs"]["species"], city)
    return ds, " | ".join(str(w.message) for w in caught)


@pytest.fixture(scope="module")
def site(built) -> xr.Dataset:
    return built[0]


def _variant(base: Path, out: Path, store: str, groups: dict[str, xr.Dataset]) -> Path:
    """``base``'s aligned stores in ``out`` (links), with ``store`` rewritten from ``groups``."""
    out.mkdir()
    for path in base.glob("*.zarr"):
        if path.name != f"{store}.zarr":
            (out / path.name).symlink_to(path)
    for i, (group, ds) in enumerate(groups.items()):
        ds = ds.copy()
        for name in list(ds.coords) + list(ds.data_vars):
            if ds[name].dtype.kind == "T":  # numpy StringDType -> fixed width, which Zarr v2 stores
                ds[name] = ds[name].astype(np.array([str(v) for v in ds[name].values]).dtype)
        ds.to_zarr(out / f"{store}.zarr", group=group, mode="w" if i == 0 else "a", consolidated=False,
                   zarr_format=2)
    return out


def _stations(root: Path, move) -> dict[str, xr.Dataset]:
    series = align.open_aligned(root / "stations.zarr", "series").load()
    lon, lat = move(series["lon"].values.copy(), series["lat"].values.copy())
    series = series.assign_coords(lon=("station_id", lon), lat=("station_id", lat))
    return {"series": series, "planning": align.open_aligned(root / "stations.zarr", "planning").load()}


# --- the indices by hand ---------------------------------------------------------------------------------
def test_f_ph_and_sfi_by_hand():
    # eq. 4: 1 - |7.0 - 6.5| / 2 = 0.75; 3 pH units off a range of 2 is clipped to 0; a zero range is a step
    assert vs.f_ph(7.0, 6.5, 2.0) == pytest.approx(0.75)
    assert vs.f_ph(9.5, 6.5, 2.0) == 0.0
    assert vs.f_ph([6.5, 6.6], 6.5, 0.0).tolist() == [1.0, 0.0]
    # eq. 3 on a 1 x 3 city: each of SOM, TN, TP, CEC min-max scaled over the city (eq. 9), equal weights
    soil = {"som_g_kg": np.array([[10.0, 20.0, 30.0]]), "tn_g_kg": np.array([[1.0, 1.0, 3.0]]),
            "tp_g_kg": np.array([[0.5, 0.7, 0.6]]), "cec_cmol_kg": np.array([[15.0, 15.0, 15.0]]),
            "ph": np.array([[6.5, 7.0, 8.5]])}
    sfi = vs.soil_fertility(soil, ph_opt=[6.5, 8.5], ph_range=[2.0, 1.0])
    assert sfi.shape == (2, 1, 3)
    # cell 1: SOM .5, TN 0, TP 1, CEC .5 (a constant layer), f_pH(7.0; 6.5, 2) = .75 -> 0.2 x 2.75
    assert sfi[0, 0, 1] == pytest.approx(0.2 * (0.5 + 0.75 + 0.0 + 1.0 + 0.5))
    # cell 2 for the second species: SOM 1, TN 1, TP .5, CEC .5, pH at the optimum
    assert sfi[1, 0, 2] == pytest.approx(0.2 * (1 + 1 + 1 + 0.5 + 0.5))
    assert sfi[1, 0, 0] == pytest.approx(0.2 * (0 + 0 + 0 + 0 + 0.5))  # pH 2 units off a range of 1


def test_carbon_potential_is_eq6():
    species = pd.DataFrame({"gpp_kgc_m2_yr": [2.0, 1.5], "respiration_ratio": [0.5, 0.4],
                            "survival_rate": [0.9, 1.0], "growth_stage_coef": [0.6, 0.5]})
    assert vs.carbon_potential(species) == pytest.approx([2.0 * 0.5 * 0.9 * 0.6, 1.5 * 0.6 * 1.0 * 0.5])


def test_block_mean_weights_pixels_by_their_overlap():
    # 30 m pixels in 100 m cells: the 4th pixel column (90-120 m) is shared 1/3 : 2/3 by cells 0 and 1
    src, dst = Grid(32650, 0.0, 300.0, 30.0, 10, 10), Grid(32650, 0.0, 300.0, 100.0, 3, 3)
    values = np.zeros((10, 10))
    values[:, [0, 3]] = 1.0
    out = vs.block_mean(values, src, dst)
    assert out[:, 0] == pytest.approx([0.4] * 3) and out[:, 1] == pytest.approx([0.2] * 3)
    assert out[:, 2] == pytest.approx([0.0] * 3)
    values[:4, :4] = np.nan  # missing pixels are left out of the mean (not counted as 0): cell (0, 0) has
    out = vs.block_mean(values, src, dst)  # none left, cell (1, 0) loses the 20 m of pixel row 3 it shared
    assert np.isnan(out[0, 0]) and out[1, 0] == pytest.approx(0.4) and out[0, 1] == 0.0  # its 1s were missing
    assert np.isnan(vs.block_mean(np.full((10, 10), np.nan), src, dst)).all()


# --- eq. 8 ------------------------------------------------------------------------------------------
def test_kalman_smoother_fills_a_gap_and_removes_noise():
    rng = np.random.default_rng(0)
    t = np.arange(730)
    truth = 15 + 10 * np.sin(2 * np.pi * t / 365) + np.cumsum(rng.normal(0, 0.3, t.size))
    observed = truth + rng.normal(0, 1.5, t.size)
    observed[300:312] = np.nan  # a 12-day gap
    q, r = vs.kalman_variances(observed)  # both recovered from the series alone (q: the walk plus the
    assert r == pytest.approx(1.5**2, rel=0.3) and 0.05 < q < 1.5  # season's day-to-day change, ~0.09 + 0.015)
    smoothed = vs.kalman_smooth(observed)
    filtered = vs.kalman_smooth(observed, smooth=False)
    assert np.isfinite(smoothed).all() and np.isfinite(filtered).all()
    ok = np.isfinite(observed)
    noise = np.var(observed[ok] - truth[ok])
    assert np.var(smoothed[ok] - truth[ok]) < 0.3 * noise
    assert np.var(filtered[ok] - truth[ok]) < 0.6 * noise
    assert np.abs(smoothed[300:312] - truth[300:312]).max() < 3.0  # the gap follows the seasonal course
    # several series at once (leading dims), each with its own variances; an empty series stays empty
    many = vs.kalman_smooth(np.stack([observed, observed * 2, np.full(t.size, np.nan)]))
    assert many[1] == pytest.approx(2 * smoothed, rel=1e-6, abs=1e-6) and np.isnan(many[2]).all()


# --- eq. 5 ------------------------------------------------------------------------------------------
def test_uhi_fit_recovers_known_coefficients():
    rng = np.random.default_rng(1)
    n = 25
    x = np.column_stack([rng.uniform(0, 0.5, n), rng.uniform(0, 40, n), rng.uniform(0, 0.8, n),
                         rng.uniform(0, 30, n), rng.uniform(0, 0.6, n)])
    true = np.array([1.8, 0.03, 1.2, 0.08, 2.0])
    y = x @ (true * [1, 1, 1, 1, -1]) + rng.normal(0, 0.02, n)  # GC cools: eq. 5's minus sign
    coef, r2 = vs.fit_uhi(x, y)
    assert coef == pytest.approx(true, rel=0.1, abs=0.02)
    assert (coef >= 0).all() and r2 > 0.99
    grid = x.T[:, :, None]  # (5, n, 1) predictors as a grid
    assert vs.uhi_field(grid, coef)[:, 0] == pytest.approx(x @ (coef * [1, 1, 1, 1, -1]))


def test_uhi_target_moves_rural_stations_to_the_urban_elevation():
    tmin, elev = np.array([12.0, 11.0, 10.0, 9.0]), np.array([10.0, 20.0, 110.0, 10.0])
    target = vs.uhi_targets(tmin, elev, np.array([True, True, False, False]))
    # rural mean 9.5 C at 60 m; at 10 m it would be 0.0065 x 50 K warmer
    assert target[:2] == pytest.approx([12 - (9.5 + 0.0065 * 50), 11 - (9.5 + 0.0065 * 40)])
    assert np.isnan(target[2:]).all()
    assert np.isnan(vs.uhi_targets(tmin, elev, np.ones(4, bool))).all()  # no rural reference


# --- the site on the tiny city ------------------------------------------------------------------------
def test_site_on_the_tiny_city(site, built, city, tiny_site_root):
    plan = align.grids_of(city).planning
    species = read_species(city["inputs"]["species"])
    s, (h, w) = len(species), plan.shape
    assert site.sizes == {"feature": len(vs.FEATURES), "y": h, "x": w, "species": s}
    assert list(site["species"].values) == species["species_id"].tolist()
    assert site.rio.crs.to_epsg() == plan.epsg and site.rio.transform() == plan.transform
    for name in ("features", "plantable_m2", "suitability", "rule_suitability", "cli", "sfi", "uhi", "cp"):
        assert site[name].dtype == np.float32, name
        assert np.isfinite(site[name].values).all(), name
    assert site["compatible"].dtype == bool
    for name in ("suitability", "rule_suitability", "cli", "sfi"):
        assert 0 <= site[name].min() and site[name].max() <= 1, name
    plantable = site["plantable_m2"].values
    assert plantable.min() >= 0 and plantable.max() <= site.attrs["cell_m2"] == 10_000
    assert 0.3 < (plantable > 0).mean() < 1  # buildings, roads, water and parks leave gaps
    compatible = site["compatible"].values
    assert not compatible[:, plantable == 0].any() and compatible.any()
    assert (site["suitability"].values[compatible] >= vs.MIN_SUITABILITY).all()
    f = site["features"]
    water = f.sel(feature="water").values == 1
    assert water.any() and (plantable[water] == 0).all()
    assert f.sel(feature="building_fraction").max() <= 1 and f.sel(feature="population_density").min() >= 0
    # features in raw units: the normals of the tiny city's generated Nanjing-like climate
    assert 10 < float(f.sel(feature="temp_c").mean()) < 20 and 500 < float(f.sel(feature="precip_mm").mean()) < 2000
    lcz = align.open_aligned(tiny_site_root / "lcz_labels.zarr", "planning")["lcz"].isel(year=-1).values
    assert (f.sel(feature="lcz").values == lcz).all()
    # compact LCZ (1-3, 10) take shrubs and grass only; water (17) nothing
    trees = (site["life_form"].values == "tree")
    compact = np.isin(lcz, [1, 2, 3, 10])
    assert compact.any() and not compatible[trees][:, compact].any()
    assert not compatible[:, lcz == 17].any()
    # eq. 6 and the species table carried along
    assert site["cp"].values == pytest.approx(species["gpp_kgc_m2_yr"] * (1 - species["respiration_ratio"])
                                              * species["survival_rate"] * species["growth_stage_coef"], rel=1e-6)
    assert site["procurement_cost_cny_m2"].values == pytest.approx(species["procurement_cost_cny_m2"], rel=1e-6)
    # the tiny city has 2 urban stations: default eq. 5 coefficients, said in a warning
    assert site.attrs["uhi_fit"] == "default" and list(site.attrs["uhi_coefficients"]) == list(vs.UHI_DEFAULT)
    assert "default coefficients" in built[1]
    assert site.attrs["stations_used"] >= 2 and site.attrs["uhi_lapse_correction"] == "yes"
    # without an NPP map the existing green takes a typical rate
    assert f.sel(feature="baseline_co2").values == pytest.approx(
        f.sel(feature="green_fraction").values * vs.GREEN_NPP_G_C * 44 / 12 / 1000, rel=1e-5)


def test_site_round_trip_and_determinism(site, city, tiny_site_root, tmp_path):
    path = tmp_path / "site.nc"
    vs.write_site(site, path)
    back = vs.read_site(path)
    assert back["compatible"].dtype == bool and back.rio.crs == site.rio.crs
    for name in ("features", "suitability", "compatible", "plantable_m2", "cp", "life_form"):
        assert (back[name].values == site[name].values).all(), name
    assert list(back.attrs["uhi_coefficients"]) == list(site.attrs["uhi_coefficients"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = vs.build_site(tiny_site_root, city["inputs"]["species"], city)
    assert (again["suitability"].values == site["suitability"].values).all()
    (tmp_path / "other.nc").write_text("not a site")
    with pytest.raises(InputError, match="other.nc"):
        vs.read_site(tmp_path / "other.nc")


def _geotiff(path: Path, data: np.ndarray, grid: Grid, nodata=None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=len(data),
                       dtype=data.dtype, crs=grid.crs, transform=grid.transform, nodata=nodata) as dst:
        dst.write(data)
    return path


def test_npp_map_lcz_map_and_urban_mask(city, tiny_site_root, tmp_path, site):
    grids = align.grids_of(city)
    base = grids.base
    # two years of 300 and 200 g C m-2 yr-1 on the 30 m base grid (as the NPP stage writes npp_annual.tif)
    npp = np.stack([np.full(base.shape, 300.0), np.full(base.shape, 200.0)]).astype(np.float32)
    lcz = np.full((1, *base.shape), 2, np.uint8)  # compact mid-rise everywhere
    urban = np.zeros((1, *base.shape), np.uint8)  # ... but the urban mask calls every cell other land
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"npp_maps": _geotiff(tmp_path / "npp_annual.tif", npp, base),
              "lcz_map": _geotiff(tmp_path / "lcz.tif", lcz, base, nodata=0)}
        compact = vs.build_site(tiny_site_root, city["inputs"]["species"], city, **kw)
        open_land = vs.build_site(tiny_site_root, city["inputs"]["species"], city,
                                  urban_mask=_geotiff(tmp_path / "urban.tif", urban, base, nodata=255), **kw)
    co2 = compact["features"].sel(feature="baseline_co2").values
    assert co2 == pytest.approx(np.full(co2.shape, 250 * 44 / 12 / 1000), rel=1e-5)
    assert (compact["features"].sel(feature="lcz").values == 2).all()
    trees = compact["life_form"].values == "tree"
    assert not compact["compatible"].values[trees].any() and compact["compatible"].values[~trees].any()
    assert open_land["compatible"].values[trees].any() and open_land.attrs["urban_mask"] == "used"
    assert [open_land.attrs[f"{k}_used"] for k in ("lcz", "npp", "urban")] == ["yes", "yes", "yes"]
    assert [site.attrs[f"{k}_used"] for k in ("lcz", "npp", "urban")] == ["no", "no", "no"]
    assert (open_land["compatible"].values >= compact["compatible"].values).all()


def test_uhi_coefficients_are_fitted_with_enough_urban_stations(city, tiny_site_root, tmp_path):
    # move three rural stations into the AOI: five urban stations, one rural reference left
    def move(lon, lat):
        lon0, lat0, lon1, lat1 = city["aoi"]
        for i, k in enumerate([2, 3, 4]):
            lon[k], lat[k] = lon0 + (lon1 - lon0) * (0.2 + 0.3 * i), lat0 + (lat1 - lat0) * (0.8 - 0.3 * i)
        return lon, lat

    root = _variant(tiny_site_root, tmp_path / "aligned", "stations", _stations(tiny_site_root, move))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = vs.build_site(root, city["inputs"]["species"], city)
    assert ds.attrs["uhi_fit"] == "nnls" and ds.attrs["uhi_stations"] == 5
    assert (np.asarray(ds.attrs["uhi_coefficients"]) >= 0).all() and ds.attrs["uhi_r2"] <= 1


def test_stations_all_outside_the_region_is_one_line(city, tiny_site_root, tmp_path):
    root = _variant(tiny_site_root, tmp_path / "aligned", "stations",
                    _stations(tiny_site_root, lambda lon, lat: (lon + 3.0, lat)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match=r"stations\.csv: no station inside the region") as err:
            vs.build_site(root, city["inputs"]["species"], city)
    assert "\n" not in str(err.value)


def test_a_city_with_every_cell_built_is_one_line(city, tiny_site_root, tmp_path):
    osm = align.open_aligned(tiny_site_root / "osm.zarr", "planning").load()
    osm["building_fraction"][:] = 1.0
    root = _variant(tiny_site_root, tmp_path / "aligned", "osm", {"planning": osm})
    with pytest.raises(InputError, match=r"osm\.zarr: no plantable ground") as err:
        vs.build_site(root, city["inputs"]["species"], city)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.drop(columns="shade_tolerance"), r"missing columns \['shade_tolerance'\]"),
    (lambda df: df.assign(procurement_cost_cny_m2=-5.0), r"procurement_cost_cny_m2 = -5 is negative"),
])
def test_a_bad_species_table_is_the_readers_one_line(city, tiny_site_root, tmp_path, edit, message):
    df = pd.read_csv(city["inputs"]["species"], dtype=str)
    assert list(df.columns) == SPECIES_COLUMNS
    path = tmp_path / "species.csv"
    edit(df).to_csv(path, index=False)
    with pytest.raises(InputError, match=message) as err:
        vs.build_site(tiny_site_root, path, city)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
