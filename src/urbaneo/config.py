"""Run and city configuration: schema validation, AOI, and which inputs each product needs.

The Snakefile and the CLI both go through these functions, so a bad config gives the
same one-line ``InputError`` inside and outside Snakemake.
"""

from __future__ import annotations

import copy
import difflib
import glob
import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from urbaneo.errors import InputError

PRODUCTS = ("npp", "lcz", "urban", "vegplan")

# The one place that says which raw sources each product needs.
PRODUCT_INPUTS: dict[str, tuple[str, ...]] = {
    "npp": ("landsat", "par", "npp_reference"),  # OSM when the city has it (else st-MAE masks at random)
    "lcz": ("gf2", "lcz_labels"),
    "urban": ("viirs", "urban_labels"),
    "vegplan": ("landsat", "gf2", "osm", "stations", "soil", "species", "population"),
}

CONFIG_SCHEMA = "config.schema.yaml"
CITY_SCHEMA = "city.schema.yaml"
BATCH_SCHEMA = "batch.schema.yaml"


class CityConfig(dict):
    """A validated city file: a plain dict plus where it came from.

    ``path`` is the file as given (used as the ``where`` of error messages) and
    ``root`` the folder that relative paths in it are resolved against.
    """

    def __init__(self, data: Mapping[str, Any], path: str, root: Path):
        super().__init__(data)
        self.path = path
        self.root = root


def schema_dir() -> Path:
    """Folder of the config, batch and city schemas (package data)."""
    return Path(__file__).resolve().parent / "schemas"


