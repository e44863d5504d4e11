"""Rasters as Cloud-Optimized GeoTIFFs, byte for byte reproducible.

Written with GDAL's COG driver: one CreateCopy from an in-memory GeoTIFF that already carries
every band property. rio-cogeo's ``cog_translate`` is deterministic too, but it pushes the data
through a WarpedVRT and rebuilds the bands, which drops band units; CreateCopy keeps descriptions,
units, scale/offset, band tags and the colour table as they are. rio-cogeo validates.

GDAL puts no timestamp into a GeoTIFF unless it is given a TIFFTAG_DATETIME, so two writes of the
same array give identical bytes (DEFLATE, fixed 512 blocks, overviews built in a fixed order).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from rasterio.dtypes import in_dtype_range
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

from ..atomic import atomic_path
from ..grid import Grid

BLOCKSIZE = 512
OVERVIEW_RESAMPLING = ("average", "nearest", "mode")


def _per_band(value, count: int, what: str) -> list | None:
    """One value per band: a scalar applies to every band, a sequence must have ``count`` items."""
    if value is None:
        return None
    if np.isscalar(value):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(f"{what}: {len(values)} values for {count} bands")
    return values


def write_cog(path: str | os.PathLike, data, grid: Grid, *, nodata, band_names: Sequence[str] | str,
              units: Sequence[str] | str | None = None, colormap: Mapping[int, Sequence[int]] | None = None,
              scale=None, offset=None, tags: Mapping[str, object] | None = None,
              overview_resampling: str | None = None) -> Path:
    """Write ``data`` ((bands, H, W) or (H, W) on ``grid``) as a COG at ``path``; returns the path.

    ``colormap`` (code -> RGB(A)) marks a class map: one uint8/uint16 band, a palette, and
    overviews by ``mode`` (or ``nearest``); continuous maps get ``average`` overviews by default.
    ``units``, ``scale`` and ``offset`` take one value for all bands or one per band; ``tags`` are
    dataset metadata. The file appears only when complete.
    """
    arr = np.asarray(data)
    if arr.dtype == bool:
        arr = arr.astype("uint8")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or arr.shape[1:] != grid.shape:
        raise ValueError(f"data of shape {np.shape(data)} does not fit the grid {grid.shape}")
    count = arr.shape[0]
    names = _per_band(band_names, count, "band_names")
    band_units = _per_band(units, count, "units")
    scales, offsets = _per_band(scale, count, "scale"), _per_band(offset, count, "offset")
    if nodata is not None and not (in_dtype_range(nodata, arr.dtype.name)
                                   and (np.issubdtype(arr.dtype, np.floating) or not math.isnan(nodata))):
        raise ValueError(f"nodata {nodata} is not a valid {arr.dtype.name} value")
    if any(str(key).upper().startswith("TIFFTAG_DATETIME") for key in (tags or {})):
        raise ValueError("a TIFFTAG_DATETIME tag would make the file differ between identical runs")

    if overview_resampling is None:
        overview_resampling = "mode" if colormap is not None else "average"
    if overview_resampling not in OVERVIEW_RESAMPLING:
        raise ValueError(f"overview_resampling must be one of {OVERVIEW_RESAMPLING}, not {overview_resampling!r}")
    if colormap is not None:
        if count != 1 or arr.dtype.name not in ("uint8", "uint16"):
            raise ValueError(f"a colour table needs one uint8/uint16 band, not {count} x {arr.dtype.name}")
        if overview_resampling == "average":
            raise ValueError("class maps need nearest or mode overviews (averaging class codes invents classes)")

    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=arr.dtype.name,
                   crs=grid.crs, transform=grid.transform, nodata=nodata)
    path = Path(path)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(arr)
            ds.descriptions = tuple(str(name) for name in names)
            if band_units:
                ds.units = tuple(str(u) for u in band_units)
            if scales:
                ds.scales = tuple(float(s) for s in scales)
            if offsets:
                ds.offsets = tuple(float(o) for o in offsets)
            if tags:
                ds.update_tags(**{str(k): str(v) for k, v in tags.items()})
            if colormap is not None:
                ds.write_colormap(1, {int(k): tuple(v) for k, v in colormap.items()})
                ds.colorinterp = [ColorInterp.palette]
        with mem.open() as src, atomic_path(path) as tmp:
            # PREDICTOR=YES: horizontal differencing for integers, floating-point predictor for floats
            rio_copy(src, tmp, driver="COG", compress="DEFLATE", predictor="YES", blocksize=BLOCKSIZE,
                     overview_resampling=overview_resampling.upper())
    return path


def validate_cog(path: str | os.PathLike) -> tuple[bool, list[str], list[str]]:
    """rio-cogeo's check: (is_valid, errors, warnings)."""
    from rio_cogeo.cogeo import cog_validate

    return cog_validate(str(path), quiet=True)
