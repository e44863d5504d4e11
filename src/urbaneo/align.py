"""`urbaneo ingest` and `urbaneo align`: check each source of a city, then put it on the city's grids.

ingest: every file of a source is opened by its reader (`describe`), so a bad file stops the run
with one line before any long job starts; the facts go to resources/ingest/{city}/{source}.json.

align: each source is read onto the grids it is used on (urbaneo.grid.CityGrids) and stored as
an xarray dataset in Zarr, one group per grid, chunked so that it opens lazily with dask:
resources/align/{city}/{source}.zarr. Models train from these cubes, never from the raw files.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
import xarray as xr

from .atomic import atomic_dir, atomic_path
from .config import aoi_bounds, city_root, resolve_input
from .errors import InputError
from .grid import CityGrids, city_grids
from .inspect import describer
from .readers import gf2, labels, landsat, osm, par, population, tables, viirs

CHUNK = 512  # pixels per chunk side in the Zarr stores


def southern(city: Mapping) -> bool:
    hemisphere = city.get("hemisphere")
    if hemisphere:
        return hemisphere == "south"
    lon0, lat0, lon1, lat1 = aoi_bounds(city)
    return (lat0 + lat1) / 2 < 0


def grids_of(city: Mapping) -> CityGrids:
    return city_grids(aoi_bounds(city), float(city["region_buffer_km"]))


def input_paths(city: Mapping, source: str) -> list[Path]:
    root = city_root(city)
    return [root / p for p in resolve_input(city, source)]


# --- ingest -----------------------------------------------------------------------------------------


def ingest(city: Mapping, source: str, out: str | Path) -> dict:
    """Describe every input of ``source`` with its reader (a bad file is an InputError) and save the facts."""
    describe = describer(source)
    facts = {"city": city["name"], "source": source, "files": [describe(p) for p in input_paths(city, source)]}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(facts, indent=2, sort_keys=True, default=str) + "\n")
    return facts


# --- align ------------------------------------------------------------------------------------------


def _year(path: Path) -> int | None:
    found = re.findall(r"(?<!\d)(19[7-9]\d|20\d\d)(?!\d)", path.name)
    return int(found[0]) if found else None


def _by_year(paths: list[Path], years: list[int], what: str) -> dict[int, Path]:
    """One file per year (by the year in its name); a single undated file stands for every year."""
    dated = {y: p for p in paths if (y := _year(p)) is not None}
    if not dated and len(paths) == 1:
        return {y: paths[0] for y in years}
    chosen = {y: dated[y] for y in years if y in dated}
    if not chosen:
        raise InputError(paths[0].parent, f"no {what} file for the city's years {years} (files: {[p.name for p in paths]})")
    for y in sorted(set(years) - set(chosen)):
        warnings.warn(f"{paths[0].parent}: no {what} file for {y}; that year is left out", stacklevel=2)
    return chosen


def _stack(arrays: dict[int, xr.DataArray], name: str) -> xr.Dataset:
    return xr.concat(list(arrays.values()), dim=xr.DataArray(list(arrays), dims="year", name="year")).to_dataset(name=name)


def _landsat(paths, city, grids):
    return {"base": landsat.read_landsat(paths, grids.base, southern=southern(city))}


def _gf2(paths, city, grids):
    images = [gf2.read_vhr(p, grids.vhr) for p in paths]
    mosaic = images[0]
    for img in images[1:]:  # several VHR scenes: the first valid pixel wins, in file order
        mosaic = mosaic.fillna(img)
    return {"vhr": mosaic.to_dataset(name="reflectance")}


def _viirs(paths, city, grids):
    files = _by_year(paths, city["years"], "night-light")
    return {"region": _stack({y: viirs.read_viirs(f, grids.region, year=_year(f) and y) for y, f in files.items()},
                             "radiance")}


def _par(paths, city, grids):
    return {"coarse": par.read_par(paths, grids.coarse).to_dataset(name="par")}


def _osm(paths, city, grids):
    layers = osm.read_osm(paths[0], aoi_bounds(city))
    return {"base": osm.rasterize_osm(layers, grids.base), "planning": osm.rasterize_osm(layers, grids.planning)}


def _lcz(paths, city, grids):
    files = _by_year(paths, city["years"], "LCZ label")
    return {g: _stack({y: labels.read_lcz(f, grids.named(g)) for y, f in files.items()}, "lcz")
            for g in ("planning", "vhr")}


def _urban(paths, city, grids):
    files = _by_year(paths, city["years"], "urban-land label")
    return {"region_fine": _stack({y: labels.read_urban(f, grids.region_fine) for y, f in files.items()}, "urban")}


def _npp_reference(paths, city, grids):
    return {"native": labels.read_npp_reference(paths, aoi=aoi_bounds(city)).to_dataset(name="npp")}


def _population(paths, city, grids):
    return {"planning": population.read_population(paths[0], grids.planning).to_dataset()}


def _stations(paths, city, grids):
    """Daily station series (for the climate suitability index) and their means interpolated on the planning grid."""
    stations, hourly = tables.read_stations(paths[0])
    daily = tables.daily_station_series(hourly, stations)
    daily["date"] = pd.to_datetime(daily["date"])
    series = daily.set_index(["station_id", "date"]).to_xarray()
    series = series.assign_coords(lon=("station_id", stations.set_index("station_id").loc[series.station_id, "lon"].to_numpy()),
                                  lat=("station_id", stations.set_index("station_id").loc[series.station_id, "lat"].to_numpy()))
    values = [c for c in daily.columns if c not in ("station_id", "date", "hours")]
    means = daily.groupby("station_id")[values].mean().join(stations.set_index("station_id")[["lon", "lat"]])
    normals = tables.interpolate_points(means.reset_index(), values, grids.planning,
                                        buffer_m=float(city["region_buffer_km"]) * 1000)
    return {"series": series, "planning": normals}


def _soil(paths, city, grids):
    samples = tables.read_soil(paths[0])
    cols = [c for c in ("som_g_kg", "ph", "tn_g_kg", "tp_g_kg", "cec_cmol_kg") if c in samples.columns]
    return {"planning": tables.interpolate_points(samples, cols, grids.planning,
                                                  buffer_m=float(city["region_buffer_km"]) * 1000)}


ALIGNERS: dict[str, Callable] = {
    "landsat": _landsat, "gf2": _gf2, "viirs": _viirs, "par": _par, "osm": _osm, "lcz_labels": _lcz,
    "urban_labels": _urban, "npp_reference": _npp_reference, "population": _population,
    "stations": _stations, "soil": _soil,
}


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.data_vars.items():
        chunks = tuple(min(CHUNK, n) if d in ("x", "y") else 1 if d in ("time", "year") else n
                       for d, n in zip(var.dims, var.shape))
        enc[name] = {"chunks": chunks}
        if "grid_mapping" in var.encoding:  # rioxarray keeps the CRS link there; an explicit encoding drops it
            enc[name]["grid_mapping"] = var.encoding["grid_mapping"]
    return enc


def align(city: Mapping, source: str, out: str | Path) -> dict:
    """Write ``source`` of ``city`` onto its grids as ``out`` (a Zarr store, one group per grid)."""
    if source not in ALIGNERS:
        raise InputError(source, f"not an alignable source; one of {sorted(ALIGNERS)}")
    grids = grids_of(city)
    groups = ALIGNERS[source](input_paths(city, source), city, grids)
    summary = {}
    with atomic_dir(out) as tmp:
        for i, (group, ds) in enumerate(sorted(groups.items())):
            ds = ds.copy()
            for v in ds.variables.values():  # xarray cannot store python objects in attrs
                v.attrs = {k: (json.dumps(a, default=str) if isinstance(a, (dict, list, tuple)) else a)
                           for k, a in v.attrs.items() if a is not None}
            ds.attrs = {k: (json.dumps(a, default=str) if isinstance(a, (dict, list, tuple)) else a)
                        for k, a in ds.attrs.items() if a is not None}
            ds.attrs.update(city=city["name"], source=source, grid=group)
            if group in grids.__dataclass_fields__:  # every variable carries its grid's CRS
                ds = ds.rio.write_crs(grids.named(group).crs).rio.write_transform(grids.named(group).transform)
            ds.to_zarr(tmp, group=group, mode="w" if i == 0 else "a", encoding=_encoding(ds), consolidated=False,
                         zarr_format=2)  # v2: a stable on-disk spec every reader knows
            summary[group] = {name: list(var.shape) for name, var in ds.data_vars.items()}
    return summary


def open_aligned(path: str | Path, group: str) -> xr.Dataset:
    """Open one grid of an aligned source lazily (dask arrays)."""
    try:
        return xr.open_zarr(path, group=group, consolidated=False, zarr_format=2, decode_coords="all")
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise InputError(path, f"no aligned group '{group}' ({err})") from None
