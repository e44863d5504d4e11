"""Landsat reader: product ids, MTL files, radiometric constants, QA bit masks, and scenes on a grid.

This module is the one place that knows how USGS describes and ships a Landsat scene (Collection 1
and 2, Level 1 and 2): :func:`discover_scenes` finds scenes, :func:`read_scene` and
:func:`read_landsat` put them on a city grid, :func:`describe` is what ``urbaneo inspect`` prints.
The synthetic writer (:mod:`urbaneo.synth.landsat`) uses the same constants, so what it writes is
read back by exactly this code.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import math
import re
import warnings
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from urbaneo.errors import InputError
from urbaneo.readers._common import RunningStats, open_raster, strips
from urbaneo.grid import Grid, to_dataarray, warp_to_grid
from urbaneo.seasons import season_index, season_of

# --------------------------------------------------------------------------------------------
# Product ids
# --------------------------------------------------------------------------------------------

# LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX, e.g. LC08_L1TP_120038_20200415_20200423_02_T1.
# X: C = OLI/TIRS, O = OLI only, T = TM (or TIRS only), E = ETM+, M = MSS; SS = satellite number.
_PRODUCT_ID = re.compile(
    r"(?P<spacecraft>L[COTEM]0[1-9])_(?P<processing_level>L1TP|L1GT|L1GS|L2SP|L2SR)_"
    r"(?P<path>\d{3})(?P<row>\d{3})_(?P<acquired>\d{8})_(?P<processed>\d{8})_"
    r"(?P<collection>0[12])_(?P<tier>T1|T2|RT)"
    r"(?=$|[_.])"  # the id may be followed by a file suffix such as _B4.TIF or _MTL.txt
)


def parse_product_id(name: str | PathLike) -> dict:
    """Parse a USGS Landsat product id, or a file name that starts with one.

    Returns ``product_id``, ``spacecraft`` ("LC08"), ``satellite`` (8), ``processing_level``
    ("L1TP"), ``level`` (1 or 2), ``path``, ``row``, ``acquired`` and ``processed``
    (:class:`datetime.date`), ``collection`` (1 or 2) and ``tier`` ("T1", "T2" or "RT").
    """
    base = Path(name).name
    m = _PRODUCT_ID.match(base)
    if m is None:
        raise InputError(name, "not a Landsat product id (expected e.g. LC08_L1TP_120038_20200415_20200423_02_T1)")
    dates = {}
    for key in ("acquired", "processed"):
        try:
            dates[key] = dt.datetime.strptime(m[key], "%Y%m%d").date()
        except ValueError:
            raise InputError(name, f"not a Landsat product id: {key} date {m[key]} is not a calendar date") from None
    if dates["processed"] < dates["acquired"]:
        raise InputError(name, "not a Landsat product id: processed before acquired")
    return {
        "product_id": m.group(0),
        "spacecraft": m["spacecraft"],
        "satellite": int(m["spacecraft"][2:]),
        "processing_level": m["processing_level"],
        "level": int(m["processing_level"][1]),
        "path": int(m["path"]),
        "row": int(m["row"]),
        **dates,
        "collection": int(m["collection"]),
        "tier": m["tier"],
    }


# --------------------------------------------------------------------------------------------
# MTL files
# --------------------------------------------------------------------------------------------


class Mtl(dict):
    """An MTL as ``{group: {field: value}}``; ``source`` is the file it came from (for error messages)."""

    source: Path

    def __init__(self, groups: dict, source: str | PathLike):
        super().__init__(groups)
        self.source = Path(source)


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def _value(text: str):
    """USGS writes numbers bare in the .txt and quoted in the .json: convert both the same way.

    Dates and times (2020-10-31, 2020-11-06T16:50:03Z) stay strings.
    """
    if _INT.fullmatch(text):
        return int(text)  # "02" -> 2
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _parse_odl(text: str, path: Path) -> dict:
    """Parse the ODL (.txt) form: GROUP = X / NAME = VALUE / END_GROUP = X / END."""
    root: dict = {}
    stack: list[tuple[str, dict]] = [("", root)]
    ended = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if ended:
            raise InputError(path, f"line {lineno}: text after END")
        if line == "END":
            ended = True
            continue
        key, eq, value = (part.strip() for part in line.partition("="))
        if not eq or not key:
            raise InputError(path, f"line {lineno}: expected NAME = VALUE, got {line[:60]!r}")
        if key == "GROUP":
            group: dict = {}
            stack[-1][1][value] = group
            stack.append((value, group))
        elif key == "END_GROUP":
            if len(stack) == 1 or stack[-1][0] != value:
                raise InputError(path, f"line {lineno}: END_GROUP = {value} does not close an open group")
            stack.pop()
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            stack[-1][1][key] = value[1:-1]  # quoted: always a string
        elif value:
            stack[-1][1][key] = _value(value)
        else:
            raise InputError(path, f"line {lineno}: {key} has no value")
    if not ended:
        raise InputError(path, "no END line (truncated MTL?)")
    if len(stack) != 1:
        raise InputError(path, f"group {stack[-1][0]} is never closed")
    return root


def _convert_json(node, path: Path):
    if isinstance(node, dict):
        return {k: _convert_json(v, path) for k, v in node.items()}
    if isinstance(node, str):
        return _value(node)
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return node
    raise InputError(path, f"unexpected JSON value {node!r} in MTL")


def read_mtl(path: str | PathLike) -> Mtl:
    """Read a Landsat MTL in its ``.txt`` (ODL) or ``.json`` form.

    Both forms give the same ``{group: {field: value}}`` dict: the single top-level group
    (LANDSAT_METADATA_FILE, or L1_METADATA_FILE in Collection 1) is unwrapped, quoted strings stay
    strings, bare numbers become int/float, dates stay strings.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "MTL file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read MTL: {err}") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(path, "MTL file is empty")
    if stripped.startswith("{"):
        try:
            tree = _convert_json(json.loads(text), path)
        except json.JSONDecodeError as err:
            raise InputError(path, f"MTL is not valid JSON: {err}") from None
    elif stripped.startswith("<"):
        raise InputError(path, "XML MTL is not supported; use the _MTL.txt or _MTL.json file")
    else:
        tree = _parse_odl(text, path)
    if len(tree) == 1 and isinstance(next(iter(tree.values())), dict):
        tree = next(iter(tree.values()))
    if not tree or not all(isinstance(v, dict) for v in tree.values()):
        raise InputError(path, "MTL has no GROUP structure")
    return Mtl(tree, path)