def load_config(path_or_dict: str | os.PathLike | Mapping, *, where: str | None = None,
                schemas: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> dict:
    """Validate the run config (a YAML path or an already-loaded dict); return a copy with defaults.

    With ``batch: NAME`` the batch file {batches_dir}/NAME.yaml sets ``cities`` and ``run`` (the
    run defaults to the batch's name, so two batches never publish into the same results/{run}).
    """
    if isinstance(path_or_dict, Mapping):
        data, where = copy.deepcopy(dict(path_or_dict)), where or "config"
    else:
        where = where or str(path_or_dict)
        data = _read_yaml(path_or_dict, where)
    _validate(data, Path(schemas or schema_dir()) / CONFIG_SCHEMA, where)
    if data["batch"]:
        path = Path(root or ".") / data["batches_dir"] / f"{data['batch']}.yaml"
        rel = str(Path(data["batches_dir"]) / f"{data['batch']}.yaml")
        if not path.is_file():
            raise InputError(rel, f"batch file not found (batch '{data['batch']}' is named in {where})")
        batch = _read_yaml(path, rel)
        _validate(batch, Path(schemas or schema_dir()) / BATCH_SCHEMA, rel)
        data["cities"], data["run"] = batch["cities"], batch.get("run") or data["batch"]
    return data


def city_file(config: Mapping, name: str) -> str:
    """Path of a city's file as the config names it (relative stays relative)."""
    return str(Path(config.get("cities_dir", "config/cities")) / f"{name}.yaml")


def load_cities(config: Mapping, *, root: str | os.PathLike | None = None,
                schemas: str | os.PathLike | None = None) -> dict[str, CityConfig]:
    """Load and validate every city listed in a validated run config, in config order."""
    root = Path(root or Path.cwd())
    cities = {}
    for name in config["cities"]:
        path = city_file(config, name)
        if not (root / path).is_file():
            raise InputError(path, f"city file not found (city '{name}' is listed in cities)")
        cities[name] = load_city(path, root=root, schemas=schemas)
    return cities


def load_city(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
              schemas: str | os.PathLike | None = None) -> CityConfig:
    """Validate a city file; fill defaults (region_buffer_km, hemisphere, synthetic seed/profile)."""
    root = Path(root or Path.cwd())
    where = str(path)
    data = _read_yaml(root / path, where)
    _validate(data, Path(schemas or schema_dir()) / CITY_SCHEMA, where)
    stem = Path(path).name.removesuffix(".yaml").removesuffix(".yml")
    if data["name"] != stem:
        raise InputError(where, f"name: '{data['name']}' must equal the file name '{stem}'")
    city = CityConfig(data, where, root)
    lon_min, lat_min, lon_max, lat_max = aoi_bounds(city)  # also checks the AOI itself
    city.setdefault("hemisphere", "north" if (lat_min + lat_max) / 2 >= 0 else "south")
    return city


def aoi_bounds(city: Mapping) -> tuple[float, float, float, float]:
    """``(lon_min, lat_min, lon_max, lat_max)`` of the city's AOI, in degrees."""
    where = city_where(city)
    aoi = city["aoi"]
    if isinstance(aoi, str):
        return _geojson_bounds(aoi, city_root(city), where)
    lon_min, lat_min, lon_max, lat_max = (float(v) for v in aoi)
    if lon_min >= lon_max:
        raise InputError(where, f"aoi: lon_min {lon_min:g} must be less than lon_max {lon_max:g}")
    if lat_min >= lat_max:
        raise InputError(where, f"aoi: lat_min {lat_min:g} must be less than lat_max {lat_max:g}")
    return lon_min, lat_min, lon_max, lat_max


def input_matches(city: Mapping, key: str) -> list[str]:
    """Sorted paths (files or folders) that the city's ``inputs.<key>`` matches; [] if none.

    Relative patterns give paths relative to the city's root, absolute ones absolute paths.
    """
    pattern = city["inputs"][key]
    return sorted(glob.glob(pattern, root_dir=city_root(city), recursive=True))


def resolve_input(city: Mapping, key: str) -> list[str]:
    """Like ``input_matches`` but a missing key or an empty match is an InputError."""
    if key not in city.get("inputs", {}):
        raise InputError(city_where(city), f"inputs.{key}: not configured")
    found = input_matches(city, key)
    if not found:
        raise InputError(city_where(city), f"inputs.{key}: matches no file: {city['inputs'][key]}")
    return found


def city_where(city: Mapping) -> str:
    """The city file as given (the ``where`` of its errors)."""
    return getattr(city, "path", None) or f"city '{city.get('name', '?')}'"


def city_root(city: Mapping) -> Path:
    """Folder that relative paths in the city file resolve against (the repository root)."""
    return getattr(city, "root", None) or Path.cwd()


def is_synthetic(city: Mapping) -> bool:
    return "synthetic" in city


def missing_inputs(city: Mapping, product: str) -> list[str]:
    """What stops ``city`` from making ``product``; [] when nothing does.

    A synthetic city's files appear only once generated, so only the keys are checked.
    """
    if product not in PRODUCT_INPUTS:
        raise ValueError(f"unknown product {product!r}; expected one of {', '.join(PRODUCTS)}")
    inputs = city.get("inputs", {})
    problems = []
    for key in PRODUCT_INPUTS[product]:
        if key not in inputs:
            problems.append(f"input '{key}' is not configured")
        elif not is_synthetic(city) and not input_matches(city, key):
            problems.append(f"input '{key}' matches no file: {inputs[key]}")
    return problems


def check_inputs(city: Mapping, product: str) -> None:
    """Raise InputError naming the city, the product and the first input it lacks."""
    problems = missing_inputs(city, product)
    if problems:
        raise InputError(city_where(city), f"city '{city['name']}' cannot make product '{product}': {problems[0]}")


# --- helpers -------------------------------------------------------------------------------------

def _read_yaml(path: str | os.PathLike, where: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(where, "file not found") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise InputError(where, f"invalid YAML{line}: {getattr(err, 'problem', None) or err}") from None


def _validate(data: Any, schema_file: Path, where: str) -> None:
    """snakemake's validate (fills defaults in place); its error becomes one line with the key path."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    if not isinstance(data, dict):  # snakemake's validate silently accepts non-dicts (e.g. an empty file)
        raise InputError(where, f"expected a mapping of keys, got {_short(data)}")
    try:
        validate(data, str(schema_file), set_default=True)
    except WorkflowError as err:
        raise _first_error(data, schema_file, where, err) from None


def _first_error(data: Any, schema_file: Path, where: str, err: Exception) -> InputError:
    # snakemake's message spans many lines; re-run jsonschema to get the key path.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    with open(schema_file, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    best = best_match(Draft202012Validator(schema).iter_errors(data))
    if best is None:  # should not happen; keep the gist of snakemake's message
        return InputError(where, str(err).splitlines()[0])
    path, problem = _describe(best)
    key = ".".join(str(p) for p in path)
    return InputError(where, f"{key}: {problem}" if key else problem)


def _describe(err) -> tuple[list, str]:
    """Key path and a short problem text for one jsonschema error."""
    path = list(err.absolute_path)
    kind, value, instance = err.validator, err.validator_value, err.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(str(k) for k in instance if k not in allowed)
        if extra:
            hint = difflib.get_close_matches(extra[0], allowed, n=1)
            return path + [extra[0]], "additional property not allowed" + (
                f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        if missing:
            return path + [missing[0]], "required key missing"
    if kind == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        return path, f"expected {expected}, got {_short(instance)}"
    if kind == "enum":
        return path, f"must be one of {', '.join(map(repr, value))}, got {_short(instance)}"
    return path, err.message


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str)) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _geojson_bounds(aoi: str, root: Path, where: str) -> tuple[float, float, float, float]:
    path = Path(aoi) if Path(aoi).is_absolute() else root / aoi
    if not path.is_file():
        raise InputError(where, f"aoi: GeoJSON file not found: {aoi}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(aoi, f"not a readable GeoJSON file: {err}") from None
    rings = [ring for geom in _polygons(doc) for ring in _rings(geom)]
    points = [pt for ring in rings for pt in ring if isinstance(pt, list) and len(pt) >= 2]
    if not points:
        raise InputError(aoi, "no Polygon or MultiPolygon geometry (needed as the AOI)")
    lons = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    bounds = min(lons), min(lats), max(lons), max(lats)
    if not (-180 <= bounds[0] and bounds[2] <= 180 and -90 <= bounds[1] and bounds[3] <= 90):
        raise InputError(aoi, "coordinates are not lon/lat degrees (GeoJSON must be EPSG:4326)")
    if bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
        raise InputError(aoi, "the polygon has no area")
    return bounds


def _polygons(doc: Any):
    """Yield the Polygon / MultiPolygon geometries of any GeoJSON object."""
    if not isinstance(doc, dict):
        return
    kind = doc.get("type")
    if kind == "FeatureCollection":
        for feature in doc.get("features") or []:
            yield from _polygons(feature)
    elif kind == "Feature":
        yield from _polygons(doc.get("geometry"))
    elif kind == "GeometryCollection":
        for geom in doc.get("geometries") or []:
            yield from _polygons(geom)
    elif kind in ("Polygon", "MultiPolygon"):
        yield doc


def _rings(geom: dict) -> list:
    coords = geom.get("coordinates") or []
    if geom["type"] == "Polygon":
        return [r for r in coords if isinstance(r, list)]
    return [r for poly in coords if isinstance(poly, list) for r in poly if isinstance(r, list)]
