"""`urbaneo align`: put each source of a city on the city's grids.

Each source is read onto the grids it is used on (urbaneo.grid.CityGrids) and stored as
an xarray dataset in Zarr, one group per grid, chunked so that it opens lazily with dask:
resources/align/{city}/{source}.zarr. Models train from these cubes, never from the raw files.

Cities larger than memory: with a dask scheduler (``dask_scheduler="local"`` starts a LocalCluster
for the job, or the address of a running ``dask scheduler``), the VHR grid, the only one that
outgrows memory (3 m: a 50 km city is 16,700 x 16,700 pixels x 4 bands per scene), is read block
by block on the workers and written chunk by chunk into the Zarr store; no process holds more than
a few blocks. Each block is the same warp of the same pixels, so the store is identical to the
in-process one (tested).
"""

from __future__ import annotations

import argparse

import json
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from .atomic import atomic_dir
from .config import aoi_bounds, city_root, resolve_input
from .errors import InputError
from .grid import CityGrids, Grid, city_grids, to_dataarray
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


def _gf2_block(paths: list[Path], grid: Grid) -> np.ndarray:
    """The VHR mosaic of ``_gf2`` on one block of the grid, (4, h, w); NaN where no image reaches."""
    out = np.full((len(gf2.BANDS), *grid.shape), np.nan, np.float32)
    for p in paths:
        if gf2.overlaps(p, grid):
            out = np.where(np.isnan(out), gf2.read_vhr(p, grid).values, out)
    return out


def _blocks(grid: Grid, block: int) -> list[list[Grid]]:
    """``grid`` cut into rows of blocks of ``block`` pixels (the last ones smaller), nested in it."""
    return [[Grid(grid.epsg, grid.xmin + c * grid.res, grid.ymax - r * grid.res, grid.res,
                  min(block, grid.width - c), min(block, grid.height - r), grid.wkt)
             for c in range(0, grid.width, block)] for r in range(0, grid.height, block)]


def _gf2_blockwise(paths, city, grids, block: int):
    """``_gf2`` as a lazy dask array of blocks, computed by whichever scheduler is active."""
    import dask
    import dask.array as da

    for p in paths:  # the in-process path's one-line error, before any block is scheduled:
        if not gf2.overlaps(p, grids.vhr):  # the reader itself says it, on the 30 m grid of the same extent
            gf2.read_vhr(p, grids.base)
    # the attributes are those of the first image, as in _gf2 (they come from its metadata, not pixels)
    first = next(g for row in _blocks(grids.vhr, block) for g in row if gf2.overlaps(paths[0], g))
    attrs = gf2.read_vhr(paths[0], first).attrs
    rows = [[da.from_delayed(dask.delayed(_gf2_block)(paths, g), (len(gf2.BANDS), *g.shape), np.float32)
             for g in row] for row in _blocks(grids.vhr, block)]
    data = da.block(rows)
    data = data.rechunk((len(gf2.BANDS), CHUNK, CHUNK))  # the Zarr chunks: each written once
    mosaic = to_dataarray(data, grids.vhr, ("band", "y", "x"), coords={"band": list(gf2.BANDS)},
                          name="reflectance", attrs=attrs)
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


BLOCKWISE: dict[str, Callable] = {"gf2": _gf2_blockwise}  # the sources big enough to need it


def align(city: Mapping, source: str, out: str | Path, *, dask_scheduler: str | None = None,
          block: int = 2048, workers: int = 2) -> dict:
    """Write ``source`` of ``city`` onto its grids as ``out`` (a Zarr store, one group per grid).

    ``dask_scheduler``: None (in this process), "local" (a LocalCluster of ``workers`` processes for
    this call) or a scheduler address; sources in BLOCKWISE are then read in ``block``-pixel blocks
    on the workers (``block`` a multiple of the Zarr chunk, CHUNK).
    """
    if source not in ALIGNERS:
        raise InputError(source, f"not an alignable source; one of {sorted(ALIGNERS)}")
    if block < CHUNK or block % CHUNK:
        raise InputError("block", f"must be a positive multiple of {CHUNK} pixels, got {block}")
    grids = grids_of(city)
    if dask_scheduler and source in BLOCKWISE:
        with _dask_client(dask_scheduler, workers):
            return _write(city, source, out, grids, BLOCKWISE[source](input_paths(city, source), city, grids, block))
    return _write(city, source, out, grids, ALIGNERS[source](input_paths(city, source), city, grids))


@contextmanager
def _dask_client(scheduler: str, workers: int):
    """A distributed Client for the block graph: a LocalCluster for this call, or a running scheduler."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as err:
            raise InputError(scheduler, f"no dask scheduler answers at this address ({err})") from None
        with client:
            yield client


def _write(city: Mapping, source: str, out: str | Path, grids: CityGrids, groups: dict) -> dict:
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--source", required=True, help="input key, e.g. landsat, gf2, viirs, osm")
    p.add_argument("--out", required=True, metavar="ZARR")
    p.add_argument("--dask-scheduler", metavar="local|ADDRESS",
                   help="read big grids (VHR) block by block on a dask cluster: 'local' or tcp://host:8786")
    p.add_argument("--dask-block", type=int, default=2048, metavar="PX", help="block side in pixels (default 2048)")
    p.add_argument("--dask-workers", type=int, default=2, metavar="N", help="workers of a local cluster (default 2)")


def main(args: argparse.Namespace) -> int:
    import warnings

    from urbaneo.config import load_city

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's own affine "*" notices
        summary = align(load_city(args.city), args.source, args.out, dask_scheduler=args.dask_scheduler,
                        block=args.dask_block, workers=args.dask_workers)
    for group, variables in summary.items():
        print(f"align {args.source} [{group}]: " + ", ".join(f"{k}{tuple(v)}" for k, v in variables.items()))
    return 0
