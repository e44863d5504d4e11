"""OSM reader: pyrosm's Helsinki extract, the tiny demo city against its truth, exact geometry, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import osmium
import pyrosm
import pytest
import shapely
from osmium.osm import mutable
from pyproj import Transformer

from urbaneo.errors import InputError
from urbaneo.grid import Grid, city_grid
from urbaneo.readers import osm
from urbaneo.synth.osm import OsmFeature, write_osm_pbf
from urbaneo.synth.world import ROOF, build_world


@pytest.fixture(scope="module")
def helsinki():
    path = pyrosm.get_data("helsinki_pbf")  # bundled in the wheel: a local path, no download
    return path, osm.read_osm(path)


def test_helsinki_is_bundled_with_pyrosm():
    assert Path(pyrosm.get_data("helsinki_pbf")).parent == Path(pyrosm.__file__).parent / "data"


def test_helsinki_layers(helsinki):
    _, layers = helsinki
    for gdf in (layers.roads, layers.buildings, layers.green, layers.water, layers.landuse):
        assert gdf.crs.to_epsg() == 4326
    counts = layers.roads["road_class"].value_counts()
    assert {"primary", "secondary", "tertiary", "residential", "service", "other"} <= set(counts.index)
    # *_link ways join their parent class; unclassified ends up in "other"
    links = layers.roads["highway"] == "primary_link"
    assert links.any() and (layers.roads.loc[links, "road_class"] == "primary").all()
    assert (layers.roads.loc[layers.roads["highway"] == "unclassified", "road_class"] == "other").all()

    b = layers.buildings
    source = b["height_source"].value_counts()
    assert source["height"] > 10 and source["levels"] > 100 and source["default"] > 100
    assert np.isclose(b["height_m"], 12.13).any()  # the tag "12.13 m"
    assert (b.loc[b["height_source"] == "default", "height_m"] == osm.DEFAULT_HEIGHT_M).all()
    assert (b["height_m"] > 0).all()
    assert {"leisure=park", "landuse=grass", "natural=scrub"} <= set(layers.green["tag"])
    assert set(layers.landuse["code"]) <= set(osm.LANDUSE_CODES) - {osm.LANDUSE_NODATA}


def test_helsinki_rasterized(helsinki):
    _, layers = helsinki
    grid = city_grid(tuple(layers.buildings.total_bounds), res=30)
    ds = osm.rasterize_osm(layers, grid)
    assert ds.rio.crs.to_epsg() == grid.epsg and ds["road_mask"].shape == grid.shape
    assert ds["road_mask"].dtype == np.uint8 and ds["landuse"].dtype == np.uint8
    # the largest park is green at its inside point
    parks = layers.green[layers.green["tag"] == "leisure=park"].to_crs(grid.crs)
    inside = parks.geometry.iloc[int(np.argmax(parks.area))].representative_point()
    assert ds["green_fraction"].sel(x=inside.x, y=inside.y, method="nearest") > 0.9
    frac, height = ds["building_fraction"].values, ds["building_height"].values
    assert 0.1 < frac.mean() < 0.5 and frac.max() <= 1
    assert np.isnan(height[frac == 0]).all() and np.isfinite(height[frac > 0]).all()
    assert ds["road_mask"].values.mean() > 0.2 and ds["road_density"].values.max() > 30
    assert ds.attrs["buildings_default_height"] == (layers.buildings["height_source"] == "default").sum()


def test_helsinki_aoi(helsinki):
    path, whole = helsinki
    aoi = (24.94, 60.165, 24.945, 60.17)
    part = osm.read_osm(path, aoi_lonlat=aoi)
    assert 0 < len(part.roads) < len(whole.roads) and 0 < len(part.buildings) < len(whole.buildings)
    assert shapely.intersects(part.buildings.geometry.values, shapely.box(*aoi)).all()
    with pytest.raises(InputError, match=r"Helsinki\.osm\.pbf: no roads or buildings inside the AOI"):
        osm.read_osm(path, aoi_lonlat=(25.2, 60.3, 25.21, 60.31))


def test_describe_helsinki(helsinki):
    path, _ = helsinki
    facts = osm.describe(path)
    json.dumps(facts)
    assert facts["kind"] == "osm" and facts["crs"] == "EPSG:4326" and facts["bounds_from"] == "header"
    assert facts["bounds"] == pytest.approx([24.9351762, 60.164155, 24.9534145, 60.179113])
    assert facts["roads"]["by_class"]["residential"] > 100 and facts["roads"]["length_km"] > 10
    b = facts["buildings"]
    assert b["with_height_info"] == b["height_tag"] + b["levels_only"] == b["total"] - b["default_height"]
    assert facts["green_areas"] > 100 and facts["water_areas"] > 0


def test_describe_without_header_box(tmp_path):
    path = tmp_path / "nobox.osm.pbf"
    with osmium.SimpleWriter(str(path)) as writer:  # a plain header: no bounding box
        writer.add_node(mutable.Node(id=1, location=(24.94, 60.17)))
        writer.add_node(mutable.Node(id=2, location=(24.95, 60.171)))
        writer.add_way(mutable.Way(id=1, nodes=[1, 2], tags={"highway": "primary"}))
    facts = osm.describe(path)
    assert facts["bounds_from"] == "data" and facts["bounds"] == pytest.approx([24.94, 60.17, 24.95, 60.171])
    assert facts["roads"]["by_class"]["primary"] == 1 and facts["buildings"]["total"] == 0


def test_tiny_city_matches_its_truth(tiny_city):
    """Building share and height on 30 m follow the demo's rendered roofs (OSM holds ~90 % of buildings)."""
    layers = osm.read_osm(tiny_city / "osm" / "tiny.osm.pbf")
    assert set(layers.buildings["height_source"]) == {"height", "levels"}  # every building carries levels
    m = json.loads((tiny_city / "manifest.json").read_text())
    world = build_world(tuple(m["aoi"]), m["years"], seed=m["seed"], profile=m["profile"],
                        region_buffer_km=m["region_buffer_km"])
    cover, height, _ = world.land_cover(len(m["years"]) - 1)  # the extract describes the last year
    grid = world.grid.with_res(30.0)
    f, (rows, cols) = int(round(30.0 / world.grid.res)), grid.shape
    roof = (cover == ROOF).reshape(rows, f, cols, f).mean(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        true_height = np.where(cover == ROOF, height, 0).reshape(rows, f, cols, f).sum(axis=(1, 3)) / (roof * f * f)

    ds = osm.rasterize_osm(layers, grid)
    frac, mean_height = ds["building_fraction"].values, ds["building_height"].values
    assert np.corrcoef(frac.ravel(), roof.ravel())[0, 1] > 0.8
    assert 0.8 < frac.sum() / roof.sum() < 1.0  # the extract misses ~10 % of the buildings
    both = (roof > 0.2) & (frac > 0.2)
    assert np.corrcoef(true_height[both], mean_height[both])[0, 1] > 0.9  # levels x 3 m is close to the truth
    lcz = world.lcz_map(len(m["years"]) - 1, grid)
    assert ds["green_fraction"].values[lcz == 11].mean() > 0.8  # dense trees: forest and park districts
    water = ds["water_mask"].values
    assert water[lcz == 17].mean() > 0.7  # the zoning takes 30 m cell centres: a few bank pixels differ
    assert water[lcz != 17].sum() <= 0.02 * water.sum()


# -- exact geometry on a hand-made extract ---------------------------------------------------------------

EPSG, X0, Y1, RES = 32650, 660000.0, 3545300.0, 30.0  # a 10 x 10 grid of 30 m cells near Nanjing
GRID = Grid(EPSG, X0, Y1, RES, 10, 10)


def _cell(row: float, col: float, rows: float = 1, cols: float = 1):
    return shapely.box(X0 + col * RES, Y1 - (row + rows) * RES, X0 + (col + cols) * RES, Y1 - row * RES)


def _write(path, features_utm):
    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    lonlat = lambda g: shapely.transform(g, lambda xy: np.column_stack(to_ll.transform(*xy.T)))  # noqa: E731
    write_osm_pbf(path, [OsmFeature(lonlat(g), tags) for g, tags in features_utm])
    return path


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    y_row1 = Y1 - 1.5 * RES
    east = X0 + 400  # roads of the other classes, outside the grid
    feats = [
        (shapely.LineString([(X0 + 15, y_row1), (X0 + 285, y_row1)]), {"highway": "primary"}),
        (shapely.LineString([(east, Y1), (east + 50, Y1)]), {"highway": "motorway_link"}),
        (shapely.LineString([(east, Y1 - 50), (east + 50, Y1 - 50)]), {"highway": "living_street"}),
        (shapely.LineString([(east, Y1 - 100), (east + 50, Y1 - 100)]), {"highway": "unclassified"}),
        (shapely.LineString([(east, Y1 - 150), (east + 50, Y1 - 150)]), {"highway": "footway"}),  # not a road
        (_cell(5, 1), {"building": "yes", "height": "12 m"}),
        (_cell(5, 3, rows=0.6), {"building": "yes", "height": "10"}),  # 540 m2 at 10 m ...
        (_cell(5.6, 3, rows=0.4), {"building": "yes", "building:levels": "5"}),  # ... 360 m2 at 15 m
        (_cell(5, 5, cols=0.5), {"building": "yes", "height": "tall"}),  # unparseable: the default
        (_cell(6, 0, rows=4, cols=5), {"landuse": "residential"}),
        (_cell(7, 1, rows=2, cols=2), {"leisure": "park"}),  # inside the residential area
        (shapely.LineString([(X0 + 255, Y1), (X0 + 255, Y1 - 300)]), {"waterway": "river"}),  # 20 m wide
    ]
    path = _write(tmp_path_factory.mktemp("osm") / "handmade.osm.pbf", feats)
    return path, osm.read_osm(path)


def test_handmade_layers(handmade):
    path, layers = handmade
    assert sorted(layers.roads["road_class"]) == ["motorway", "other", "primary", "residential"]
    b = layers.buildings.sort_values("height_m")
    assert list(b["height_source"]) == ["default", "height", "height", "levels"]
    assert list(b["height_m"]) == pytest.approx([6.0, 10.0, 12.0, 15.0])
    assert list(layers.green["tag"]) == ["leisure=park"] and list(layers.water["tag"]) == ["waterway=river"]
    river = layers.water.to_crs(EPSG).geometry.iloc[0]
    assert river.area == pytest.approx(20 * 300 + np.pi * 10**2, rel=0.01)  # round caps join segments
    facts = osm.describe(path)
    assert facts["roads"]["total"] == 4 and facts["buildings"]["default_height"] == 1
    assert facts["landuse_areas"] == 3  # residential, park, river
    assert facts["bounds_from"] == "header"


def test_handmade_rasterized_exactly(handmade):
    _, layers = handmade
    ds = osm.rasterize_osm(layers, GRID)
    frac, height = ds["building_fraction"].values, ds["building_height"].values
    assert frac[5, 1] == 1 and height[5, 1] == pytest.approx(12)
    assert frac[5, 3] == 1 and height[5, 3] == pytest.approx(12.0)  # area-weighted: (540 * 10 + 360 * 15) / 900
    assert frac[5, 5] == 0.5 and height[5, 5] == pytest.approx(6)
    assert frac.sum() == 2.5 and np.isnan(height).sum() == 97

    road = ds["road_mask"].values
    assert road[1].all() and road.sum() == 10  # 15 m wide: only its own row
    density = ds["road_density"].values
    assert density.sum() * RES * RES / 1e6 == pytest.approx(0.270, abs=1e-4)  # km of road in the grid
    assert density[1, 1:9] == pytest.approx(30 / 1000 / (RES * RES / 1e6), rel=1e-3)  # 30 m per cell

    green = ds["green_fraction"].values
    assert (green[7:9, 1:3] == 1).all() and green.sum() == 4
    water = ds["water_mask"].values
    assert water[:, 8].all() and water.sum() == 10  # 20 m of a 30 m cell: mask; the neighbours: none
    landuse = ds["landuse"].values
    assert (landuse[7:9, 1:3] == 4).all() and (landuse[:, 8] == 6).all()  # small areas drawn on top
    assert (landuse[6:10, 0:5] != 0).all() and (landuse[6:10, 0:5] != 1).sum() == 4
    assert (landuse[0:6, 0:8] == 0).all()


def test_road_density_cuts_lines_at_cell_edges():
    rng = np.random.default_rng(0)
    lines = np.array([shapely.LineString(X0 + rng.uniform(-30, 330, (4, 2)) * [1, -1] + [0, Y1 - X0])
                      for _ in range(20)], dtype=object)
    density = osm._road_density(lines, GRID)
    row, col = np.divmod(np.arange(100), 10)
    exact = [shapely.length(shapely.intersection(lines, _cell(r, c))).sum() for r, c in zip(row, col)]
    assert density.ravel() * RES * RES / 1000 == pytest.approx(np.array(exact), abs=1e-3)  # metres per cell


def test_supersample_factor():
    assert [osm.supersample_factor(r) for r in (3, 10, 30, 100, 500, 5000)] == [4, 4, 10, 34, 64, 64]


def test_read_osm_grid_bounds_the_read_by_the_grid(handmade):
    path, layers = handmade
    ds = osm.read_osm_grid(path, GRID)
    assert int(ds.attrs["roads"]) == 1  # the roads east of the grid are not read
    full = osm.rasterize_osm(layers, GRID)
    assert (ds["building_fraction"] == full["building_fraction"]).all()


# -- bad input -------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.osm\.pbf: file not found"):
        osm.read_osm(tmp_path / "nope.osm.pbf")
    with pytest.raises(InputError, match=r"nope\.osm\.pbf: file not found"):
        osm.describe(tmp_path / "nope.osm.pbf")


@pytest.mark.parametrize("kind", ["truncated", "geotiff", "zero_bytes"])
def test_corrupt_file(tmp_path, tiny_city, kind):
    bad = tmp_path / f"{kind}.osm.pbf"
    if kind == "truncated":
        bad.write_bytes((tiny_city / "osm" / "tiny.osm.pbf").read_bytes()[:2048])
    elif kind == "geotiff":
        shutil.copy(sorted((tiny_city / "viirs").glob("*.tif"))[0], bad)
    else:
        bad.write_bytes(b"")
    with pytest.raises(InputError, match=rf"{kind}\.osm\.pbf: cannot be read as an OpenStreetMap PBF file"):
        osm.read_osm(bad)


def test_not_a_pbf_name(tmp_path):
    xml = tmp_path / "city.osm"
    xml.write_text("<osm version='0.6'></osm>")
    with pytest.raises(InputError, match=r"city\.osm: is not an OpenStreetMap PBF file"):
        osm.read_osm(xml)


@pytest.mark.parametrize("features", [[], [(_cell(2, 2, 3, 3), {"leisure": "park"})]], ids=["empty", "park_only"])
def test_no_roads_or_buildings(tmp_path, features):
    path = _write(tmp_path / "sparse.osm.pbf", features)
    with pytest.raises(InputError, match=r"sparse\.osm\.pbf: no roads or buildings inside the AOI \(no AOI given"):
        osm.read_osm(path)
    with pytest.raises(InputError, match=r"sparse\.osm\.pbf: no roads or buildings"):
        osm.describe(path)


def test_bad_aoi(handmade):
    path, _ = handmade
    with pytest.raises(InputError, match=r"^aoi: .* not \(lon_min, lat_min, lon_max, lat_max\)"):
        osm.read_osm(path, aoi_lonlat=(119, 32, 118, 33))
