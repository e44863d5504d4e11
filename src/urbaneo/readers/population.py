"""Gridded population (WorldPop / GHS-POP style: persons per cell), reprojected preserving totals."""

from __future__ import annotations

from os import PathLike

import numpy as np
import rasterio
from pyproj import Geod

from ..errors import InputError
from ..grid import Grid, to_dataarray, warp_to_grid


def _cell_area_m2(src) -> np.ndarray:
    """Area of each source row's cells (geographic grids shrink towards the poles)."""
    if src.crs.is_geographic:
        geod = Geod(ellps="WGS84")
        rows = np.arange(src.height)
        _, y0 = src.xy(rows, 0, offset="ul")
        _, y1 = src.xy(rows, 0, offset="lr")
        dx = abs(src.transform.a)
        return np.array([abs(geod.polygon_area_perimeter([0, dx, dx, 0], [a, a, b, b])[0])
                         for a, b in zip(y0, y1)])
    return np.full(src.height, abs(src.transform.a * src.transform.e))


def read_population(path: str | PathLike, grid: Grid):
    """Persons per cell of ``grid``: counts become densities, are averaged onto the grid, and back to counts."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, "raster has no CRS (georeferencing is missing)")
            counts = src.read(1, masked=True).astype(np.float64).filled(np.nan)
            density = counts / _cell_area_m2(src)[:, None]
            profile = src.profile | {"dtype": "float64", "nodata": np.nan, "count": 1, "driver": "GTiff"}
    except rasterio.errors.RasterioIOError as err:
        raise InputError(path, f"cannot be read as a raster ({err})") from None
    if np.isfinite(density).sum() == 0:
        raise InputError(path, "population raster is all missing (nodata)")
    if np.nanmin(density) < 0:
        raise InputError(path, "population counts are negative")
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(density, 1)
        with mem.open() as tmp:
            try:
                warped = warp_to_grid(tmp, grid, resampling="average", dtype="float64")[0]
            except InputError as err:
                raise InputError(path, err.problem) from None
    return to_dataarray((warped * grid.res * grid.res).astype(np.float32), grid, ("y", "x"), name="population",
                        attrs={"units": "persons per cell", "source": str(path)})


def describe(path: str | PathLike) -> dict:
    try:
        with rasterio.open(path) as src:
            data = src.read(1, masked=True).astype(np.float64)
            return {"kind": "population", "path": str(path), "crs": src.crs.to_string() if src.crs else None,
                    "bounds": list(src.bounds), "resolution": list(src.res), "shape": [src.height, src.width],
                    "total_persons": float(data.sum()), "max_per_cell": float(data.max())}
    except rasterio.errors.RasterioIOError as err:
        raise InputError(path, f"cannot be read as a raster ({err})") from None
