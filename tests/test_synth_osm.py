"""The synthetic .osm.pbf writer: pyrosm and osmium read back what was written."""

from __future__ import annotations

import warnings

import osmium
import pytest
from pyrosm import OSM
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from urbaneo.errors import InputError
from urbaneo.synth.osm import OsmFeature, write_osm_pbf

X0, Y0, STEP, N = 118.75, 32.05, 0.002, 5  # a 5 x 5 road grid, ~200 m blocks
XS = [round(X0 + i * STEP, 7) for i in range(N)]
YS = [round(Y0 + j * STEP, 7) for j in range(N)]
# One class per east-west road, one per north-south road: every crossing joins two classes.
EW_CLASSES = ["motorway", "trunk", "primary", "secondary", "tertiary"]
NS_CLASSES = ["residential", "residential", "tertiary", "residential", "residential"]
DRIVING = {"motorway", "trunk", "primary", "secondary", "tertiary", "residential"}
BUILDING_TYPES = ["yes", "residential", "apartments", "commercial", "industrial", "retail", "house"]

FOREST = box(118.74, 32.05, 118.748, 32.058).difference(box(118.742, 32.052, 118.746, 32.056))
LAKE = Polygon([(118.752, 32.060), (118.756, 32.060), (118.757, 32.063), (118.751, 32.062)])
PARK = box(118.7565, 32.0565, 118.7575, 32.0575)  # inside the north-east block
WOOD = MultiPolygon([box(118.760, 32.040, 118.761, 32.041), box(118.762, 32.040, 118.763, 32.041)])
RESIDENTIAL = box(X0, Y0, XS[2], YS[2])
RIVER = LineString([(118.74, 32.046), (118.75, 32.047), (118.76, 32.046), (118.77, 32.047)])


def _city() -> tuple[list[OsmFeature], list[Polygon]]:
    """Roads, 48 buildings and a few areas; also returns the building footprints."""
    feats = []
    for j, y in enumerate(YS):  # roads carry a vertex at every crossing, so they share nodes
        feats.append(OsmFeature(LineString([(x, y) for x in XS]), {"highway": EW_CLASSES[j], "name": f"EW {j}"}))
    for i, x in enumerate(XS):
        tags = {"highway": NS_CLASSES[i], "lanes": "2"} | ({"oneway": "yes"} if i == 1 else {})
        feats.append(OsmFeature(LineString([(x, y) for y in YS]), tags))
    # non-drivable ways hanging off the grid
    feats.append(OsmFeature(LineString([(XS[0], YS[1]), (XS[0] - 0.001, YS[1])]), {"highway": "service"}))
    feats.append(OsmFeature(LineString([(XS[1], YS[1]), (XS[1] + 0.001, YS[1] + 0.001)]), {"highway": "footway"}))
    feats.append(OsmFeature(LineString([(XS[2], YS[2]), (XS[2] + 0.001, YS[2] - 0.001)]), {"highway": "cycleway"}))

    buildings = []
    for bi in range(N - 1):
        for bj in range(N - 1):
            if (bi, bj) == (3, 3):
                continue  # the park's block
            for k in range(3):  # three buildings in each of 15 blocks, plus 3 below -> 48
                x, y = XS[bi] + 0.0004 + k * 0.0005, YS[bj] + 0.0004
                buildings.append(box(x, y, x + 0.0003, y + 0.0003))
    buildings += [box(XS[0] + 0.0004 + k * 0.0005, YS[0] + 0.0012, XS[0] + 0.0007 + k * 0.0005, YS[0] + 0.0015)
                  for k in range(3)]
    for n, footprint in enumerate(buildings):
        tags = {"building": BUILDING_TYPES[n % len(BUILDING_TYPES)], "building:levels": str(1 + n % 12)}
        if n % 5 == 0:
            tags["height"] = str(3 * (1 + n % 12))
        feats.append(OsmFeature(footprint, tags))

    feats += [
        OsmFeature(PARK, {"leisure": "park", "name": "Demo Park"}),
        OsmFeature(FOREST, {"landuse": "forest"}),
        OsmFeature(WOOD, {"natural": "wood"}),
        OsmFeature(box(118.764, 32.040, 118.765, 32.041), {"natural": "scrub"}),
        OsmFeature(box(118.766, 32.040, 118.767, 32.041), {"landuse": "grass"}),
        OsmFeature(box(118.768, 32.040, 118.769, 32.041), {"landuse": "meadow"}),
        OsmFeature(LAKE, {"natural": "water", "water": "lake"}),
        OsmFeature(RIVER, {"waterway": "river", "name": "Demo River"}),
        OsmFeature(RESIDENTIAL, {"landuse": "residential"}),
    ]
    return feats, buildings


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    feats, buildings = _city()
    path = tmp_path_factory.mktemp("osm") / "city.osm.pbf"
    summary = write_osm_pbf(path, feats, bbox=(118.73, 32.03, 118.78, 32.07))
    return path, feats, buildings, summary


