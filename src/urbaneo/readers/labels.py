"""Ground truth rasters: LCZ label maps, urban construction-land masks and the MOD17 NPP reference.

- LCZ maps come in two codings: 1-17 (LCZ Generator) and WUDAPT's legacy one with A-G as 101-107.
  Both are read as 1-17 (uint8, 0 = nodata).
- Urban-land masks are rasters whose listed values mean "urban" (1 by default; FROM-GLC30 uses 80
  for impervious surface) or polygons; read as uint8 1 urban / 0 other / 255 nodata.
- The NPP reference is MOD17A2H(GF) net photosynthesis (8-day) or MOD17A3H(GF) NPP (annual) as
  GeoTIFFs named like the MODIS granules (``MOD17A2HGF.A2020001.h28v05...``) or like AppEEARS
  exports (``MOD17A2HGF.061_PsnNet_500m_doy2020001_...``): int16 counts of 0.0001 kg C m-2 whose
  top values 32761-32767 are land-cover and fill codes, not data (:data:`MOD17_CODES`).

Only the source window under the grid is read, then warped onto the grid by :func:`warp_to_grid`.
Class maps resample nearest when the grid is as fine as the source or finer, and by mode (the
majority class) when it is coarser, so a coarse cell takes the class covering most of it.
"""

from __future__ import annotations

import datetime as dt
import glob
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from urbaneo import lcz_classes as lcz
from urbaneo.errors import InputError
from urbaneo.grid import Grid, to_dataarray, warp_to_grid

LCZ_NODATA = 0
URBAN_NODATA = 255
STANDARD_CODES = frozenset(range(1, 18))
LEGACY_CODES = frozenset(range(1, 11)) | frozenset(range(101, 108))
CODINGS = ("auto", "standard", "legacy")

# MOD17 (A2H and A3H, collection 6/6.1) int16 codes above the valid range (LP DAAC product pages)
MOD17_CODES = {
    32761: "unclassified",
    32762: "urban/built-up",
    32763: "permanent wetland",
    32764: "perennial snow/ice",
    32765: "barren or sparse vegetation",
    32766: "water",
    32767: "fill",
}
MOD17_SCALE = 0.0001  # kg C m-2 per count
MOD17_VALID = {"8-day": (-30000, 30000), "annual": (-30000, 32700)}
_MOD17_PRODUCT = re.compile(r"^(?P<product>M[OY]D17A(?P<level>[23])H?(?:GF)?)[._]", re.IGNORECASE)
_MOD17_DATE = re.compile(r"[._](?:A|doy)(?P<year>\d{4})(?P<doy>\d{3})(?=[._])")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet")


# --- small raster helpers ------------------------------------------------------------------------


def _open(path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        problem = "file not found" if not Path(path).exists() else f"cannot be read as a raster ({err})"
        raise InputError(path, problem) from None


def _crs_text(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_proj4().replace("=True", "")


def _window_over(src, grid: Grid, pad: int = 2) -> Window:
    """The source pixels under ``grid`` (plus ``pad`` pixels for the resampling kernel)."""
    if src.crs is None:
        raise InputError(src.name, "raster has no CRS (georeferencing is missing)")
    corners = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x in corners[::2] for y in corners[1::2]))
    col0, col1, row0, row1 = math.floor(min(cols)), math.ceil(max(cols)), math.floor(min(rows)), math.ceil(max(rows))
    # the check is made without the padding, so a grid just beside the raster does not count as overlap
    if not all(map(math.isfinite, corners)) or col1 <= 0 or col0 >= src.width or row1 <= 0 or row0 >= src.height:
        raise InputError(src.name, f"does not overlap the grid {grid.crs if grid.epsg else '(MODIS sinusoidal)'} "
                                   f"{tuple(round(b) for b in grid.bounds)}")
    col0, row0 = max(col0 - pad, 0), max(row0 - pad, 0)
    col1, row1 = min(col1 + pad, src.width), min(row1 + pad, src.height)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _window_transform(src, window: Window) -> Affine:
    return src.transform @ Affine.translation(window.col_off, window.row_off)


