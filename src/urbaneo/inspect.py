"""`urbaneo inspect PATH` and `urbaneo new-city`: recognise raw input files and describe them.

Recognition goes by the names data providers give their files (USGS product ids, EOG VNL,
MODIS granules, GF-2 scene names, OSM extracts) and, for plain GeoTIFFs and tables, by their
content; each kind is then described by its reader's `describe(path)`.
"""

from __future__ import annotations

import csv
import gzip
import importlib
import os
import re
from pathlib import Path

import rasterio

from .atomic import atomic_path
from .errors import InputError
from .registry import READERS

def describer(key: str):
    """The reader function that describes one input of this city-file key."""
    module, func, kind = READERS[key]
    fn = getattr(importlib.import_module(f"urbaneo.readers.{module}"), func)
    return (lambda path: fn(path, kind=kind)) if kind else fn


_LANDSAT_ID = re.compile(r"^L[COTEM]0\d_L[12][A-Z]{2}_\d{6}_\d{8}_\d{8}_\d{2}_(T1|T2|RT)")
_NAME_RULES = [  # (input key, pattern on the file name), first match wins
    ("viirs", re.compile(r"(^VNL_|^SVDNB_|VIIRS|viirs|_ntl|^ntl)")),
    ("npp_reference", re.compile(r"^M[OY]D17|NPP|npp_ref", re.I)),
    ("gf2", re.compile(r"^GF[1-7]_|^GF2", re.I)),
    ("lcz_labels", re.compile(r"lcz", re.I)),
    ("urban_labels", re.compile(r"urban|impervious|GLC", re.I)),
    ("population", re.compile(r"pop|worldpop|GHS_POP|ghs_pop", re.I)),
    ("par", re.compile(r"PAR|GLASS", re.I)),
]
_TABLE_COLUMNS = {  # a CSV's kind by the columns it must have
    "species": {"species_id", "scientific_name"},
    "soil": {"som_g_kg", "ph"},
    "stations": {"station_id", "lon", "lat"},
}


