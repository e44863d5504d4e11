"""VIIRS Day/Night Band night lights (nW cm-2 sr-1): annual composites or monthly stacks, onto a grid.

An annual composite (EOG VNL ``VNL_v2*_npp_<year>_...average*.tif``, or any single file) is read as
it is; several files of one year are monthly composites (EOG ``SVDNB_npp_<yyyymmdd>-<yyyymmdd>_...``
avg_rade9h, or ``..._<year>_<mm>.tif``) and are reduced to an annual composite by a per-pixel
percentile (70th by default, as gridfinder does: transient fires and ephemeral lights of a month or
two do not reach it, while lights seen most of the year do).

The annual radiance is then cleaned on its own pixels before resampling:

* negative values (the noisy unlit background of EOG's unmasked avg_rade9) are counted and, with
  ``clip_negative``, set to 0;
* values above ``saturation`` (default 1000 nW, far above any city light) are counted and capped;
* isolated spikes -- fires, gas flares, hot pixels -- are replaced by the median of their 3x3
  neighbourhood. A pixel is a spike when it exceeds both ``outlier_factor`` times that median and
  the absolute ``outlier_floor``. The ~740 m DNB footprint spreads any real light over its
  neighbours (a lit pixel's neighbourhood median is about half of it), so only lights confined to
  one or two pixels trip the rule.

The counts are kept in the returned DataArray's attrs (``n_negative``, ``n_saturated``,
``n_outliers``). Files are read only over the window the grid needs, so a global composite works.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from contextlib import ExitStack, contextmanager
from os import PathLike
from pathlib import Path

import numpy as np

from urbaneo.errors import InputError
from urbaneo.grid import Grid, to_dataarray, warp_to_grid
from urbaneo.readers._common import RunningStats, open_raster, strips

UNITS = "nW cm-2 sr-1"
SATURATION = 1000.0
OUTLIER_FACTOR = 5.0
OUTLIER_FLOOR = 20.0  # nW cm-2 sr-1: a lit town centre, well above rural background (< 1)
_STACK_VALUES = 16_000_000  # values of a monthly stack held at once (128 MB as float64)

# the first 19xx/20xx in a name, alone or opening a yyyymm(dd) date: VNL_v21_npp_2020_...,
# SVDNB_npp_20160101-20160131_..., VIIRS_2016_01.tif
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\d\d){0,2}(?!\d)")
_RANGE = re.compile(r"(?<!\d)((?:19|20)\d{6})-((?:19|20)\d{6})(?!\d)")
_YEAR_MONTH = re.compile(r"(?<!\d)(?:19|20)\d\d[_-](?:0[1-9]|1[0-2])(?!\d)")
# EOG ships coverage counts, lit masks and other statistics beside the radiance: not lights
_AUXILIARY = re.compile(r"[._](?:cf_cvg|cvg|lit_mask|minimum|maximum|median(?:_masked)?)[._]", re.IGNORECASE)


def year_of(path: str | PathLike) -> int | None:
    """The year in a VIIRS file name, or None."""
    m = _YEAR.search(Path(path).name)
    return int(m[1]) if m else None


def period_of(path: str | PathLike) -> str:
    """"annual", "monthly" or "unknown", from the file name (EOG naming, or ``<year>_<mm>``)."""
    name = Path(path).name
    if name.startswith("VNL_"):
        return "annual"
    m = _RANGE.search(name)
    if m:
        start, end = (dt.datetime.strptime(d, "%Y%m%d") for d in m.groups())
        return "annual" if (end - start).days > 45 else "monthly"
    return "monthly" if _YEAR_MONTH.search(name) else "unknown"


def _files(paths) -> list[Path]:
    """Files and folders (their .tif / .tif.gz radiance files) -> the files, as given, folders sorted."""
    if isinstance(paths, (str, PathLike)):
        paths = [paths]
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and not _AUXILIARY.search(f.name)
                           and f.name.lower().endswith((".tif", ".tiff", ".tif.gz")))
            if not found:
                raise InputError(path, "no VIIRS GeoTIFF (.tif) here")
            files += found
        elif not path.exists():
            raise InputError(path, "not found")
        else:
            files.append(path)
    if not files:
        raise InputError("viirs", "no VIIRS file given")
    return files


def _years(files: list[Path]) -> str:
    """The years in the file names, for messages: "2020, 2021 and names without a year"."""
    years = {year_of(f) for f in files}
    text = ", ".join(str(y) for y in sorted(years - {None}))
    return " and ".join(filter(None, [text, "names without a year" if None in years else ""]))


def _select(files: list[Path], year: int | None) -> list[Path]:
    """The files of ``year`` (all when None): one annual composite, or one year's monthly stack."""
    where = files[0].parent if len(files) > 1 else files[0]
    if year is not None:
        chosen = [f for f in files if year_of(f) == year]
        if not chosen:
            raise InputError(where, f"no VIIRS composite of {year} (file names hold {_years(files)})")
        files = chosen
    elif len({year_of(f) for f in files}) > 1:
        raise InputError(where, f"holds VIIRS files of several years ({_years(files)}); say which year to read")
    if len(files) > 1 and any(period_of(f) == "annual" for f in files):
        raise InputError(where, f"{len(files)} files for one year include an annual composite; "
                                "give one annual file or only monthly ones")
    return files


