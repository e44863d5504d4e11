"""GF-2 PMS (and other 4-band B, G, R, NIR) very-high-resolution images onto a city grid.

DN become radiance with CRESDA's linear calibration L = gain * DN + offset, and TOA reflectance
with rho = pi * L * d^2 / (ESUN * cos(sun zenith)). The constants come from, in this order: the
arguments (a city's config), the GeoTIFF tags (per band GAIN / OFFSET / ESUN, dataset
SUN_ELEVATION / ACQUISITION_DATE, as urbaneo's demo writes them), and the ``<name>.xml``
ProductMetaData sidecar GF-2 products ship with (SolarZenith, ReceiveTime, Radiometry/Band).

Map-projected (L2) images are warped with their geotransform; L1A images, which carry RPCs and no
geotransform, are orthorectified with the RPCs by GDAL's RPC transformer (flat terrain at height 0).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

import numpy as np

from urbaneo.errors import InputError
from urbaneo.readers._common import RunningStats, strips
from urbaneo.grid import Grid, to_dataarray, utm_epsg, warp_to_grid
from urbaneo.sun import earth_sun_distance

BANDS = ("blue", "green", "red", "nir")  # the order of the returned band coordinate
UNITS = ("reflectance", "radiance", "dn")


@contextmanager
def _open(path: Path):
    """Open a raster quietly (RPC-only files have no geotransform); unreadable -> InputError naming it."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            src = rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise InputError(path, f"cannot be read as a raster ({err})") from None
    with src:
        if src.count != 4:
            raise InputError(path, f"has {src.count} band{'s' * (src.count != 1)}; "
                                   "a 4-band B, G, R, NIR image is needed")
        if src.crs is None and not _rpc_only(src):
            raise InputError(path, "has neither a CRS nor RPCs, so it cannot be placed on the map")
        yield src


def _rpc_only(src) -> bool:
    """An L1A-type image: RPCs and no geotransform (a map transform wins when there is one)."""
    return src.rpcs is not None and src.transform.is_identity and src.crs is None


def _footprint(src, crs) -> tuple:
    """(transform, width, height) of the image resampled to ``crs`` at its own pixel size."""
    from rasterio.warp import calculate_default_transform

    if _rpc_only(src):
        return calculate_default_transform("EPSG:4326", crs, src.width, src.height, rpcs=src.rpcs)
    return calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)


def _bounds(transform, width: int, height: int) -> tuple[float, float, float, float]:
    return (transform.c, transform.f + height * transform.e, transform.c + width * transform.a, transform.f)


def _check_order(band_order) -> list[str]:
    order = [str(b).lower() for b in band_order]
    if sorted(order) != sorted(BANDS):
        raise InputError("band_order", f"must name blue, green, red and nir once each, got {list(band_order)}")
    return order


def _per_band(value, name: str) -> list[float] | None:
    """A config value for every file band: one number for all, or four in the file's band order."""
    if value is None:
        return None
    values = [_number(value, name, "value")] * 4 if np.isscalar(value) else [_number(v, name, "value") for v in value]
    if len(values) != 4:
        raise InputError(name, f"needs one value or four (one per file band), got {len(values)}")
    return values