def _source_pixel_size(src, window: Window, grid: Grid) -> float:
    """Mean source pixel side measured in the grid's CRS units."""
    t = _window_transform(src, window)
    corners = (t.c, t.f + window.height * t.e, t.c + window.width * t.a, t.f)
    x0, y0, x1, y1 = transform_bounds(src.crs, grid.crs, *corners)
    return math.sqrt(abs((x1 - x0) * (y1 - y0)) / (window.width * window.height))


def _warp_array(data: np.ndarray, src, window: Window, grid: Grid, *, resampling: str, nodata, dtype: str):
    """Warp one decoded window of ``src`` onto ``grid`` through an in-memory GeoTIFF.

    When the source pixels are the grid's pixels (a reference read on its own grid), they are
    copied instead: the same result, without a warp per file.
    """
    t = _window_transform(src, window)
    col, row = (t.c - grid.xmin) / grid.res, (grid.ymax - t.f) / grid.res
    if (not t.b and not t.d and abs(t.a - grid.res) < 1e-9 * grid.res and abs(t.e + grid.res) < 1e-9 * grid.res
            and abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
            and src.crs == rasterio.crs.CRS.from_user_input(grid.crs)):
        out = np.full(grid.shape, nodata, dtype=dtype)
        col, row = round(col), round(row)
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + data.shape[1], grid.width), min(row + data.shape[0], grid.height)
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = data[r0 - row:r1 - row, c0 - col:c1 - col]
        return out
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                   crs=src.crs, transform=t, nodata=nodata)
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data, 1)
        with mem.open() as tmp:
            try:
                return warp_to_grid(tmp, grid, resampling=resampling, dst_nodata=nodata, dtype=dtype)[0]
            except InputError as err:  # name the user's file, not the in-memory copy
                raise InputError(src.name, err.problem) from None


def _read_window(src, window: Window) -> np.ndarray:
    """Band 1 as a masked array (nodata and NaN masked); InputError for a corrupt file."""
    try:
        data = src.read(1, window=window, masked=True)
    except RasterioIOError as err:
        raise InputError(src.name, f"cannot be read as a raster ({err})") from None
    if data.dtype.kind == "f":
        data = np.ma.masked_invalid(data)
    return data


def _class_codes(data: np.ma.MaskedArray, path) -> np.ndarray:
    """Valid values of a class map as int64; float maps must hold whole numbers."""
    values = data.compressed()
    if values.dtype.kind == "f":
        if (bad := values[values != np.round(values)]).size:
            raise InputError(path, f"class map holds non-integer values, e.g. {sorted(set(bad[:5].tolist()))}")
    return values.astype(np.int64)


def _categorical_resampling(src, window: Window, grid: Grid) -> str:
    # nearest keeps exact classes when the grid is as fine as the source; mode takes the majority
    return "mode" if grid.res > 1.01 * _source_pixel_size(src, window, grid) else "nearest"


def _value_counts(src) -> Counter:
    """Counts of the valid values of band 1, read block by block (bounded memory)."""
    counts: Counter = Counter()
    for _, window in src.block_windows(1):
        values, n = np.unique(_class_codes(_read_window(src, window), src.name), return_counts=True)
        counts.update(dict(zip(values.tolist(), n.tolist())))
    return counts


def _raster_facts(src, kind: str) -> dict:
    return {"kind": kind, "path": str(src.name), "crs": _crs_text(src.crs), "bounds": list(src.bounds),
            "resolution": list(src.res), "shape": [src.height, src.width], "dtype": src.dtypes[0],
            "nodata": "nan" if src.nodata is not None and math.isnan(src.nodata) else src.nodata}


# --- LCZ ---------------------------------------------------------------------------------------------
def lcz_coding(codes: Iterable[int], path, coding: str = "auto") -> str:
    """Which coding ("standard" 1-17 or "legacy" 1-10 + 101-107) the class codes use; InputError if none."""
    if coding not in CODINGS:
        raise InputError(path, f"unknown LCZ coding {coding!r}; use one of {CODINGS}")
    codes = set(int(c) for c in codes) - {LCZ_NODATA}
    if bad := sorted(codes - STANDARD_CODES - LEGACY_CODES):
        shown = bad[:10] + (["..."] if len(bad) > 10 else [])
        raise InputError(path, f"LCZ codes {shown} are outside both codings (1-17, and WUDAPT legacy "
                               "1-10 with 101-107 for A-G)")
    if coding == "auto":
        if codes <= STANDARD_CODES:
            return "standard"
        if codes <= LEGACY_CODES:
            return "legacy"
        raise InputError(path, f"mixes the two LCZ codings: {sorted(codes & set(range(11, 18)))} (A-G as 11-17) "
                               f"and {sorted(codes & set(range(101, 108)))} (A-G as legacy 101-107)")
    allowed = STANDARD_CODES if coding == "standard" else LEGACY_CODES
    if extra := sorted(codes - allowed):
        raise InputError(path, f"LCZ codes {extra} are not in the {coding} coding")
    return coding


