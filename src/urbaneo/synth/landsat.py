"""Write a synthetic Landsat 8 Collection 2 Level-1 (L1TP) scene laid out as USGS ships one.

The demo city needs a Landsat scene that the real reader code can ingest unchanged: band GeoTIFFs
in DN, a QA_PIXEL band and an MTL (.txt and .json) whose structure and number formatting follow
real C2 L1TP MTL files.  Output is byte-identical for identical input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from os import PathLike
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from urbaneo.atomic import atomic_dir
from urbaneo.readers.landsat import QA_FILL, QA_PIXEL_FILL_VALUE
from urbaneo.sun import earth_sun_distance
from urbaneo.synth.formats import write_geotiff

# The demo writes blue, green, red and NIR only, so the MTL lists only these bands; the other
# OLI/TIRS bands (coastal, SWIR, pan, cirrus, thermal) and their groups are absent.
BANDS = ("B2", "B3", "B4", "B5")

# Band-effective solar irradiance (W m-2 um-1) implied by real C2 L1 MTLs:
# RADIANCE_ADD / REFLECTANCE_ADD * pi * EARTH_SUN_DISTANCE**2.  All four real Landsat 8 MTLs in
# shared/data/real give these values to within 0.001, so radiance constants written from them
# match what USGS would write for the same date.
_SOLAR_IRRADIANCE = {"B2": 2019.612, "B3": 1861.055, "B4": 1569.346, "B5": 960.362}

# Level-1 reflectance scaling as USGS writes it (the same for every band and scene).
_REFLECTANCE_MULT_TEXT = "2.0000E-05"
_REFLECTANCE_ADD_TEXT = "-0.100000"
QCAL_MIN, QCAL_MAX = 1, 65535

_SPACECRAFT_IDS = {"LC08": "LANDSAT_8", "LC09": "LANDSAT_9"}
_ORIGIN = "Synthetic scene written by urbaneo (not a USGS product)"


def l1_product_id(*, spacecraft: str = "LC08", wrs_path: int, wrs_row: int,
                  acquired: dt.date, processed: dt.date) -> str:
    """The C2 L1TP product id, e.g. ``LC08_L1TP_120038_20200415_20200423_02_T1`` (also the folder name)."""
    if spacecraft not in _SPACECRAFT_IDS:
        raise ValueError(f"spacecraft must be one of {sorted(_SPACECRAFT_IDS)}, got {spacecraft!r}")
    if not (1 <= wrs_path <= 233 and 1 <= wrs_row <= 248):
        raise ValueError(f"WRS-2 path/row {wrs_path}/{wrs_row} out of range")
    if processed < acquired:
        raise ValueError(f"processed {processed} is before acquired {acquired}")
    return f"{spacecraft}_L1TP_{wrs_path:03d}{wrs_row:03d}_{acquired:%Y%m%d}_{processed:%Y%m%d}_02_T1"


def _q(text: str) -> str:
    """An MTL string value: quoted in the .txt, plain in the .json."""
    return f'"{text}"'


def _scene_time(acquired: dt.date, scene_center_time: str) -> dt.datetime:
    m = re.fullmatch(r"(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z", scene_center_time)
    if m is None:
        raise ValueError(f"scene_center_time must look like 02:45:12.1234560Z, got {scene_center_time!r}")
    seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return dt.datetime.combine(acquired, dt.time()) + dt.timedelta(seconds=seconds)


def _check_grid(transform: Affine, epsg: int) -> int:
    """Return the UTM zone; USGS L1 grids are north-up WGS84 / UTM north (negative northings south of the equator)."""
    if not 32601 <= epsg <= 32660:
        raise ValueError(f"epsg must be a WGS84 / UTM north zone (32601..32660) as USGS uses, got {epsg}")
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e != -transform.a:
        raise ValueError(f"transform must be north-up with square pixels, got {tuple(transform)[:6]}")
    return epsg - 32600


def _to_dn(rho: np.ndarray, fill: np.ndarray, mult: float, add: float, sin_elev: float) -> np.ndarray:
    """Invert the USGS TOA formula rho = (mult*DN + add) / sin(elev); fill -> 0, others clipped to 1..65535."""
    dn = np.rint((rho.astype(np.float64) * sin_elev - add) / mult)
    dn = np.clip(np.nan_to_num(dn, nan=0.0), QCAL_MIN, QCAL_MAX).astype(np.uint16)
    dn[fill] = 0
    return dn


def _metadata(*, pid: str, spacecraft: str, wrs_path: int, wrs_row: int, acquired: dt.date,
              processed: dt.date, bands: list[str], saturated: dict[str, bool], shape: tuple[int, int],
              transform: Affine, epsg: int, zone: int, sun_azimuth: str, sun_elevation: str,
              esd: float, cloud_cover: float, scene_center_time: str) -> dict[str, dict[str, str]]:
    """The MTL as ``{group: {field: text}}``, in USGS's group/field order and number formats."""
    nums = [b[1:] for b in bands]
    files = {f"FILE_NAME_BAND_{n}": _q(f"{pid}_B{n}.TIF") for n in nums}
    files["FILE_NAME_QUALITY_L1_PIXEL"] = _q(f"{pid}_QA_PIXEL.TIF")
    files["FILE_NAME_METADATA_ODL"] = _q(f"{pid}_MTL.txt")
    common = {"ORIGIN": _q(_ORIGIN)}  # no DOI: this is not a USGS product

    height, width = shape
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    corners = {}  # USGS corner coordinates are the centres of the corner pixels
    for name, (col, row) in {"UL": (0, 0), "UR": (width - 1, 0), "LL": (0, height - 1),
                             "LR": (width - 1, height - 1)}.items():
        x = transform.xoff + transform.a * (col + 0.5)  # north-up (checked), so no rotation terms
        y = transform.yoff + transform.e * (row + 0.5)
        lon, lat = to_lonlat.transform(x, y)
        corners[name] = (x, y, lon, lat)

    projection = {"MAP_PROJECTION": _q("UTM"), "DATUM": _q("WGS84"), "ELLIPSOID": _q("WGS84"),
                  "UTM_ZONE": str(zone), "GRID_CELL_SIZE_REFLECTIVE": f"{transform.a:.2f}"}
    scene_doy = acquired.timetuple().tm_yday
    mult, add = float(_REFLECTANCE_MULT_TEXT), float(_REFLECTANCE_ADD_TEXT)
    # Radiance per unit of (un-sun-corrected) reflectance for this date: ESUN / (pi d^2).
    rad_per_refl = {b: _SOLAR_IRRADIANCE[b] / (math.pi * esd**2) for b in bands}
    refl_max, refl_min = mult * QCAL_MAX + add, mult * QCAL_MIN + add

    return {
        "PRODUCT_CONTENTS": {
            **common,
            "LANDSAT_PRODUCT_ID": _q(pid),
            "PROCESSING_LEVEL": _q("L1TP"),
            "COLLECTION_NUMBER": "02",
            "COLLECTION_CATEGORY": _q("T1"),
            "OUTPUT_FORMAT": _q("GEOTIFF"),
            **files,
            **{f"DATA_TYPE_BAND_{n}": _q("UINT16") for n in nums},
            "DATA_TYPE_QUALITY_L1_PIXEL": _q("UINT16"),
        },
        "IMAGE_ATTRIBUTES": {
            "SPACECRAFT_ID": _q(_SPACECRAFT_IDS[spacecraft]),
            "SENSOR_ID": _q("OLI_TIRS"),
            "WRS_TYPE": "2",
            "WRS_PATH": str(wrs_path),
            "WRS_ROW": str(wrs_row),
            "NADIR_OFFNADIR": _q("NADIR"),
            "TARGET_WRS_PATH": str(wrs_path),
            "TARGET_WRS_ROW": str(wrs_row),
            "DATE_ACQUIRED": acquired.isoformat(),
            "SCENE_CENTER_TIME": _q(scene_center_time),
            "STATION_ID": _q("LGN"),
            "CLOUD_COVER": f"{cloud_cover:.2f}",
            "CLOUD_COVER_LAND": f"{cloud_cover:.2f}",  # the synthetic scene has no sea mask
            "IMAGE_QUALITY_OLI": "9",
            **{f"SATURATION_BAND_{b[1:]}": _q("Y" if saturated[b] else "N") for b in bands},
            "SUN_AZIMUTH": sun_azimuth,
            "SUN_ELEVATION": sun_elevation,
            "EARTH_SUN_DISTANCE": f"{esd:.7f}",
        },
        "PROJECTION_ATTRIBUTES": {
            **projection,
            "REFLECTIVE_LINES": str(height),
            "REFLECTIVE_SAMPLES": str(width),
            "ORIENTATION": _q("NORTH_UP"),
            **{f"CORNER_{c}_{k}_PRODUCT": f"{v[i]:.5f}" for c, v in corners.items()
               for k, i in (("LAT", 3), ("LON", 2))},
            **{f"CORNER_{c}_PROJECTION_{k}_PRODUCT": f"{v[i]:.3f}" for c, v in corners.items()
               for k, i in (("X", 0), ("Y", 1))},
        },
        "LEVEL1_PROCESSING_RECORD": {
            **common,
            "LANDSAT_SCENE_ID": _q(f"LC{spacecraft[3]}{wrs_path:03d}{wrs_row:03d}{acquired.year}{scene_doy:03d}LGN00"),
            "LANDSAT_PRODUCT_ID": _q(pid),
            "PROCESSING_LEVEL": _q("L1TP"),
            "COLLECTION_CATEGORY": _q("T1"),
            "OUTPUT_FORMAT": _q("GEOTIFF"),
            # A fixed time of day keeps the output reproducible.
            "DATE_PRODUCT_GENERATED": f"{processed.isoformat()}T00:00:00Z",
            "PROCESSING_SOFTWARE_VERSION": _q("URBANEO_SYNTH"),
            **files,
        },
        "LEVEL1_MIN_MAX_RADIANCE": {
            f"RADIANCE_{kind}_BAND_{b[1:]}": f"{rad_per_refl[b] * r:.5f}"
            for b in bands for kind, r in (("MAXIMUM", refl_max), ("MINIMUM", refl_min))
        },
        "LEVEL1_MIN_MAX_REFLECTANCE": {
            f"REFLECTANCE_{kind}_BAND_{b[1:]}": f"{r:.6f}"
            for b in bands for kind, r in (("MAXIMUM", refl_max), ("MINIMUM", refl_min))
        },
        "LEVEL1_MIN_MAX_PIXEL_VALUE": {
            f"QUANTIZE_CAL_{kind}_BAND_{b[1:]}": str(q)
            for b in bands for kind, q in (("MAX", QCAL_MAX), ("MIN", QCAL_MIN))
        },
        "LEVEL1_RADIOMETRIC_RESCALING": {
            **{f"RADIANCE_MULT_BAND_{b[1:]}": f"{rad_per_refl[b] * mult:.4E}" for b in bands},
            **{f"RADIANCE_ADD_BAND_{b[1:]}": f"{rad_per_refl[b] * add:.5f}" for b in bands},
            **{f"REFLECTANCE_MULT_BAND_{b[1:]}": _REFLECTANCE_MULT_TEXT for b in bands},
            **{f"REFLECTANCE_ADD_BAND_{b[1:]}": _REFLECTANCE_ADD_TEXT for b in bands},
        },
        "LEVEL1_PROJECTION_PARAMETERS": {
            **projection,
            "ORIENTATION": _q("NORTH_UP"),
            "RESAMPLING_OPTION": _q("CUBIC_CONVOLUTION"),
        },
    }