# --------------------------------------------------------------------------------------------
# Radiometric constants
# --------------------------------------------------------------------------------------------


def _band_number(band: int | str) -> int:
    m = re.fullmatch(r"(?:SR_)?B?(\d{1,2})", str(band), re.IGNORECASE)
    if m is None:
        raise ValueError(f"band must be a number or 'B<n>', got {band!r}")
    return int(m[1])


def _lookup(mtl: Mapping, groups: tuple[str, ...], key: str) -> float:
    """Numeric ``key`` from the first of ``groups`` that the MTL has; InputError naming the file if absent."""
    where = getattr(mtl, "source", "MTL")
    for group in groups:
        if group in mtl:
            value = mtl[group].get(key)
            if value is None:
                raise InputError(where, f"missing {group} {key}")
            if not isinstance(value, (int, float)):
                raise InputError(where, f"{group} {key} = {value!r} is not a number")
            return float(value)
    raise InputError(where, f"missing group {' or '.join(groups)} (needed for {key})")


# Collection 2 group names first, then Collection 1 names for the same content.
_L1_RESCALING = ("LEVEL1_RADIOMETRIC_RESCALING", "RADIOMETRIC_RESCALING")
_L2_SR = ("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS",)


def level1_reflectance_constants(mtl: Mapping, band: int | str) -> tuple[float, float, float]:
    """``(mult, add, sun_elevation_deg)`` for Level-1 TOA reflectance of ``band`` (see :func:`toa_reflectance`)."""
    n = _band_number(band)
    mult = _lookup(mtl, _L1_RESCALING, f"REFLECTANCE_MULT_BAND_{n}")
    add = _lookup(mtl, _L1_RESCALING, f"REFLECTANCE_ADD_BAND_{n}")
    elevation = _lookup(mtl, ("IMAGE_ATTRIBUTES",), "SUN_ELEVATION")
    if not 0 < elevation <= 90:
        # Night scenes have negative elevations; TOA reflectance is undefined there.
        raise InputError(getattr(mtl, "source", "MTL"), f"SUN_ELEVATION {elevation} is not in (0, 90]")
    return mult, add, elevation


def level2_reflectance_constants(mtl: Mapping, band: int | str) -> tuple[float, float]:
    """``(mult, add)`` for Level-2 surface reflectance: ``rho = mult * DN + add`` (C2: 2.75e-05, -0.2)."""
    n = _band_number(band)
    return (
        _lookup(mtl, _L2_SR, f"REFLECTANCE_MULT_BAND_{n}"),
        _lookup(mtl, _L2_SR, f"REFLECTANCE_ADD_BAND_{n}"),
    )