def _lcz_codes(values: np.ndarray, coding: str) -> np.ndarray:
    return lcz.from_legacy(values) if coding == "legacy" else values


def read_lcz(path: str | PathLike, grid: Grid, *, coding: str = "auto"):
    """An LCZ label raster on ``grid``: (y, x) uint8, classes 1-17, 0 = nodata.

    ``coding`` is "auto" (detected from the codes under the grid), "standard" or "legacy".
    Resampled nearest, or by mode when the grid is coarser than the label map.
    """
    if coding not in CODINGS:
        raise InputError(path, f"unknown LCZ coding {coding!r}; use one of {CODINGS}")
    with _open(path) as src:
        window = _window_over(src, grid)
        data = _read_window(src, window)
        found = lcz_coding(np.unique(_class_codes(data, path)), path, coding)
        mapped = np.zeros(data.shape, np.uint8)
        valid = ~np.ma.getmaskarray(data)
        mapped[valid] = _lcz_codes(np.asarray(data.data[valid]).astype(np.int64), found)
        resampling = _categorical_resampling(src, window, grid)
        out = _warp_array(mapped, src, window, grid, resampling=resampling, nodata=LCZ_NODATA, dtype="uint8")
    return to_dataarray(out, grid, ("y", "x"), name="lcz", attrs={
        "long_name": "Local Climate Zone (1-17, A-G = 11-17)", "nodata": LCZ_NODATA, "source": str(path),
        "source_coding": found, "resampling": resampling})


def describe_lcz(path: str | PathLike) -> dict:
    with _open(path) as src:
        facts, counts = _raster_facts(src, "lcz_labels"), _value_counts(src)
    found = lcz_coding(counts, path)
    mapped: Counter = Counter()
    for code, n in counts.items():
        mapped[int(_lcz_codes(np.array([code]), found)[0])] += n
    mapped.pop(LCZ_NODATA, None)
    return {**facts, "coding": found,
            "classes": {str(code): {"name": lcz.CLASSES[code][0], "pixels": n} for code, n in sorted(mapped.items())}}


# --- urban land --------------------------------------------------------------------------------------
def _is_vector(path) -> bool:
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def _read_polygons(path, crs=None):
    """Polygons of a vector file (optionally in ``crs``), empty geometries dropped."""
    import geopandas as gpd
    import pyogrio.errors

    try:
        gdf = gpd.read_parquet(path) if Path(path).suffix.lower() == ".parquet" else gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, OSError) as err:
        raise InputError(path, f"cannot be read as vector data ({' '.join(str(err).split())})") from None
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        raise InputError(path, "has no features")
    if gdf.crs is None:
        raise InputError(path, "has no CRS (georeferencing is missing)")
    if kinds := sorted(set(gdf.geom_type) - {"Polygon", "MultiPolygon"}):
        raise InputError(path, f"urban land must be polygons, found {kinds}")
    return gdf.to_crs(crs) if crs is not None else gdf


