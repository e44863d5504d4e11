"""Writers (and the table generators) for the demo city's non-image inputs.

PAR NetCDF, station CSVs, soil samples, species attributes, population GeoTIFF and the MOD17-like
NPP reference GeoTIFFs. Every writer is atomic (temporary name, then rename) and byte-identical for
identical input: no wall-clock history attributes, gzip with mtime 0, no TIFF date tags.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import math
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from ..atomic import atomic_path
from ..errors import InputError
from ..readers.tables import HOURLY_COLUMNS, SOIL_COLUMNS, SPECIES_COLUMNS, STATION_COLUMNS

# --- MODIS sinusoidal grid (MODIS Land tile grid: 36 x 18 tiles of 10 x 10 degrees at the equator) ---
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_R = 6371007.181
MODIS_TILE_M = MODIS_R * math.pi / 18  # 1,111,950.52 m: one tile is 10 degrees of the sphere's equator
MODIS_500M = MODIS_TILE_M / 2400  # 463.3127 m: 2400 pixels per tile at "500 m"
MODIS_X0, MODIS_Y0 = -MODIS_R * math.pi, MODIS_R * math.pi / 2  # upper-left corner of tile h00v00

# MOD17A2H PsnNet_500m encoding (MOD17 User's Guide; also the LP DAAC / Earth Engine band tables)
PSN_SCALE = 0.0001  # kg C m-2 per 8-day composite per count
PSN_FILL = 32767
PSN_VALID = (-30000, 30000)

POP_NODATA = -1.0
PAR_FILL = np.float32(-9999.0)

BuiltFraction = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (lon, lat) -> built-up share 0..1


# --- small shared helpers ----------------------------------------------------------------------------
def _require_columns(df: pd.DataFrame, columns: list[str], where) -> None:
    if missing := [c for c in columns if c not in df.columns]:
        raise InputError(where, f"missing columns {missing}")


def _write_text(path: Path, text: str, *, gz: bool = False) -> None:
    data = text.encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            if gz:  # filename="" keeps the temporary name out of the header; mtime=0 keeps the clock out
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as f:
                    f.write(data)
            else:
                raw.write(data)


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write_geotiff(path: Path, data: np.ndarray, *, transform: Affine, crs, nodata, tags: dict | None = None,
                  band_tags: dict | None = None, scale: float | None = None, units: str | None = None,
                  description: str | None = None, colormap: dict | None = None, tiled: bool | None = None) -> Path:
    """Single-band deflate GeoTIFF of a raw synthetic input, tiled 256 x 256 when ``tiled`` (default:
    when either side exceeds 256 px), written atomically; GDAL adds no date tag, so equal input gives
    equal bytes."""
    height, width = data.shape
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=data.dtype.name, crs=crs,
                   transform=transform, nodata=nodata, compress="deflate",
                   predictor=3 if data.dtype.kind == "f" else 2)
    if tiled or (tiled is None and max(height, width) > 256):
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(data, 1)
            ds.update_tags(**{k: str(v) for k, v in (tags or {}).items()})
            if colormap:
                ds.write_colormap(1, colormap)
            if band_tags:
                ds.update_tags(1, **{k: str(v) for k, v in band_tags.items()})
            if scale is not None:
                ds.scales = (scale,)
                ds.offsets = (0.0,)
            if units is not None:
                ds.units = (units,)
            if description is not None:
                ds.set_band_description(1, description)
    return Path(path)


# --- PAR NetCDF --------------------------------------------------------------------------------------
def write_par_netcdf(path, da: xr.DataArray) -> Path:
    """CF-1.8 NetCDF4 of daily PAR (time, lat, lon) in MJ m-2 d-1, as made by climate.par_field.

    Written with the netCDF4 engine: netCDF-C switches off HDF5's object time stamps and writes no
    history, so identical input gives identical bytes (its _NCProperties attribute records only
    library versions).
    """
    path = Path(path)
    if tuple(da.dims) != ("time", "lat", "lon"):
        raise InputError(path, f"PAR array must have dims (time, lat, lon), not {tuple(da.dims)}")
    if not np.issubdtype(da["time"].dtype, np.datetime64):
        raise InputError(path, "PAR time coordinate must be datetime64")
    time = pd.DatetimeIndex(da["time"].values)
    lat, lon = da["lat"].values.astype("f8"), da["lon"].values.astype("f8")
    values = np.asarray(da.values, dtype="f4")
    bounds = np.stack([time.to_numpy(), (time + pd.Timedelta(days=1)).to_numpy()], axis=1)

    ds = xr.Dataset(
        {
            "par": (("time", "lat", "lon"), values, {
                "long_name": "daily incident photosynthetically active radiation (400-700 nm)",
                "units": "MJ m-2 d-1",
                # A daily total per day is the daily-mean flux: CF's flux name (canonical W m-2) fits,
                # and MJ m-2 d-1 converts to W m-2 under UDUNITS (1 MJ m-2 d-1 = 11.574 W m-2).
                "standard_name": "surface_downwelling_photosynthetic_radiative_flux_in_air",
                "cell_methods": "time: mean",
                "grid_mapping": "crs",
            }),
            "time_bnds": (("time", "nv"), bounds),
            "crs": ((), np.int32(0), {
                "grid_mapping_name": "latitude_longitude",
                "longitude_of_prime_meridian": 0.0,
                "semi_major_axis": 6378137.0,
                "inverse_flattening": 298.257223563,
                "crs_wkt": CRS.from_epsg(4326).to_wkt(),
            }),
        },
        coords={
            "time": ("time", time.to_numpy(), {"standard_name": "time", "long_name": "time", "axis": "T",
                                               "bounds": "time_bnds"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "long_name": "latitude",
                                 "units": "degrees_north", "axis": "Y"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "long_name": "longitude",
                                 "units": "degrees_east", "axis": "X"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "Daily photosynthetically active radiation, 0.05 degree grid",
            "source": "urbaneo synthetic demo city",
            "comment": "PAR = 0.48 x shortwave; shortwave from extraterrestrial radiation (FAO-56) and an "
                       "Angstrom-Prescott transmissivity driven by synthetic cloudiness",
        },
    )
    time_units = {"units": "days since 1970-01-01", "calendar": "standard", "dtype": "int32"}
    encoding = {
        "par": {"dtype": "float32", "_FillValue": PAR_FILL, "zlib": True, "complevel": 4, "shuffle": True,
                "chunksizes": (min(len(time), 32), len(lat), len(lon))},
        "time": time_units,
        "time_bnds": {**time_units, "_FillValue": None},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return path


# --- stations ----------------------------------------------------------------------------------------


def write_stations(directory, stations: pd.DataFrame, hourly: pd.DataFrame) -> tuple[Path, Path]:
    """``stations.csv`` and ``hourly.csv.gz`` (time as ISO-8601 UTC, ``...Z``) in ``directory``."""
    directory = Path(directory)
    _require_columns(stations, STATION_COLUMNS, directory / "stations.csv")
    _require_columns(hourly, HOURLY_COLUMNS, directory / "hourly.csv.gz")
    st = stations[STATION_COLUMNS].copy()
    if st["station_id"].duplicated().any():
        raise InputError(directory / "stations.csv", "duplicate station_id")
    if unknown := set(hourly["station_id"]) - set(st["station_id"]):
        raise InputError(directory / "hourly.csv.gz", f"unknown station ids {sorted(unknown)[:5]}")
    st = st.round({"lon": 5, "lat": 5, "elevation_m": 1})

    hr = hourly[HOURLY_COLUMNS].copy()
    time = pd.DatetimeIndex(hr["time"])
    time = time.tz_localize("UTC") if time.tz is None else time.tz_convert("UTC")
    hr["time"] = np.char.add(np.datetime_as_string(time.tz_localize(None).to_numpy(), unit="s"), "Z")
    hr = hr.sort_values(["station_id", "time"], kind="stable")
    hr = hr.round({"temp_c": 1, "precip_mm": 2, "rh_pct": 1, "solar_wm2": 1, "wind_ms": 2})

    st_path, hr_path = directory / "stations.csv", directory / "hourly.csv.gz"
    _write_text(st_path, _csv(st))
    _write_text(hr_path, _csv(hr), gz=True)
    return st_path, hr_path


# --- soil --------------------------------------------------------------------------------------------
# Plausible ranges for yellow-brown soils (Alfisols on Xiashu loess) of the lower Yangtze, topsoil
# 0-20 cm: (mean, standard deviation, lower clip, upper clip). Assumptions in the ranges usually
# reported for the Nanjing area, not survey statistics. Xiashu loess is silt-dominated (~60 % silt).
SOIL_TOP = {
    "som_g_kg": (20.0, 5.0, 5.0, 45.0),
    "ph": (6.4, 0.5, 4.8, 8.3),
    "tp_g_kg": (0.60, 0.12, 0.25, 1.2),
    "clay_pct": (25.0, 4.0, 10.0, 45.0),
    "sand_pct": (15.0, 5.0, 3.0, 50.0),
}
SOM_C_FRACTION = 0.58  # van Bemmelen factor: organic carbon = 0.58 SOM
SOIL_CN = 11.0  # C:N of cultivated and urban topsoils, typically 10-12


def _smooth_field(x_km: np.ndarray, y_km: np.ndarray, rng: np.random.Generator, n_bumps: int = 10) -> np.ndarray:
    """Zero-mean, unit-variance smooth field at points: a sum of Gaussian bumps 2-8 km wide."""
    xmin, xmax, ymin, ymax = x_km.min(), x_km.max(), y_km.min(), y_km.max()
    field = np.zeros_like(x_km, dtype=float)
    for _ in range(n_bumps):
        cx, cy = rng.uniform(xmin - 3, xmax + 3), rng.uniform(ymin - 3, ymax + 3)
        r, amp = rng.uniform(2, 8), rng.normal()
        field += amp * np.exp(-((x_km - cx) ** 2 + (y_km - cy) ** 2) / (2 * r * r))
    sd = field.std()
    return (field - field.mean()) / sd if sd > 0 else field * 0


def soil_samples(aoi: tuple[float, float, float, float], rng: np.random.Generator, *, spacing_m: float = 1000.0,
                 built_fraction: BuiltFraction | None = None) -> pd.DataFrame:
    """Soil samples at 0-20 and 20-40 cm on a regular grid of ``spacing_m`` over the lon/lat ``aoi``.

    ``built_fraction(lon, lat)`` (0-1), when given, makes urban soils poorer in organic matter,
    more alkaline (lime and construction rubble) and more compacted, as urban soils typically are.
    """
    west, south, east, north = aoi
    if not (west < east and south < north) or spacing_m <= 0:
        raise InputError("soil_samples", f"bad aoi {aoi} or spacing {spacing_m}")
    lat0 = (south + north) / 2
    km_lon, km_lat = 111.32 * math.cos(math.radians(lat0)), 111.32
    step = spacing_m / 1000
    xs = np.arange(step / 2, (east - west) * km_lon, step)
    ys = np.arange(step / 2, (north - south) * km_lat, step)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    lon, lat = west + x / km_lon, north - y / km_lat
    built = np.zeros_like(x) if built_fraction is None else np.clip(np.asarray(built_fraction(lon, lat), float), 0, 1)

    top = {}
    for name, (mean, sd, lo, hi) in SOIL_TOP.items():
        top[name] = np.clip(mean + sd * _smooth_field(x, y, rng), lo, hi)
    top["som_g_kg"] *= 1 - 0.35 * built
    top["ph"] = np.clip(top["ph"] + 0.8 * built, 4.5, 8.5)
    noise = _smooth_field(x, y, rng)  # shared by the properties derived below

    rows = []
    # Subsoil (20-40 cm): less organic matter and N, a little more clay, denser, slightly less acid.
    for depth, som_f, tp_f, clay_add, ph_add, bd_add in (("0-20", 1.0, 1.0, 0.0, 0.0, 0.0),
                                                         ("20-40", 0.55, 0.85, 3.0, 0.2, 0.08)):
        som = top["som_g_kg"] * som_f
        clay = np.clip(top["clay_pct"] + clay_add, 5, 50)
        sand = np.clip(top["sand_pct"] - clay_add / 3, 2, 60)
        clay, sand = np.round(clay, 1), np.round(sand, 1)
        tn = som * SOM_C_FRACTION / (SOIL_CN + 0.8 * noise)
        # CEC: ~0.5 cmol per % clay (illite-vermiculite clays) + ~0.2 cmol per g/kg of organic matter
        cec = 0.5 * clay + 0.2 * som + 0.8 * noise
        # Bulk density falls with organic matter (Adams-type pedotransfer trend); urban compaction adds.
        bd = np.clip(1.55 - 0.01 * som + 0.03 * noise + bd_add + 0.15 * built, 1.0, 1.75)
        rows.append(pd.DataFrame({
            "sample_id": [f"P{i + 1:04d}_{depth}" for i in range(len(x))],
            "lon": np.round(lon, 6), "lat": np.round(lat, 6), "depth_cm": depth,
            "som_g_kg": np.round(som, 2), "ph": np.round(top["ph"] + ph_add, 2), "tn_g_kg": np.round(tn, 3),
            "tp_g_kg": np.round(top["tp_g_kg"] * tp_f, 3), "cec_cmol_kg": np.round(cec, 2),
            "bulk_density_g_cm3": np.round(bd, 3), "sand_pct": sand, "silt_pct": np.round(100 - sand - clay, 1),
            "clay_pct": clay,
        }))
    return pd.concat(rows, ignore_index=True)[SOIL_COLUMNS]


def write_soil(path, samples: pd.DataFrame) -> Path:
    """``soil.csv`` with the SOIL_COLUMNS of :func:`soil_samples`."""
    path = Path(path)
    _require_columns(samples, SOIL_COLUMNS, path)
    if samples["sample_id"].duplicated().any():
        raise InputError(path, "duplicate sample_id")
    if not samples["depth_cm"].isin(["0-20", "20-40"]).all():
        raise InputError(path, "depth_cm must be '0-20' or '20-40'")
    texture = samples[["sand_pct", "silt_pct", "clay_pct"]].sum(axis=1)
    if (texture - 100).abs().max() > 0.2:
        raise InputError(path, "sand + silt + clay must add up to 100 %")
    _write_text(path, _csv(samples[SOIL_COLUMNS]))
    return path


# --- species -----------------------------------------------------------------------------------------
# Common urban plants of the Yangtze region. Hand-set traits (typical urban specimens, horticultural
# literature): height m, crown (or clump/spread) width m, LAI, t_opt °C (optimum growth temperature),
# t_min °C (cold hardiness: lowest air temperature survived), pH optimum and pH_range (eq. 4 of seed 001:
# suitability reaches 0 at pH_opt +- pH_range), drought and shade tolerance 0-1.
_SPECIES = [
    # scientific name, common name, life form, h, crown, lai, t_opt, t_min, ph_opt, ph_range, drought, shade
    ("Cinnamomum camphora", "camphor tree", "tree", 15, 12, 4.5, 25, -8, 5.8, 1.5, 0.5, 0.5),
    ("Platanus x acerifolia", "London plane", "tree", 18, 14, 3.8, 24, -15, 6.8, 1.8, 0.6, 0.3),
    ("Ginkgo biloba", "ginkgo", "tree", 15, 8, 3.0, 22, -25, 6.5, 2.0, 0.7, 0.3),
    ("Metasequoia glyptostroboides", "dawn redwood", "tree", 25, 6, 3.5, 23, -20, 6.5, 1.5, 0.3, 0.2),
    ("Osmanthus fragrans", "sweet osmanthus", "tree", 6, 5, 4.0, 24, -10, 5.8, 1.2, 0.5, 0.6),
    ("Ligustrum lucidum", "glossy privet", "tree", 8, 6, 4.2, 24, -12, 6.5, 1.8, 0.6, 0.6),
    ("Magnolia grandiflora", "southern magnolia", "tree", 12, 8, 4.5, 25, -12, 5.8, 1.3, 0.5, 0.5),
    ("Zelkova serrata", "Japanese zelkova", "tree", 15, 12, 3.5, 23, -20, 6.5, 1.5, 0.6, 0.4),
    ("Koelreuteria paniculata", "goldenrain tree", "tree", 10, 8, 3.0, 24, -20, 7.0, 1.8, 0.8, 0.3),
    ("Liquidambar formosana", "Formosan sweetgum", "tree", 18, 10, 3.6, 24, -12, 5.8, 1.3, 0.6, 0.3),
    ("Salix babylonica", "weeping willow", "tree", 10, 10, 3.2, 23, -20, 7.0, 1.5, 0.2, 0.2),
    ("Pinus thunbergii", "Japanese black pine", "tree", 12, 7, 3.0, 22, -18, 6.0, 1.5, 0.8, 0.2),
    ("Phyllostachys edulis", "moso bamboo", "bamboo", 12, 3, 5.0, 24, -15, 5.5, 1.2, 0.4, 0.4),
    ("Photinia x fraseri", "red-tip photinia", "shrub", 3, 2.5, 4.0, 24, -12, 6.5, 1.5, 0.6, 0.5),
    ("Loropetalum chinense", "Chinese fringe flower", "shrub", 1.5, 1.5, 3.8, 24, -10, 5.5, 1.0, 0.5, 0.5),
    ("Pittosporum tobira", "Japanese cheesewood", "shrub", 2.5, 2.5, 4.2, 25, -8, 6.8, 1.5, 0.7, 0.6),
    ("Buxus sinica", "Chinese box", "shrub", 1.5, 1.2, 4.5, 22, -15, 7.0, 1.5, 0.6, 0.8),
    ("Zoysia japonica", "Japanese lawn grass", "grass", 0.15, 0.3, 3.0, 27, -20, 6.5, 1.5, 0.7, 0.3),
    ("Cynodon dactylon", "Bermuda grass", "grass", 0.2, 0.5, 2.8, 30, -12, 6.8, 1.5, 0.8, 0.1),
    ("Ophiopogon japonicus", "dwarf lilyturf", "grass", 0.25, 0.25, 3.0, 22, -15, 6.3, 1.2, 0.6, 0.9),
    ("Sapindus mukorossi", "soapberry", "tree", 12, 9, 3.3, 25, -10, 6.0, 1.5, 0.6, 0.4),
    ("Cedrus deodara", "deodar cedar", "tree", 15, 8, 4.0, 20, -15, 6.8, 1.5, 0.6, 0.3),
    ("Nandina domestica", "heavenly bamboo", "shrub", 1.5, 1.0, 3.5, 23, -12, 6.5, 1.5, 0.6, 0.8),
    ("Rhododendron simsii", "Indian azalea", "shrub", 1.2, 1.2, 3.2, 22, -10, 5.0, 0.8, 0.3, 0.7),
    ("Styphnolobium japonicum", "Chinese scholar tree", "tree", 15, 12, 3.2, 24, -25, 7.0, 1.8, 0.8, 0.3),
    ("Lagerstroemia indica", "crape myrtle", "shrub", 4, 3, 3.0, 26, -12, 6.5, 1.5, 0.7, 0.3),
]
# Per life form, per m2 of ground the planting covers: GPP kg C m-2 yr-1 (subtropical forest flux
# sites ~1.5-2 for trees, turf ~1), R_i (autotrophic respiration share of GPP; NPP/GPP ~0.5, Waring et
# al. 1998), S_i (transplant survival), growth-stage coefficient (share of the mature rate reached
# at planting size), costs in CNY m-2 (procurement P_i, land preparation L_i, planting I_i, yearly
# maintenance M_i) and ESV in CNY m-2 yr-1. Costs and ESV are assumptions scaled so that mixed
# plantings land near seed 001's Table 2 (IC ~290-320 CNY m-2 with three years of maintenance,
# ESV ~75-105 CNY m-2 yr-1).
_LIFE_FORM = {
    #          gpp  R     S     G     P      L     I     M     ESV
    "tree": (1.8, 0.52, 0.90, 0.65, 180.0, 30.0, 35.0, 14.0, 110.0),
    "bamboo": (2.0, 0.50, 0.90, 0.75, 80.0, 25.0, 25.0, 10.0, 90.0),
    "shrub": (1.3, 0.50, 0.92, 0.80, 70.0, 20.0, 18.0, 12.0, 65.0),
    "grass": (1.0, 0.45, 0.95, 0.95, 18.0, 15.0, 6.0, 8.0, 35.0),
}
CO2_PER_C = 44.0 / 12.0


def species_table(rng: np.random.Generator, n: int = 24) -> pd.DataFrame:
    """The first ``n`` species of the list with their traits; economic and carbon values jittered by ``rng``.

    growth_stage_coef is D_i of seed 001's eq. 6 (CP_i = GPP_i (1 - R_i) S_i D_i), which its eq. 31
    (CSP = sum A_i C_i S_i G_i) calls G_i: both are the "plant growth stage coefficient".
    carbon_rate_kgco2_m2_yr is C_i = GPP_i (1 - R_i) x 44/12, so 44/12 CP_i = C_i S_i G_i and the two
    equations agree. It is an NPP-based rate, an upper bound on long-term storage.
    """
    if not 1 <= n <= len(_SPECIES):
        raise InputError("species_table", f"n must be 1..{len(_SPECIES)}, got {n}")
    rows = []
    for i, (sci, common, form, h, crown, lai, t_opt, t_min, ph_opt, ph_range, drought, shade) in \
            enumerate(_SPECIES[:n]):
        gpp, r, s, g, p, l_, i_, m, esv = _LIFE_FORM[form]
        e = rng.standard_normal(9)
        gpp = gpp * math.exp(0.08 * e[0])
        r = min(max(r + 0.03 * e[1], 0.3), 0.7)
        s = min(max(s + 0.03 * e[2], 0.7), 0.99)
        g = min(max(g + 0.05 * e[3], 0.3), 1.0)
        cost = [v * math.exp(0.15 * x) for v, x in zip((p, l_, i_, m), e[4:8])]
        rows.append({
            "species_id": f"SP{i + 1:02d}", "scientific_name": sci, "common_name": common, "life_form": form,
            "gpp_kgc_m2_yr": round(gpp, 3), "respiration_ratio": round(r, 3), "survival_rate": round(s, 3),
            "growth_stage_coef": round(g, 3),
            "carbon_rate_kgco2_m2_yr": round(CO2_PER_C * round(gpp, 3) * (1 - round(r, 3)), 3),
            "procurement_cost_cny_m2": round(cost[0], 2), "preparation_cost_cny_m2": round(cost[1], 2),
            "planting_cost_cny_m2": round(cost[2], 2), "maintenance_cost_cny_m2_yr": round(cost[3], 2),
            "esv_cny_m2_yr": round(esv * math.exp(0.12 * e[8]), 2),
            "height_m": h, "crown_width_m": crown, "lai": lai, "t_opt_c": t_opt, "t_min_c": t_min,
            "ph_opt": ph_opt, "ph_range": ph_range, "drought_tolerance": drought, "shade_tolerance": shade,
        })
    return pd.DataFrame(rows, columns=SPECIES_COLUMNS)


def write_species(path, rng: np.random.Generator, n: int = 24) -> Path:
    """``species.csv`` of :func:`species_table`."""
    path = Path(path)
    _write_text(path, _csv(species_table(rng, n)))
    return path


# --- population --------------------------------------------------------------------------------------
def write_population(path, counts: np.ndarray, transform: Affine, epsg: int = 4326) -> Path:
    """Persons per cell as float32 GeoTIFF (nodata -1; NaN cells become nodata), e.g. on a 30" grid."""
    path = Path(path)
    counts = np.asarray(counts, dtype="f8")
    if counts.ndim != 2 or not counts.size:
        raise InputError(path, f"population counts must be a 2-D array, got shape {counts.shape}")
    if (counts[np.isfinite(counts)] < 0).any():
        raise InputError(path, "population counts must be >= 0")
    data = np.where(np.isfinite(counts), counts, POP_NODATA).astype("f4")
    write_geotiff(path, data, transform=transform, crs=CRS.from_epsg(epsg).to_wkt(), nodata=POP_NODATA,
                   tags={"source": "urbaneo synthetic demo city", "units": "persons per cell"},
                   units="persons", description="population")
    return path