def toa_reflectance(dn, mult: float, add: float, sun_elevation_deg: float) -> np.ndarray:
    """Level-1 DN to TOA reflectance: ``(mult * DN + add) / sin(sun elevation)``; DN 0 (fill) -> NaN.

    Returns float32; the quantisation step (2e-5 / sin(elevation)) is far above float32 resolution.
    """
    if not 0 < sun_elevation_deg <= 90:
        raise ValueError(f"sun elevation {sun_elevation_deg} is not in (0, 90]")
    dn = np.asarray(dn)
    rho = dn.astype(np.float32)
    rho *= np.float32(mult)
    rho += np.float32(add)
    rho /= np.float32(math.sin(math.radians(sun_elevation_deg)))
    rho[dn == 0] = np.nan
    return rho


# --------------------------------------------------------------------------------------------
# Quality bands
# --------------------------------------------------------------------------------------------

# Collection 2 QA_PIXEL (Landsat 8-9 OLI; single bits are flags, bit pairs are confidences).
QA_FILL = 0
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2  # high-confidence cirrus (OLI only)
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_SNOW = 5
QA_CLEAR = 6  # set when neither the cloud nor the dilated-cloud bit is set (USGS definition)
QA_WATER = 7
QA_CLOUD_CONFIDENCE = 8  # bits 8-9
QA_CLOUD_SHADOW_CONFIDENCE = 10  # bits 10-11
QA_SNOW_CONFIDENCE = 12  # bits 12-13
QA_CIRRUS_CONFIDENCE = 14  # bits 14-15
QA_PIXEL_FILL_VALUE = 1  # a fill pixel has only bit 0 set

# Confidence bit pairs (both collections).
CONFIDENCE_NONE = 0
CONFIDENCE_LOW = 1
CONFIDENCE_MEDIUM = 2  # cloud confidence only; reserved for the others
CONFIDENCE_HIGH = 3

# Collection 1 BQA (Landsat 8 OLI).
BQA_FILL = 0
BQA_TERRAIN_OCCLUSION = 1
BQA_SATURATION = 2  # bits 2-3: number of saturated bands (0, 1-2, 3-4, 5+)
BQA_CLOUD = 4
BQA_CLOUD_CONFIDENCE = 5  # bits 5-6
BQA_CLOUD_SHADOW_CONFIDENCE = 7  # bits 7-8
BQA_SNOW_CONFIDENCE = 9  # bits 9-10
BQA_CIRRUS_CONFIDENCE = 11  # bits 11-12


def qa_bits(qa, first: int, count: int = 1) -> np.ndarray:
    """The unsigned integer held in bits ``first .. first+count-1`` of each QA value."""
    qa = np.asarray(qa).astype(np.uint16, copy=False)
    return (qa >> first) & ((1 << count) - 1)


def _flag(qa, bit: int) -> np.ndarray:
    return qa_bits(qa, bit).astype(bool)


def _high(qa, first: int) -> np.ndarray:
    return qa_bits(qa, first, 2) == CONFIDENCE_HIGH


def decode_qa_pixel(qa) -> dict[str, np.ndarray]:
    """Collection 2 QA_PIXEL -> bool masks: fill, cloud, dilated_cloud, cirrus, shadow, snow, water, clear.

    Each mask is its bit as USGS set it (cirrus is bit 2, i.e. high-confidence cirrus).
    """
    return {
        "fill": _flag(qa, QA_FILL),
        "cloud": _flag(qa, QA_CLOUD),
        "dilated_cloud": _flag(qa, QA_DILATED_CLOUD),
        "cirrus": _flag(qa, QA_CIRRUS),
        "shadow": _flag(qa, QA_CLOUD_SHADOW),
        "snow": _flag(qa, QA_SNOW),
        "water": _flag(qa, QA_WATER),
        "clear": _flag(qa, QA_CLEAR),
    }