def read_urban(path: str | PathLike, grid: Grid, *, urban_values: Iterable[float] = (1,)):
    """An urban-land mask on ``grid``: (y, x) uint8, 1 urban, 0 other, 255 nodata.

    A raster's ``urban_values`` mean urban (e.g. ``{80}`` for FROM-GLC30 impervious surface); a
    vector file (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, GeoParquet) holds urban polygons,
    burnt in where they cover a cell's centre (all_touched=False).
    """
    if _is_vector(path):
        from rasterio.features import rasterize

        gdf = _read_polygons(path, grid.crs)
        x0, y0, x1, y1 = gdf.total_bounds
        gx0, gy0, gx1, gy1 = grid.bounds
        if x1 <= gx0 or x0 >= gx1 or y1 <= gy0 or y0 >= gy1:
            raise InputError(path, f"does not overlap the city grid {grid.crs} {tuple(round(b) for b in grid.bounds)}")
        out = rasterize(((g, 1) for g in gdf.geometry), out_shape=grid.shape, transform=grid.transform, fill=0,
                        all_touched=False, dtype="uint8")
        resampling = "rasterize"
    else:
        values = sorted({float(v) for v in urban_values})
        if not values:
            raise InputError(path, "urban_values is empty")
        with _open(path) as src:
            window = _window_over(src, grid)
            data = _read_window(src, window)
            valid = ~np.ma.getmaskarray(data)
            urban = np.isin(data.data, values) & valid
            if not urban.any():
                warnings.warn(f"{path}: no pixel under the grid has an urban value {values}", stacklevel=2)
            mask = np.where(valid, urban, URBAN_NODATA).astype(np.uint8)
            resampling = _categorical_resampling(src, window, grid)
            out = _warp_array(mask, src, window, grid, resampling=resampling, nodata=URBAN_NODATA, dtype="uint8")
    return to_dataarray(out, grid, ("y", "x"), name="urban", attrs={
        "long_name": "urban construction land (1) / other (0)", "nodata": URBAN_NODATA, "source": str(path),
        "resampling": resampling})


def describe_urban(path: str | PathLike) -> dict:
    if _is_vector(path):
        gdf = _read_polygons(path)
        return {"kind": "urban_labels", "path": str(path), "crs": _crs_text(rasterio.crs.CRS.from_user_input(gdf.crs)),
                "bounds": [float(b) for b in gdf.total_bounds], "resolution": None, "features": int(len(gdf)),
                "geometry_types": sorted(set(gdf.geom_type))}
    with _open(path) as src:
        facts, counts = _raster_facts(src, "urban_labels"), _value_counts(src)
    return {**facts, "values": {str(v): n for v, n in sorted(counts.items())}}


# --- NPP reference -----------------------------------------------------------------------------------
def _mod17_name(path) -> tuple[str, str, dt.date]:
    """(product, "8-day" | "annual", composite start) from a MOD17 file name."""
    name = Path(path).name
    product, date = _MOD17_PRODUCT.match(name), _MOD17_DATE.search(name)
    if product is None or date is None:
        raise InputError(path, "not a MOD17 file name: expected e.g. MOD17A2HGF.A2020001.h28v05.061...tif "
                               "or MOD17A3HGF.061_Npp_500m_doy2020001_aid0001.tif")
    try:
        start = dt.date(int(date["year"]), 1, 1) + dt.timedelta(days=int(date["doy"]) - 1)
    except ValueError:
        raise InputError(path, f"bad date A{date['year']}{date['doy']} in the file name") from None
    if start.year != int(date["year"]):
        raise InputError(path, f"day of year {date['doy']} does not exist in {date['year']}")
    return product["product"].upper(), "8-day" if product["level"] == "2" else "annual", start


def _npp_files(paths) -> list[Path]:
    """A folder (its GeoTIFFs), a glob pattern, one file or a list of files."""
    where = paths if isinstance(paths, (str, PathLike)) else "npp_reference"
    if isinstance(paths, (str, PathLike)):
        path = Path(paths)
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        elif any(c in str(paths) for c in "*?["):
            paths = sorted(Path(p) for p in glob.glob(str(paths)))
        else:
            paths = [path]
    files = [Path(p) for p in paths]
    if not files:
        raise InputError(where, "no NPP reference file found")
    return files