@contextmanager
def _open(path: Path):
    """Open one single-band composite (gzip-compressed ones as EOG ships them too); bad -> InputError."""
    name = f"/vsigzip/{path}" if path.name.lower().endswith(".gz") else None
    with open_raster(path, gdal_name=name) as src:
        if src.count != 1:
            raise InputError(path, f"has {src.count} bands; a single-band VIIRS composite is expected")
        yield src


@contextmanager
def _open_all(files: list[Path]):
    """Open a stack; every file must be on the first one's grid."""
    with ExitStack() as stack:
        srcs = [stack.enter_context(_open(f)) for f in files]
        first = srcs[0]
        for src, path in zip(srcs[1:], files[1:]):
            if src.crs != first.crs or src.shape != first.shape or not src.transform.almost_equals(first.transform):
                raise InputError(path, f"is on another grid than {files[0].name} ({src.crs}, {src.shape[0]}x"
                                       f"{src.shape[1]} px, origin {src.transform.c:.6f}, {src.transform.f:.6f} "
                                       f"vs {first.crs}, {first.shape[0]}x{first.shape[1]} px, origin "
                                       f"{first.transform.c:.6f}, {first.transform.f:.6f})")
        yield srcs


def _read_one(src, path: Path, window) -> np.ndarray:
    import rasterio

    try:
        data = src.read(1, window=window, masked=src.nodata is not None)
    except rasterio.errors.RasterioError as err:
        raise InputError(path, f"cannot be read as a raster ({err})") from None
    return np.ma.filled(data.astype(np.float64), np.nan)