def decode_bqa(bqa) -> dict[str, np.ndarray]:
    """Collection 1 BQA -> bool masks: fill, terrain_occlusion, saturated, cloud, shadow, snow, cirrus, clear.

    C1 has no shadow/snow/cirrus flag bits, only confidences: those masks mean high confidence.
    cloud = cloud bit or high cloud confidence; clear = neither fill nor cloud (mirrors C2's clear bit).
    """
    fill = _flag(bqa, BQA_FILL)
    cloud = _flag(bqa, BQA_CLOUD) | _high(bqa, BQA_CLOUD_CONFIDENCE)
    return {
        "fill": fill,
        "terrain_occlusion": _flag(bqa, BQA_TERRAIN_OCCLUSION),
        "saturated": qa_bits(bqa, BQA_SATURATION, 2) > 0,
        "cloud": cloud,
        "shadow": _high(bqa, BQA_CLOUD_SHADOW_CONFIDENCE),
        "snow": _high(bqa, BQA_SNOW_CONFIDENCE),
        "cirrus": _high(bqa, BQA_CIRRUS_CONFIDENCE),
        "clear": ~fill & ~cloud,
    }


def encode_qa_pixel(fill, cloud, shadow, cirrus, snow, water, dilated_cloud=None) -> np.ndarray:
    """Bool masks -> Collection 2 QA_PIXEL (uint16), as USGS would write them.

    Every confidence pair is high where its flag is set and low elsewhere; clear = neither cloud
    nor dilated cloud; fill pixels get only bit 0 (value 1).  ``decode_qa_pixel`` inverts this.
    """
    if dilated_cloud is None:
        dilated_cloud = False
    fill, cloud, shadow, cirrus, snow, water, dilated_cloud = np.broadcast_arrays(
        *(np.asarray(m, dtype=bool) for m in (fill, cloud, shadow, cirrus, snow, water, dilated_cloud))
    )
    qa = np.zeros(fill.shape, dtype=np.uint16)

    def put(mask, value):
        qa[mask] |= np.uint16(value)

    put(dilated_cloud, 1 << QA_DILATED_CLOUD)
    put(cirrus, 1 << QA_CIRRUS)
    put(cloud, 1 << QA_CLOUD)
    put(shadow, 1 << QA_CLOUD_SHADOW)
    put(snow, 1 << QA_SNOW)
    put(~(cloud | dilated_cloud), 1 << QA_CLEAR)
    put(water, 1 << QA_WATER)
    for flag, first in (
        (cloud, QA_CLOUD_CONFIDENCE),
        (shadow, QA_CLOUD_SHADOW_CONFIDENCE),
        (snow, QA_SNOW_CONFIDENCE),
        (cirrus, QA_CIRRUS_CONFIDENCE),
    ):
        put(flag, CONFIDENCE_HIGH << first)
        put(~flag, CONFIDENCE_LOW << first)
    qa[fill] = QA_PIXEL_FILL_VALUE
    return qa


# --------------------------------------------------------------------------------------------
# Scenes: the files of one product
# --------------------------------------------------------------------------------------------

