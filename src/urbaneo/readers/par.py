"""Daily PAR (photosynthetically active radiation) onto a city grid, and its 15-90 day sums.

Three kinds of source give the same result, a daily series in MJ m-2 d-1:

- CF-NetCDF: the variable whose standard_name, name or long_name says PAR (not fPAR), on
  lat/lon or on projected x/y with a ``grid_mapping``;
- GeoTIFF stacks: one file per day with the date in its name (``PAR_20200101.tif``,
  ``*.A2020001.*``), or one multi-band file whose band descriptions or ``date`` tags give dates;
- HDF4 / HDF-EOS granules (MODIS / GLASS style, one day each), read with pyhdf, the optional extra
  ``urbaneo[hdf4]``: rasterio's wheel has no HDF4 driver.

Units follow the file (``units`` attribute, band unit or ``units`` tag): MJ, kJ or J m-2 d-1, or a
daily-mean flux in W m-2 (1 W m-2 over a day = 0.0864 MJ m-2). PAR grids are coarse (GLASS: 0.05
degree), so only a few cells lie under a city: the window around the grid is read and warped
bilinearly onto it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from urbaneo.errors import InputError
from urbaneo.readers._common import RunningStats
from urbaneo.grid import Grid, to_dataarray, warp_to_grid

UNITS = "MJ m-2 d-1"
WINDOW_DAYS = (15, 30, 60, 90)  # the time granularities of the CiSL-NPP PAR RNN (seed 000, Table 3)
PAR_SUFFIXES = (".nc", ".nc4", ".tif", ".tiff", ".hdf", ".hdf4")
HDF4_EXTRA = "reading HDF4 needs the optional extra: pip install 'urbaneo[hdf4]' (pyhdf)"

# Factor to MJ m-2 d-1, keyed by the unit string with spaces, dots, '*' and '^' removed.
_UNIT_FACTORS = {"mjm-2d-1": 1.0, "kjm-2d-1": 1e-3, "jm-2d-1": 1e-6, "wm-2": 86400 / 1e6}
_PAD = 2  # source pixels kept around the grid, so bilinear has neighbours at its edge
_CHUNK_DAYS = 32  # days read and warped at a time


# --------------------------------------------------------------------------------------------
# Georeferencing of a source array
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Georef:
    """Where a source array lies: its CRS (rasterio), the affine transform of its pixel edges, its shape.

    Unlike :class:`urbaneo.grid.Grid` the CRS need not have an EPSG code (MODIS sinusoidal has none).
    """

    crs: "rasterio.crs.CRS"  # noqa: F821
    transform: "affine.Affine"  # noqa: F821
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        from rasterio.transform import array_bounds

        return array_bounds(self.height, self.width, self.transform)  # (west, south, east, north)

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))


def _window(geo: Georef, grid: Grid, where) -> tuple["rasterio.windows.Window", Georef]:  # noqa: F821
    """The source window under ``grid`` (plus a margin) and its georeferencing; InputError if none."""
    from affine import Affine
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, transform

    x0, y0, x1, y1 = transform_bounds(grid.crs, geo.crs, *grid.bounds, densify_pts=21)
    # Global lon/lat data stored as 0..360 holds western longitudes 360 degrees further east.
    shifts = (0.0, 360.0) if geo.crs.is_geographic and geo.bounds[2] > 180 else (0.0,)
    inverse = ~geo.transform
    for shift in shifts:
        (ca, ra), (cb, rb) = inverse @ (x0 + shift, y1), inverse @ (x1 + shift, y0)
        c0, c1, r0, r1 = min(ca, cb), max(ca, cb), min(ra, rb), max(ra, rb)
        if c1 <= 0 or r1 <= 0 or c0 >= geo.width or r0 >= geo.height:
            continue
        col0, row0 = max(math.floor(c0) - _PAD, 0), max(math.floor(r0) - _PAD, 0)
        col1, row1 = min(math.ceil(c1) + _PAD, geo.width), min(math.ceil(r1) + _PAD, geo.height)
        win = Window(col0, row0, col1 - col0, row1 - row0)
        t = Affine.translation(-shift, 0) @ transform(win, geo.transform)
        return win, Georef(geo.crs, t, col1 - col0, row1 - row0)
    raise InputError(where, f"PAR data does not cover the city grid {grid.crs} "
                            f"{tuple(round(b) for b in grid.bounds)}")


def _warp(data: np.ndarray, geo: Georef, grid: Grid, where) -> np.ndarray:
    """(days, h, w) float32 with NaN on ``geo`` -> (days, H, W) on ``grid``, bilinear."""
    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        with mem.open(driver="GTiff", count=len(data), height=geo.height, width=geo.width, dtype="float32",
                      crs=geo.crs, transform=geo.transform, nodata=np.nan) as ds:
            ds.write(data)
        with mem.open() as ds:
            try:
                return warp_to_grid(ds, grid, resampling="bilinear")
            except InputError as err:  # it names the in-memory copy; the user needs the file
                raise InputError(where, err.problem) from None


# --------------------------------------------------------------------------------------------
# Names, dates and units
# --------------------------------------------------------------------------------------------

_PAR_NAME = re.compile(r"(?<![a-z])par(?![a-z])", re.IGNORECASE)  # PAR, par_daily, GLASS_PAR; not fPAR
_NOT_VALUES = re.compile(r"(?<![a-z])(qc|qa|flags?|quality|uncertainty)(?![a-z])", re.IGNORECASE)  # PAR_QC
_DOY_DATE = re.compile(r"(?<![0-9A-Za-z])A(\d{4})(\d{3})(?![0-9])")  # MODIS / GLASS: .A2020001.
_YMD_DATE = re.compile(r"(?<![0-9])(\d{4})-?(\d{2})-?(\d{2})(?![0-9])")  # 20200101 or 2020-01-01


def date_from_name(name: str) -> pd.Timestamp | None:
    """The date in a file name or band label (``A2020001`` day-of-year or ``20200101``), else None."""
    if m := _DOY_DATE.search(name):
        year, doy = int(m[1]), int(m[2])
        if 1 <= doy <= 365 + calendar.isleap(year):
            return pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=doy - 1)
    for m in _YMD_DATE.finditer(name):
        try:
            return pd.Timestamp(dt.date(int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            continue
    return None


def _par_score(name: str, attrs: dict) -> int:
    """How surely a variable is PAR: 4 by standard_name, 3 named PAR, 2 PAR in the name, 1 by long_name, 0 not."""
    standard, long_name = str(attrs.get("standard_name", "")).lower(), str(attrs.get("long_name", "")).lower()
    if "fraction" in standard or "fraction" in long_name or _NOT_VALUES.search(name):  # fPAR, quality flags
        return 0
    if "photosynthetic" in standard:
        return 4
    if name.lower() == "par":
        return 3
    if _PAR_NAME.search(name):
        return 2
    return 1 if "photosynthetically active radiation" in long_name else 0


def _pick_par(variables: dict[str, dict], where, what: str) -> str:
    """The one PAR variable among ``variables`` (name -> attributes)."""
    scores = {name: _par_score(name, attrs) for name, attrs in variables.items()}
    best = max(scores.values(), default=0)
    if best == 0:
        listed = ", ".join(variables) or "none"
        raise InputError(where, f"no PAR {what} (looked for a standard_name or name saying PAR; it has: {listed})")
    top = [name for name, s in scores.items() if s == best]
    if len(top) > 1:
        raise InputError(where, f"several PAR {what}s ({', '.join(top)}); keep one per file")
    return top[0]


def units_factor(units: str | None, where) -> float:
    """Multiplier from ``units`` to MJ m-2 d-1; InputError for missing or unsupported units."""
    if not units:
        raise InputError(where, "PAR has no units attribute (pass units='MJ m-2 d-1' or 'W m-2')")
    key = re.sub(r"[\s.*^]", "", units.lower())
    key = key.replace("/m2", "m-2").replace("day-1", "d-1").replace("/day", "d-1").replace("/d", "d-1")
    if key not in _UNIT_FACTORS:
        raise InputError(where, f"PAR units {units!r} are not supported (MJ m-2 d-1, kJ m-2 d-1, J m-2 d-1 "
                                f"or a daily-mean W m-2)")
    return _UNIT_FACTORS[key]


# --------------------------------------------------------------------------------------------
# Sources: what each format knows before reading any pixel
# --------------------------------------------------------------------------------------------


@dataclass
class _Source:
    path: Path
    format: str
    variable: str
    units: str | None
    dates: pd.DatetimeIndex
    geo: Georef
    read: Callable  # (window, day indexes) -> (days, h, w) float32, NaN where missing


def _format_of(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise InputError(path, "not found") from None
    except OSError as err:
        raise InputError(path, f"cannot be read ({err.strerror})") from None
    if head[:4] in (b"CDF\x01", b"CDF\x02", b"CDF\x05") or head == b"\x89HDF\r\n\x1a\n":
        return "netcdf"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "geotiff"
    if head[:4] == b"\x0e\x03\x13\x01":
        return "hdf4"
    raise InputError(path, "not a NetCDF, GeoTIFF or HDF4 file")


def _open(path: Path) -> _Source:
    return {"netcdf": _open_netcdf, "geotiff": _open_geotiff, "hdf4": _open_hdf4}[_format_of(path)](path)


# --- CF-NetCDF -------------------------------------------------------------------------------


def _axis(name: str, coord) -> str | None:
    """'X', 'Y' or 'T' for a CF coordinate variable, else None."""
    attrs = coord.attrs
    if str(attrs.get("axis", "")).upper() in ("X", "Y", "T"):
        return str(attrs["axis"]).upper()
    standard, units = str(attrs.get("standard_name", "")), str(attrs.get("units", ""))
    if standard in ("longitude", "projection_x_coordinate", "grid_longitude") or units == "degrees_east":
        return "X"
    if standard in ("latitude", "projection_y_coordinate", "grid_latitude") or units == "degrees_north":
        return "Y"
    if standard == "time" or np.issubdtype(coord.dtype, np.datetime64):
        return "T"
    return {"lon": "X", "longitude": "X", "x": "X", "lat": "Y", "latitude": "Y", "y": "Y"}.get(name.lower())


def _regular_edges(values: np.ndarray, name: str, where) -> tuple[float, float, bool]:
    """(lowest cell edge, step, descending) of a regularly spaced coordinate of cell centres."""
    if values.size < 2:
        raise InputError(where, f"coordinate {name} has {values.size} value(s); its spacing is unknown")
    step = np.diff(values)
    if not np.allclose(step, step[0], rtol=1e-3, atol=0) or step[0] == 0:
        raise InputError(where, f"coordinate {name} is not regularly spaced; only regular grids are read")
    d = abs(float(step[0]))
    return float(values.min()) - d / 2, d, bool(step[0] < 0)


def _netcdf_crs(ds, var, geographic: bool, where):
    from pyproj import CRS as ProjCRS
    from rasterio.crs import CRS

    mapping = var.attrs.get("grid_mapping")
    if mapping and mapping in ds.variables:
        try:
            return CRS.from_wkt(ProjCRS.from_cf(dict(ds[mapping].attrs)).to_wkt())
        except Exception as err:  # pyproj raises several types for unusable CF attributes
            raise InputError(where, f"grid_mapping {mapping!r} does not describe a CRS ({err})") from None
    if geographic:
        return CRS.from_epsg(4326)
    raise InputError(where, f"{var.name} has projected x/y coordinates but no grid_mapping (CRS unknown)")


def _open_netcdf(path: Path) -> _Source:
    import xarray as xr
    from affine import Affine

    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise InputError(path, f"cannot be read as NetCDF ({err})") from None
    with ds:
        name = _pick_par({n: v.attrs for n, v in ds.data_vars.items() if v.ndim >= 2}, path, "variable")
        var = ds[name]
        axes = {dim: _axis(dim, ds[dim]) if dim in ds.coords else None for dim in var.dims}
        xdim = next((d for d, a in axes.items() if a == "X"), None)
        ydim = next((d for d, a in axes.items() if a == "Y"), None)
        others = [d for d in var.dims if d not in (xdim, ydim)]
        if xdim is None or ydim is None:
            raise InputError(path, f"{name} has no georeferencing: no lat/lon or x/y coordinates "
                                   f"among its dimensions {tuple(var.dims)}")
        if len(others) > 1 or (others and axes[others[0]] != "T"):
            raise InputError(path, f"{name} has dimensions {tuple(var.dims)}; expected (time, y, x)")
        if others:
            tdim = others[0]
            index = ds.indexes[tdim]
            if not isinstance(index, pd.DatetimeIndex):
                try:  # non-standard CF calendars decode to cftime
                    index = index.to_datetimeindex()
                except (AttributeError, ValueError) as err:
                    raise InputError(path, f"time coordinate {tdim} does not hold dates ({err})") from None
            dates = pd.DatetimeIndex(index).normalize()
        else:
            tdim, day = None, date_from_name(path.name)
            if day is None:
                raise InputError(path, f"{name} has no time axis and the file name holds no date")
            dates = pd.DatetimeIndex([day])
        xs, ys = ds[xdim].values.astype("f8"), ds[ydim].values.astype("f8")
        geographic = (str(ds[xdim].attrs.get("units", "")).startswith("degree")
                      or xdim.lower() in ("lon", "longitude"))
        crs = _netcdf_crs(ds, var, geographic, path)
        scale = 1000.0 if str(ds[xdim].attrs.get("units", "")) == "km" else 1.0  # CRS units are metres
        x0, dx, x_desc = _regular_edges(xs * scale, xdim, path)
        y0, dy, y_desc = _regular_edges(ys * scale, ydim, path)
        height, width = ys.size, xs.size
        geo = Georef(crs, Affine(dx, 0, x0, 0, -dy, y0 + height * dy), width, height)
        units = var.attrs.get("units")

    def read(win, days):
        # Window rows/columns count from the north-west; the file may store south-up or east-to-west.
        rows = (slice(win.row_off, win.row_off + win.height) if y_desc
                else slice(height - win.row_off - win.height, height - win.row_off))
        cols = (slice(width - win.col_off - win.width, width - win.col_off) if x_desc
                else slice(win.col_off, win.col_off + win.width))
        try:
            with xr.open_dataset(path) as f:
                sel = {ydim: rows, xdim: cols, **({tdim: days} if tdim else {})}
                v = f[name].isel(sel).transpose(*([tdim] if tdim else []), ydim, xdim).values.astype("f4")
        except (OSError, ValueError, RuntimeError) as err:
            raise InputError(path, f"cannot be read as NetCDF ({err})") from None
        v = v.reshape((-1, *v.shape[-2:]))
        return np.ascontiguousarray(v[:, ::1 if y_desc else -1, ::-1 if x_desc else 1])

    return _Source(path, "netcdf", name, units, dates, geo, read)


# --- GeoTIFF ---------------------------------------------------------------------------------


def _band_date(src, band: int) -> pd.Timestamp | None:
    tags = src.tags(band)
    for text in (src.descriptions[band - 1], tags.get("date"), tags.get("DATE"), tags.get("time")):
        if text and (day := date_from_name(str(text))) is not None:
            return day
    return None


def _open_geotiff(path: Path) -> _Source:
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, "raster has no CRS (georeferencing is missing)")
            geo = Georef(src.crs, src.transform, src.width, src.height)
            if src.count == 1:
                day = date_from_name(path.name) or _band_date(src, 1)
                if day is None:
                    raise InputError(path, "no date in the file name (expected e.g. PAR_20200101.tif or "
                                           "*.A2020001.tif) or in the band description")
                dates = [day]
            else:
                dates = [_band_date(src, b) for b in range(1, src.count + 1)]
                if None in dates:
                    raise InputError(path, f"band {dates.index(None) + 1} of {src.count} has no date in its "
                                           f"description or 'date' tag")
            tags = src.tags()
            units = src.units[0] or tags.get("units") or src.tags(1).get("units")
            scales, offsets = np.array(src.scales, "f8"), np.array(src.offsets, "f8")
    except rasterio.errors.RasterioIOError as err:
        raise InputError(path, f"cannot be read as a GeoTIFF ({err})") from None

    def read(win, days):
        try:
            with rasterio.open(path) as src:
                v = src.read([int(d) + 1 for d in days], window=win, masked=True).astype("f4").filled(np.nan)
        except rasterio.errors.RasterioError as err:
            raise InputError(path, f"cannot be read (truncated or corrupt GeoTIFF?): {err}") from None
        return v * scales[days, None, None].astype("f4") + offsets[days, None, None].astype("f4")

    return _Source(path, "geotiff", "band 1" if len(dates) == 1 else f"{len(dates)} bands", units,
                   pd.DatetimeIndex(dates), geo, read)


# --- HDF4 / HDF-EOS --------------------------------------------------------------------------


def _pyhdf(where):
    try:
        from pyhdf.error import HDF4Error
        from pyhdf.SD import SD, SDC
    except ImportError:
        raise InputError(where, HDF4_EXTRA) from None
    return SD, SDC, HDF4Error


def _dms(packed: float) -> float:
    """HDF-EOS packed DMS (DDDMMMSSS.SS) to decimal degrees."""
    sign, value = (-1 if packed < 0 else 1), abs(packed)
    degrees = int(value // 1_000_000)
    minutes = int((value - degrees * 1_000_000) // 1_000)
    seconds = value - degrees * 1_000_000 - minutes * 1_000
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _eos_grid(struct: str, sds: str, shape: tuple[int, ...], where) -> Georef:
    """Georeferencing of ``sds`` from the HDF-EOS StructMetadata.0 text (GCTP_SNSOID or GCTP_GEO)."""
    from rasterio.crs import CRS
    from rasterio.transform import from_bounds

    def field(block, key):
        m = re.search(rf"^\s*{key}=(.+)$", block, re.MULTILINE)
        if m is None:
            raise InputError(where, f"StructMetadata.0 grid of {sds} lacks {key}")
        return m[1].strip()

    def pair(text):
        return tuple(float(v) for v in text.strip("()").split(","))

    blocks = re.findall(r"GROUP=(GRID_\d+)(.*?)END_GROUP=\1", struct, re.DOTALL)
    block = next((b for _, b in blocks if f'DataFieldName="{sds}"' in b), None)
    if block is None:
        raise InputError(where, f"StructMetadata.0 has no grid holding {sds} (no georeferencing)")
    width, height = int(field(block, "XDim")), int(field(block, "YDim"))
    (ulx, uly), (lrx, lry) = pair(field(block, "UpperLeftPointMtrs")), pair(field(block, "LowerRightMtrs"))
    projection = field(block, "Projection")
    if projection == "GCTP_SNSOID":
        params = pair(field(block, "ProjParams"))
        radius = params[0] or 6371007.181  # the MODIS sphere when the file leaves it 0
        crs = CRS.from_proj4(f"+proj=sinu +lon_0={_dms(params[4])} +x_0={params[6]} +y_0={params[7]} "
                             f"+R={radius} +units=m +no_defs")
    elif projection == "GCTP_GEO":  # corners are packed DMS, not metres, despite the key names
        (ulx, uly), (lrx, lry) = (_dms(ulx), _dms(uly)), (_dms(lrx), _dms(lry))
        crs = CRS.from_epsg(4326)
    else:
        raise InputError(where, f"HDF-EOS projection {projection} is not supported (GCTP_SNSOID or GCTP_GEO)")
    if tuple(shape) != (height, width):
        raise InputError(where, f"{sds} is {shape} but its grid is YDim x XDim = {height} x {width}")
    return Georef(crs, from_bounds(ulx, lry, lrx, uly, width, height), width, height)


def _hdf4_file(path, SD, SDC, HDF4Error):
    try:
        return SD(str(path), SDC.READ)
    except HDF4Error as err:
        raise InputError(path, f"cannot be read as HDF4 ({err})") from None


def _sds_shapes(f) -> dict[str, tuple[int, ...]]:
    # pyhdf gives a list of sizes for n-D datasets and a bare int for 1-D ones
    return {name: tuple(np.atleast_1d(info[1]).tolist()) for name, info in f.datasets().items()}


def hdf4_datasets(path: str | PathLike) -> dict[str, tuple[int, ...]]:
    """Scientific datasets (SDS) of an HDF4 file: name -> shape."""
    SD, SDC, HDF4Error = _pyhdf(path)
    f = _hdf4_file(path, SD, SDC, HDF4Error)
    try:
        return _sds_shapes(f)
    except HDF4Error as err:
        raise InputError(path, f"cannot be read as HDF4 ({err})") from None
    finally:
        f.end()


def read_hdf4_sds(path: str | PathLike, sds_name: str, *, window=None) -> tuple[np.ndarray, Georef]:
    """One SDS of an HDF4-EOS grid file as float32 (NaN at fill / outside valid_range) and its georeferencing.

    The grid comes from StructMetadata.0 (UpperLeftPointMtrs / LowerRightMtrs, XDim / YDim; MODIS
    sinusoidal or geographic). Values are ``scale_factor * (stored - add_offset)``: the HDF4
    calibration convention MODIS and GLASS follow (not CF's ``stored * scale + offset``).
    ``window`` (a rasterio Window) reads only that part; the Georef then describes the part.
    """
    from rasterio.windows import transform as window_transform

    SD, SDC, HDF4Error = _pyhdf(path)
    f = _hdf4_file(path, SD, SDC, HDF4Error)
    try:
        names = _sds_shapes(f)
        if sds_name not in names:
            raise InputError(path, f"no dataset {sds_name!r} (it has: {', '.join(names) or 'none'})")
        struct = f.attributes().get("StructMetadata.0")
        if not struct:
            raise InputError(path, "no HDF-EOS StructMetadata.0 (georeferencing is missing)")
        sds = f.select(sds_name)
        try:
            geo = _eos_grid(struct, sds_name, names[sds_name], path)
            attrs = sds.attributes()
            if window is None:
                raw = sds.get()
            else:
                r0, c0 = int(window.row_off), int(window.col_off)
                raw = sds[r0:r0 + int(window.height), c0:c0 + int(window.width)]
        finally:
            sds.endaccess()
    except HDF4Error as err:
        raise InputError(path, f"cannot be read as HDF4 ({err})") from None
    finally:
        f.end()
    raw = np.asarray(raw)
    missing = np.zeros(raw.shape, bool)
    if "_FillValue" in attrs:
        missing |= raw == attrs["_FillValue"]
    if "valid_range" in attrs:
        lo, hi = attrs["valid_range"]
        missing |= (raw < lo) | (raw > hi)
    values = (float(attrs.get("scale_factor", 1.0)) * (raw.astype("f8") - float(attrs.get("add_offset", 0.0))))
    values = np.where(missing, np.nan, values).astype("f4")
    if window is not None:
        geo = Georef(geo.crs, window_transform(window, geo.transform), values.shape[1], values.shape[0])
    return values, geo


def _open_hdf4(path: Path) -> _Source:
    SD, SDC, HDF4Error = _pyhdf(path)
    f = _hdf4_file(path, SD, SDC, HDF4Error)
    try:
        shapes = _sds_shapes(f)
        attrs = {}
        for sds_name in shapes:
            sds = f.select(sds_name)
            attrs[sds_name] = sds.attributes()
            sds.endaccess()
        name = _pick_par({n: a for n, a in attrs.items() if len(shapes[n]) == 2}, path, "dataset")
        struct = f.attributes().get("StructMetadata.0")
    except HDF4Error as err:
        raise InputError(path, f"cannot be read as HDF4 ({err})") from None
    finally:
        f.end()
    if not struct:
        raise InputError(path, "no HDF-EOS StructMetadata.0 (georeferencing is missing)")
    day = date_from_name(path.name)
    if day is None:
        raise InputError(path, "no date in the file name (expected e.g. GLASS.A2020001.hdf)")
    geo = _eos_grid(struct, name, shapes[name], path)

    def read(win, days):
        return read_hdf4_sds(path, name, window=win)[0][None]

    return _Source(path, "hdf4", name, attrs[name].get("units"), pd.DatetimeIndex([day]), geo, read)


# --------------------------------------------------------------------------------------------
# Reading onto a grid
# --------------------------------------------------------------------------------------------


def _expand(paths) -> list[Path]:
    items = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    files = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in PAR_SUFFIXES)
            if not found:
                raise InputError(item, f"no PAR file ({', '.join(PAR_SUFFIXES)}) here")
            files.extend(found)
        else:
            files.append(item)
    if not files:
        raise InputError("PAR", "no PAR file given")
    return files


def _day(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).normalize()


def read_par(paths, grid: Grid, *, start=None, end=None, units: str | None = None):
    """Daily PAR (MJ m-2 d-1) on ``grid``: xarray.DataArray (time, y, x), float32, NaN where missing.

    ``paths``: a file, a folder of PAR files, or a list of them (NetCDF, GeoTIFF, HDF4; see the
    module docstring). ``start`` / ``end`` (inclusive dates) keep part of the series. ``units``
    declares the units of files that do not say (GeoTIFFs often) and overrides the files' own.
    Bilinear resampling: PAR varies smoothly and its cells are much coarser than the grid.
    Bad input (unreadable file, no georeferencing, no cover of the grid, all-missing data, a date
    twice) raises InputError naming the file.
    """
    first, last = _day(start), _day(end)
    files = _expand(paths)
    sources, seen = [], {}
    for path in files:
        src = _open(path)
        keep = np.ones(len(src.dates), bool)
        if first is not None:
            keep &= src.dates >= first
        if last is not None:
            keep &= src.dates <= last
        if src.dates.has_duplicates:
            raise InputError(path, f"{src.dates[src.dates.duplicated()][0].date()} occurs twice: not a daily series")
        for day in src.dates[keep]:
            if day in seen:
                raise InputError(path, f"{day.date()} is also in {seen[day]}")
            seen[day] = path.name
        if keep.any():
            sources.append((src, np.flatnonzero(keep), units_factor(units or src.units, path)))
    if not sources:
        raise InputError(files[0], f"no PAR day between {start or 'the first'} and {end or 'the last'}")

    out = np.empty((len(seen), *grid.shape), "f4")  # filled once, in date order below
    order = {day: i for i, day in enumerate(sorted(seen))}
    for src, days, factor in sources:
        win, geo = _window(src.geo, grid, src.path)
        valid = False
        for i in range(0, len(days), _CHUNK_DAYS):  # a few weeks at a time: memory stays bounded
            part = days[i:i + _CHUNK_DAYS]
            data = src.read(win, part) * np.float32(factor)
            valid = valid or not np.isnan(data).all()
            out[[order[d] for d in src.dates[part]]] = _warp(data, geo, grid, src.path)
        if not valid:
            raise InputError(src.path, "PAR is all missing (NaN/fill) over the grid")
    time = np.array(sorted(seen), dtype="datetime64[ns]")
    return to_dataarray(out, grid, ("time", "y", "x"), coords={"time": time}, name="par",
                        attrs={"units": UNITS, "long_name": "daily photosynthetically active radiation",
                               "source": ", ".join(sorted({s.path.name for s, _, _ in sources}))})


# --------------------------------------------------------------------------------------------
# Windows and city means
# --------------------------------------------------------------------------------------------


def aggregate(par, days: int):
    """Sums of daily PAR over consecutive ``days``-day windows (15, 30, 60 or 90; else ValueError).

    Windows are anchored at January 1 of each year (day-of-year 1-15, 16-30, ... for 15 days), as
    the paper's granularities (half-month, month, two months, quarter) are calendar-like. A window
    is kept only when every one of its days is in the series: the days left at the end of a year
    (5 or 6: 365 is no multiple of 15, 30, 60 or 90) and windows cut by the series' ends or gaps
    are dropped. A pixel that is NaN on any day of a window is NaN in its sum.

    Returns (time, ...) labelled by window start, with ``window_start`` and ``window_end`` (last
    day, inclusive) coordinates and units MJ m-2 per window.
    """
    import xarray as xr

    if days not in WINDOW_DAYS:
        raise ValueError(f"PAR windows are {', '.join(map(str, WINDOW_DAYS))} days, not {days}")
    time = pd.DatetimeIndex(par["time"].values).normalize()
    if time.has_duplicates:
        raise ValueError("the PAR series has a day twice")
    year_start = time.to_period("Y").to_timestamp()
    starts = year_start + pd.to_timedelta((time - year_start).days // days * days, unit="D")
    sums, kept = [], []
    for begin in starts.unique().sort_values():
        end = begin + pd.Timedelta(days=days - 1)
        members = np.flatnonzero(starts == begin)
        if end.year == begin.year and len(members) == days:
            sums.append(par.isel(time=members).sum("time", skipna=False))
            kept.append(begin)
    if not kept:
        where = par.attrs.get("source") or "PAR series"
        raise InputError(where, f"no complete {days}-day window between {time.min().date()} and {time.max().date()}")
    kept = pd.DatetimeIndex(kept)
    out = xr.concat(sums, dim="time").assign_coords(
        time=kept.to_numpy(), window_start=("time", kept.to_numpy()),
        window_end=("time", (kept + pd.Timedelta(days=days - 1)).to_numpy()))
    out.attrs = {**par.attrs, "units": f"MJ m-2 ({days}-day sum)", "window_days": days,
                 "window_anchor": "January 1 of each year"}
    return out


def city_series(par) -> pd.Series:
    """The grid mean of PAR per time step (NaN pixels ignored), indexed by date."""
    mean = par.mean(dim=[d for d in par.dims if d != "time"], skipna=True)
    series = pd.Series(mean.values.astype("f8"), index=pd.DatetimeIndex(par["time"].values, name="time"),
                       name=par.name or "par")
    series.attrs["units"] = par.attrs.get("units", UNITS)
    return series


# --------------------------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------------------------

def describe(path) -> dict:
    """Facts about a PAR file for ``urbaneo inspect --json``.

    Statistics are over every non-missing value of the whole file, in MJ m-2 d-1 when the file's
    units are known (``stats_units`` says which).
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window

    path = Path(path)
    src = _open(path)
    try:
        factor, stats_units = units_factor(src.units, path), UNITS
    except InputError:
        factor, stats_units = 1.0, src.units
    full = Window(0, 0, src.geo.width, src.geo.height)
    stats = RunningStats()
    for i in range(0, len(src.dates), _CHUNK_DAYS):
        v = src.read(full, np.arange(i, min(i + _CHUNK_DAYS, len(src.dates))))
        stats.add(v[~np.isnan(v)].astype("f8") * factor)
    if stats.count == 0:
        raise InputError(path, "PAR is all missing (NaN/fill)")
    bounds = src.geo.bounds
    lonlat = transform_bounds(src.geo.crs, "EPSG:4326", *bounds, densify_pts=21)
    return {
        "kind": "par",
        "path": str(path),
        "format": src.format,
        "variable": src.variable,
        "units": src.units,
        "crs": src.geo.crs.to_string(),
        "bounds": [float(b) for b in bounds],
        "lonlat_bounds": [round(float(b), 6) for b in lonlat],
        "resolution": [float(r) for r in src.geo.res],
        "shape": [src.geo.height, src.geo.width],
        "time_start": src.dates.min().date().isoformat(),
        "time_end": src.dates.max().date().isoformat(),
        "days": len(src.dates),
        "stats_units": stats_units,
        "stats": {"min": round(stats.low, 6), "mean": round(stats.total / stats.count, 6),
                  "max": round(stats.high, 6),
                  "valid_fraction": round(stats.count / (len(src.dates) * src.geo.width * src.geo.height), 6)},
    }
