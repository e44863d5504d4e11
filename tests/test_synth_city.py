"""The generated demo city: every input readable by the field's readers, physically sensible, deterministic."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbaneo.readers.landsat import (decode_qa_pixel, level1_reflectance_constants, parse_product_id, read_mtl,
                                     toa_reflectance)
from urbaneo.synth import synth_city
from urbaneo.synth.world import IMPERVIOUS, build_world

from conftest import TINY_CITY as TINY
INPUT_KEYS = {"landsat", "gf2", "viirs", "par", "osm", "npp_reference", "lcz_labels", "urban_labels",
              "stations", "soil", "species", "population"}


@pytest.fixture(scope="module")
def city(tiny_city) -> Path:
    return tiny_city


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _landsat_toa(scene: Path) -> tuple[dict, np.ndarray, dict]:
    pid = scene.name
    mtl = read_mtl(scene / f"{pid}_MTL.txt")
    bands = []
    for b in (2, 3, 4, 5):
        with rasterio.open(scene / f"{pid}_B{b}.TIF") as src:
            bands.append(toa_reflectance(src.read(1), *level1_reflectance_constants(mtl, b)))
    with rasterio.open(scene / f"{pid}_QA_PIXEL.TIF") as src:
        qa = decode_qa_pixel(src.read(1))
    return mtl, np.stack(bands), qa


def test_manifest_lists_every_input(city):
    manifest = json.loads((city / "manifest.json").read_text())
    assert set(manifest["inputs"]) == INPUT_KEYS
    for key, paths in manifest["inputs"].items():
        assert paths, key
        for p in paths:
            assert (city / p).exists(), p


def test_landsat_scenes_cover_every_season_with_sensible_clouds(city):
    scenes = sorted((city / "landsat").iterdir())
    seasons = defaultdict(set)
    covers = []
    for scene in scenes:
        pid = parse_product_id(scene.name)
        mtl, toa, qa = _landsat_toa(scene)
        month = pid["acquired"].month
        seasons[pid["acquired"].year].add((month % 12) // 3)
        valid = ~qa["fill"]
        # the MTL's cloud cover is the share of cloud bits over the valid pixels
        assert mtl["IMAGE_ATTRIBUTES"]["CLOUD_COVER"] == pytest.approx(100 * qa["cloud"][valid].mean(), abs=0.02)
        covers.append(mtl["IMAGE_ATTRIBUTES"]["CLOUD_COVER"])
        assert np.isnan(toa[:, ~valid]).all() and np.isfinite(toa[:, valid]).all()
    assert all(len(s) == 4 for s in seasons.values()) and set(seasons) == set(TINY["years"])
    assert min(covers) == 0.0 and max(covers) <= 65.0


def test_one_date_is_split_across_two_rows(city):
    by_date = defaultdict(list)
    for scene in (city / "landsat").iterdir():
        by_date[parse_product_id(scene.name)["acquired"]].append(scene)
    split = [scenes for scenes in by_date.values() if len(scenes) == 2]
    assert len(split) == 1
    fills = [_landsat_toa(s)[2]["fill"] for s in split[0]]
    assert fills[0].any() and fills[1].any()
    assert not (fills[0] & fills[1]).any()  # together they cover the whole city


def test_vegetation_phenology_and_water_in_landsat(city):
    ndvi = {}
    for scene in sorted((city / "landsat").iterdir()):
        _, toa, qa = _landsat_toa(scene)
        clear = qa["clear"] & ~qa["shadow"] & ~qa["cirrus"] & ~qa["fill"]
        nd = (toa[3] - toa[2]) / (toa[3] + toa[2])
        if qa["water"][clear].sum() > 5:
            assert np.nanmedian(nd[clear & qa["water"]]) < 0  # water: NIR below red
        # the greenest tenth of the clear land: vegetation, whatever share of the city is built
        ndvi[scene.name] = float(np.nanpercentile(nd[clear & ~qa["water"]], 90))
    summer = [v for name, v in ndvi.items() if parse_product_id(name)["acquired"].month == 7]
    winter = [v for name, v in ndvi.items() if parse_product_id(name)["acquired"].month == 1]
    assert min(summer) > max(winter) + 0.1


def test_urban_growth_story():
    world = build_world(TINY["aoi"], [2019, 2020, 2021], seed=0, profile="tiny", region_buffer_km=12)
    imperv = [np.isin(world.land_cover(k)[0], IMPERVIOUS).mean() for k in range(3)]
    assert imperv[0] < imperv[1] <= imperv[2]
    became_urban = (world.district_lcz[:, 0] >= 11) & (world.district_lcz[:, -1] <= 10)
    assert became_urban.any()


def test_labels(city):
    with rasterio.open(city / "labels" / "lcz_2021.tif") as src:
        codes = src.read(1)
        assert src.res == (100.0, 100.0) and src.crs.to_epsg() == 32650
        assert src.colormap(1)[1][:3] == (0x8C, 0x00, 0x00)
    assert set(np.unique(codes)) <= set(range(1, 18))
    assert len(set(np.unique(codes))) >= 4
    with rasterio.open(city / "labels" / "urban_2021.tif") as src:
        urban = src.read(1)
        assert src.res == (30.0, 30.0)
    assert set(np.unique(urban)) == {0, 1}


def test_osm_extract_reads_with_pyrosm(city):
    pyrosm = pytest.importorskip("pyrosm")
    osm = pyrosm.OSM(str(city / "osm" / "tiny.osm.pbf"))
    buildings = osm.get_buildings()
    assert len(buildings) > 20 and buildings["building:levels"].astype(int).min() >= 1
    roads = osm.get_network("driving")
    assert {"primary", "secondary"} & set(roads["highway"])
    green = osm.get_landuse()
    assert green is not None and len(green) > 0
    water = osm.get_natural()
    assert "water" in set(water["natural"])


def test_deterministic_from_seed(city, tmp_path):
    again = tmp_path / "again"
    synth_city(again, **TINY)
    assert _digests(again) == _digests(city)
