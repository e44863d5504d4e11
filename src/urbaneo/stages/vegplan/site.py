"""``urbaneo vegplan site`` (rule vegplan_site), seed 001's planning site: a city's 100 m planning grid with
what a vegetation plan is built and scored on.

``build_site`` reads the aligned sources of a city (resources/align/{city}/) and the species table and
returns one xarray Dataset on the planning grid (coordinates y, x, ``species``, ``feature``):

* ``features`` (feature, y, x): the per-cell inputs of the learned models in raw units (FEATURES,
  FEATURE_UNITS): GF-2 band and NDVI means (eqs. 1 and 7), the Landsat summer NDVI, OSM morphology,
  population density, the heat island (eq. 5), station normals (eq. 8), soil, SFI (eq. 3), LCZ, and
  the CO2 uptake of the existing vegetation.
* ``plantable_m2``, ``compatible``, ``suitability`` (the site model, the "truth" plans are scored
  with), ``rule_suitability`` (the paper's indices only, CLI x SFI), ``cli``, ``sfi``, ``uhi``, ``cp``
  (eq. 6) and the species table as 1-D variables on ``species``.

The paper names its indices but not their response functions, weights or data handling; the choices
made here (constants below, each with its reason) are recorded in the dataset's ``choices`` attribute:

* Rasters reach the planning grid by area-weighted means over the exact overlap of source pixels and
  planning cells (eq. 7 with w = overlap share): the 3 m VHR and 30 m base grids do not nest in
  100 m cells (30 and 100 m edges meet only every 300 m), so pixels on a cell edge are shared.
* Station series (eq. 8): a scalar local-level Kalman filter (A = H = 1, no control) per station and
  variable, followed by a Rauch-Tung-Striebel smoother; gaps are predicted through. The process and
  observation variances come from the moments of the day-to-day differences (for a local level
  model var(dz) = q + 2r and cov(dz_t, dz_t-1) = -r), so no tuning is needed per variable.
* Normals (the smoothed series' means) are put on the grid by inverse-distance weighting
  (tables.interpolate_points), stations beyond the city's region buffer are ignored with a warning,
  and none inside the region is one InputError naming the station table.
* CLI (eq. 2) is the mean, not the sum, of five responses in [0, 1], so it stays in [0, 1].
* UHI (eq. 5): lambda_1..5 by non-negative least squares (GC entering with its minus sign) on the
  urban stations (inside the planning grid); target = station mean daily minimum temperature minus
  the mean of the rural stations (outside the grid), moved to the station's elevation at 6.5 K/km.
  Fewer than MIN_UHI_STATIONS urban stations (or no rural one): UHI_DEFAULT, with a warning.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ... import align
from ...atomic import atomic_path
from ...errors import InputError
from ...grid import Grid, grid_of, grid_of_dataset, warp_to_grid
from ...readers import tables
from ..npp.function import ndvi as npp_ndvi

SITE_FORMAT = "urbaneo-vegplan-site/1"

FEATURES = [
    "gf2_blue", "gf2_green", "gf2_red", "gf2_nir", "gf2_ndvi", "landsat_ndvi",
    "building_fraction", "building_height", "road_density", "water", "green_fraction", "impervious",
    "population_density", "uhi", "temp_c", "precip_mm", "rh_pct", "solar_mj_m2", "wind_ms",
    "som", "ph", "tn", "tp", "cec", "sfi", "lcz", "baseline_co2",
]
FEATURE_UNITS = {
    "gf2_blue": "reflectance", "gf2_green": "reflectance", "gf2_red": "reflectance", "gf2_nir": "reflectance",
    "gf2_ndvi": "1", "landsat_ndvi": "1", "building_fraction": "1", "building_height": "m",
    "road_density": "km km-2", "water": "0/1", "green_fraction": "1", "impervious": "1",
    "population_density": "persons km-2", "uhi": "K", "temp_c": "degC (annual mean)",
    "precip_mm": "mm yr-1", "rh_pct": "%", "solar_mj_m2": "MJ m-2 d-1", "wind_ms": "m s-1",
    "som": "g kg-1", "ph": "pH", "tn": "g kg-1", "tp": "g kg-1", "cec": "cmol kg-1", "sfi": "1",
    "lcz": "LCZ code (0 unknown)", "baseline_co2": "kg CO2 m-2 yr-1",
}
LIFE_FORMS = ("tree", "bamboo", "shrub", "grass")
SOIL_VARIABLES = ("som_g_kg", "ph", "tn_g_kg", "tp_g_kg", "cec_cmol_kg")
STATION_VARIABLES = ("temp_c", "temp_min_c", "precip_mm", "rh_pct", "solar_mj_m2", "wind_ms")
# physical bounds of the smoothed series (a smoother can overshoot a bound next to a spike)
STATION_BOUNDS = {"precip_mm": (0.0, None), "rh_pct": (0.0, 100.0), "solar_mj_m2": (0.0, None),
                  "wind_ms": (0.0, None)}

# --- climate responses (eq. 2): plant-physiology rules of thumb, one line of reason each ------------------
GROWING_MONTHS = {"north": (4, 5, 6, 7, 8, 9, 10), "south": (10, 11, 12, 1, 2, 3, 4)}  # t_opt is a growth optimum
SIGMA_T_K = 6.0  # f_T: Gaussian around t_opt_c of the growing-season mean; 6 K off costs 40 %
COLD_MARGIN_K = 3.0  # f_T x frost: 1 when the mean yearly minimum is 3 K above t_min_c, 0 at 3 K below
PRECIP_NEED_MM = (1200.0, 400.0)  # f_P: yearly rain a drought-intolerant (0) ... tolerant (1) species needs
RH_LOW_PCT = (65.0, 30.0)  # f_RH: dry-air limit falls with drought tolerance ...
RH_HIGH_PCT = (95.0, 80.0)  # ... and xeric species dislike saturated air; 30 % outside costs everything
RH_SPAN_PCT = 30.0
SOLAR_NEED_MJ = (14.0, 6.0)  # f_L: daily global radiation a light-demanding (0) ... shade-tolerant (1) species needs
WIND_LIMIT_MS = 4.0  # f_WS: mean wind above 4 m/s (+2 for drought tolerant, -1.5 for crowns >= 20 m) ...
WIND_SPAN_MS = 4.0  # ... costs 25 % per m/s
# --- soil (eqs. 3-4) ---------------------------------------------------------------------------------
SFI_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)  # w1..w5 (SOM, pH, TN, TP, CEC): no ranking in the paper, so equal
SOIL_FLOOR = 0.3  # the site model's soil factor is 0.3 + 0.7 SFI: SFI is relative to the city, and the poorest
#                   soil of a city still grows plants (with care)
# --- heat island (eq. 5) ------------------------------------------------------------------------------
UHI_PREDICTORS = ("BD", "RD", "IS", "PD", "GC")
UHI_PREDICTOR_UNITS = ("1", "km km-2", "1", "1000 persons km-2", "1")
UHI_DEFAULT = (2.0, 0.02, 1.5, 0.1, 1.5)  # K per unit: a dense block (BD .4, RD 20, IS .6, PD 15) ~ +3.6 K,
#                                           a park (GC 1) -1.5 K: the usual range of measured urban heat islands
UHI_WINDOW_M = 500.0  # predictors are means over ~500 m around the cell (air mixes over a few blocks)
MIN_UHI_STATIONS = 3
LAPSE_K_PER_M = 0.0065
HEAT_PER_K = 0.12  # heat factor: each K of heat island costs a drought-intolerant species 12 % (tolerant: 0)
# --- light ------------------------------------------------------------------------------------------
SHADE_VOLUME_M = 15.0  # building volume per ground area (m) over the 3 x 3 neighbourhood that shades fully
# --- ground and carbon ---------------------------------------------------------------------------------
ROAD_WIDTH_M = 8.0  # road cover = road_density x 8 m: the length-weighted width of urban OSM roads
#                     (mostly residential 7 m and tertiary 9 m; readers.osm.ROAD_WIDTH_M); road_mask at
#                     100 m only says a road touches the cell
GREEN_NPP_G_C = 300.0  # existing green without an NPP map: a typical urban green NPP, g C m-2 yr-1
CO2_PER_C = 44.0 / 12.0
MIN_SUITABILITY = 0.2
URBAN_SHARE = 0.5  # a planning cell is urban land when half its urban-mask pixels are urban
# Life forms allowed per LCZ class: compact built-up (1-3) and heavy industry (10) have no room for crowns or
# bamboo groves, paved ground (15) no deep soil; water (17) takes nothing; unknown (0) and the rest take all.
_ALL = frozenset(LIFE_FORMS)
_LOW = frozenset({"shrub", "grass"})
LCZ_LIFE_FORMS = {0: _ALL, 1: _LOW, 2: _LOW, 3: _LOW, 4: _ALL, 5: _ALL, 6: _ALL, 7: _ALL, 8: _ALL, 9: _ALL,
                  10: _LOW, 11: _ALL, 12: _ALL, 13: _ALL, 14: _ALL, 15: _LOW, 16: _ALL, 17: frozenset()}
LCZ_WATER = 17


# --- rasters onto the planning grid (eq. 7) -------------------------------------------------------------------
def _overlap(src_lo: float, src_res: float, n_src: int, dst_lo: float, dst_res: float, n_dst: int):
    """Sparse (n_dst, n_src) matrix of the length each source pixel shares with each target cell (1-D)."""
    from scipy import sparse

    s0 = src_lo + src_res * np.arange(n_src)
    d0 = dst_lo + dst_res * np.arange(n_dst)
    # every source pixel meets at most ceil(src/dst) + 1 target cells: test those only
    first = np.floor((s0 - dst_lo) / dst_res).astype(int)
    rows, cols, vals = [], [], []
    for k in range(int(np.ceil(src_res / dst_res)) + 1):
        i = first + k
        ok = (i >= 0) & (i < n_dst)
        i, j = i[ok], np.flatnonzero(ok)
        length = np.minimum(d0[i] + dst_res, s0[j] + src_res) - np.maximum(d0[i], s0[j])
        keep = length > 1e-9
        rows.append(i[keep]), cols.append(j[keep]), vals.append(length[keep])
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n_dst, n_src))


def block_mean(values, src: Grid, dst: Grid) -> np.ndarray:
    """Area-weighted mean of ``values`` (..., h, w) on ``src`` over each cell of ``dst`` (same CRS):
    (..., H, W) float64; NaN pixels are left out, cells without any valid pixel are NaN."""
    if src.crs != dst.crs:
        raise ValueError(f"block_mean needs one CRS, got {src.crs} and {dst.crs}")
    values = np.asarray(values, np.float64)
    # columns run east from xmin, rows south from ymax: distances from the top edge keep both increasing
    wx = _overlap(src.xmin, src.res, src.width, dst.xmin, dst.res, dst.width)
    wy = _overlap(dst.ymax - src.ymax, src.res, src.height, 0.0, dst.res, dst.height)
    flat = values.reshape(-1, *src.shape)
    out = np.empty((len(flat), *dst.shape))
    for k, a in enumerate(flat):
        ok = np.isfinite(a)
        num = (wy @ (wx @ np.where(ok, a, 0.0).T).T)
        den = (wy @ (wx @ ok.T.astype(np.float64)).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(den > 0, num / den, np.nan)
    return out.reshape(*values.shape[:-2], *dst.shape)


def _read_raster(source, what: str) -> tuple[np.ndarray, Grid]:
    """(bands, h, w) float64 (NaN = nodata) and the grid of a GeoTIFF, a NetCDF or a DataArray."""
    import rasterio

    if isinstance(source, xr.DataArray):
        data = source.values.astype(np.float64)
        return data.reshape(-1, *data.shape[-2:]), grid_of(source)
    path = Path(source)
    if not path.is_file():
        raise InputError(path, f"{what}: file not found")
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        from affine import Affine

        try:
            with xr.open_dataset(path) as ds:
                name = "npp_annual" if "npp_annual" in ds else next(iter(ds.data_vars))
                var = ds[name].load()
                attrs = dict(ds.attrs)
        except (OSError, ValueError, StopIteration) as err:
            raise InputError(path, f"{what}: cannot be read as NetCDF ({type(err).__name__})") from None
        if "transform" in attrs and "crs" in attrs:  # the NPP stage's maps NetCDF (stages.npp.predict.make_maps)
            t, crs = Affine(*attrs["transform"]), str(attrs["crs"])
            epsg = int(crs.split(":")[1]) if crs.startswith("EPSG:") else 0
            grid = Grid(epsg, t.c, t.f, t.a, var.sizes["x"], var.sizes["y"], "" if epsg else crs)
        else:
            try:
                grid = grid_of(var)
            except Exception:  # noqa: BLE001 - no CRS or no x/y: the same user error
                raise InputError(path, f"{what}: variable {name} has no CRS or x/y coordinates") from None
        data = var.values.astype(np.float64)
        return data.reshape(-1, *data.shape[-2:]), grid
    try:
        with rasterio.open(path) as src:
            data = src.read().astype(np.float64)
            if src.nodata is not None and np.isfinite(src.nodata):
                data[data == src.nodata] = np.nan
            if src.crs is None:
                raise InputError(path, f"{what}: raster has no CRS")
            return data, grid_of_dataset(src)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(path, f"{what}: cannot be read as a raster ({err})") from None


def _codes_onto(source, plan: Grid, what: str) -> np.ndarray:
    """Class codes (0 = nodata) of a raster, or an (H, W) array on the planning grid, as the code covering
    most of each planning cell (exact overlaps; GDAL's mode in another CRS)."""
    if isinstance(source, np.ndarray):
        if source.shape != plan.shape:
            raise InputError(what, f"array of shape {source.shape} is not on the planning grid {plan.shape}")
        return np.nan_to_num(source.astype(np.float64))
    data, grid = _read_raster(source, what)
    band = data[0]
    if grid.crs != plan.crs:
        with _in_memory(np.nan_to_num(band), grid) as mem:
            return warp_to_grid(mem, plan, resampling="mode", src_nodata=0, dst_nodata=0)[0].astype(np.float64)
    codes = [int(c) for c in np.unique(band[np.isfinite(band)]) if c > 0]
    if not codes:
        return np.zeros(plan.shape)
    share = np.nan_to_num(block_mean(np.stack([np.where(np.isfinite(band), band == c, np.nan) for c in codes]),
                                     grid, plan))
    return np.where(share.max(axis=0) > 0, np.asarray(codes, np.float64)[np.argmax(share, axis=0)], 0.0)


@contextmanager
def _in_memory(band: np.ndarray, grid: Grid):
    """One band on ``grid`` as an open in-memory GeoTIFF (for GDAL warps into another CRS)."""
    from rasterio.io import MemoryFile

    with MemoryFile() as mem, mem.open(driver="GTiff", width=grid.width, height=grid.height, count=1,
                                       dtype="float32", crs=grid.crs, transform=grid.transform,
                                       nodata=float("nan")) as ds:
        ds.write(band.astype(np.float32), 1)
        yield ds


# --- eq. 8: Kalman filter and smoother for station series -----------------------------------------------
def kalman_variances(series) -> tuple[np.ndarray, np.ndarray]:
    """Process and observation variances (q, r) of a local-level model for each series (..., T).

    Method of moments on the day-to-day differences dz (NaN pairs skipped): for x_t = x_t-1 + w,
    z_t = x_t + v, var(dz) = q + 2r and cov(dz_t, dz_t-1) = -r. A positive lag-1 covariance (a smooth
    series) gives r at its floor; both are kept above 1e-6 var(dz) so the filter stays defined.
    """
    z = np.asarray(series, np.float64)
    d = np.diff(z, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # series with fewer than 3 values: defaults below
        d = d - np.nanmean(d, axis=-1, keepdims=True)
        g0 = np.nanmean(d * d, axis=-1)
        g1 = np.nanmean(d[..., 1:] * d[..., :-1], axis=-1)
    g0 = np.where(np.isfinite(g0) & (g0 > 0), g0, 1.0)
    g1 = np.where(np.isfinite(g1), g1, 0.0)
    floor = 1e-6 * g0
    r = np.clip(-g1, floor, g0 / 2)
    q = np.maximum(g0 - 2 * r, floor)
    return q, r


def kalman_smooth(series, q=None, r=None, *, smooth: bool = True) -> np.ndarray:
    """Eq. 8 with A = H = 1 and no control: x_t = x_t-1 + K_t (z_t - x_t-1), per series (..., T).

    Missing values (NaN) skip the update, so a gap is predicted through; ``smooth`` runs the
    Rauch-Tung-Striebel pass backwards (the filtered value of a day then also uses the days after it).
    ``q`` and ``r`` default to ``kalman_variances``. A series without any value stays NaN.
    """
    z = np.asarray(series, np.float64)
    shape = z.shape
    z = z.reshape(-1, shape[-1])
    n, steps = z.shape
    if q is None or r is None:
        q_est, r_est = kalman_variances(z)
        q = q_est if q is None else q
        r = r_est if r is None else r
    q = np.broadcast_to(np.asarray(q, np.float64).reshape(-1), (n,))
    r = np.broadcast_to(np.asarray(r, np.float64).reshape(-1), (n,))
    seen = np.isfinite(z)
    first = np.where(seen.any(axis=1), np.argmax(seen, axis=1), 0)
    x = np.where(seen.any(axis=1), z[np.arange(n), first], np.nan)  # prior: the first value ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = np.nan_to_num(np.nanvar(z, axis=1), nan=0.0) + r  # ... known no better than the series' spread
    x_pred, p_pred = np.empty_like(z), np.empty_like(z)
    x_filt, p_filt = np.empty_like(z), np.empty_like(z)
    for t in range(steps):
        if t:
            p = p + q  # A = 1: the level carries over, its uncertainty grows by q
        x_pred[:, t], p_pred[:, t] = x, p
        gain = np.where(seen[:, t], p / (p + r), 0.0)  # K_t (H = 1)
        x = x + gain * np.where(seen[:, t], z[:, t] - x, 0.0)
        p = (1 - gain) * p
        x_filt[:, t], p_filt[:, t] = x, p
    if not smooth:
        return x_filt.reshape(shape)
    out = x_filt.copy()
    for t in range(steps - 2, -1, -1):
        c = p_filt[:, t] / p_pred[:, t + 1]
        out[:, t] = x_filt[:, t] + c * (out[:, t + 1] - x_pred[:, t + 1])
    return out.reshape(shape)


def _strings(values) -> np.ndarray:
    """A fixed-width str array (numpy's StringDType, which Zarr and pandas hand out, cannot be cast directly)."""
    return np.array([str(v) for v in values], dtype=str)


def station_normals(series: xr.Dataset, *, southern: bool = False) -> pd.DataFrame:
    """Per-station normals of the Kalman-smoothed daily series (stations.zarr group ``series``).

    Columns: station_id, lon, lat, temp_c (mean), temp_min_c (mean daily minimum), temp_growing_c (mean of
    the growing months, GROWING_MONTHS), temp_coldest_c (mean of each year's lowest daily minimum),
    precip_mm (yearly total), rh_pct, solar_mj_m2 (daily mean), wind_ms.
    """
    dates = pd.DatetimeIndex(series["date"].values)
    smoothed = {}
    for var in STATION_VARIABLES:
        values = kalman_smooth(series[var].values)
        lo, hi = STATION_BOUNDS.get(var, (None, None))
        smoothed[var] = np.clip(values, lo, hi) if (lo, hi) != (None, None) else values
    growing = np.isin(dates.month, GROWING_MONTHS["south" if southern else "north"])
    years = dates.year.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a station without data stays NaN
        coldest = np.nanmean([np.nanmin(smoothed["temp_min_c"][:, years == y], axis=1) for y in np.unique(years)],
                             axis=0)
        out = pd.DataFrame({
            "station_id": _strings(series["station_id"].values),
            "lon": np.asarray(series["lon"].values, np.float64), "lat": np.asarray(series["lat"].values, np.float64),
            "temp_c": np.nanmean(smoothed["temp_c"], axis=1),
            "temp_min_c": np.nanmean(smoothed["temp_min_c"], axis=1),
            "temp_growing_c": np.nanmean(smoothed["temp_c"][:, growing], axis=1),
            "temp_coldest_c": coldest,
            "precip_mm": np.nanmean(smoothed["precip_mm"], axis=1) * 365.25,
            "rh_pct": np.nanmean(smoothed["rh_pct"], axis=1),
            "solar_mj_m2": np.nanmean(smoothed["solar_mj_m2"], axis=1),
            "wind_ms": np.nanmean(smoothed["wind_ms"], axis=1),
        })
    return out


# --- eq. 2: climate suitability -------------------------------------------------------------------------
def _col(species: pd.DataFrame, name: str) -> np.ndarray:
    return species[name].to_numpy(np.float64)[:, None, None]


def _between(tolerance: np.ndarray, pair: tuple[float, float]) -> np.ndarray:
    return pair[0] + (pair[1] - pair[0]) * tolerance


def climate_responses(normals: Mapping[str, np.ndarray], species: pd.DataFrame) -> dict[str, np.ndarray]:
    """The five responses of eq. 2, each (S, H, W) in [0, 1], from the normals on the grid (H, W):
    temp_growing_c, temp_coldest_c, precip_mm (yearly), rh_pct, solar_mj_m2, wind_ms."""
    n = {k: np.asarray(v, np.float64)[None] for k, v in normals.items()}
    dt, st = _col(species, "drought_tolerance"), _col(species, "shade_tolerance")
    optimum = np.exp(-0.5 * ((n["temp_growing_c"] - _col(species, "t_opt_c")) / SIGMA_T_K) ** 2)
    frost = np.clip((n["temp_coldest_c"] - _col(species, "t_min_c") + COLD_MARGIN_K) / (2 * COLD_MARGIN_K), 0, 1)
    precip = np.clip(n["precip_mm"] / _between(dt, PRECIP_NEED_MM), 0, 1)
    rh = n["rh_pct"]
    rh_off = np.maximum(0, _between(dt, RH_LOW_PCT) - rh) + np.maximum(0, rh - _between(dt, RH_HIGH_PCT))
    wind_limit = WIND_LIMIT_MS + 2.0 * dt - 1.5 * np.minimum(_col(species, "height_m") / 20.0, 1.0)
    return {
        "temperature": optimum * frost,
        "precipitation": precip,
        "humidity": np.clip(1 - rh_off / RH_SPAN_PCT, 0, 1),
        "light": np.clip(n["solar_mj_m2"] / _between(st, SOLAR_NEED_MJ), 0, 1),
        "wind": np.clip(1 - np.maximum(0, n["wind_ms"] - wind_limit) / WIND_SPAN_MS, 0, 1),
    }


def climate_index(normals: Mapping[str, np.ndarray], species: pd.DataFrame) -> np.ndarray:
    """CLI (eq. 2) per species (S, H, W): the mean of the five responses (a mean keeps it in [0, 1])."""
    return np.mean(list(climate_responses(normals, species).values()), axis=0)


# --- eqs. 3-4: soil fertility ---------------------------------------------------------------------------
def f_ph(ph, ph_opt, ph_range) -> np.ndarray:
    """Eq. 4, 1 - |pH - pH_opt| / pH_range, clipped to [0, 1] (a zero range: 1 at the optimum, else 0)."""
    ph, ph_opt, ph_range = (np.asarray(a, np.float64) for a in (ph, ph_opt, ph_range))
    off = np.abs(ph - ph_opt)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(ph_range > 0, 1 - off / np.where(ph_range > 0, ph_range, 1.0), (off == 0).astype(float))
    return np.clip(value, 0.0, 1.0)


def minmax(x) -> np.ndarray:
    """Eq. 9 over the city (finite values); a constant layer gives 0.5 (no cell is better than another)."""
    x = np.asarray(x, np.float64)
    lo, hi = np.nanmin(x), np.nanmax(x)
    return np.full_like(x, 0.5) if hi - lo <= 1e-12 else (x - lo) / (hi - lo)


def soil_fertility(soil: Mapping[str, np.ndarray], ph_opt, ph_range, weights=SFI_WEIGHTS) -> np.ndarray:
    """SFI (eq. 3) per species (S, H, W): w1 SOM' + w2 f_pH + w3 TN' + w4 TP' + w5 CEC', X' = eq. 9 over the city."""
    w = np.asarray(weights, np.float64)
    ph_opt = np.asarray(ph_opt, np.float64).reshape(-1, 1, 1)
    ph_range = np.asarray(ph_range, np.float64).reshape(-1, 1, 1)
    fixed = (w[0] * minmax(soil["som_g_kg"]) + w[2] * minmax(soil["tn_g_kg"]) + w[3] * minmax(soil["tp_g_kg"])
             + w[4] * minmax(soil["cec_cmol_kg"]))
    return fixed[None] + w[1] * f_ph(np.asarray(soil["ph"], np.float64)[None], ph_opt, ph_range)


# --- eq. 5: heat island -------------------------------------------------------------------------------
def neighbourhood_mean(a, size: int) -> np.ndarray:
    """Mean over the ``size`` x ``size`` window around each cell, over the part of it inside the grid."""
    from scipy import ndimage

    a = np.asarray(a, np.float64)
    ok = np.isfinite(a)
    num = ndimage.uniform_filter(np.where(ok, a, 0.0), size, mode="constant")
    den = ndimage.uniform_filter(ok.astype(np.float64), size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-9, num / den, np.nan)


def uhi_predictors(building_fraction, road_density, impervious, population_density, green_fraction,
                   res: float) -> np.ndarray:
    """(5, H, W) predictors of eq. 5 (BD, RD, IS, PD in 1000 persons km-2, GC) as ~UHI_WINDOW_M means."""
    size = max(1, round(UHI_WINDOW_M / res) | 1)  # odd, so the window is centred on the cell
    layers = [building_fraction, road_density, impervious, np.asarray(population_density) / 1000.0, green_fraction]
    return np.stack([neighbourhood_mean(a, size) for a in layers])


UHI_SIGNS = np.array([1.0, 1.0, 1.0, 1.0, -1.0])  # eq. 5 subtracts lambda_5 GC; every lambda is >= 0


def fit_uhi(predictors, target) -> tuple[np.ndarray, float]:
    """lambda_1..5 of eq. 5 by non-negative least squares (no intercept, as in eq. 5) and the fit's R2.

    ``predictors`` (n, 5) in UHI_PREDICTORS order (GC positive; its minus sign is applied here).
    """
    from scipy.optimize import nnls

    a = np.asarray(predictors, np.float64) * UHI_SIGNS
    y = np.asarray(target, np.float64)
    coef, _ = nnls(a, y)
    residual = y - a @ coef
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - (residual ** 2).sum() / total) if total > 0 else float("nan")
    return coef, r2


def uhi_field(predictors, coefficients) -> np.ndarray:
    """Eq. 5 on the grid: predictors (5, H, W) -> UHI (H, W) in K."""
    return np.tensordot(np.asarray(coefficients, np.float64) * UHI_SIGNS, predictors, axes=1)


def uhi_targets(tmin_mean, elevation_m, urban) -> np.ndarray:
    """UHI of each urban station (NaN for the others): its mean daily minimum temperature minus the rural
    stations' mean, each rural value moved to the urban station's elevation with LAPSE_K_PER_M."""
    tmin, elev, urban = (np.asarray(a) for a in (tmin_mean, elevation_m, urban))
    rural = ~urban & np.isfinite(tmin)
    if not rural.any():
        return np.full(tmin.shape, np.nan)
    ref = tmin[rural].mean() - LAPSE_K_PER_M * (elev - elev[rural].mean())
    return np.where(urban, tmin - ref, np.nan)


# --- station tables ---------------------------------------------------------------------------------
def _stations_table(city: Mapping, store: Path) -> Path:
    """The city's station table (what its stations.zarr was made from); the store when it cannot be found."""
    try:
        found = align.input_paths(city, "stations")
    except (InputError, KeyError):
        return store
    for path in found:
        path = Path(path)
        hits = sorted(path.glob("stations.csv*")) if path.is_dir() else [path] if "station" in path.name else []
        if hits:
            return hits[0]
    return store


def _elevations(series: xr.Dataset, table: Path, ids: np.ndarray) -> tuple[np.ndarray, bool]:
    """Station elevations (m) and whether they are known (else zeros: no lapse-rate correction)."""
    if "elevation_m" in series.coords:
        return np.asarray(series["elevation_m"].values, np.float64), True
    if table.is_file() and table.suffix in (".csv", ".gz"):
        df = pd.read_csv(table, dtype=str)
        df.columns = [str(c).strip().lower() for c in df.columns]
        if "elevation_m" in df.columns:
            elev = pd.to_numeric(df.set_index(df["station_id"].str.strip())["elevation_m"], errors="coerce")
            values = elev.reindex(ids).to_numpy(np.float64)
            if np.isfinite(values).all():
                return values, True
    return np.zeros(len(ids)), False


def _cells(lon, lat, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and inside-the-grid flag of lon/lat points."""
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(np.asarray(lon), np.asarray(lat))
    col = np.floor((np.asarray(x) - grid.xmin) / grid.res).astype(int)
    row = np.floor((grid.ymax - np.asarray(y)) / grid.res).astype(int)
    inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    return np.clip(row, 0, grid.height - 1), np.clip(col, 0, grid.width - 1), inside


def _in_region(lon, lat, grid: Grid, buffer_m: float) -> np.ndarray:
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(np.asarray(lon), np.asarray(lat))
    x0, y0, x1, y1 = grid.bounds
    return (x >= x0 - buffer_m) & (x <= x1 + buffer_m) & (y >= y0 - buffer_m) & (y <= y1 + buffer_m)


# --- sources on the planning grid ---------------------------------------------------------------------------
def _load(root: Path, store: str, group: str) -> tuple[xr.Dataset, Path]:
    path = root / f"{store}.zarr"
    return align.open_aligned(path, group), path


def _check_grid(ds: xr.Dataset, plan: Grid, path: Path) -> None:
    if (ds.sizes.get("y"), ds.sizes.get("x")) != plan.shape:
        raise InputError(path, f"planning group is {ds.sizes.get('y')} x {ds.sizes.get('x')} cells, the city's "
                               f"planning grid {plan.shape[0]} x {plan.shape[1]}: aligned for another city?")


def _vhr_means(root: Path, plan: Grid) -> dict[str, np.ndarray]:
    """GF-2 band means and the mean of the pixels' NDVI (eq. 1) per planning cell."""
    ds, _ = _load(root, "gf2", "vhr")
    refl = ds["reflectance"]
    grid = grid_of(refl)
    # one read of the store: its chunks hold every band, so a read per band would decompress it four times
    bands = dict(zip(map(str, refl["band"].values), refl.transpose("band", ...).values.astype(np.float64)))
    ndvi = npp_ndvi(bands["nir"], bands["red"])
    out = {f"gf2_{b}": block_mean(v, grid, plan) for b, v in bands.items()}
    out["gf2_ndvi"] = block_mean(ndvi, grid, plan)
    return out


def _landsat_ndvi(root: Path, plan: Grid) -> np.ndarray:
    """Median NDVI of the usable summer acquisitions (all usable ones where summer has none), cell means."""
    ds, _ = _load(root, "landsat", "base")
    grid = grid_of(ds["usable"])
    refl = ds["reflectance"]
    red, nir = refl.sel(band=["red", "nir"]).transpose("band", ...).values.astype(np.float64)  # one read
    ndvi = np.where(ds["usable"].values.astype(bool), npp_ndvi(nir, red), np.nan)
    summer = np.asarray(ds["season"].values).astype(str) == "summer"  # hemisphere-aware (align)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels never usable stay NaN
        med = np.nanmedian(ndvi[summer], axis=0) if summer.any() else np.full(grid.shape, np.nan)
        med = np.where(np.isfinite(med), med, np.nanmedian(ndvi, axis=0))
    return block_mean(med, grid, plan)


def _lcz_codes(root: Path, plan: Grid, lcz_map) -> tuple[np.ndarray, str]:
    if lcz_map is None:
        ds, _ = _load(root, "lcz_labels", "planning")
        lcz = ds["lcz"].isel(year=-1)
        return np.nan_to_num(lcz.values.astype(np.float64)), f"lcz_labels year {int(lcz['year'])}"
    codes = _codes_onto(lcz_map, plan, "LCZ map")
    codes = np.where((codes >= 0) & (codes <= LCZ_WATER), np.nan_to_num(codes), 0)
    return np.round(codes), str(lcz_map) if not isinstance(lcz_map, np.ndarray) else "array"


def _urban(plan: Grid, urban_mask) -> np.ndarray | None:
    """Urban land (True), other land (False) per planning cell; None without a mask. Cells without a
    prediction count as urban (the LCZ limits stay)."""
    if urban_mask is None:
        return None
    if isinstance(urban_mask, np.ndarray):
        if urban_mask.shape != plan.shape:
            raise InputError("urban mask", f"array of shape {urban_mask.shape} is not on the planning grid {plan.shape}")
        return urban_mask.astype(bool)
    data, grid = _read_raster(urban_mask, "urban-land mask")
    band = np.where(data[0] > 1, np.nan, data[0])  # codes above 1 (the urban stage's IGNORE) are no prediction
    return ~(_to_plan(band, grid, plan) < URBAN_SHARE)


def _to_plan(band: np.ndarray, grid: Grid, plan: Grid) -> np.ndarray:
    """Area-weighted cell means of one band: exact overlaps in the planning CRS, GDAL's average otherwise."""
    if grid.crs == plan.crs:
        return block_mean(band, grid, plan)
    with _in_memory(band, grid) as mem:
        return warp_to_grid(mem, plan, resampling="average")[0].astype(np.float64)


def _baseline_co2(plan: Grid, npp_maps, green_fraction: np.ndarray) -> tuple[np.ndarray, str]:
    """CO2 uptake of the existing vegetation (kg CO2 m-2 yr-1): annual NPP (mean of the map's years, negative
    NPP as 0) x 44/12 / 1000; without a map, the green share x GREEN_NPP_G_C."""
    if npp_maps is None:
        return green_fraction * GREEN_NPP_G_C * CO2_PER_C / 1000.0, f"green_fraction x {GREEN_NPP_G_C:g} g C m-2 yr-1"
    data, grid = _read_raster(npp_maps, "NPP map")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        npp = np.maximum(np.nanmean(data, axis=0), 0.0)
    cell = _to_plan(npp, grid, plan)
    if np.isnan(cell).all():
        raise InputError(npp_maps, "NPP map: no valid pixel over the planning grid")
    return np.nan_to_num(cell, nan=0.0) * CO2_PER_C / 1000.0, str(npp_maps)


def _fill(features: dict[str, np.ndarray]) -> list[str]:
    """NaN cells (no image over an edge cell) take the feature's city median; returns the features filled."""
    filled = []
    for name, a in features.items():
        bad = ~np.isfinite(a)
        if bad.any():
            a[bad] = np.nanmedian(a) if (~bad).any() else 0.0
            filled.append(name)
    return filled


# --- the site ----------------------------------------------------------------------------------------
def life_form_allowed(lcz, life_forms, urban=None) -> np.ndarray:
    """(S, H, W) bool: LCZ_LIFE_FORMS of each cell's class; on land an urban mask calls non-urban every life
    form is allowed (the compact and industrial limits are about built-up land), water (LCZ 17) excepted."""
    lcz = np.asarray(lcz).astype(int)
    life_forms = [str(f).strip().lower() for f in life_forms]
    out = np.zeros((len(life_forms), *lcz.shape), bool)
    for code, allowed in LCZ_LIFE_FORMS.items():
        at = lcz == code
        for s, form in enumerate(life_forms):
            out[s] |= at & (form in allowed)
    unknown = ~np.isin(lcz, list(LCZ_LIFE_FORMS))
    out |= unknown[None]
    if urban is not None:
        out |= (~np.asarray(urban, bool) & (lcz != LCZ_WATER))[None]
    return out


def carbon_potential(species: pd.DataFrame) -> np.ndarray:
    """CP_i (eq. 6) = GPP_i (1 - R_i) S_i D_i, kg C m-2 yr-1."""
    return (species["gpp_kgc_m2_yr"].to_numpy(np.float64) * (1 - species["respiration_ratio"].to_numpy(np.float64))
            * species["survival_rate"].to_numpy(np.float64) * species["growth_stage_coef"].to_numpy(np.float64))


def choices() -> dict:
    """The constants of the site model (recorded in the dataset's attrs)."""
    return {
        "sfi_weights": list(SFI_WEIGHTS), "soil_floor": SOIL_FLOOR, "sigma_t_k": SIGMA_T_K,
        "cold_margin_k": COLD_MARGIN_K, "precip_need_mm": list(PRECIP_NEED_MM), "rh_low_pct": list(RH_LOW_PCT),
        "rh_high_pct": list(RH_HIGH_PCT), "solar_need_mj": list(SOLAR_NEED_MJ), "wind_limit_ms": WIND_LIMIT_MS,
        "uhi_default": list(UHI_DEFAULT), "uhi_window_m": UHI_WINDOW_M, "lapse_k_per_m": LAPSE_K_PER_M,
        "heat_per_k": HEAT_PER_K, "shade_volume_m": SHADE_VOLUME_M, "road_width_m": ROAD_WIDTH_M,
        "green_npp_g_c": GREEN_NPP_G_C, "min_suitability": MIN_SUITABILITY,
        "lcz_life_forms": {str(k): sorted(v) for k, v in LCZ_LIFE_FORMS.items()},
        "kalman": "local level, A = H = 1, no control; q, r from moments of daily differences; RTS smoother",
        "cli": "mean of the five responses", "rule_suitability": "CLI x SFI",
        "suitability": "CLI x (soil_floor + (1 - soil_floor) SFI) x heat x light",
    }


def build_site(aligned_root, species_csv, city: Mapping, *, lcz_map=None, npp_maps=None,
               urban_mask=None) -> xr.Dataset:
    """The planning-grid site dataset of ``city`` (module docstring) from its aligned sources.

    ``lcz_map``: an LCZ GeoTIFF (the LCZ stage's lcz.tif) or an (H, W) array of codes; default the last year
    of lcz_labels.zarr. ``npp_maps``: annual NPP (g C m-2 yr-1) as a GeoTIFF (npp_annual.tif, one band per
    year), the NPP stage's NetCDF or a DataArray. ``urban_mask``: a 0/1 urban-land GeoTIFF (urban stage's
    mask.tif) or an (H, W) bool array.
    """
    root = Path(aligned_root)
    species = tables.read_species(species_csv)  # a bad table fails before any raster is read
    plan = align.grids_of(city).planning
    cell_m2 = plan.res * plan.res
    buffer_m = float(city["region_buffer_km"]) * 1000.0

    osm, osm_path = _load(root, "osm", "planning")
    osm = osm.load()
    _check_grid(osm, plan, osm_path)
    bf = np.nan_to_num(osm["building_fraction"].values.astype(np.float64))
    height = np.nan_to_num(osm["building_height"].values.astype(np.float64))  # NaN: no building
    road_density = np.nan_to_num(osm["road_density"].values.astype(np.float64))
    road_cover = np.clip(road_density * ROAD_WIDTH_M / 1000.0, 0, 1) * (osm["road_mask"].values > 0)
    green = np.nan_to_num(osm["green_fraction"].values.astype(np.float64))
    water = osm["water_mask"].values > 0
    impervious = np.clip(bf + road_cover, 0, 1)
    open_share = np.clip(1 - bf - road_cover - green, 0, 1)
    plantable = np.where(water, 0.0, open_share * cell_m2)
    if not (plantable > 0).any():
        raise InputError(osm_path, "no plantable ground: every planning cell is covered by buildings, roads, "
                                   "water or existing green")

    pop, pop_path = _load(root, "population", "planning")
    _check_grid(pop, plan, pop_path)
    pop_density = np.nan_to_num(pop["population"].values.astype(np.float64)) / (cell_m2 / 1e6)
    soil_ds, soil_path = _load(root, "soil", "planning")
    _check_grid(soil_ds, plan, soil_path)
    soil = {v: soil_ds[v].values.astype(np.float64) for v in SOIL_VARIABLES}

    # stations: smoothed series (eq. 8) -> normals -> grid; UHI fit (eq. 5)
    series, st_path = _load(root, "stations", "series")
    series = series.load()
    table = _stations_table(city, st_path)
    normals = station_normals(series, southern=align.southern(city))
    normals.attrs.update(source=str(table), kind="station")
    columns = ["temp_c", "temp_growing_c", "temp_coldest_c", "precip_mm", "rh_pct", "solar_mj_m2", "wind_ms"]
    grid_normals = tables.interpolate_points(normals, columns, plan, buffer_m=buffer_m, where=table)
    clim = {c: grid_normals[c].values.astype(np.float64) for c in columns}

    predictors = uhi_predictors(bf, road_density, impervious, pop_density, green, plan.res)
    in_region = _in_region(normals["lon"], normals["lat"], plan, buffer_m) & np.isfinite(normals["temp_min_c"])
    row, col, inside = _cells(normals["lon"], normals["lat"], plan)
    urban_st = inside & in_region
    elevation, have_elev = _elevations(series, table, normals["station_id"].to_numpy())
    target = uhi_targets(np.where(in_region, normals["temp_min_c"], np.nan), elevation, urban_st)
    fit_rows = urban_st & np.isfinite(target)
    if fit_rows.sum() >= MIN_UHI_STATIONS:
        coef, r2 = fit_uhi(predictors[:, row[fit_rows], col[fit_rows]].T, target[fit_rows])
        how = "nnls"
    else:
        coef, r2, how = np.asarray(UHI_DEFAULT, np.float64), float("nan"), "default"
        rural = int((in_region & ~inside).sum())
        warnings.warn(f"{table}: {int(urban_st.sum())} station(s) inside the planning grid and {rural} rural one(s) "
                      f"outside it; fitting eq. 5 needs {MIN_UHI_STATIONS} and 1, so the heat island uses the default "
                      f"coefficients {list(UHI_DEFAULT)}", stacklevel=2)
    uhi = uhi_field(predictors, coef)

    # site factors
    cli = climate_index(clim, species)
    sfi = soil_fertility(soil, species["ph_opt"], species["ph_range"])
    dt, st = _col(species, "drought_tolerance"), _col(species, "shade_tolerance")
    heat = np.clip(1 - HEAT_PER_K * np.maximum(uhi, 0)[None] * (1 - dt), 0, 1)
    shade = np.clip(neighbourhood_mean(bf * height, 3) / SHADE_VOLUME_M, 0, 1)
    light = 1 - shade[None] * (1 - st)
    suitability = np.clip(cli * (SOIL_FLOOR + (1 - SOIL_FLOOR) * sfi) * heat * light, 0, 1)
    rule = np.clip(cli * sfi, 0, 1)

    lcz, lcz_source = _lcz_codes(root, plan, lcz_map)
    urban = _urban(plan, urban_mask)
    allowed = life_form_allowed(lcz, species["life_form"], urban)
    compatible = allowed & (suitability >= MIN_SUITABILITY) & (plantable > 0)[None]
    baseline, npp_source = _baseline_co2(plan, npp_maps, green)

    feats = {**_vhr_means(root, plan), "landsat_ndvi": _landsat_ndvi(root, plan),
             "building_fraction": bf, "building_height": height, "road_density": road_density,
             "water": water.astype(np.float64), "green_fraction": green, "impervious": impervious,
             "population_density": pop_density, "uhi": uhi,
             "temp_c": clim["temp_c"], "precip_mm": clim["precip_mm"], "rh_pct": clim["rh_pct"],
             "solar_mj_m2": clim["solar_mj_m2"], "wind_ms": clim["wind_ms"],
             "som": soil["som_g_kg"], "ph": soil["ph"], "tn": soil["tn_g_kg"], "tp": soil["tp_g_kg"],
             "cec": soil["cec_cmol_kg"], "sfi": sfi.mean(axis=0), "lcz": lcz, "baseline_co2": baseline}
    feats = {k: np.array(feats[k], np.float64) for k in FEATURES}
    filled = _fill(feats)

    ids = _strings(species["species_id"])
    x, y = plan.xy()
    f32 = np.float32
    grid3 = ("species", "y", "x")
    data = {
        "features": (("feature", "y", "x"), np.stack([feats[k] for k in FEATURES]).astype(f32),
                     {"units": json.dumps(FEATURE_UNITS)}),
        "plantable_m2": (("y", "x"), plantable.astype(f32), {"units": "m2"}),
        "compatible": (grid3, compatible),
        "suitability": (grid3, suitability.astype(f32), {"units": "1"}),
        "rule_suitability": (grid3, rule.astype(f32), {"units": "1"}),
        "cli": (grid3, cli.astype(f32), {"units": "1"}),
        "sfi": (grid3, sfi.astype(f32), {"units": "1"}),
        "uhi": (("y", "x"), uhi.astype(f32), {"units": "K"}),
        "cp": (("species",), carbon_potential(species).astype(f32), {"units": "kg C m-2 yr-1"}),
    }
    for c in tables.SPECIES_COLUMNS:
        if c == "species_id":
            continue
        values = species[c].to_numpy()
        data[c] = (("species",), _strings(values) if c in tables.SPECIES_TEXT else values.astype(f32))
    attrs = {
        "format": SITE_FORMAT, "city": str(city["name"]), "cell_m2": float(cell_m2),
        "uhi_fit": how, "uhi_coefficients": [float(c) for c in coef], "uhi_predictors": ",".join(UHI_PREDICTORS),
        "uhi_predictor_units": ",".join(UHI_PREDICTOR_UNITS), "uhi_r2": r2,
        "uhi_stations": int(fit_rows.sum()), "uhi_lapse_correction": "yes" if have_elev else "no (no elevations)",
        "stations_used": int(in_region.sum()), "stations_table": table.name,  # the name only: a path would differ between run folders
        "lcz_source": lcz_source, "npp_source": npp_source,
        "urban_mask": "used" if urban is not None else "not used",
        # which of the city's other products went in ("yes"/"no": NetCDF attributes have no booleans)
        "lcz_used": "yes" if lcz_map is not None else "no", "npp_used": "yes" if npp_maps is not None else "no",
        "urban_used": "yes" if urban is not None else "no",
        "filled_features": ",".join(filled), "choices": json.dumps(choices()),
    }
    ds = xr.Dataset(data, coords={"species": ids, "feature": list(FEATURES), "y": y, "x": x}, attrs=attrs)
    return ds.rio.write_crs(plan.crs).rio.write_transform(plan.transform)


def write_site(ds: xr.Dataset, path) -> None:
    """The site as NetCDF at ``path`` (written to a temporary file, renamed when complete)."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")


def read_site(path) -> xr.Dataset:
    """A site written by ``write_site``, loaded in memory."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "site file not found")
    try:
        with xr.open_dataset(path, engine="netcdf4", decode_coords="all") as ds:
            ds = ds.load()
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as NetCDF ({type(err).__name__})") from None
    if ds.attrs.get("format") != SITE_FORMAT:
        raise InputError(path, f"not a vegplan site file (format {ds.attrs.get('format')!r}, expected {SITE_FORMAT})")
    ds["compatible"] = ds["compatible"].astype(bool)
    return ds


def summary(ds: xr.Dataset) -> dict:
    """A few numbers that say what a site looks like (plantable share, suitability per life form, UHI fit)."""
    plantable = ds["plantable_m2"].values
    out = {"cells": int(plantable.size), "plantable_cells": float((plantable > 0).mean()),
           "plantable_share_of_area": float(plantable.sum() / (plantable.size * ds.attrs["cell_m2"])),
           "compatible_pairs": float(ds["compatible"].values.mean())}
    forms = ds["life_form"].values.astype(str)
    suit = ds["suitability"].values
    out["mean_suitability"] = {f: round(float(suit[forms == f].mean()), 3) for f in LIFE_FORMS if (forms == f).any()}
    out["mean_rule_suitability"] = {f: round(float(ds["rule_suitability"].values[forms == f].mean()), 3)
                                    for f in LIFE_FORMS if (forms == f).any()}
    out["uhi"] = {"fit": ds.attrs["uhi_fit"], "coefficients": dict(zip(UHI_PREDICTORS, np.round(
        np.asarray(ds.attrs["uhi_coefficients"], float), 4).tolist())), "r2": float(ds.attrs["uhi_r2"]),
        "range_k": [round(float(ds["uhi"].min()), 2), round(float(ds["uhi"].max()), 2)]}
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="YAML")
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city>")
    p.add_argument("--lcz", metavar="TIF", help="the city's LCZ map (else the LCZ labels, when aligned)")
    p.add_argument("--npp", metavar="NC", help="the NPP stage's maps.nc (the current carbon baseline)")
    p.add_argument("--urban", metavar="TIF", help="the urban-land mask")
    p.add_argument("--out", required=True, metavar="NC")


def main(args: argparse.Namespace) -> int:
    from ...config import load_city

    city = load_city(args.city)
    site = build_site(args.aligned, align.input_paths(city, "species")[0], city, lcz_map=args.lcz, npp_maps=args.npp,
                      urban_mask=args.urban)
    write_site(site, args.out)
    plantable = float((site["plantable_m2"] > 0).mean())
    print(f"vegplan site: {site.sizes['y']} x {site.sizes['x']} cells, {plantable:.0%} plantable, "
          f"{site.sizes['species']} species -> {args.out}")
    return 0