# --- MODIS sinusoidal grid and the NPP reference -----------------------------------------------------
def modis_tile(x: float, y: float) -> str:
    """MODIS land tile name (e.g. 'h28v05') holding sinusoidal coordinates (x, y) in metres."""
    h = int(math.floor((x - MODIS_X0) / MODIS_TILE_M))
    v = int(math.floor((MODIS_Y0 - y) / MODIS_TILE_M))
    return f"h{h:02d}v{v:02d}"


def modis_tile_of_lonlat(lon: float, lat: float) -> str:
    """MODIS land tile name of a lon/lat point (118.75 E, 32 N -> 'h28v05')."""
    x, y = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL, always_xy=True).transform(lon, lat)
    return modis_tile(x, y)


def modis_500m_grid(aoi: tuple[float, float, float, float]) -> tuple[Affine, tuple[int, int]]:
    """Transform and (height, width) of the MODIS 500 m pixels covering the lon/lat ``aoi``."""
    west, south, east, north = aoi
    to_sinu = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL, always_xy=True)
    lons = np.concatenate([np.linspace(west, east, 21)] * 2 + [[west] * 21, [east] * 21])
    lats = np.concatenate([[south] * 21, [north] * 21, np.linspace(south, north, 21), np.linspace(south, north, 21)])
    xs, ys = to_sinu.transform(lons, lats)  # edges sampled densely: sinusoidal meridians are curved
    col0 = math.floor((min(xs) - MODIS_X0) / MODIS_500M)
    col1 = math.ceil((max(xs) - MODIS_X0) / MODIS_500M)
    row0 = math.floor((MODIS_Y0 - max(ys)) / MODIS_500M)
    row1 = math.ceil((MODIS_Y0 - min(ys)) / MODIS_500M)
    transform = Affine(MODIS_500M, 0, MODIS_X0 + col0 * MODIS_500M, 0, -MODIS_500M, MODIS_Y0 - row0 * MODIS_500M)
    return transform, (row1 - row0, col1 - col0)