# Reflective band numbers by name: OLI (Landsat 8/9) and TM/ETM+ (Landsat 4/5/7) number them differently.
OLI_BANDS = {"coastal": 1, "blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7}
TM_BANDS = {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7}
DEFAULT_BANDS = ("blue", "green", "red", "nir")  # every scene must have these

# What follows the product id in a file name: _B4.TIF, _SR_B4.TIF, _QA_PIXEL.TIF, _BQA.TIF, _MTL.txt/.json.
_FILE_KIND = re.compile(
    r"_(?:(?P<sr>SR_)?B(?P<band>\d{1,2})|(?P<qa>QA_PIXEL|BQA))\.tiff?$|_MTL\.(?P<mtl>txt|json)$", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")


def sensor_bands(spacecraft: str) -> dict[str, int]:
    """Band name -> band number for a spacecraft code such as "LC08" (OLI) or "LE07" (ETM+)."""
    sensor, satellite = spacecraft[1], int(spacecraft[2:])
    if sensor in "CO" and satellite >= 8:
        return OLI_BANDS
    if sensor in "TE" and satellite in (4, 5, 7):
        return TM_BANDS
    raise ValueError(f"{spacecraft} has no reflective bands this reader knows (OLI, TM or ETM+)")


@dataclass(frozen=True)
class Scene:
    """One Landsat product: its id facts and the files the reader uses."""

    product_id: str
    spacecraft: str  # "LC08"
    level: int  # 1 (DN -> TOA) or 2 (surface reflectance)
    collection: int  # 1 (BQA) or 2 (QA_PIXEL)
    tier: str
    wrs_path: int
    wrs_row: int
    date: dt.date  # acquisition date
    processed: dt.date
    bands: Mapping[str, Path]  # band name ("blue", ...) -> GeoTIFF; the four DEFAULT_BANDS always present
    qa: Path  # QA_PIXEL (C2) or BQA (C1)
    mtl: Path  # _MTL.txt, else _MTL.json

    def season(self, southern: bool = False) -> str:
        return season_of(self.date, southern)

    @property
    def folder(self) -> Path:
        return self.qa.parent


def _expand(paths) -> list[Path]:
    """Folders, files and glob patterns -> the Landsat-named files they hold (resolved, sorted, unique)."""
    if isinstance(paths, (str, PathLike)):
        paths = [paths]
    found: dict[Path, None] = {}
    for item in paths:
        text = str(item)
        if not Path(text).exists() and _GLOB_CHARS.search(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise InputError(text, "the pattern matches no file")
        elif not Path(text).exists():
            raise InputError(text, "not found")
        else:
            matches = [text]
        for match in map(Path, matches):
            if match.is_dir():
                files = [p for p in sorted(match.rglob("L*")) if p.is_file() and _PRODUCT_ID.match(p.name)]
                if not files:
                    raise InputError(match, "no Landsat scene here (expected files named like "
                                            "LC08_L1TP_120038_20200415_20200423_02_T1_B4.TIF)")
            else:
                parse_product_id(match)  # a file given by name must be one of a scene
                # its scene is the files beside it with the same product id
                pid = _PRODUCT_ID.match(match.name).group(0)
                files = sorted(match.parent.glob(f"{pid}_*"))
            found.update(dict.fromkeys(p.resolve() for p in files))
    return sorted(found)


def _where(paths) -> str:
    """The input to name in an error about a whole set of paths."""
    if isinstance(paths, (str, PathLike)):
        return str(paths)
    paths = [str(p) for p in paths]
    return paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"


def _scene(pid: str, files: dict[str, Path]) -> Scene:
    """Check that the files of one product make a complete scene."""
    info = parse_product_id(pid)
    anchor = next(iter(files.values())).parent
    try:
        numbers = sensor_bands(info["spacecraft"])
    except ValueError as err:
        raise InputError(anchor / pid, str(err)) from None
    prefix = "SR_" if info["level"] == 2 else ""
    qa_kind = "QA_PIXEL" if info["collection"] == 2 else "BQA"

    def need(kind: str, what: str) -> Path:
        if kind not in files:
            raise InputError(anchor / f"{pid}_{kind}.TIF", f"missing {what} of scene {pid}")
        return files[kind]

    bands = {}
    for name, n in numbers.items():
        kind = f"{prefix}B{n}"
        if name in DEFAULT_BANDS:
            bands[name] = need(kind, f"band file ({name}, {kind})")
        elif kind in files:
            bands[name] = files[kind]
    qa = need(qa_kind, f"quality band {qa_kind}")
    mtl = files.get("MTL.txt") or files.get("MTL.json")
    if mtl is None:
        raise InputError(anchor / f"{pid}_MTL.txt", f"missing metadata file (_MTL.txt or _MTL.json) of scene {pid}")
    return Scene(product_id=pid, spacecraft=info["spacecraft"], level=info["level"],
                 collection=info["collection"], tier=info["tier"], wrs_path=info["path"], wrs_row=info["row"],
                 date=info["acquired"], processed=info["processed"], bands=bands, qa=qa, mtl=mtl)


def discover_scenes(paths) -> list[Scene]:
    """Find Landsat scenes (Collection 1/2, Level 1/2) under folders, files or glob patterns.

    Files are recognised by their USGS product-id names; a scene needs its blue, green, red and
    NIR band files (``_B2.TIF``.. for Level 1, ``_SR_B2.TIF``.. for Level 2 on OLI), its QA band
    (``_QA_PIXEL.TIF`` in Collection 2, ``_BQA.TIF`` in Collection 1) and its MTL (.txt or .json).
    Ordered by date, then WRS path/row, then product id.
    """
    by_product: dict[str, dict[str, Path]] = {}
    for path in _expand(paths):
        pid = _PRODUCT_ID.match(path.name).group(0)
        m = _FILE_KIND.match(path.name[len(pid):])
        if m is None:
            continue  # ANG.txt, ST_B10, the XML MTL, ...: not used
        kind = (f"{m['sr'] or ''}B{int(m['band'])}".upper() if m["band"] else
                m["qa"].upper() if m["qa"] else f"MTL.{m['mtl'].lower()}")
        files = by_product.setdefault(pid, {})
        if kind in files:
            raise InputError(path, f"scene file given twice: also {files[kind]}")
        files[kind] = path
    scenes = [_scene(pid, files) for pid, files in by_product.items()]
    if not scenes:
        raise InputError(_where(paths), "no complete Landsat scene (band files, QA band and MTL) found")
    return sorted(scenes, key=lambda s: (s.date, s.wrs_path, s.wrs_row, s.product_id))


# --------------------------------------------------------------------------------------------
# Reading scenes onto a grid
# --------------------------------------------------------------------------------------------

MASKS = ("fill", "cloud", "shadow", "cirrus", "snow", "water", "usable")


class SceneSkipped(UserWarning):
    """A scene left out of a stack (too little usable area over the grid, or outside it)."""


def _calibration(scene: Scene, mtl: Mapping, name: str) -> tuple[float, float]:
    """(gain, offset) so that reflectance = gain * DN + offset (TOA with the sun correction, or SR)."""
    n = sensor_bands(scene.spacecraft)[name]
    if scene.level == 2:
        return level2_reflectance_constants(mtl, n)
    mult, add, elevation = level1_reflectance_constants(mtl, n)
    sin = math.sin(math.radians(elevation))
    return mult / sin, add / sin


def _decode(scene: Scene, qa: np.ndarray) -> dict[str, np.ndarray]:
    """QA -> the reader's masks (fill, cloud incl. dilated, shadow, cirrus, snow, water); C1 has no water bit."""
    bits = decode_qa_pixel(qa) if scene.collection == 2 else decode_bqa(qa)
    cloud = bits["cloud"] | bits.get("dilated_cloud", False)
    water = bits.get("water", np.zeros_like(bits["fill"]))
    return {"fill": bits["fill"], "cloud": cloud, "shadow": bits["shadow"], "cirrus": bits["cirrus"],
            "snow": bits["snow"], "water": water}


def _check_bands(scene: Scene, bands) -> list[str]:
    bands = list(bands)
    known = sensor_bands(scene.spacecraft)
    for name in bands:
        if name not in known:
            raise ValueError(f"unknown band {name!r}; {scene.spacecraft} has {sorted(known)}")
        if name not in scene.bands:
            kind = f"{'SR_' if scene.level == 2 else ''}B{known[name]}"
            raise InputError(scene.folder / f"{scene.product_id}_{kind}.TIF",
                             f"missing band file ({name}, {kind}) of scene {scene.product_id}")
    return bands


def read_scene(scene: Scene, grid: Grid, bands=DEFAULT_BANDS, southern: bool = False):
    """One scene on ``grid``: ``reflectance`` (band, y, x) float32 and masks (y, x) bool.

    Reflectance is TOA (Level 1, with the sun-elevation correction) or surface reflectance
    (Level 2), from the MTL's constants, resampled bilinear and NaN where ``fill``.  Masks come
    from the QA band by nearest neighbour: ``fill`` (also outside the scene), ``cloud`` (cloud or
    dilated cloud), ``shadow``, ``cirrus``, ``snow``, ``water``, and ``usable`` = none of fill,
    cloud, shadow, cirrus, snow.  USGS's clear bit is not used: shadow pixels can carry it.
    """
    import xarray as xr

    bands = _check_bands(scene, bands)
    mtl = read_mtl(scene.mtl)
    constants = [_calibration(scene, mtl, name) for name in bands]  # bad MTL fails before any raster read

    with open_raster(scene.qa) as src:
        # QA fill is the value 1 (bit 0 only); outside the scene is fill too
        qa = warp_to_grid(src, grid, resampling="nearest", src_nodata=QA_PIXEL_FILL_VALUE,
                          dst_nodata=QA_PIXEL_FILL_VALUE, dtype="uint16")[0]
    masks = _decode(scene, qa)
    del qa

    reflectance = np.empty((len(bands), *grid.shape), np.float32)
    for i, (name, (gain, offset)) in enumerate(zip(bands, constants)):
        with open_raster(scene.bands[name]) as src:
            dn = warp_to_grid(src, grid, resampling="bilinear", src_nodata=0)[0]  # DN 0 is fill in every band
        # calibration is linear, so calibrating the interpolated DN equals interpolating reflectance
        reflectance[i] = dn * np.float32(gain) + np.float32(offset)
    # a pixel without a value in every band is fill, so usable pixels always have all bands
    fill = masks["fill"] | np.isnan(reflectance).any(axis=0)
    reflectance[:, fill] = np.nan
    masks = {k: m & ~fill for k, m in masks.items()}
    masks["fill"] = fill
    masks["usable"] = ~(fill | masks["cloud"] | masks["shadow"] | masks["cirrus"] | masks["snow"])

    data = {"reflectance": to_dataarray(reflectance, grid, ("band", "y", "x"), coords={"band": bands},
                                        name="reflectance", attrs={"units": "1"})}
    data.update({k: to_dataarray(masks[k], grid, ("y", "x"), name=k) for k in MASKS})
    return xr.Dataset(data, attrs={
        "product_id": scene.product_id, "date": scene.date.isoformat(), "season": scene.season(southern),
        "level": scene.level, "collection": scene.collection,
        "quantity": "surface reflectance" if scene.level == 2 else "TOA reflectance"})


def _overlaps(scene: Scene, grid: Grid) -> bool:
    from rasterio.warp import transform_bounds

    with open_raster(scene.qa) as src:
        x0, y0, x1, y1 = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    gx0, gy0, gx1, gy1 = grid.bounds
    return x1 > gx0 and x0 < gx1 and y1 > gy0 and y0 < gy1


def read_landsat(paths, grid: Grid, bands=DEFAULT_BANDS, southern: bool = False, min_usable: float = 0.01):
    """Every acquisition date under ``paths`` on ``grid``: a Dataset with dims (time, band, y, x).

    Scenes of one date (adjacent WRS rows) are mosaicked: the first scene in discovery order with
    a non-fill pixel gives it.  A scene outside the grid, or whose usable share of the grid is
    below ``min_usable`` (all cloud), is skipped with a :class:`SceneSkipped` warning; if no date is
    left, InputError.  Coordinates per time: ``season`` (name), ``season_index`` and ``scenes``.
    """
    import pandas as pd
    import xarray as xr

    scenes = discover_scenes(paths)
    levels = sorted({s.level for s in scenes})
    if len(levels) > 1:
        # TOA and surface reflectance are different quantities: one stack must hold one of them
        raise InputError(_where(paths), "holds both Level-1 and Level-2 scenes; point at one kind")
    dates: dict[dt.date, list[Scene]] = {}
    for scene in scenes:
        dates.setdefault(scene.date, []).append(scene)

    times, stacks, used = [], {"reflectance": [], **{k: [] for k in MASKS}}, []
    for date, group in dates.items():
        mosaic, ids = None, []
        for scene in group:
            if not _overlaps(scene, grid):
                warnings.warn(f"{scene.folder}: scene {scene.product_id} does not overlap the grid; skipped",
                              SceneSkipped, stacklevel=2)
                continue
            ds = read_scene(scene, grid, bands, southern)
            share = float(ds["usable"].mean())
            if share < min_usable:
                warnings.warn(f"{scene.qa}: only {share:.1%} of the grid is usable (cloud, shadow, snow or fill), "
                              f"below min_usable {min_usable:.1%}; scene skipped", SceneSkipped, stacklevel=2)
                continue
            ids.append(scene.product_id)
            if mosaic is None:
                mosaic = {k: ds[k].values.copy() for k in ("reflectance", *MASKS)}
                continue
            take = mosaic["fill"] & ~ds["fill"].values  # pixels this scene is the first to cover
            mosaic["reflectance"][:, take] = ds["reflectance"].values[:, take]
            for k in MASKS:
                mosaic[k][take] = ds[k].values[take]
        if mosaic is None:
            continue
        times.append(date)
        used.append(" ".join(ids))
        for k, v in mosaic.items():
            stacks[k].append(v)
    if not times:
        raise InputError(_where(paths), f"no usable Landsat date: all {len(scenes)} scenes are outside the grid "
                                        f"or below min_usable {min_usable:.1%} usable (all cloud?)")

    time = {"time": pd.to_datetime(times).values.astype("datetime64[ns]")}
    data = {"reflectance": to_dataarray(np.stack(stacks.pop("reflectance")), grid, ("time", "band", "y", "x"),
                                        coords={**time, "band": list(bands)}, name="reflectance",
                                        attrs={"units": "1"})}
    data.update({k: to_dataarray(np.stack(v), grid, ("time", "y", "x"), coords=time, name=k)
                 for k, v in stacks.items()})
    ds = xr.Dataset(data, attrs={"source": "landsat", "southern": int(southern),
                                 "quantity": "surface reflectance" if levels == [2] else "TOA reflectance"})
    return ds.assign_coords(season=("time", [season_of(d, southern) for d in times]),
                            season_index=("time", np.array([season_index(d, southern) for d in times], np.int8)),
                            scenes=("time", used))


# --------------------------------------------------------------------------------------------
# describe: what `urbaneo inspect` prints for a Landsat scene
# --------------------------------------------------------------------------------------------



def _scene_of(path) -> Scene:
    scenes = discover_scenes([path])  # a file brings only its own scene
    if len(scenes) != 1:
        raise InputError(path, f"holds {len(scenes)} Landsat scenes; point at one scene folder or file")
    return scenes[0]


def describe(path) -> dict:
    """Facts about a Landsat scene (its folder or any of its files) for ``urbaneo inspect --json``.

    Band statistics are of calibrated reflectance (TOA for Level 1, SR for Level 2) over every
    non-fill pixel at native resolution; ``cloud_fraction`` is cloud or dilated cloud over non-fill.
    """
    import rasterio
    from rasterio.warp import transform_bounds


    scene = _scene_of(path)
    mtl = read_mtl(scene.mtl)
    constants = {name: _calibration(scene, mtl, name) for name in scene.bands}
    stats = {name: RunningStats() for name in scene.bands}
    nonfill = cloudy = 0
    with ExitStack() as stack:
        qa = stack.enter_context(open_raster(scene.qa))
        srcs = {name: stack.enter_context(open_raster(file)) for name, file in scene.bands.items()}
        for name, src in srcs.items():
            if src.shape != qa.shape:
                raise InputError(scene.bands[name], f"is {src.shape[0]}x{src.shape[1]} pixels but the QA band "
                                                    f"is {qa.shape[0]}x{qa.shape[1]}")
        current = scene.qa
        try:
            for window in strips(qa.height, qa.width):
                current = scene.qa
                masks = _decode(scene, qa.read(1, window=window))
                valid = ~masks["fill"]
                nonfill += int(valid.sum())
                cloudy += int((masks["cloud"] & valid).sum())
                for name, src in srcs.items():
                    current = scene.bands[name]
                    dn = src.read(1, window=window)
                    ok = valid & (dn != 0)
                    gain, offset = constants[name]
                    stats[name].add(dn[ok] * gain + offset)  # float64
        except rasterio.errors.RasterioError as err:
            # GDAL's own reason (e.g. "TIFFReadEncodedTile() failed") is the chained cause
            reason = err.__cause__ or err
            raise InputError(current, f"cannot be read (truncated or corrupt GeoTIFF?): {reason}") from None
        crs, bounds, res, shape = qa.crs, tuple(qa.bounds), qa.res, qa.shape
        lon0, lat0, lon1, lat1 = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)

    if nonfill == 0:
        raise InputError(scene.qa, "every pixel of the scene is fill")
    numbers = sensor_bands(scene.spacecraft)
    prefix = "SR_" if scene.level == 2 else ""
    # C2 keeps spacecraft and sensor in IMAGE_ATTRIBUTES, C1 in PRODUCT_METADATA
    attrs = {**mtl.get("PRODUCT_METADATA", {}), **mtl.get("IMAGE_ATTRIBUTES", {})}
    southern = (lat0 + lat1) / 2 < 0
    return {
        "kind": "landsat",
        "path": str(path),
        "product_id": scene.product_id,
        "spacecraft": attrs.get("SPACECRAFT_ID", scene.spacecraft),
        "sensor": attrs.get("SENSOR_ID", {"C": "OLI_TIRS", "O": "OLI", "E": "ETM", "T": "TM"}[scene.spacecraft[1]]),
        "collection": scene.collection,
        "level": scene.level,
        "quantity": "surface reflectance" if scene.level == 2 else "TOA reflectance",
        "tier": scene.tier,
        "wrs_path": scene.wrs_path,
        "wrs_row": scene.wrs_row,
        "date": scene.date.isoformat(),
        "hemisphere": "south" if southern else "north",  # of the scene centre; decides the season
        "season": scene.season(southern),
        "crs": crs.to_string(),
        "bounds": [float(b) for b in bounds],
        "lonlat_bounds": [round(float(b), 6) for b in (lon0, lat0, lon1, lat1)],
        "resolution": [float(r) for r in res],
        "shape": [int(n) for n in shape],
        "sun_elevation": attrs.get("SUN_ELEVATION"),
        "cloud_fraction": round(cloudy / nonfill, 6),
        "bands": {
            name: {"band": f"{prefix}B{numbers[name]}", "file": scene.bands[name].name,
                   **{k: (_round(v) if k != "valid_pixels" else v) for k, v in acc.as_dict().items()}}
            for name, acc in stats.items()
        },
    }


def _round(value: float):
    """JSON has no NaN/inf: a band without valid pixels reports null."""
    return round(float(value), 6) if value is not None and math.isfinite(value) else None