def detect(path: str | Path) -> str:
    """The city-file input key a path belongs to, or InputError saying why it is not recognised."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    name = p.name
    if p.is_dir():
        if any(_LANDSAT_ID.match(f.name) for f in p.iterdir()) or _LANDSAT_ID.match(name):
            return "landsat"
        if (p / "stations.csv").exists():
            return "stations"
        raise InputError(p, "folder is neither a Landsat scene nor a stations folder")
    if _LANDSAT_ID.match(name):
        return "landsat"
    if name.endswith((".osm.pbf", ".pbf", ".osm")):
        return "osm"
    if name.endswith((".nc", ".nc4", ".hdf", ".h4", ".hdf4")):
        return "npp_reference" if re.match(r"^M[OY]D17", name) else "par"
    if name.endswith((".csv", ".csv.gz")):
        return _detect_table(p)
    if name.lower().endswith((".gpkg", ".geojson", ".shp", ".parquet")):
        return "urban_labels"
    if name.lower().endswith((".tif", ".tiff")):
        for key, pattern in _NAME_RULES:
            if pattern.search(name):
                return key
        return _detect_geotiff(p)
    raise InputError(p, "not a recognised input (Landsat scene, GeoTIFF, NetCDF/HDF4, OSM PBF or CSV table)")


def _detect_table(p: Path) -> str:
    opener = gzip.open if p.name.endswith(".gz") else open
    try:
        with opener(p, "rt", newline="") as f:
            header = set(next(csv.reader(f), []))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(p, f"cannot be read as CSV ({err})") from None
    for key, cols in _TABLE_COLUMNS.items():
        if cols <= header:
            return key
    if {"station_id", "time"} <= header:
        return "stations"
    raise InputError(p, f"CSV with columns {sorted(header)[:8]} is not a species, soil or station table")


def _detect_geotiff(p: Path) -> str:
    try:
        with rasterio.open(p) as src:
            count, dtype, epsg = src.count, src.dtypes[0], src.crs.to_epsg() if src.crs else None
    except rasterio.errors.RasterioIOError as err:
        raise InputError(p, f"cannot be read as a raster ({err})") from None
    if count >= 4:
        return "gf2"
    if epsg == 4326 and dtype.startswith("float"):
        return "viirs"
    raise InputError(p, f"cannot tell what this {count}-band {dtype} GeoTIFF holds; name it or put it in the city file")


def describe(path: str | Path) -> dict:
    """Facts about a raw input (kind first), from its reader."""
    key = detect(path)
    return {"input": key, **describer(key)(path)}


def _entries(root: Path):
    """Candidate inputs under ``root``: scene and station folders as one entry each, other files."""
    for folder, dirs, files in sorted((Path(f), d, fs) for f, d, fs in os.walk(root)):
        dirs.sort()
        if folder != root and (any(_LANDSAT_ID.match(f) for f in files) or "stations.csv" in files):
            dirs.clear()  # a scene or stations folder is one input; don't look inside again
            yield folder
            continue
        for name in sorted(files):
            if not name.startswith(".") and not name.endswith((".xml", ".aux.xml", ".json", ".txt", ".md")):
                yield folder / name


def _pattern(paths: list[Path], root_for_config: Path) -> str:
    """One path or glob matching exactly these inputs of one kind."""
    rel = [p.resolve() for p in paths]
    if len(rel) == 1:
        return str(rel[0])
    parent = Path(os.path.commonpath([str(p.parent) for p in rel]))
    suffixes = {"".join(p.suffixes[-2:]) if p.name.endswith(".gz") else p.suffix for p in rel}
    tail = f"*{suffixes.pop()}" if len(suffixes) == 1 and all(p.parent == parent for p in rel) else "**/*"
    return str(parent / tail)


def scan_inputs(root: str | Path) -> tuple[dict[str, list[Path]], list[str]]:
    """Recognised inputs under a folder, by city-file key, and a line for each thing not recognised."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    found: dict[str, list[Path]] = {}
    skipped = []
    for entry in _entries(root):
        try:
            found.setdefault(detect(entry), []).append(entry)
        except InputError as err:
            skipped.append(str(err))
    return found, skipped


def new_city(name: str, aoi: tuple[float, float, float, float], inputs_dir: str | Path, *,
             years: list[int] | None = None, out: str | Path | None = None, region_buffer_km: float = 25.0) -> dict:
    """Write config/cities/NAME.yaml from the files under ``inputs_dir``; returns what was found and what each product lacks."""
    import yaml

    from .config import PRODUCTS, load_city, missing_inputs
    from .readers.landsat import parse_product_id

    found, skipped = scan_inputs(inputs_dir)
    if not found:
        raise InputError(inputs_dir, "no recognisable input under this folder")
    if years is None:  # the years the imagery covers
        scenes = found.get("landsat", [])
        years = sorted({parse_product_id(p.name)["acquired"].year for p in scenes}) or None
    if not years:
        raise InputError(inputs_dir, "cannot tell the years (no Landsat scene); give --years")
    city = {"name": name, "aoi": [float(v) for v in aoi], "region_buffer_km": region_buffer_km, "years": years,
            "inputs": {key: _pattern(paths, Path.cwd()) for key, paths in sorted(found.items())}}
    out = Path(out or f"config/cities/{name}.yaml")
    if out.exists():
        raise InputError(out, "exists already; remove it or choose another name")
    with atomic_path(out) as tmp:
        tmp.write_text(f"# written by `urbaneo new-city {name}` from {inputs_dir}\n" + yaml.safe_dump(city, sort_keys=False))
    try:
        loaded = load_city(out)  # the same validation a run applies
    except InputError:
        out.unlink()
        raise
    can = {product: missing_inputs(loaded, product) for product in PRODUCTS}
    return {"path": str(out), "inputs": {k: [str(p) for p in v] for k, v in found.items()}, "skipped": skipped,
            "products": can}