def decode_mod17(raw: np.ndarray, period: str, *, scale: float = MOD17_SCALE, nodata=None) -> np.ndarray:
    """MOD17 counts to kg C m-2 (float32); land-cover and fill codes, out-of-range values and nodata -> NaN."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":  # already physical: only nodata and NaN are missing
        bad = ~np.isfinite(raw) | ((raw == nodata) if nodata is not None else False)
        return np.where(bad, np.nan, raw * scale).astype(np.float32)
    lo, hi = MOD17_VALID[period]
    good = (raw >= lo) & (raw <= hi)
    if nodata is not None:
        good &= raw != nodata
    return np.where(good, raw * scale, np.nan).astype(np.float32)


def _file_scale(src) -> float:
    scale = src.scales[0] if src.scales else 1.0
    if src.dtypes[0].startswith(("int", "uint")):
        return scale if scale not in (None, 1.0) else MOD17_SCALE
    return scale or 1.0


def _native_grid(files: list[Path], aoi=None) -> Grid:
    """The reference's own grid: the union of the files (all on one CRS and pixel grid), or the part over ``aoi``."""
    boxes, first = [], None
    for path in files:
        with _open(path) as src:
            t = src.transform
            if src.crs is None:
                raise InputError(path, "raster has no CRS (georeferencing is missing)")
            if t.b or t.d or abs(abs(t.e) - t.a) > 1e-6 * t.a:
                raise InputError(path, f"pixels are not square and north-up ({t.a}, {t.e})")
            if first is None:
                first = (path, src.crs, t.a)
            elif src.crs != first[1] or abs(t.a - first[2]) > 1e-6 * t.a:
                raise InputError(path, f"is on another grid than {first[0].name} (CRS or pixel size differ); "
                                       "pass a grid to average them onto")
            boxes.append((path, src.bounds))
    _, crs, res = first
    xmin, ymax = min(b.left for _, b in boxes), max(b.top for _, b in boxes)
    for path, b in boxes:
        for offset in ((b.left - xmin) / res, (ymax - b.top) / res):
            if abs(offset - round(offset)) > 1e-3:
                raise InputError(path, f"is not aligned with the pixels of {boxes[0][0].name}")
    xmax, ymin = max(b.right for _, b in boxes), min(b.bottom for _, b in boxes)
    if aoi is not None:  # the whole pixels covering the lon/lat AOI
        ax0, ay0, ax1, ay1 = transform_bounds("EPSG:4326", crs, *aoi, densify_pts=21)
        col0, col1 = math.floor((ax0 - xmin) / res), math.ceil((ax1 - xmin) / res)
        row0, row1 = math.floor((ymax - ay1) / res), math.ceil((ymax - ay0) / res)
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, round((xmax - xmin) / res)), min(row1, round((ymax - ymin) / res))
        if col1 <= col0 or row1 <= row0:
            raise InputError(files[0], f"does not cover the AOI {tuple(aoi)}")
        xmin, ymax, xmax, ymin = xmin + col0 * res, ymax - row0 * res, xmin + col1 * res, ymax - row1 * res
    shape = dict(xmin=xmin, ymax=ymax, res=res, width=round((xmax - xmin) / res), height=round((ymax - ymin) / res))
    epsg = crs.to_epsg()
    return Grid(epsg, **shape) if epsg else Grid(0, **shape, wkt=crs.to_wkt())


def reference_grid(paths, aoi: tuple[float, float, float, float] | None = None) -> Grid:
    """The NPP reference's own grid (MODIS sinusoidal 463.3 m for MOD17), cropped to a lon/lat ``aoi`` if given.

    Evaluation happens on this grid. Its CRS has no EPSG code, so the grid carries its WKT.
    """
    return _native_grid(_npp_files(paths), aoi)


def _npp_layer(path: Path, grid: Grid, period: str, resampling: str) -> np.ndarray:
    with _open(path) as src:
        if src.dtypes[0] not in ("int16", "int32", "float32", "float64"):
            raise InputError(path, f"is {src.dtypes[0]}, not a MOD17 NPP layer (int16 counts); a QC layer?")
        window = _window_over(src, grid)
        raw = _read_window(src, window).data
        values = decode_mod17(raw, period, scale=_file_scale(src), nodata=src.nodata)
        return _warp_array(values, src, window, grid, resampling=resampling, nodata=np.nan, dtype="float32")