def _one(gdf, column, value):
    rows = gdf[gdf[column] == value]
    assert len(rows) == 1, f"{column}={value}: {len(rows)} rows"
    return rows.iloc[0]


def test_summary_and_osmium_counts(city):
    path, feats, buildings, summary = city
    # 25 crossings + 3 dangling road ends + 4 per building (48) and per small box (4) + forest 8 + wood 8
    # + lake 4 + river 4; the residential landuse's corners are grid crossings and reuse those nodes
    assert summary["nodes"] == 25 + 3 + 4 * (48 + 4) + 8 + 8 + 4 + 4
    assert summary["ways"] == len(feats) + 2  # the two multipolygons add one member way each
    assert summary["relations"] == 2
    assert summary["bbox"] == (118.73, 32.03, 118.78, 32.07)

    counts = {"nodes": 0, "ways": 0, "relations": 0}
    ids = {"nodes": [], "ways": [], "relations": []}
    order = []
    for obj in osmium.FileProcessor(str(path)):
        kind = {"n": "nodes", "w": "ways", "r": "relations"}[obj.type_str()]
        counts[kind] += 1
        ids[kind].append(obj.id)
        order.append(kind)
        assert (obj.version, obj.changeset, obj.uid, obj.user) == (1, 1, 1, "urbaneo-synth")
    assert counts == {k: summary[k] for k in counts}
    assert order == sorted(order, key=["nodes", "ways", "relations"].index)
    assert all(v == sorted(v) and v[0] == 1 for v in ids.values())

    with osmium.io.Reader(str(path), osmium.osm.NOTHING) as reader:
        header = reader.header()
        assert header.get("generator") == "urbaneo"
        assert header.box().bottom_left.lon == pytest.approx(118.73)


def test_driving_network_is_connected(city):
    path = city[0]
    edges = OSM(str(path)).get_network("driving")
    assert set(edges["highway"]) == DRIVING
    assert len(edges) == 2 * N  # service, footway and cycleway are not drivable
    assert set(edges.loc[edges["name"].notna(), "name"]) == {f"EW {j}" for j in range(N)}

    nodes, segments = OSM(str(path)).get_network("driving", nodes=True)
    # union-find over the segment endpoints: one component means the crossings are shared nodes
    parent = {n: n for n in nodes["id"]}

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for u, v in zip(segments["u"], segments["v"]):
        parent[root(u)] = root(v)
    assert len(nodes) == N * N
    assert len({root(n) for n in parent}) == 1


def test_buildings(city):
    path, _, footprints, _ = city
    got = OSM(str(path)).get_buildings()
    assert len(got) == len(footprints) == 48
    assert set(got["building"]) == set(BUILDING_TYPES)
    levels = got["building:levels"].astype(int)
    assert levels.min() == 1 and levels.max() == 12
    assert got["height"].notna().sum() == len(range(0, 48, 5))
    for geom, expected in zip(got.sort_values("id").geometry, footprints):
        assert geom.hausdorff_distance(expected) < 1e-6