def _render_odl(groups: dict[str, dict[str, str]]) -> str:
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for group, fields in groups.items():
        lines.append(f"  GROUP = {group}")
        lines += [f"    {key} = {text}" for key, text in fields.items()]
        lines.append(f"  END_GROUP = {group}")
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END"]
    return "\n".join(lines) + "\n"


def _render_json(groups: dict[str, dict[str, str]]) -> str:
    # USGS's JSON MTL: one line, every value a string, quotes of the .txt dropped.
    unquoted = {g: {k: t[1:-1] if t.startswith('"') else t for k, t in f.items()} for g, f in groups.items()}
    return json.dumps({"LANDSAT_METADATA_FILE": unquoted})


def write_l1_scene(
    out_dir: str | PathLike,
    *,
    spacecraft: str = "LC08",
    wrs_path: int,
    wrs_row: int,
    acquired: dt.date,
    processed: dt.date,
    toa: dict[str, np.ndarray],
    qa: np.ndarray,
    transform: Affine,
    epsg: int,
    sun_azimuth: float,
    sun_elevation: float,
    cloud_cover: float,
    scene_center_time: str = "02:45:12.1234560Z",
) -> Path:
    """Write ``out_dir/<product id>/`` with B2..B5 (as given in ``toa``), QA_PIXEL and the MTL (.txt, .json).

    ``toa`` maps band names to float TOA reflectance (NaN = fill, exactly where bit 0 of ``qa`` is
    set); ``qa`` is a C2 QA_PIXEL array (see ``encode_qa_pixel``); ``cloud_cover`` is in percent.
    The folder appears atomically; returns its path.
    """
    pid = l1_product_id(spacecraft=spacecraft, wrs_path=wrs_path, wrs_row=wrs_row,
                        acquired=acquired, processed=processed)
    zone = _check_grid(transform, epsg)
    qa = np.asarray(qa)
    if qa.ndim != 2 or qa.dtype != np.uint16:
        raise ValueError(f"qa must be a 2-D uint16 array, got {qa.dtype} {qa.shape}")
    bands = [b for b in BANDS if b in toa]
    if not bands or set(toa) - set(BANDS):
        raise ValueError(f"toa must map some of {BANDS} to arrays, got {sorted(toa)}")
    if not 0 < sun_elevation <= 90:
        raise ValueError(f"sun_elevation {sun_elevation} is not in (0, 90]")
    if not 0 <= cloud_cover <= 100:
        raise ValueError(f"cloud_cover {cloud_cover} is not a percentage")

    # Convert with the values exactly as the MTL states them, so a reader recovers the input.
    elevation_text = f"{sun_elevation:.8f}"
    sin_elev = math.sin(math.radians(float(elevation_text)))
    mult, add = float(_REFLECTANCE_MULT_TEXT), float(_REFLECTANCE_ADD_TEXT)
    fill = (qa >> QA_FILL & 1).astype(bool)
    dns, saturated = {}, {}
    for b in bands:
        rho = np.asarray(toa[b])
        if rho.shape != qa.shape:
            raise ValueError(f"toa[{b!r}] has shape {rho.shape}, qa has {qa.shape}")
        differ = int(np.count_nonzero(np.isnan(rho) != fill))
        if differ:
            raise ValueError(f"toa[{b!r}]: NaN must be exactly the QA fill pixels; {differ} pixels differ")
        dns[b] = _to_dn(rho, fill, mult, add, sin_elev)
        saturated[b] = bool((dns[b] == QCAL_MAX).any())

    esd = earth_sun_distance(_scene_time(acquired, scene_center_time))
    groups = _metadata(
        pid=pid, spacecraft=spacecraft, wrs_path=wrs_path, wrs_row=wrs_row, acquired=acquired,
        processed=processed, bands=bands, saturated=saturated, shape=qa.shape, transform=transform,
        epsg=epsg, zone=zone, sun_azimuth=f"{sun_azimuth:.8f}", sun_elevation=elevation_text,
        esd=esd, cloud_cover=cloud_cover, scene_center_time=scene_center_time,
    )

    final = Path(out_dir) / pid
    with atomic_dir(final) as tmp:
        for b in bands:
            write_geotiff(tmp / f"{pid}_{b}.TIF", dns[b], transform=transform, crs=CRS.from_epsg(epsg), nodata=0,
                          tiled=True)  # USGS ships tiled GeoTIFFs
        # USGS marks QA_PIXEL fill with the value 1 (bit 0 only), not 0.
        write_geotiff(tmp / f"{pid}_QA_PIXEL.TIF", qa, transform=transform, crs=CRS.from_epsg(epsg),
                      nodata=QA_PIXEL_FILL_VALUE, tiled=True)
        (tmp / f"{pid}_MTL.txt").write_text(_render_odl(groups), encoding="utf-8", newline="\n")
        (tmp / f"{pid}_MTL.json").write_text(_render_json(groups), encoding="utf-8", newline="\n")
    return final
