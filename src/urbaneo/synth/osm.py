"""Write a synthetic city as a real OpenStreetMap ``.osm.pbf`` file (via pyosmium's writer).

Features come in lon/lat (EPSG:4326) with their OSM tags:

- a LineString becomes a way;
- a Polygon without holes becomes a closed way;
- a Polygon with holes or a MultiPolygon becomes a ``type=multipolygon`` relation whose
  untagged member ways are its rings (role ``outer`` / ``inner``); the tags go on the relation.

Coordinates are quantised to OSM's precision (1e-7 degree) and equal coordinates share one
node, across all features. That is what makes a road network routable: two roads that meet
at the same vertex reference the same node, which is how pyrosm (and every OSM router)
finds junctions.

Ids are positive and assigned in input order (nodes by first appearance), every object
carries the same fixed metadata and the header holds nothing time-dependent, so identical
input gives a byte-identical file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping, Sequence

import osmium
from osmium.osm import mutable
from shapely.geometry import LinearRing, LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from urbaneo.atomic import atomic_path
from urbaneo.errors import InputError

SCALE = 10_000_000  # OSM stores coordinates as integers of 1e-7 degree
USER = "urbaneo-synth"
GENERATOR = "urbaneo"


@dataclass
class OsmFeature:
    """One OSM feature: a lon/lat geometry (LineString, Polygon or MultiPolygon) and its tags."""

    geometry: BaseGeometry
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Way:
    id: int
    nodes: list[int]
    tags: dict[str, str]


@dataclass
class _Relation:
    id: int
    members: list[tuple[str, int, str]]  # (type, ref, role) as pyosmium takes them
    tags: dict[str, str]


class _Builder:
    """Turns features into nodes, ways and relations with deterministic ids."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], int] = {}  # quantised (lon, lat) -> node id
        self.ways: list[_Way] = []
        self.relations: list[_Relation] = []

    def node_refs(self, coords, where: str, closed: bool) -> list[int]:
        refs: list[int] = []
        for x, y, *_ in coords:  # a z coordinate, if any, is dropped
            if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
                raise InputError(where, f"coordinate ({x}, {y}) is not lon/lat in degrees (EPSG:4326)")
            key = (round(x * SCALE), round(y * SCALE))
            ref = self.nodes.setdefault(key, len(self.nodes) + 1)
            if not refs or refs[-1] != ref:  # points closer than 1e-7 degree collapse into one
                refs.append(ref)
        if closed and (len(refs) < 4 or refs[0] != refs[-1]):
            raise InputError(where, "ring has fewer than 3 distinct points at 1e-7 degree precision")
        if len(refs) < 2:
            raise InputError(where, "line has fewer than 2 distinct points at 1e-7 degree precision")
        return refs

    def way(self, coords, tags: dict[str, str], where: str, closed: bool) -> int:
        way_id = len(self.ways) + 1
        self.ways.append(_Way(way_id, self.node_refs(coords, where, closed), tags))
        return way_id

    def add(self, geom: BaseGeometry, tags: dict[str, str], where: str) -> None:
        if geom is None or geom.is_empty:
            raise InputError(where, "geometry is empty")
        if isinstance(geom, LineString) and not isinstance(geom, LinearRing):
            self.way(geom.coords, tags, where, closed=False)
            return
        if not isinstance(geom, (Polygon, MultiPolygon)):
            raise InputError(where, f"geometry type {geom.geom_type} is not LineString, Polygon or MultiPolygon")
        if not geom.is_valid:
            # osmium and pyrosm would silently drop or mangle an invalid area; say so here
            raise InputError(where, f"invalid polygon: {explain_validity(geom)}")
        if isinstance(geom, Polygon) and not geom.interiors:
            self.way(geom.exterior.coords, tags, where, closed=True)
            return
        members = []
        for poly in getattr(geom, "geoms", [geom]):
            members.append(("w", self.way(poly.exterior.coords, {}, where, closed=True), "outer"))
            for hole in poly.interiors:
                members.append(("w", self.way(hole.coords, {}, where, closed=True), "inner"))
        rel_tags = {**tags, "type": "multipolygon"}
        self.relations.append(_Relation(len(self.relations) + 1, members, rel_tags))


def _check_tags(tags, where: str) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InputError(where, f"tags must be a mapping of str to str, got {type(tags).__name__}")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InputError(where, f"tag {key!r}={value!r}: keys and values must be strings (key non-empty)")
    return dict(tags)


def _parse_timestamp(timestamp: str | datetime) -> datetime:
    try:
        ts = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(str(timestamp))
    except ValueError:
        raise InputError("timestamp", f"{timestamp!r} is not an ISO 8601 time such as 2023-06-01T00:00:00Z")
    if ts.tzinfo is None:
        raise InputError("timestamp", f"{timestamp!r} has no time zone; give it in UTC, e.g. with a trailing Z")
    return ts.astimezone(timezone.utc)


def _check_bbox(bbox) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError("bbox", f"{bbox!r} is not (min_lon, min_lat, max_lon, max_lat)")
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError("bbox", f"{bbox!r} is not (min_lon, min_lat, max_lon, max_lat) in degrees")
    return west, south, east, north


def write_osm_pbf(
    path: str | os.PathLike,
    features: Sequence[OsmFeature],
    *,
    timestamp: str | datetime = "2023-06-01T00:00:00Z",
    bbox: Sequence[float] | None = None,
) -> dict:
    """Write ``features`` to the ``.osm.pbf`` file ``path``, atomically.

    ``bbox`` (min_lon, min_lat, max_lon, max_lat) goes into the file header; without it the
    header holds the extent of the data (no box at all for an empty file). Returns
    ``{"nodes": n, "ways": n, "relations": n, "bbox": the header box or None}``.
    """
    ts = _parse_timestamp(timestamp)
    builder = _Builder()
    for i, feature in enumerate(features):
        tags = _check_tags(feature.tags, f"features[{i}]")
        # name the feature by its index and first tag, e.g. "features[3] highway=primary"
        label = " ".join([f"features[{i}]"] + [f"{k}={v}" for k, v in list(tags.items())[:1]])
        builder.add(feature.geometry, tags, label)

    if bbox is not None:
        bbox = _check_bbox(bbox)
    elif builder.nodes:
        xs = [x for x, _ in builder.nodes]
        ys = [y for _, y in builder.nodes]
        bbox = (min(xs) / SCALE, min(ys) / SCALE, max(xs) / SCALE, max(ys) / SCALE)

    header = osmium.io.Header()
    header.set("generator", GENERATOR)
    if bbox is not None:
        header.add_box(osmium.osm.Box(*bbox))

    meta = dict(version=1, visible=True, changeset=1, uid=1, user=USER, timestamp=ts)
    with atomic_path(path) as tmp:
        # The temporary name does not end in .pbf, so name the format; the file exists (empty).
        with osmium.SimpleWriter(osmium.io.File(str(tmp), "pbf"), header=header, overwrite=True) as writer:
            # OSM order: all nodes by id, then ways, then relations (ids are already ascending).
            for (x, y), node_id in builder.nodes.items():
                writer.add_node(mutable.Node(id=node_id, location=(x / SCALE, y / SCALE), tags={}, **meta))
            for way in builder.ways:
                writer.add_way(mutable.Way(id=way.id, nodes=way.nodes, tags=way.tags, **meta))
            for rel in builder.relations:
                writer.add_relation(mutable.Relation(id=rel.id, members=rel.members, tags=rel.tags, **meta))

    return {
        "nodes": len(builder.nodes),
        "ways": len(builder.ways),
        "relations": len(builder.relations),
        "bbox": bbox,
    }
