"""Synthetic GF-2 PMS scene: band order, calibration, vegetation/water signatures, shadows, file format."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import rasterio

from urbaneo.synth import vhr
from urbaneo.synth.world import ROOF, TREE, WATER, build_world

SUMMER, AUTUMN = dt.date(2021, 7, 15), dt.date(2021, 10, 12)


@pytest.fixture(scope="module")
def world():
    return build_world((118.745, 32.03, 118.76, 32.043), [2020, 2021], seed=1, profile="tiny", region_buffer_km=12)


@pytest.fixture(scope="module")
def autumn_file(world, tmp_path_factory):
    dn, meta = vhr.render_gf2(world, 1, AUTUMN, np.random.default_rng(3))
    path = vhr.write_gf2(tmp_path_factory.mktemp("gf2") / meta["filename"], dn, world.grid, meta)
    return path, dn, meta


def _reflectance(path):
    """TOA reflectance from the file alone: rho = pi (gain DN + offset) d^2 / (ESUN cos(zenith))."""
    with rasterio.open(path) as src:
        dn = src.read().astype(np.float64)
        tags = src.tags()
        cal = [src.tags(b) for b in (1, 2, 3, 4)]
    cos_zen = math.cos(math.radians(90 - float(tags["SUN_ELEVATION"])))
    d2 = float(tags["EARTH_SUN_DISTANCE"]) ** 2
    return np.stack([math.pi * (float(c["GAIN"]) * dn[i] + float(c["OFFSET"])) * d2 / (float(c["ESUN"]) * cos_zen)
                     for i, c in enumerate(cal)])


def test_file_layout_and_georeferencing(world, autumn_file):
    path, dn, meta = autumn_file
    assert path.name == "GF2_PMS1_E118.8_N32.0_20211012_L2A2021101201-MSS1.tif"
    assert path.with_suffix(".xml").is_file()
    # the scene and its sidecar, no temporary leftovers
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.with_suffix(".xml").name])
    with rasterio.open(path) as src:
        assert (src.count, src.dtypes[0], src.nodata) == (4, "uint16", 0)
        assert src.crs.to_epsg() == world.grid.epsg and src.transform == world.grid.transform
        assert (src.height, src.width) == world.grid.shape
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert src.descriptions == vhr.BAND_NAMES
        assert [d.split()[1] for d in src.descriptions] == ["blue", "green", "red", "NIR"]
        tags = src.tags()
        assert (tags["SATELLITE"], tags["SENSOR"], tags["ACQUISITION_DATE"]) == ("GF2", "PMS1", "2021-10-12")
        assert float(tags["SUN_ELEVATION"]) == pytest.approx(meta["sun_elevation"], abs=1e-5)
        assert 40 < float(tags["SUN_ELEVATION"]) < 60 and 120 < float(tags["SUN_AZIMUTH"]) < 180  # mid-morning, SE
        assert [float(src.tags(b)["ESUN"]) for b in (1, 2, 3, 4)] == list(vhr.ESUN)
        back = src.read()
    np.testing.assert_array_equal(back, dn)
    assert dn.min() >= 1 and dn.max() <= 1023
    xml = path.with_suffix(".xml").read_text()
    assert "<SatelliteID>GF2</SatelliteID>" in xml and f"<WidthInPixels>{world.grid.width}<" in xml


def test_vegetation_and_water_signatures(world, tmp_path):
    dn, meta = vhr.render_gf2(world, 1, SUMMER, np.random.default_rng(5))
    rho = _reflectance(vhr.write_gf2(tmp_path / meta["filename"], dn, world.grid, meta))
    cover, _, _ = world.land_cover(1)
    ndvi = (rho[3] - rho[2]) / (rho[3] + rho[2])
    assert ndvi[cover == TREE].mean() > 0.5
    assert ndvi[cover == WATER].mean() < 0
    # haze adds most in the blue: over water, blue is the brightest band
    assert rho[0][cover == WATER].mean() > rho[2][cover == WATER].mean()


def test_shadows_fall_away_from_the_sun(world, autumn_file):
    _, dn, meta = autumn_file
    cover, height, _ = world.land_cover(1)
    az = math.radians(meta["sun_azimuth"])
    dr, dc = round(-math.cos(az)), round(math.sin(az))  # one pixel towards the sun (rows grow south)
    tall = height >= 10
    ground = cover != ROOF
    h, w = tall.shape

    def next_to_tall(sign):
        """Ground pixels whose neighbour sign*(dr, dc) is a tall building."""
        out = np.zeros_like(tall)
        r0, r1, c0, c1 = max(0, -sign * dr), min(h, h - sign * dr), max(0, -sign * dc), min(w, w - sign * dc)
        out[r0:r1, c0:c1] = tall[r0 + sign * dr : r1 + sign * dr, c0 + sign * dc : c1 + sign * dc]
        return out & ground

    shade_side, sun_side = next_to_tall(+1), next_to_tall(-1)  # building towards the sun / away from it
    assert shade_side.sum() > 100 and sun_side.sum() > 100
    brightness = dn[:3].astype(float).sum(axis=0)
    assert brightness[shade_side].mean() < 0.7 * brightness[sun_side].mean()
    assert 0.01 < meta["shadow_fraction"] < 0.3


def test_byte_identical_rewrite(world, autumn_file, tmp_path):
    path, _, meta = autumn_file
    dn, meta2 = vhr.render_gf2(world, 1, AUTUMN, np.random.default_rng(3))
    again = vhr.write_gf2(tmp_path / meta2["filename"], dn, world.grid, meta2)
    assert again.read_bytes() == path.read_bytes()
    assert again.with_suffix(".xml").read_bytes() == path.with_suffix(".xml").read_bytes()
    vhr.write_gf2(again, dn, world.grid, meta2)  # overwriting in place gives the same bytes
    assert again.read_bytes() == path.read_bytes()


def test_cast_shadow_geometry():
    surface = np.zeros((20, 20), np.float32)
    surface[10, 10] = 10.0
    # sun due south at 44 degrees: a 10 m post on 1 m pixels casts a 10.4 m shadow due north
    shadow = vhr.cast_shadow(surface, 1.0, 180.0, 44.0)
    assert shadow[0:10, 10].all() and shadow.sum() == 10
    assert not vhr.cast_shadow(surface, 1.0, 180.0, 89.0).any()  # near-zenith sun: under 1 pixel


def test_bad_dn_writes_nothing(world, tmp_path):
    dn, meta = np.ones((3, *world.grid.shape), np.uint16), {}
    with pytest.raises(ValueError, match="uint16 of shape"):
        vhr.write_gf2(tmp_path / "x.tif", dn, world.grid, meta)
    assert list(tmp_path.iterdir()) == []
