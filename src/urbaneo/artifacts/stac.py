"""The static STAC catalog of a run: versioned items for products, raw inputs and models.

Layout under ``results/{run}/`` (relative hrefs throughout, ``CatalogType.SELF_CONTAINED``)::

    catalog.json
    stac/{collection}/collection.json
    stac/{collection}/{item_id}/{item_id}.json   + copies of the item's product/model files

The item files are the catalog's state: every change reads them, updates the version
history (``predecessor-version`` / ``successor-version`` / ``latest-version`` links,
``deprecated``), and rebuilds the catalog and collections from them in sorted order, so
the same publications give byte-identical JSON whatever order the jobs ran in. Writers
take a lock on the run folder (parallel Snakemake jobs publish into one catalog) and
write each file atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from datetime import date, datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pystac
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.version import VersionExtension, ignore_deprecated
from pystac.layout import CustomLayoutStrategy
from pystac.stac_io import DefaultStacIO

from urbaneo.artifacts.version import (canonical_json, code_version, multihash_sha256,
                                       sha256_tree, to_multihash, version_id)
from urbaneo.atomic import atomic_dir, atomic_path
from urbaneo.errors import InputError

COLLECTIONS = {
    "npp": "Net primary production (vegetation carbon storage capacity) maps per city and season.",
    "lcz": "Local Climate Zone class and abundance maps per city.",
    "urban": "Urban construction-land masks and polygons per city.",
    "vegplan": "Vegetation configuration plans per city.",
    "models": "Trained models (STAC MLM extension) with their training data items.",
    "inputs": "Raw inputs of each city with their checksums.",
}
PROCESSING_URI = "https://stac-extensions.github.io/processing/v1.1.0/schema.json"
MLM_URI = "https://stac-extensions.github.io/mlm/v1.5.0/schema.json"
SCHEMA_DIR = Path(__file__).with_name("schemas")
# Extension schema URI -> vendored copy (see schemas/README.md for origin and license).
VENDORED_SCHEMAS = {
    FileExtension.get_schema_uri(): "file-v2.1.0.json",
    ProjectionExtension.get_schema_uri(): "projection-v2.0.0.json",
    VersionExtension.get_schema_uri(): "version-v1.2.0.json",
    PROCESSING_URI: "processing-v1.1.0.json",
    MLM_URI: "mlm-v1.5.0.json",
    # Not used by our items, but MLM's data types are references into it.
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
}
_HIERARCHY_RELS = {"root", "parent", "collection", "self", "child", "item"}
_SOFTWARE = {"torch": "torch", "rasterio": "rasterio", "snakemake": "snakemake"}
_MEDIA_TYPES = {".tif": pystac.MediaType.GEOTIFF, ".tiff": pystac.MediaType.GEOTIFF,
                ".nc": "application/netcdf", ".pbf": "application/vnd.openstreetmap.data+pbf",
                ".csv": "text/csv", ".gz": "application/gzip", ".json": pystac.MediaType.JSON,
                ".xml": pystac.MediaType.XML, ".txt": pystac.MediaType.TEXT}
_MLM_FRAMEWORKS = {"pytorch": "PyTorch", "torch": "PyTorch", "scikit-learn": "scikit-learn",
                   "sklearn": "scikit-learn", "tensorflow": "TensorFlow", "onnx": "ONNX"}


# --------------------------------------------------------------------------- public API

def publish(run_dir: str | os.PathLike, *, product: str, city: str,
            assets: Mapping[str, Sequence], grid, params: Mapping, lineage: str,
            inputs: Iterable[str | os.PathLike], period, code: Mapping | None = None) -> pystac.Item:
    """Add (or find) the item of ``product`` for ``city`` made from ``inputs`` with ``params``.

    ``assets``: key -> (path, media type, roles[, extra asset fields]); the files are copied
    into the item's folder, so older versions keep their own files. ``inputs``: item ids, series
    names (``inputs/landsat``, ``models/npp``, or a bare product such as ``lcz``: the latest
    item of that series for this city) or files/folders, checksummed directly. ``lineage`` is
    the rule name; ``period`` the data's time (years or ISO dates, see :func:`time_range`).
    The version id hashes the input checksums, ``params`` and the code's identity: when an
    item of that version exists nothing is written; otherwise the new item becomes the
    series' latest and the previous one is marked deprecated.
    """
    code = dict(code or code_version())
    params = json.loads(canonical_json(params))
    with _locked(run_dir):
        items = load_items(run_dir)
        checksums, derived = _resolve_inputs(items, city, inputs)
        vid = version_id(checksums, params, code["source_sha256"])
        item = _new_item(f"{product}-{city}-{vid}", product, product, city, vid, period, grid)
        item.properties.update({
            "processing:lineage": f"rule {lineage}: params {canonical_json(params)}",
            "processing:software": software_versions(code),
            "urbaneo:params": params, "urbaneo:inputs": checksums, "urbaneo:code": code,
        })
        item.stac_extensions.append(PROCESSING_URI)
        if _store(run_dir, items, item, assets, derived):
            _save(run_dir, items)
        return _read_item(run_dir, items[item.id])


def register_inputs(run_dir: str | os.PathLike, city: str, inventory_json: str | os.PathLike, *,
                    period, root: str | os.PathLike | None = None, grid=None) -> list[pystac.Item]:
    """One ``inputs`` item per input key of a city's inventory (``urbaneo inventory``).

    Assets are the raw files where they lie (hrefs relative to the item, ``root`` being the
    folder the inventory's paths are relative to, the current one by default) with the
    inventory's checksums; the version id hashes those checksums only.
    """
    inventory = _read_inventory(inventory_json, city)
    root = Path(os.path.abspath(root or Path.cwd()))
    with _locked(run_dir):
        items = load_items(run_dir)
        made, changed = [], False
        for key in sorted(inventory["inputs"]):
            files = inventory["inputs"][key]["files"]
            checksums = {f["path"]: f["sha256"] for f in files}
            vid = version_id(checksums, {}, "raw")
            item = _new_item(f"input-{key}-{city}-{vid}", "inputs", key, city, vid, period, grid)
            item.properties.update({"urbaneo:pattern": inventory["inputs"][key]["pattern"],
                                    "urbaneo:inputs": checksums})
            item_dir = _item_dir(run_dir, "inputs", item.id)
            for f in files:
                href = os.path.relpath(root / f["path"], os.path.abspath(item_dir))
                asset = pystac.Asset(Path(href).as_posix(), media_type=_media_type(f["path"]),
                                     roles=["data"])
                item.add_asset(f["path"], asset)
                FileExtension.ext(asset, add_if_missing=True).apply(
                    checksum=to_multihash(f["sha256"]), size=f["size"])
            changed |= _store(run_dir, items, item, {}, [])
            made.append(item.id)
        if changed:
            _save(run_dir, items)
        return [_read_item(run_dir, items[item_id]) for item_id in made]


def register_model(run_dir: str | os.PathLike, *, product: str, city: str,
                   checkpoint_path: str | os.PathLike, architecture: str, framework: str = "pytorch",
                   framework_version: str, hyperparameters: Mapping, input_spec: Sequence[Mapping],
                   output_spec: Sequence[Mapping], training_items: Iterable[str | os.PathLike], period,
                   grid=None, artifact_type: str = "torch.save", code: Mapping | None = None) -> pystac.Item:
    """A trained model as an item of ``models`` with the MLM extension fields.

    ``input_spec`` / ``output_spec`` are MLM Model Input / Output objects (name, input/result
    structure with shape, dim_order, data_type; outputs also their tasks). ``training_items``
    are resolved like :func:`publish`'s inputs and linked as ``derived_from``.
    """
    code = dict(code or code_version())
    spec = json.loads(canonical_json({
        "architecture": architecture, "framework": _MLM_FRAMEWORKS.get(framework.lower(), framework),
        "hyperparameters": hyperparameters, "input": input_spec, "output": output_spec}))
    with _locked(run_dir):
        items = load_items(run_dir)
        checksums, derived = _resolve_inputs(items, city, training_items)
        vid = version_id(checksums, spec, code["source_sha256"])
        item = _new_item(f"model-{product}-{city}-{vid}", "models", product, city, vid, period, grid)
        item.properties.update({
            "mlm:name": f"{product}-{city}", "mlm:architecture": spec["architecture"],
            "mlm:tasks": sorted({task for out in spec["output"] for task in out.get("tasks", [])}),
            "mlm:framework": spec["framework"], "mlm:framework_version": framework_version,
            "mlm:input": spec["input"], "mlm:output": spec["output"],
            "processing:software": software_versions(code),
            "urbaneo:params": spec, "urbaneo:inputs": checksums, "urbaneo:code": code,
        })
        if spec["hyperparameters"]:  # MLM wants at least one entry when the field is present
            item.properties["mlm:hyperparameters"] = spec["hyperparameters"]
        item.stac_extensions += [MLM_URI, PROCESSING_URI]
        assets = {"model": (checkpoint_path, "application/octet-stream; application=pytorch",
                            ["mlm:model", "data"], {"mlm:artifact_type": artifact_type})}
        if _store(run_dir, items, item, assets, derived):
            _save(run_dir, items)
        return _read_item(run_dir, items[item.id])


def load_items(run_dir: str | os.PathLike) -> dict[str, dict]:
    """Every item of the run as its JSON dict (hierarchy links dropped), keyed by id."""
    items = {}
    for path in sorted(Path(run_dir).glob("stac/*/*/*.json")):
        if path.stem != path.parent.name:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(path, f"unreadable STAC item: {err}") from None
        data["links"] = [link for link in data.get("links", []) if link.get("rel") not in _HIERARCHY_RELS]
        items[data["id"]] = data
    return items


def item_path(run_dir: str | os.PathLike, item: Mapping) -> Path:
    return _item_dir(run_dir, item["collection"], item["id"]) / f"{item['id']}.json"


def series_of(item: Mapping) -> tuple[str, str, str]:
    """(collection, key, city): the items that are versions of one another."""
    props = item["properties"]
    return item["collection"], props["urbaneo:key"], props["urbaneo:city"]


def is_latest(item: Mapping) -> bool:
    return not item["properties"].get("deprecated", False)


def history(items: Mapping[str, dict], series: tuple[str, str, str]) -> list[dict]:
    """The versions of a series, newest first (along predecessor links from the latest)."""
    members = {i["id"]: i for i in items.values() if series_of(i) == series}
    ordered = []
    current = next((i for i in members.values() if is_latest(i)), None)
    while current is not None and current["id"] not in {o["id"] for o in ordered}:
        ordered.append(current)
        pred = _link_target(current, "predecessor-version")
        current = members.get(pred) if pred else None
    return ordered + [members[k] for k in sorted(members) if members[k] not in ordered]


def software_versions(code: Mapping) -> dict[str, str]:
    """``processing:software``: urbaneo (version+commit) and the key libraries present."""
    commit = code.get("git_commit", "unknown")
    software = {"urbaneo": code["version"] + (f"+g{commit[:12]}" if commit != "unknown" else "")}
    for name, dist in _SOFTWARE.items():
        try:
            software[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        import rasterio

        software["GDAL"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return software


def time_range(period) -> tuple[str, str]:
    """(start, end) ISO datetimes (UTC, 'Z') of a period: a year, (year, year), or ISO dates.

    Whole years and bare dates cover their full days: (2019, 2021) -> 2019-01-01T00:00:00Z ..
    2021-12-31T23:59:59Z.
    """
    start, end = (period, period) if isinstance(period, (int, str, date)) else tuple(period)
    return _instant(start, first=True), _instant(end, first=False)


# ------------------------------------------------------------------------- validation

def validate_catalog(path: str | os.PathLike) -> list[str]:
    """Validate the catalog at ``path`` and every object it links, offline; [] when all valid.

    Each object is checked against STAC core (pystac's bundled 1.1.0 schemas) and the
    vendored schema of every extension it declares; an extension without a vendored schema
    is an error, as nothing may be fetched.
    """
    path = Path(path)
    base, errors, seen, queue = path.parent, [], set(), [path]
    validators: dict[str, Any] = {}
    while queue:
        current = Path(os.path.normpath(queue.pop(0)))
        if current in seen:
            continue
        seen.add(current)
        rel = os.path.relpath(current, base)
        try:
            obj = json.loads(current.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            errors.append(f"{rel}: unreadable: {err}")
            continue
        errors += _validate_object(obj, rel, validators)
        queue += [current.parent / link["href"] for link in obj.get("links", [])
                  if link.get("rel") in ("child", "item") and isinstance(link.get("href"), str)]
    return errors


def _validate_object(obj: Any, rel: str, validators: dict) -> list[str]:
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    kind = {"Feature": "item", "Catalog": "catalog", "Collection": "collection"}.get(
        obj.get("type") if isinstance(obj, dict) else None)
    if kind is None:
        return [f"{rel}: not a STAC catalog, collection or item"]
    core = (f"https://schemas.stacspec.org/v{obj.get('stac_version')}/"
            f"{kind}-spec/json-schema/{kind}.json")
    errors = []
    for uri in [core, *obj.get("stac_extensions", [])]:
        if uri not in validators:
            validators[uri] = _validator(uri)
        validator = validators[uri]
        if validator is None:
            errors.append(f"{rel}: no vendored schema for {uri}: cannot validate offline")
            continue
        try:
            err = best_match(validator.iter_errors(obj))
        except Unresolvable as exc:
            errors.append(f"{rel}: {_schema_name(uri)}: unresolvable reference {exc}")
            continue
        if err is not None:
            # oneOf/anyOf failures say little at the top: report the deepest failing field.
            while err.context:
                err = max(err.context, key=lambda e: len(e.absolute_path))
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
            errors.append(f"{rel}: {_schema_name(uri)}: {where}: {message}")
    return errors


def _validator(uri: str):
    from jsonschema.validators import validator_for

    registry = _registry()
    try:
        schema = registry.contents(uri)
    except LookupError:  # referencing's NoSuchResource / Unretrievable
        return None
    return validator_for(schema)(schema, registry=registry)


@lru_cache(maxsize=1)
def _registry():
    """Every schema we may need, keyed by its public URI; anything else is refused, not fetched."""
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT7

    def offline(uri: str):
        raise NoSuchResource(ref=uri)

    schemas = dict(get_local_schema_cache())
    schemas.update({uri: json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
                    for uri, name in VENDORED_SCHEMAS.items()})
    return Registry(retrieve=offline).with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT7))
        for uri, schema in schemas.items())


def _schema_name(uri: str) -> str:
    parts = uri.split("/")
    if "stac-extensions.github.io" in uri:
        return f"{parts[3]} {parts[4]}"  # e.g. "file v2.1.0"
    return f"STAC {parts[-1].removesuffix('.json')} {parts[3]}"


# ---------------------------------------------------------------------------- internals

def _new_item(item_id: str, collection: str, key: str, city: str, vid: str, period, grid) -> pystac.Item:
    start, end = time_range(period)
    geometry, bbox = _footprint(grid) if grid is not None else (None, None)
    item = pystac.Item(item_id, geometry, bbox, None, {"start_datetime": start, "end_datetime": end,
                                                       "urbaneo:city": city, "urbaneo:key": key},
                       collection=collection)
    VersionExtension.ext(item, add_if_missing=True).apply(version=vid)
    if grid is not None:
        ProjectionExtension.ext(item, add_if_missing=True).apply(
            code=grid.crs, shape=[int(n) for n in grid.shape],
            transform=[float(v) for v in list(grid.transform)[:6]],
            bbox=[float(v) for v in grid.bounds])
    return item


def _footprint(grid) -> tuple[dict, list[float]]:
    """The grid's extent in lon/lat (edges densified, rounded so it prints the same everywhere)."""
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    w, s, e, n = (round(v, 7) for v in to_lonlat.transform_bounds(*grid.bounds, densify_pts=21))
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}, [w, s, e, n]


def _store(run_dir, items: dict[str, dict], item: pystac.Item,
           assets: Mapping[str, Sequence], derived: list[str]) -> bool:
    """Put ``item`` in ``items`` as its series' latest unless that version exists.

    Returns whether anything changed (and so the catalog must be saved).
    """
    existing = items.get(item.id)
    if existing is not None:
        return _promote(items, existing, new=False)
    if assets:  # staged in a temporary folder: a missing or failing asset leaves nothing behind
        with atomic_dir(_item_dir(run_dir, item.collection_id, item.id)) as staging:
            _copy_assets(item, staging, assets)
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = [_link(items[i], "derived_from") for i in sorted(set(derived))]
    items[item.id] = data
    return _promote(items, data, new=True)


def _read_item(run_dir, data: Mapping) -> pystac.Item:
    with ignore_deprecated():
        return pystac.Item.from_file(str(item_path(run_dir, data)))


def _promote(items: dict[str, dict], latest: dict, *, new: bool) -> bool:
    """Make ``latest`` its series' latest version; False when it already was (nothing to write)."""
    series = series_of(latest)
    others = [i for k, i in sorted(items.items()) if k != latest["id"] and series_of(i) == series]
    current = [i for i in others if is_latest(i)]
    if not new and not current and is_latest(latest):
        return False
    if new and current:
        _set_link(latest, "predecessor-version", current[0])
        _set_link(current[0], "successor-version", latest)
    latest["properties"].pop("deprecated", None)
    _set_link(latest, "latest-version", None)
    for other in others:
        other["properties"]["deprecated"] = True
        _set_link(other, "latest-version", latest)
    return True


def _link(target: Mapping, rel: str) -> dict:
    # Every item sits at stac/{collection}/{id}/{id}.json, so item-to-item hrefs are fixed.
    return {"rel": rel, "href": f"../../{target['collection']}/{target['id']}/{target['id']}.json",
            "type": pystac.MediaType.JSON}


def _set_link(owner: dict, rel: str, target: Mapping | None) -> None:
    owner["links"] = [link for link in owner["links"] if link.get("rel") != rel]
    if target is not None:
        owner["links"].append(_link(target, rel))
    owner["links"].sort(key=lambda link: (link.get("rel", ""), link.get("href", "")))


def _link_target(item: Mapping, rel: str) -> str | None:
    href = next((link["href"] for link in item.get("links", []) if link.get("rel") == rel), None)
    return Path(href).stem if href else None


def _copy_assets(item: pystac.Item, item_dir: Path, assets: Mapping[str, Sequence]) -> None:
    names = [Path(spec[0]).name for spec in assets.values()]
    if len(set(names)) != len(names):
        raise ValueError(f"{item.id}: assets must have distinct file names, got {sorted(names)}")
    for key in sorted(assets):
        source, media_type, roles, *extra = assets[key]
        source = Path(source)
        if not source.is_file():
            raise InputError(source, f"asset '{key}' of {item.id}: no such file")
        copy = item_dir / source.name
        shutil.copyfile(source, copy)
        asset = pystac.Asset(f"./{source.name}", media_type=media_type, roles=list(roles),
                             extra_fields=dict(extra[0]) if extra else None)
        item.add_asset(key, asset)
        FileExtension.ext(asset, add_if_missing=True).apply(
            checksum=multihash_sha256(copy), size=copy.stat().st_size)


def _resolve_inputs(items: Mapping[str, dict], city: str,
                    inputs: Iterable[str | os.PathLike]) -> tuple[dict[str, str], list[str]]:
    """Input checksums for the version id, and the items to link as ``derived_from``.

    An item stands for its content by its id (which carries its own version); a file or
    folder by its sha256, named by its path relative to the working directory when inside it.
    """
    checksums, derived = {}, []
    for entry in inputs:
        ref = os.fspath(entry)
        item = items.get(ref) or _latest_of(items, ref, city)
        if item is not None:
            checksums[f"{item['collection']}/{item['properties']['urbaneo:key']}"] = item["id"]
            derived.append(item["id"])
        elif os.path.exists(ref):
            checksums[_path_name(ref)] = sha256_tree(ref)
        else:
            raise InputError(ref, f"input of city '{city}' is neither an item of the catalog, "
                                  "a published series (collection/key) nor an existing file")
    return checksums, derived


def _latest_of(items: Mapping[str, dict], ref: str, city: str) -> dict | None:
    collection, _, key = ref.partition("/")
    series = (collection, key or collection, city)
    return next((i for i in items.values() if series_of(i) == series and is_latest(i)), None)


def _path_name(path: str) -> str:
    full, cwd = Path(os.path.abspath(path)), Path.cwd()
    return (full.relative_to(cwd) if full.is_relative_to(cwd) else full).as_posix()


def _read_inventory(path: str | os.PathLike, city: str) -> dict:
    try:
        inventory = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(path, f"cannot read inventory: {err.strerror}") from None
    except ValueError as err:
        raise InputError(path, f"not valid JSON: {err}") from None
    if not isinstance(inventory, dict) or inventory.get("format") != "urbaneo.inventory/1":
        raise InputError(path, "not an urbaneo inventory (format 'urbaneo.inventory/1')")
    if inventory.get("city") != city:
        raise InputError(path, f"inventory of city '{inventory.get('city')}', expected '{city}'")
    for key, entry in (inventory.get("inputs") or {}).items():
        files = entry.get("files") if isinstance(entry, dict) else None
        if not files or not all(isinstance(f, dict) and {"path", "size", "sha256"} <= f.keys() for f in files):
            raise InputError(path, f"inputs.{key}: needs files with path, size and sha256")
    if not inventory.get("inputs"):
        raise InputError(path, "lists no inputs")
    return inventory


def _media_type(path: str) -> str | None:
    return _MEDIA_TYPES.get(Path(path).suffix.lower())


def _instant(value, *, first: bool) -> str:
    if isinstance(value, int):
        value = date(value, 1, 1) if first else date(value, 12, 31)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time() if first else datetime.max.time())
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_dir(run_dir, collection: str, item_id: str) -> Path:
    return Path(run_dir) / "stac" / collection / item_id