def read_npp_reference(paths, grid: Grid | None = None, *, aoi=None):
    """MOD17 NPP reference series: (time, y, x) float32, kg C m-2 per composite (8-day or annual).

    ``paths``: a folder, a file, or a list of files; the date comes from each file name. With
    ``grid=None`` the series stays on the reference's own grid (cropped to ``aoi`` when given),
    where evaluation happens; otherwise it is averaged onto ``grid``. Tiles of one date are mosaicked.
    MOD17 land-cover codes (water, urban, barren, ...; :data:`MOD17_CODES`) and fill become NaN.
    """
    files = _npp_files(paths)
    named = [(path, *_mod17_name(path)) for path in files]
    periods = {period for _, _, period, _ in named}
    if len(periods) > 1:
        odd = next(p for p, _, period, _ in named if period != named[0][2])
        raise InputError(odd, "mixes 8-day (MOD17A2) and annual (MOD17A3) products in one reference series")
    period = periods.pop()
    native = grid is None
    grid = _native_grid(files, aoi) if native else grid
    resampling = "nearest" if native else "average"
    layers: dict[dt.date, np.ndarray] = {}
    for path, _, _, start in sorted(named, key=lambda item: (item[3], item[0].name)):
        layer = _npp_layer(path, grid, period, resampling)
        if start in layers:  # another tile of the same date: fill what the first left empty
            layer = np.where(np.isnan(layers[start]), layer, layers[start])
        layers[start] = layer
    if all(np.isnan(layer).all() for layer in layers.values()):
        raise InputError(files[0], "has no valid NPP pixel over the grid (all fill or land-cover codes)")
    dates = sorted(layers)
    units = "kg C m-2 per 8-day composite" if period == "8-day" else "kg C m-2 yr-1"
    return to_dataarray(np.stack([layers[d] for d in dates]), grid, ("time", "y", "x"),
                        coords={"time": np.array(dates, dtype="datetime64[ns]")}, name="npp_reference", attrs={
                            "long_name": "net photosynthesis (MOD17A2H PsnNet)" if period == "8-day"
                            else "net primary production (MOD17A3H Npp)",
                            "units": units, "period": period, "product": named[0][1],
                            "resampling": resampling})


def describe_npp_reference(path: str | PathLike) -> dict:
    files = _npp_files(path)
    named = [_mod17_name(p) for p in files]
    with _open(files[0]) as src:
        facts = _raster_facts(src, "npp_reference")
        scale = _file_scale(src)
    codes: Counter = Counter()
    valid = total = 0
    for p, (_, period, _) in zip(files, named):
        with _open(p) as src:
            raw = _read_window(src, Window(0, 0, src.width, src.height)).data
            if raw.dtype.kind != "f":
                values, n = np.unique(raw[raw >= min(MOD17_CODES)], return_counts=True)
                codes.update({MOD17_CODES.get(int(v), str(int(v))): int(c) for v, c in zip(values, n)})
            valid += int(np.isfinite(decode_mod17(raw, period, scale=scale, nodata=src.nodata)).sum())
            total += raw.size
    dates = sorted(d for _, _, d in named)
    period = named[0][1]
    return {**facts, "path": str(path), "product": named[0][0], "period": period, "files": len(files),
            "dates": [d.isoformat() for d in dates], "first": dates[0].isoformat(), "last": dates[-1].isoformat(),
            "units": "kg C m-2 per 8-day composite" if period == "8-day" else "kg C m-2 yr-1", "scale_factor": scale,
            "valid_fraction": round(valid / total, 4) if total else 0.0, "coded_pixels": dict(sorted(codes.items()))}


# --- which kind ----------------------------------------------------------------------------------------
def describe(path: str | PathLike, kind: str | None = None) -> dict:
    """Facts about a label or reference file for ``urbaneo inspect``.

    ``kind`` is "lcz_labels", "urban_labels" or "npp_reference"; guessed when None: MOD17 names are
    NPP references, vector files urban land, rasters of 0/1 urban land, other class maps LCZ when
    their codes fit an LCZ coding, and urban land otherwise (pass ``urban_values`` when reading those).
    """
    describers = {"lcz_labels": describe_lcz, "urban_labels": describe_urban, "npp_reference": describe_npp_reference}
    if kind is not None:
        if kind not in describers:
            raise InputError(path, f"unknown kind {kind!r}; use one of {sorted(describers)}")
        return describers[kind](path)
    if Path(path).is_dir() or _MOD17_PRODUCT.match(Path(path).name):
        return describe_npp_reference(path)
    if _is_vector(path):
        return describe_urban(path)
    with _open(path) as src:
        codes = set(_value_counts(src))
    if codes - {0} and not codes <= {0, 1}:
        try:
            lcz_coding(codes, path)
            return describe_lcz(path)
        except InputError:
            pass
    return describe_urban(path)