def test_landuse_natural_and_park(city):
    path = city[0]
    osm = OSM(str(path))
    landuse = osm.get_landuse()
    assert set(landuse["landuse"]) == {"forest", "grass", "meadow", "residential"}
    forest = _one(landuse, "landuse", "forest")
    assert forest["osm_type"] == "relation"
    assert forest.geometry.hausdorff_distance(FOREST) < 1e-6
    assert forest.geometry.area == pytest.approx(FOREST.area, rel=1e-6)
    assert forest.geometry.area < FOREST.envelope.area  # the hole survived
    assert _one(landuse, "landuse", "residential").geometry.hausdorff_distance(RESIDENTIAL) < 1e-6

    natural = osm.get_natural()
    assert set(natural["natural"]) == {"wood", "scrub", "water"}
    lake = _one(natural, "natural", "water")
    assert lake.geometry.hausdorff_distance(LAKE) < 1e-6
    wood = _one(natural, "natural", "wood")
    assert wood.geometry.geom_type == "MultiPolygon" and wood.geometry.hausdorff_distance(WOOD) < 1e-6

    parks = osm.get_data_by_custom_criteria({"leisure": ["park"]})
    park = _one(parks, "leisure", "park")
    assert park["name"] == "Demo Park" and park.geometry.hausdorff_distance(PARK) < 1e-6

    rivers = osm.get_data_by_custom_criteria({"waterway": ["river"]})
    assert _one(rivers, "waterway", "river").geometry.hausdorff_distance(RIVER) < 1e-6


def test_rewrite_is_byte_identical(tmp_path):
    feats, _ = _city()
    write_osm_pbf(tmp_path / "a.osm.pbf", feats)
    summary = write_osm_pbf(tmp_path / "b.osm.pbf", feats)
    assert (tmp_path / "a.osm.pbf").read_bytes() == (tmp_path / "b.osm.pbf").read_bytes()
    assert summary["bbox"] == (118.74, 32.04, 118.77, 32.063)  # data extent when no bbox given
    write_osm_pbf(tmp_path / "c.osm.pbf", feats, timestamp="2024-01-01T00:00:00Z")
    assert (tmp_path / "c.osm.pbf").read_bytes() != (tmp_path / "a.osm.pbf").read_bytes()


def test_empty_features_give_a_valid_empty_file(tmp_path):
    path = tmp_path / "empty.osm.pbf"
    assert write_osm_pbf(path, []) == {"nodes": 0, "ways": 0, "relations": 0, "bbox": None}
    assert sum(1 for _ in osmium.FileProcessor(str(path))) == 0
    osm = OSM(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyrosm warns "Could not find any ..."
        assert osm.get_network("driving") is None
        assert osm.get_buildings() is None
        assert osm.get_landuse() is None
        assert osm.get_natural() is None


@pytest.mark.parametrize(
    "geometry, problem",
    [
        (LineString([(500000.0, 3500000.0), (500100.0, 3500000.0)]), "not lon/lat"),
        (LineString([(118.75, 32.05), (118.75000001, 32.05)]), "fewer than 2 distinct points"),
        (box(118.75, 32.05, 118.76, 32.06).centroid, "Point"),
        (Polygon([(118.75, 32.05), (118.76, 32.06), (118.76, 32.05), (118.75, 32.06)]), "invalid polygon"),
    ],
)
def test_bad_features_raise_input_error_and_write_nothing(tmp_path, geometry, problem):
    path = tmp_path / "bad.osm.pbf"
    with pytest.raises(InputError, match=problem) as err:
        write_osm_pbf(path, [OsmFeature(geometry, {"highway": "primary"})])
    assert str(err.value).startswith("features[0]")
    assert list(tmp_path.iterdir()) == []
