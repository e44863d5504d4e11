"""Point tables: weather stations, soil samples and the species table.

The column contracts (``*_COLUMNS``, also what the demo city writes): units are
part of each column name (``temp_c``, ``som_g_kg``, ``procurement_cost_cny_m2``), so a column in
other units is a different, missing column. Column names are read case- and space-insensitively.
Every problem raises one InputError naming the file, the column and, where it helps, the row.

Points (stations, soil samples) are put on a grid by inverse-distance weighting in the grid's CRS.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from urbaneo.errors import InputError
from urbaneo.grid import Grid, to_dataarray

# The column contracts of the tables (the demo city writes them too: urbaneo.synth.formats).
STATION_COLUMNS = ["station_id", "name", "lon", "lat", "elevation_m"]
HOURLY_COLUMNS = ["station_id", "time", "temp_c", "precip_mm", "rh_pct", "solar_wm2", "wind_ms"]
SOIL_COLUMNS = ["sample_id", "lon", "lat", "depth_cm", "som_g_kg", "ph", "tn_g_kg", "tp_g_kg", "cec_cmol_kg",
                "bulk_density_g_cm3", "sand_pct", "silt_pct", "clay_pct"]
SPECIES_COLUMNS = [
    "species_id", "scientific_name", "common_name", "life_form", "gpp_kgc_m2_yr", "respiration_ratio",
    "survival_rate", "growth_stage_coef", "carbon_rate_kgco2_m2_yr", "procurement_cost_cny_m2",
    "preparation_cost_cny_m2", "planting_cost_cny_m2", "maintenance_cost_cny_m2_yr", "esv_cny_m2_yr",
    "height_m", "crown_width_m", "lai", "t_opt_c", "t_min_c", "ph_opt", "ph_range", "drought_tolerance",
    "shade_tolerance",
]

# (low, high, what the unit is) of each measured column; values outside are an error
HOURLY_RANGES = {
    "temp_c": (-90.0, 60.0, "air temperature in degrees C"),
    "precip_mm": (0.0, 500.0, "hourly precipitation in mm"),
    "rh_pct": (0.0, 100.0, "relative humidity in percent"),
    "solar_wm2": (0.0, 1500.0, "hourly mean global radiation in W m-2"),
    "wind_ms": (0.0, 100.0, "wind speed in m s-1"),
}
SOIL_REQUIRED = ["sample_id", "lon", "lat", "depth_cm", "som_g_kg", "ph", "tn_g_kg", "tp_g_kg", "cec_cmol_kg"]
SOIL_RANGES = {
    "ph": (3.0, 10.0, "pH"),
    "som_g_kg": (0.0, 1000.0, "soil organic matter in g/kg"),
    "tn_g_kg": (0.0, 1000.0, "total nitrogen in g/kg"),
    "tp_g_kg": (0.0, 1000.0, "total phosphorus in g/kg"),
    "cec_cmol_kg": (0.0, 500.0, "cation exchange capacity in cmol/kg"),
    "bulk_density_g_cm3": (0.1, 2.65, "bulk density in g/cm3"),
    "sand_pct": (0.0, 100.0, "sand in percent"),
    "silt_pct": (0.0, 100.0, "silt in percent"),
    "clay_pct": (0.0, 100.0, "clay in percent"),
}
SPECIES_TEXT = ["species_id", "scientific_name", "common_name", "life_form"]
# species ranges: which columns must be >= 0, which lie in [0, 1], and why (for the message)
SPECIES_NONNEGATIVE = {
    "gpp_kgc_m2_yr": "rates", "carbon_rate_kgco2_m2_yr": "rates", "esv_cny_m2_yr": "rates",
    "procurement_cost_cny_m2": "costs", "preparation_cost_cny_m2": "costs", "planting_cost_cny_m2": "costs",
    "maintenance_cost_cny_m2_yr": "costs", "height_m": "sizes", "crown_width_m": "sizes", "lai": "sizes",
    "ph_range": "pH ranges",
}
SPECIES_UNIT_INTERVAL = ["respiration_ratio", "survival_rate", "growth_stage_coef", "drought_tolerance",
                         "shade_tolerance"]
SECONDS_PER_DAY = 86400.0
CELLS_PER_QUERY = 1 << 18


# --- reading and checking ------------------------------------------------------------------------
def _read_csv(path) -> pd.DataFrame:
    """A CSV (optionally .gz) with stripped, lower-case column names; InputError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(path, "table is empty") from None
    except (ValueError, OSError, EOFError, zlib.error) as err:
        raise InputError(path, f"cannot be read as CSV ({' '.join(str(err).split())})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if df.empty:
        raise InputError(path, "table has a header but no rows")
    df.attrs["source"] = str(path)
    return df


def _require(df: pd.DataFrame, required: Sequence[str], where) -> None:
    """One InputError listing every missing column, with the columns that look like them in other units."""
    missing = [c for c in required if c not in df.columns]
    if not missing:
        return
    hints = []
    for col in missing:
        stem = col.split("_")[0]
        if near := [c for c in df.columns if c not in required and c.split("_")[0] == stem]:
            hints.append(f"{', '.join(near)} instead of {col}")
    hint = f" (found {'; '.join(hints)}: units are part of the column name)" if hints else ""
    raise InputError(where, f"missing columns {missing}{hint}")


def _numeric(df: pd.DataFrame, columns: Iterable[str], where) -> None:
    """Convert ``columns`` to float in place; text that is not a number is an error naming column and line."""
    for col in columns:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(where, f"column {col}: {df[col].iloc[i]!r} on line {i + 2} is not a number")
        df[col] = values.astype(float)


def _check_range(df: pd.DataFrame, col: str, lo: float, hi: float, what: str, where) -> None:
    values = df[col].to_numpy(float)
    bad = (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(where, f"column {col}: {bad.sum()} values outside [{lo:g}, {hi:g}] ({what}), "
                                f"e.g. {values[i]:g} on line {i + 2}")


def _check_lonlat(df: pd.DataFrame, where) -> None:
    _numeric(df, ["lon", "lat"], where)
    for col in ("lon", "lat"):
        if df[col].isna().any():
            raise InputError(where, f"column {col}: empty on line {int(np.flatnonzero(df[col].isna())[0]) + 2}")
    _check_range(df, "lon", -180, 180, "longitude in degrees", where)
    _check_range(df, "lat", -90, 90, "latitude in degrees", where)


def _check_unique(df: pd.DataFrame, col: str, where) -> None:
    if (dup := df[col][df[col].duplicated()]).size:
        raise InputError(where, f"column {col}: duplicate values {sorted(dup.unique())[:5]}")


# --- stations ------------------------------------------------------------------------------------------
def _station_files(source) -> tuple[Path, Path]:
    """(stations table, hourly table) from a folder, or from two files told apart by their columns."""
    if isinstance(source, (str, PathLike)) and Path(source).is_dir():
        folder = Path(source)
        found = {}
        for stem in ("stations", "hourly"):
            hits = sorted(p for p in folder.iterdir() if re.fullmatch(rf"{stem}\.csv(\.gz)?", p.name))
            if not hits:
                raise InputError(folder, f"no {stem}.csv or {stem}.csv.gz in the station folder")
            found[stem] = hits[0]
        return found["stations"], found["hourly"]
    files = [Path(source)] if isinstance(source, (str, PathLike)) else [Path(p) for p in source]
    if len(files) != 2:
        raise InputError(files[0] if files else "stations", "give the station folder, or its two tables "
                                                            "(stations and hourly)")
    hourly = [p for p in files if "time" in _read_csv(p).columns]
    if len(hourly) != 1:
        raise InputError(files[0], "cannot tell the station table from the hourly table (only the hourly one "
                                   "has a time column)")
    return next(p for p in files if p != hourly[0]), hourly[0]


def read_stations(folder_or_files) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Station list and hourly series (demo layout: ``stations.csv`` + ``hourly.csv.gz``).

    stations: station_id, lon, lat (degrees, WGS84), optional name and elevation_m.
    hourly: station_id, time (ISO-8601; UTC unless it carries an offset), temp_c, precip_mm,
    rh_pct, solar_wm2 (hourly mean W m-2) and wind_ms; gaps (empty cells) are allowed.
    Returns the two frames; ``time`` is tz-aware UTC.
    """
    st_path, hr_path = _station_files(folder_or_files)
    st = _read_csv(st_path)
    _require(st, ["station_id", "lon", "lat"], st_path)
    _check_lonlat(st, st_path)
    _numeric(st, ["elevation_m"], st_path)
    st["station_id"] = st["station_id"].str.strip()
    _check_unique(st, "station_id", st_path)
    st = st[[c for c in STATION_COLUMNS if c in st.columns]].reset_index(drop=True)

    hr = _read_csv(hr_path)
    _require(hr, HOURLY_COLUMNS, hr_path)
    hr["station_id"] = hr["station_id"].str.strip()
    if unknown := sorted(set(hr["station_id"]) - set(st["station_id"])):
        raise InputError(hr_path, f"column station_id: stations {unknown[:5]} are not in {st_path.name}")
    try:
        hr["time"] = pd.to_datetime(hr["time"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise InputError(hr_path, f"column time: not ISO-8601 times ({' '.join(str(err).split())})") from None
    _numeric(hr, HOURLY_RANGES, hr_path)
    for col, (lo, hi, what) in HOURLY_RANGES.items():
        _check_range(hr, col, lo, hi, what, hr_path)
    rh = hr["rh_pct"].dropna()
    if len(rh) > 24 and rh.max() <= 1.0:
        raise InputError(hr_path, "column rh_pct: every value is <= 1; relative humidity must be in percent, "
                                  "not a fraction")
    if hr.duplicated(["station_id", "time"]).any():
        row = hr[hr.duplicated(["station_id", "time"])].iloc[0]
        raise InputError(hr_path, f"station {row['station_id']} has two records at {row['time']}")
    if silent := sorted(set(st["station_id"]) - set(hr["station_id"])):
        warnings.warn(f"{hr_path}: no hourly data for stations {silent[:5]}", stacklevel=2)
    hr = hr[HOURLY_COLUMNS].sort_values(["station_id", "time"], kind="stable").reset_index(drop=True)
    st.attrs.update(source=str(st_path), kind="station")
    hr.attrs.update(source=str(hr_path))
    return st, hr


def daily_station_series(hourly: pd.DataFrame, stations: pd.DataFrame | None = None, *,
                         min_hours: int = 18) -> pd.DataFrame:
    """Daily values per station: mean, min and max temperature, total precipitation, mean RH,
    total global radiation (MJ m-2), mean wind.

    Days are local standard days of each station's time zone round(lon / 15) when ``stations``
    is given, UTC days otherwise. Totals are the mean of the recorded hours times 24, so a few
    missing hours do not bias them; a value needs ``min_hours`` recorded hours, else it is NaN.
    Monthly or seasonal values follow by grouping these days.
    """
    h = hourly[["station_id", "time", *HOURLY_RANGES]].copy()
    shift = pd.Series(0.0, index=h.index)
    if stations is not None:
        zone = dict(zip(stations["station_id"], np.round(stations["lon"].astype(float) / 15.0)))
        shift = h["station_id"].map(zone).fillna(0.0)
    local = h["time"].dt.tz_convert("UTC").dt.tz_localize(None) + pd.to_timedelta(shift, unit="h")
    h["date"] = local.dt.floor("D")
    groups = h.groupby(["station_id", "date"], sort=True)
    count, mean = groups[list(HOURLY_RANGES)].count(), groups[list(HOURLY_RANGES)].mean()
    out = pd.DataFrame({
        "temp_c": mean["temp_c"],
        "temp_min_c": groups["temp_c"].min(),
        "temp_max_c": groups["temp_c"].max(),
        "precip_mm": mean["precip_mm"] * 24,
        "rh_pct": mean["rh_pct"],
        "solar_mj_m2": mean["solar_wm2"] * SECONDS_PER_DAY / 1e6,
        "wind_ms": mean["wind_ms"],
    })
    source = {"temp_c": "temp_c", "temp_min_c": "temp_c", "temp_max_c": "temp_c", "precip_mm": "precip_mm",
              "rh_pct": "rh_pct", "solar_mj_m2": "solar_wm2", "wind_ms": "wind_ms"}
    for col, src in source.items():
        out.loc[count[src] < min_hours, col] = np.nan
    out["hours"] = groups.size()
    return out.reset_index()


# --- soil and species --------------------------------------------------------------------------------
def read_soil(path: str | PathLike, depth: str | None = "0-20") -> pd.DataFrame:
    """Soil samples of one depth layer (``depth_cm`` "0-20" by default; None keeps every layer).

    Required: sample_id, lon, lat, depth_cm ("top-bottom" in cm), som_g_kg, ph, tn_g_kg, tp_g_kg,
    cec_cmol_kg; bulk_density_g_cm3 and sand/silt/clay_pct are checked when present. Ranges:
    pH 3-10, contents >= 0, texture shares 0-100 % adding up to 100 %.
    """
    df = _read_csv(path)
    _require(df, SOIL_REQUIRED, path)
    _check_lonlat(df, path)
    measured = [c for c in SOIL_RANGES if c in df.columns]
    _numeric(df, measured, path)
    for col in measured:
        _check_range(df, col, *SOIL_RANGES[col], path)
    df["depth_cm"] = df["depth_cm"].str.replace(" ", "")
    if (bad := ~df["depth_cm"].fillna("").str.fullmatch(r"\d+(\.\d+)?-\d+(\.\d+)?")).any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(path, f"column depth_cm: {df['depth_cm'].iloc[i]!r} on line {i + 2} is not "
                               "'top-bottom' in cm, e.g. '0-20'")
    texture = ["sand_pct", "silt_pct", "clay_pct"]
    if set(texture) <= set(df.columns):
        total = df[texture].sum(axis=1, min_count=3)
        if (off := (total - 100).abs() > 1.0).any():
            i = int(np.flatnonzero(off.to_numpy())[0])
            raise InputError(path, f"sand_pct + silt_pct + clay_pct = {total.iloc[i]:g} on line {i + 2}, "
                                   "not 100 %")
    _check_unique(df, "sample_id", path)
    if depth is not None:
        layers = sorted(df["depth_cm"].unique())
        df = df[df["depth_cm"] == depth.replace(" ", "")]
        if df.empty:
            raise InputError(path, f"no samples at depth_cm {depth!r} (layers in the file: {layers})")
    df = df[[c for c in SOIL_COLUMNS if c in df.columns]].reset_index(drop=True)
    df.attrs.update(source=str(path), kind="soil sample")
    return df


def read_species(path: str | PathLike) -> pd.DataFrame:
    """The species table (columns of SPECIES_COLUMNS), checked.

    Rates, costs, sizes >= 0; respiration ratio, survival rate, growth-stage coefficient and the
    tolerances in [0, 1]; ph_opt in 3-10; t_min_c <= t_opt_c. Errors name the species and column.
    """
    df = _read_csv(path)
    _require(df, SPECIES_COLUMNS, path)
    numeric = [c for c in SPECIES_COLUMNS if c not in SPECIES_TEXT]
    _numeric(df, numeric, path)
    for col in SPECIES_TEXT:
        df[col] = df[col].str.strip()
    _check_unique(df, "species_id", path)

    def species(i: int) -> str:
        return f"species {df['species_id'].iloc[i]} ({df['scientific_name'].iloc[i]})"

    for col in SPECIES_COLUMNS:
        if (empty := df[col].isna()).any():
            raise InputError(path, f"{species(int(np.flatnonzero(empty.to_numpy())[0]))}: {col} is empty")
    checks = [(col, df[col] < 0, f"is negative; {why} must be >= 0") for col, why in SPECIES_NONNEGATIVE.items()]
    checks += [(col, (df[col] < 0) | (df[col] > 1), "is outside [0, 1]") for col in SPECIES_UNIT_INTERVAL]
    checks += [("ph_opt", (df["ph_opt"] < 3) | (df["ph_opt"] > 10), "is outside pH 3-10")]
    checks += [("t_min_c", df["t_min_c"] > df["t_opt_c"], "is above t_opt_c")]
    for col, bad, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(path, f"{species(i)}: {col} = {df[col].iloc[i]:g} {problem}")
    df = df[SPECIES_COLUMNS].reset_index(drop=True)
    df.attrs.update(source=str(path))
    return df


# --- points onto a grid --------------------------------------------------------------------------------
def interpolate_points(df: pd.DataFrame, value_columns: Sequence[str], grid: Grid, *, method: str = "idw",
                       power: float = 2.0, neighbours: int = 12, buffer_m: float = 0.0, where=None):
    """Values at lon/lat points onto ``grid`` as an xarray.Dataset (one float32 (y, x) variable per column).

    "idw": inverse-distance weights 1/d**power over the ``neighbours`` nearest points, distances in
    the grid's CRS; "nearest": the nearest point's value. Points farther than ``buffer_m`` outside
    the grid (the region) are dropped with a warning; no point left is an InputError. Points with
    a missing value are skipped for that column only.
    """
    import xarray as xr
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    where = where or df.attrs.get("source", "points")
    kind = df.attrs.get("kind", "point")
    if method not in ("idw", "nearest"):
        raise InputError(where, f"unknown interpolation method {method!r}; use 'idw' or 'nearest'")
    value_columns = list(value_columns)
    _require(df, ["lon", "lat", *value_columns], where)
    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(
        df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    x0, y0, x1, y1 = grid.bounds
    inside = (x >= x0 - buffer_m) & (x <= x1 + buffer_m) & (y >= y0 - buffer_m) & (y <= y1 + buffer_m)
    region = tuple(round(b) for b in (x0 - buffer_m, y0 - buffer_m, x1 + buffer_m, y1 + buffer_m))
    if not inside.any():
        raise InputError(where, f"no {kind} inside the region {grid.crs} {region} (all {len(df)} lie outside)")
    if not inside.all():
        ids = df.iloc[np.flatnonzero(~inside), 0].tolist()
        warnings.warn(f"{where}: {(~inside).sum()} of {len(df)} {kind}s lie outside the region and are ignored: "
                      f"{ids[:5]}{' ...' if len(ids) > 5 else ''}", stacklevel=2)
    gx, gy = np.meshgrid(*grid.xy())
    cells = np.column_stack([gx.ravel(), gy.ravel()])
    out = {}
    for col in value_columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        use = inside & np.isfinite(values)
        if not use.any():
            raise InputError(where, f"column {col}: no value at any {kind} inside the region")
        k = 1 if method == "nearest" else min(neighbours, int(use.sum()))
        tree, known = cKDTree(np.column_stack([x[use], y[use]])), values[use]
        field = np.empty(len(cells), np.float32)
        for start in range(0, len(cells), CELLS_PER_QUERY):  # blocks keep the (cells, k) arrays small
            dist, idx = tree.query(cells[start:start + CELLS_PER_QUERY], k=k)
            dist, idx = dist.reshape(-1, k), idx.reshape(-1, k)
            with np.errstate(divide="ignore"):
                weight = 1.0 / dist ** power
            exact = dist[:, 0] < 1e-6  # a point on a cell centre gives that cell its value
            weight[exact] = 0.0  # (its infinite weight would turn the weighted sum into NaN)
            weighted = (weight * known[idx]).sum(axis=1) / np.where(exact, 1.0, weight.sum(axis=1))
            field[start:start + len(dist)] = np.where(exact, known[idx[:, 0]], weighted)
        out[col] = to_dataarray(field.reshape(grid.shape), grid, ("y", "x"), name=col)
    return xr.Dataset(out, attrs={"method": method, "power": power, "neighbours": neighbours,
                                  "points": int(inside.sum()), "source": str(where)})


# --- inspect ---------------------------------------------------------------------------------------------
def _lonlat_bounds(df: pd.DataFrame) -> list[float]:
    return [float(df["lon"].min()), float(df["lat"].min()), float(df["lon"].max()), float(df["lat"].max())]


def describe(path: str | PathLike, kind: str | None = None) -> dict:
    """Facts about a station folder, soil table or species table for ``urbaneo inspect``.

    ``kind`` ("stations", "soil", "species") is guessed when None: a folder is a station folder,
    a table with species_id the species table, one with sample_id the soil table.
    """
    path = Path(path)
    if kind is None:
        if path.is_dir():
            kind = "stations"
        else:
            columns = set(_read_csv(path).columns)
            kind = "species" if "species_id" in columns else "soil" if "sample_id" in columns else None
            if kind is None:
                raise InputError(path, "not a station folder, soil table or species table")
    base = {"kind": kind, "path": str(path), "resolution": None}
    if kind == "stations":
        st, hr = read_stations(path)
        return {**base, "crs": "EPSG:4326", "bounds": _lonlat_bounds(st), "stations": len(st),
                "hourly_rows": len(hr), "first": hr["time"].min().isoformat(), "last": hr["time"].max().isoformat(),
                "variables": {c: HOURLY_RANGES[c][2] for c in HOURLY_RANGES}}
    if kind == "soil":
        layers = sorted(_read_csv(path)["depth_cm"].dropna().str.replace(" ", "").unique())
        df = read_soil(path, depth=None)
        return {**base, "crs": "EPSG:4326", "bounds": _lonlat_bounds(df), "rows": len(df),
                "columns": list(df.columns), "depths_cm": layers}
    if kind == "species":
        df = read_species(path)
        return {**base, "crs": None, "bounds": None, "rows": len(df), "columns": list(df.columns),
                "life_forms": df["life_form"].value_counts().sort_index().to_dict()}
    raise InputError(path, f"unknown kind {kind!r}; use 'stations', 'soil' or 'species'")