@contextmanager
def _locked(run_dir) -> Iterator[None]:
    """Serialise catalog updates of one run across processes (parallel publish jobs)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".catalog.lock", "a") as lock:  # "a": taking the lock touches nothing
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class _StacIO(DefaultStacIO):
    """Sorted keys, one trailing newline, atomic writes; an unchanged file is not rewritten."""

    def json_dumps(self, json_dict: dict, *args: Any, **kwargs: Any) -> str:
        return json.dumps(json_dict, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write_text_to_href(self, href: str, txt: str) -> None:
        path = Path(href)
        if path.is_file() and path.read_text(encoding="utf-8") == txt:
            return
        with atomic_path(path) as tmp:
            tmp.write_text(txt, encoding="utf-8")


_LAYOUT = CustomLayoutStrategy(
    catalog_func=lambda catalog, parent_dir, is_root: os.path.join(parent_dir, "catalog.json"),
    collection_func=lambda col, parent_dir, is_root: os.path.join(parent_dir, "stac", col.id,
                                                                   "collection.json"),
    item_func=lambda item, parent_dir: os.path.join(parent_dir, item.id, f"{item.id}.json"),
)


def _save(run_dir, items: Mapping[str, dict]) -> None:
    """Rebuild catalog.json and every collection from the items, in sorted order, and write."""
    run_dir = Path(os.path.abspath(run_dir))
    catalog = pystac.Catalog(f"urbaneo-{run_dir.name}", f"urbaneo artifacts of run '{run_dir.name}'",
                             catalog_type=pystac.CatalogType.SELF_CONTAINED)
    by_collection: dict[str, list[dict]] = {}
    for item_id in sorted(items):
        by_collection.setdefault(items[item_id]["collection"], []).append(items[item_id])
    with ignore_deprecated():
        for collection_id, members in sorted(by_collection.items()):
            collection = pystac.Collection(collection_id, COLLECTIONS.get(collection_id, collection_id),
                                           _extent(members), license="other")
            for data in members:
                collection.add_item(pystac.Item.from_dict(data, migrate=False))
            catalog.add_child(collection)
        # Version and derived_from links are relative strings already: do not resolve them.
        catalog.normalize_hrefs(str(run_dir), strategy=_LAYOUT, skip_unresolved=True)
        catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=_StacIO())


def _extent(members: Sequence[Mapping]) -> pystac.Extent:
    boxes = [m["bbox"] for m in members if m.get("bbox")]
    bbox = ([min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
             max(b[3] for b in boxes)] if boxes else [-180.0, -90.0, 180.0, 90.0])
    starts = [m["properties"]["start_datetime"] for m in members]
    ends = [m["properties"]["end_datetime"] for m in members]

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return pystac.Extent(pystac.SpatialExtent([bbox]),
                         pystac.TemporalExtent([[parse(min(starts)), parse(max(ends))]]))