def _as_date(key) -> dt.date:
    return pd.Timestamp(key).date()


def write_npp_reference(directory, npp_8day: Mapping, transform: Affine, crs=MODIS_SINUSOIDAL) -> list[Path]:
    """One MOD17A2HGF-like PsnNet GeoTIFF per 8-day composite; returns the paths by date.

    ``npp_8day`` maps each composite's first day (day of year 1, 9, 17, ...) to a 2-D array of net
    photosynthesis in kg C m-2 per composite (NaN = fill). Encoded as MOD17A2H PsnNet_500m is: int16
    counts of 0.0001 kg C m-2, valid -30000..30000, fill 32767. The grid must be the MODIS sinusoidal
    one at 463.3127 m; the tile in the file name is the one holding the raster's centre.
    """
    directory = Path(directory)
    if CRS.from_user_input(crs) != CRS.from_proj4(MODIS_SINUSOIDAL):
        raise InputError(directory, "NPP reference must be in the MODIS sinusoidal CRS")
    if abs(transform.a - MODIS_500M) > 1e-3 or abs(transform.e + MODIS_500M) > 1e-3 or transform.b or transform.d:
        raise InputError(directory, f"NPP reference pixels must be {MODIS_500M:.4f} m north-up, got {transform}")
    layers = []  # validate everything before writing anything
    for key in sorted(npp_8day, key=_as_date):
        day = _as_date(key)
        doy = day.timetuple().tm_yday
        if (doy - 1) % 8:
            raise InputError(directory, f"{day} is not the first day of an 8-day composite (DOY 1, 9, 17, ...)")
        values = np.asarray(npp_8day[key], dtype="f8")
        if values.ndim != 2 or (layers and values.shape != layers[0][2].shape):
            raise InputError(directory, f"composite {day}: every array must be 2-D and of one shape")
        layers.append((day, doy, values))
    paths = []
    for day, doy, values in layers:
        counts = np.clip(np.round(values / PSN_SCALE), *PSN_VALID)
        data = np.where(np.isfinite(values), counts, PSN_FILL).astype("int16")
        cx, cy = transform @ (values.shape[1] / 2, values.shape[0] / 2)
        tile = modis_tile(cx, cy)
        path = directory / f"MOD17A2HGF.A{day.year}{doy:03d}.{tile}.061.synthetic_PsnNet.tif"
        write_geotiff(
            path, data, transform=transform, crs=MODIS_SINUSOIDAL, nodata=PSN_FILL,
            tags={"source": "urbaneo synthetic demo city (MOD17-style reference, see urbaneo.synth.mod17)",
                  "product": "MOD17A2HGF-like PsnNet, synthetic", "composite_start": day.isoformat(),
                  "tile": tile},
            band_tags={"long_name": "Net Photosynthesis (GPP - leaf and fine-root maintenance respiration)",
                       "units": "kg C/m^2/8day", "scale_factor": PSN_SCALE, "add_offset": 0,
                       "_FillValue": PSN_FILL, "valid_range": f"{PSN_VALID[0]} {PSN_VALID[1]}"},
            scale=PSN_SCALE, units="kg C/m^2/8day", description="PsnNet_500m")
        paths.append(path)
    return paths