def _date(value, where) -> dt.datetime:
    """A date, datetime or ISO string as a (naive UTC) datetime; a bare date means noon."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(12))
    try:
        text = str(value).strip().replace(" ", "T")
        return dt.datetime.fromisoformat(text).replace(tzinfo=None) if "T" in text else \
            dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12))
    except ValueError:
        raise InputError(where, f"acquisition date {value!r} is not an ISO date") from None


def _number(text, where, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InputError(where, f"{what} {text!r} is not a number") from None


def _sidecar(path: Path) -> dict:
    """Facts from the GF-2 ProductMetaData XML beside the image (empty when there is none)."""
    xml = path.with_suffix(".xml")
    if not xml.is_file():
        return {}
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as err:
        raise InputError(xml, f"is not valid XML ({err})") from None
    facts: dict = {}
    for tag, key in (("SatelliteID", "satellite"), ("SensorID", "sensor"), ("ReceiveTime", "acquired"),
                     ("ProductLevel", "product_level")):
        if root.findtext(tag):
            facts[key] = root.findtext(tag).strip()
    if root.findtext("SolarZenith"):
        facts["sun_elevation"] = 90.0 - _number(root.findtext("SolarZenith"), xml, "SolarZenith")
    bands = sorted(root.iter("Band"), key=lambda b: int(b.get("id", 0)))
    for key in ("gain", "offset", "esun"):
        if len(bands) == 4 and all(b.get(key) is not None for b in bands):
            facts[key] = [_number(b.get(key), xml, f"Band {key}") for b in bands]
    return facts


def _metadata(src, path: Path) -> dict:
    """Sensor, date, sun elevation and per-band calibration from the tags, else the XML sidecar."""
    tags = src.tags()
    band_tags = [src.tags(i) for i in range(1, 5)]
    facts = _sidecar(path)
    for key, tag in (("satellite", "SATELLITE"), ("sensor", "SENSOR"), ("product_level", "PRODUCT_LEVEL")):
        if tag in tags:
            facts[key] = tags[tag]
    if "ACQUISITION_DATE" in tags:
        facts["acquired"] = f"{tags['ACQUISITION_DATE']}T{tags.get('ACQUISITION_TIME_UTC', '12:00:00')}"
    if "SUN_ELEVATION" in tags:
        facts["sun_elevation"] = _number(tags["SUN_ELEVATION"], path, "SUN_ELEVATION tag")
    for key in ("gain", "offset", "esun"):
        if all(key.upper() in t for t in band_tags):
            facts[key] = [_number(t[key.upper()], path, f"{key.upper()} band tag") for t in band_tags]
    return facts


def _calibration(facts: dict, path: Path, units: str, gain, offset, esun, acquired, sun_elevation):
    """Per file band (scale, add) so that the requested quantity = scale * DN + add."""
    if units == "dn":
        return np.ones(4, np.float32), np.zeros(4, np.float32), {}
    gain = _per_band(gain, "gain") or facts.get("gain")
    # CRESDA has published gains without offsets since 2015: a missing offset is zero
    offset = _per_band(offset, "offset") or facts.get("offset") or [0.0] * 4
    if gain is None:
        raise InputError(path, f"no radiometric gain (GAIN band tags, the .xml sidecar or the gain setting) "
                               f"to compute {units}")
    scale, add = np.array(gain, np.float64), np.array(offset, np.float64)
    used = {"gain": list(gain), "offset": list(offset)}
    if units == "reflectance":
        esun = _per_band(esun, "esun") or facts.get("esun")
        elevation = sun_elevation if sun_elevation is not None else facts.get("sun_elevation")
        when = acquired if acquired is not None else facts.get("acquired")
        for value, what in ((esun, "solar irradiance ESUN (ESUN band tags or the esun setting)"),
                            (elevation, "sun elevation (SUN_ELEVATION tag or the sun_elevation setting)"),
                            (when, "acquisition date (ACQUISITION_DATE tag or the acquired setting)")):
            if value is None:
                raise InputError(path, f"no {what} to compute reflectance")
        if not 0 < float(elevation) <= 90:
            raise InputError(path, f"sun elevation {elevation} deg is not above the horizon")
        when = _date(when, path)
        d = earth_sun_distance(when)
        factor = math.pi * d**2 / (np.array(esun, np.float64) * math.sin(math.radians(float(elevation))))
        scale, add = scale * factor, add * factor
        used.update(esun=list(esun), sun_elevation=float(elevation), date=when.date().isoformat(),
                    earth_sun_distance=d)
    return scale.astype(np.float32), add.astype(np.float32), used


def _warp_rpc(src, grid: Grid, resampling: str) -> np.ndarray:
    """Orthorectify an RPC-only image onto ``grid`` (GDAL's RPC transformer, terrain at height 0)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    x0, y0, x1, y1 = _bounds(*_footprint(src, grid.crs))
    gx0, gy0, gx1, gy1 = grid.bounds
    if x1 <= gx0 or x0 >= gx1 or y1 <= gy0 or y0 >= gy1:
        raise InputError(src.name, f"RPC footprint does not overlap the city grid {grid.crs} "
                                   f"{tuple(round(b) for b in grid.bounds)}")
    out = np.full((4, *grid.shape), np.nan, np.float32)
    # reading through the band keeps GDAL's chunked warp: memory is bounded by the grid, not the image
    reproject(rasterio.band(src, [1, 2, 3, 4]), out, rpcs=src.rpcs, src_crs="EPSG:4326", src_nodata=src.nodata,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
              resampling=Resampling[resampling])
    return out


def overlaps(path: str | PathLike, grid: Grid) -> bool:
    """Does the image reach into ``grid``? The same test ``read_vhr`` fails on (map bounds, or the RPC
    footprint), so a blockwise reader can skip the blocks an image misses."""
    from rasterio.warp import transform_bounds

    with _open(Path(path)) as src:
        if _rpc_only(src):
            x0, y0, x1, y1 = _bounds(*_footprint(src, grid.crs))
        else:
            x0, y0, x1, y1 = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    gx0, gy0, gx1, gy1 = grid.bounds
    return x1 > gx0 and x0 < gx1 and y1 > gy0 and y0 < gy1


def read_vhr(path: str | PathLike, grid: Grid, *, band_order=BANDS, gain=None, offset=None, esun=None,
             units: str = "reflectance", acquired=None, sun_elevation=None):
    """A 4-band VHR image on ``grid`` as a (band, y, x) float32 DataArray, bands blue, green, red, nir.

    ``band_order`` names the file's bands (GF-2: B, G, R, NIR; NAIP: R, G, B, NIR). ``units``:
    "reflectance" (TOA, needs gain, ESUN, sun elevation and date), "radiance" (W m-2 sr-1 um-1,
    needs gain) or "dn". ``gain`` / ``offset`` / ``esun`` are one number or four in the file's band
    order and override the file's values; a missing offset is 0. Resampling is average where the
    grid is coarser than the image, bilinear otherwise; pixels outside the image or at nodata are NaN.
    """
    import rasterio
    from rasterio._err import CPLE_BaseError

    if units not in UNITS:
        raise InputError("units", f"must be one of {', '.join(UNITS)}, got {units!r}")
    order = _check_order(band_order)
    path = Path(path)
    with _open(path) as src:
        facts = _metadata(src, path)
        # a missing constant fails before any pixel is read
        scale, add, used = _calibration(facts, path, units, gain, offset, esun, acquired, sun_elevation)
        transform, _, _ = _footprint(src, grid.crs)
        resampling = "average" if grid.res > 1.01 * abs(transform.a) else "bilinear"
        rpc = _rpc_only(src)
        try:
            dn = _warp_rpc(src, grid, resampling) if rpc else warp_to_grid(src, grid, resampling=resampling)
        except (rasterio.errors.RasterioError, CPLE_BaseError) as err:
            raise InputError(path, f"cannot be read as a raster ({err})") from None
    # calibration is linear per band, so calibrating the resampled DN equals resampling the quantity
    data = dn * scale[:, None, None] + add[:, None, None]
    data = data[[order.index(b) for b in BANDS]]
    attrs = {"units": {"reflectance": "1", "radiance": "W m-2 sr-1 um-1", "dn": "DN"}[units],
             "quantity": "TOA reflectance" if units == "reflectance" else units,
             "source": str(path), "sensor": _sensor(facts), "georeferencing": "RPC" if rpc else "map",
             "resampling": resampling, "file_band_order": " ".join(order)}
    attrs.update({k: (" ".join(f"{x:g}" for x in v) if isinstance(v, list) else v) for k, v in used.items()})
    return to_dataarray(data.astype(np.float32), grid, ("band", "y", "x"), coords={"band": list(BANDS)},
                        name=units, attrs=attrs)


def _sensor(facts: dict) -> str:
    return f"{facts['satellite']}/{facts['sensor']}" if "satellite" in facts and "sensor" in facts else "unknown"


def describe(path: str | PathLike) -> dict:
    """Facts about a 4-band VHR image for ``urbaneo inspect --json``; DN statistics over non-nodata pixels."""
    import rasterio
    from rasterio.warp import transform_bounds

    path = Path(path)
    with _open(path) as src:
        facts = _metadata(src, path)
        if _rpc_only(src):
            transform, width, height = _footprint(src, "EPSG:4326")
            lon0, lat0, lon1, lat1 = _bounds(transform, width, height)
            # ground sample distance in metres, from the footprint in the local UTM zone
            utm, _, _ = _footprint(src, f"EPSG:{utm_epsg((lon0 + lon1) / 2, (lat0 + lat1) / 2)}")
            crs, bounds, res = "RPC", [lon0, lat0, lon1, lat1], [abs(utm.a), abs(utm.e)]
        else:
            crs, bounds, res = src.crs.to_string(), list(src.bounds), list(src.res)
            lon0, lat0, lon1, lat1 = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        stats = [RunningStats() for _ in range(src.count)]
        try:
            for window in strips(src.height, src.width):
                for band, acc in zip(src.read(window=window, masked=True), stats):
                    acc.add(band.compressed())
        except rasterio.errors.RasterioError as err:
            raise InputError(path, f"cannot be read as a raster ({err})") from None
        bands = [{"band": i + 1, "description": src.descriptions[i], **acc.as_dict()} for i, acc in enumerate(stats)]
        dtype, nodata, shape = src.dtypes[0], src.nodata, src.shape
    acquired = facts.get("acquired")
    return {
        "kind": "vhr", "path": str(path), "sensor": _sensor(facts), "product_level": facts.get("product_level"),
        "crs": crs, "bounds": bounds, "lonlat_bounds": [lon0, lat0, lon1, lat1], "resolution": res,
        "shape": list(shape), "dtype": dtype, "nodata": nodata,
        "date": _date(acquired, path).date().isoformat() if acquired else None,
        "sun_elevation": facts.get("sun_elevation"),
        "calibration": {k: facts[k] for k in ("gain", "offset", "esun") if k in facts} or None,
        "bands": bands,
    }
