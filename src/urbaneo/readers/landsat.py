"""Landsat metadata: product ids, MTL files, radiometric constants and QA bit masks.

This module is the one place that knows how USGS describes a Landsat scene (Collection 1 and 2,
Level 1 and 2).  The synthetic writer (:mod:`urbaneo.synth.landsat`) uses the same constants, so
what it writes is read back by exactly this code.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np

from urbaneo.errors import InputError

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