def _read(srcs, files: list[Path], window, percentile: float) -> np.ndarray:
    """One file's window, or the per-pixel percentile of a stack over it, strip by strip (float32)."""
    from rasterio.windows import Window

    if len(srcs) == 1:
        return _read_one(srcs[0], files[0], window).astype(np.float32)
    out = np.empty((window.height, window.width), np.float32)
    rows = max(1, _STACK_VALUES // (len(srcs) * window.width))
    for r0 in range(0, window.height, rows):
        n = min(rows, window.height - r0)
        strip = Window(window.col_off, window.row_off + r0, window.width, n)
        stack = np.stack([_read_one(src, path, strip) for src, path in zip(srcs, files)])
        if np.isnan(stack).any():  # nodata somewhere: a percentile of the months that have data
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nodata pixels stay NaN
                out[r0:r0 + n] = np.nanpercentile(stack, percentile, axis=0)
        else:
            out[r0:r0 + n] = np.percentile(stack, percentile, axis=0)
    return out


def _check_percentile(percentile: float) -> float:
    if not 0 <= float(percentile) <= 100:
        raise InputError("percentile", f"must be between 0 and 100, got {percentile}")
    return float(percentile)


def composite_monthly(paths, percentile: float = 70) -> tuple[np.ndarray, dict]:
    """Per-pixel ``percentile`` of monthly composites on one grid: (float32 array, GeoTIFF profile).

    Linear interpolation between months, as ``numpy.percentile``; nodata pixels are left out of
    their pixel's percentile. A file on another grid than the first raises InputError naming it.
    """
    from rasterio.windows import Window

    percentile = _check_percentile(percentile)
    files = _files(paths)
    with _open_all(files) as srcs:
        first = srcs[0]
        data = _read(srcs, files, Window(0, 0, first.width, first.height), percentile)
        profile = dict(driver="GTiff", dtype="float32", count=1, width=first.width, height=first.height,
                       crs=first.crs, transform=first.transform,
                       nodata=float("nan") if np.isnan(data).any() else None)
    return data, profile


def clean(radiance: np.ndarray, *, clip_negative: bool = True, saturation: float | None = SATURATION,
          outlier_factor: float | None = OUTLIER_FACTOR, outlier_floor: float = OUTLIER_FLOOR):
    """Negative values, saturation and isolated spikes handled as the module says: (array, counts)."""
    from scipy import ndimage

    data = np.array(radiance, np.float32)
    finite = np.isfinite(data)
    counts = {"n_negative": int((data[finite] < 0).sum()), "n_saturated": 0, "n_outliers": 0}
    if clip_negative:
        data[finite & (data < 0)] = 0.0
    if saturation is not None:
        hot = finite & (data > saturation)
        counts["n_saturated"] = int(hot.sum())
        data[hot] = saturation
    if outlier_factor is not None and data.size:
        # nodata counts as dark in a neighbour's median
        median = ndimage.median_filter(np.where(finite, data, 0.0), size=3, mode="nearest")
        spike = finite & (data > outlier_floor) & (data > outlier_factor * np.maximum(median, 0.0))
        counts["n_outliers"] = int(spike.sum())
        data[spike] = median[spike]
    return data, counts


def _window(src, path: Path, bounds, pad: int, what: str):
    """The source window covering ``bounds`` (its CRS), grown by ``pad`` pixels, clipped to the file."""
    from rasterio.windows import Window, from_bounds

    win = from_bounds(*bounds, transform=src.transform)
    col0, row0 = math.floor(win.col_off + 1e-6), math.floor(win.row_off + 1e-6)
    col1, row1 = math.ceil(win.col_off + win.width - 1e-6), math.ceil(win.row_off + win.height - 1e-6)
    if col1 <= 0 or row1 <= 0 or col0 >= src.width or row0 >= src.height:
        raise InputError(path, f"does not overlap {what}")
    col0, row0 = max(col0 - pad, 0), max(row0 - pad, 0)
    col1, row1 = min(col1 + pad, src.width), min(row1 + pad, src.height)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _composite(paths, year, percentile, clip_negative, saturation, outlier_factor, outlier_floor, region):
    """The cleaned annual radiance over ``region(src, path) -> window`` (or the whole file), with facts.

    Returns (radiance, its transform, CRS, attrs, the files used).
    """
    from rasterio.windows import Window

    percentile = _check_percentile(percentile)
    files = _select(_files(paths), year)
    with _open_all(files) as srcs:
        src = srcs[0]
        window = region(src, files[0]) if region else Window(0, 0, src.width, src.height)
        data = _read(srcs, files, window, percentile)
        transform, crs = src.window_transform(window), src.crs
    data, counts = clean(data, clip_negative=clip_negative, saturation=saturation,
                         outlier_factor=outlier_factor, outlier_floor=outlier_floor)
    years = {year_of(f) for f in files}
    attrs = {"units": UNITS, "quantity": "night-time radiance", "sources": ", ".join(f.name for f in files),
             "period": "monthly stack" if len(files) > 1 else period_of(files[0]),
             **({"year": years.pop()} if len(years) == 1 and None not in years else {}),
             **({"percentile": percentile} if len(files) > 1 else {}),
             **counts,
             "outlier_rule": (f"> {outlier_factor:g} x 3x3 median and > {outlier_floor:g} -> 3x3 median"
                              if outlier_factor is not None else "none"),
             "negative": "clipped to 0" if clip_negative else "kept"}
    return data, transform, crs, attrs, files


def read_viirs(paths, grid: Grid, *, year: int | None = None, percentile: float = 70, clip_negative: bool = True,
               saturation: float | None = SATURATION, outlier_factor: float | None = OUTLIER_FACTOR,
               outlier_floor: float = OUTLIER_FLOOR):
    """Annual night-time radiance on ``grid`` as a (y, x) float32 DataArray (NaN outside the data).

    ``paths``: a file, a folder or a list of them. With ``year``, the files whose names hold that
    year are used; one file is read as an annual composite, several as a monthly stack reduced by
    :func:`composite_monthly`'s percentile. Cleaned (see the module) on the VIIRS pixels, then
    resampled bilinear, or average where the grid is coarser than the VIIRS pixels.
    """
    from rasterio.io import MemoryFile
    from rasterio.warp import calculate_default_transform, transform_bounds

    def region(src, path):
        bounds = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
        what = f"the city grid {grid.crs} {tuple(round(b) for b in grid.bounds)}"
        return _window(src, path, bounds, pad=2, what=what)  # 2 px: room for the 3x3 median and bilinear

    data, transform, crs, attrs, _ = _composite(paths, year, percentile, clip_negative, saturation,
                                                outlier_factor, outlier_floor, region)
    h, w = data.shape
    native, _, _ = calculate_default_transform(crs, grid.crs, w, h, transform.c, transform.f + h * transform.e,
                                              transform.c + w * transform.a, transform.f)
    resampling = "average" if grid.res > 1.01 * abs(native.a) else "bilinear"
    profile = dict(driver="GTiff", dtype="float32", count=1, width=w, height=h, crs=crs, transform=transform,
                   nodata=float("nan"))
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
        with mem.open() as src:
            out = warp_to_grid(src, grid, resampling=resampling)[0]
    return to_dataarray(out, grid, ("y", "x"), name="radiance", attrs={**attrs, "resampling": resampling})


def read_viirs_native(paths, *, year: int | None = None, percentile: float = 70, bounds=None,
                      clip_negative: bool = True, saturation: float | None = SATURATION,
                      outlier_factor: float | None = OUTLIER_FACTOR, outlier_floor: float = OUTLIER_FLOOR):
    """The cleaned annual composite on its own grid (EPSG:4326 for EOG files) as a (y, x) DataArray.

    ``bounds`` (xmin, ymin, xmax, ymax in the file's CRS, lon/lat for EOG files) crops it to whole
    VIIRS pixels covering them; by default the whole file. Other arguments as :func:`read_viirs`.
    """
    region = None
    if bounds is not None:
        def region(src, path):
            return _window(src, path, bounds, pad=0, what=f"the bounds {tuple(bounds)}")

    data, transform, crs, attrs, files = _composite(paths, year, percentile, clip_negative, saturation,
                                                    outlier_factor, outlier_floor, region)
    where = files[0]
    epsg = crs.to_epsg()
    if epsg is None:
        raise InputError(where, f"its CRS has no EPSG code ({crs.to_string()[:60]})")
    if transform.b or transform.d or abs(abs(transform.e) / transform.a - 1) > 1e-6:
        raise InputError(where, "pixels are not square and north-up; a VIIRS composite grid is expected")
    grid = Grid(epsg, transform.c, transform.f, transform.a, data.shape[1], data.shape[0])
    return to_dataarray(data, grid, ("y", "x"), name="radiance", attrs=attrs)


def describe(path: str | PathLike) -> dict:
    """Facts about one VIIRS composite for ``urbaneo inspect --json``; statistics over all valid pixels."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; describe one VIIRS composite file")
    stats, negative = RunningStats(), 0
    with _open(path) as src:
        for window in strips(src.height, src.width):
            values = _read_one(src, path, window)
            values = values[np.isfinite(values)]
            stats.add(values)
            negative += int((values < 0).sum())
        facts = {"kind": "viirs", "path": str(path), "crs": src.crs.to_string(), "bounds": list(src.bounds),
                 "resolution": list(src.res), "shape": list(src.shape), "dtype": src.dtypes[0],
                 "nodata": src.nodata, "units": src.tags().get("UNITS", UNITS)}
    year = year_of(path)
    return {**facts, "year": year, "period": period_of(path),
            "stats": {**stats.as_dict(), "share_negative": negative / stats.count if stats.count else None}}
