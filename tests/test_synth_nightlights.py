"""Synthetic VIIRS annual night lights and gridded population of the region around the city."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from scipy.stats import spearmanr

from urbaneo.grid import city_grid
from urbaneo.synth import nightlights as nl
from urbaneo.synth.world import build_world

from conftest import TINY_CITY


@pytest.fixture(scope="module")
def world():
    return build_world(TINY_CITY["aoi"], TINY_CITY["years"], seed=TINY_CITY["seed"], profile="tiny",
                       region_buffer_km=TINY_CITY["region_buffer_km"])


@pytest.fixture(scope="module")
def lights(world):
    return [nl.render_viirs(world, k, np.random.default_rng(10 + k)) for k in range(len(world.years))]


def _distance_to_city_m(world, grid):
    """Distance (m) from every pixel centre of an EPSG:4326 grid to the city centre."""
    lon, lat = grid.xy()
    x, y = Transformer.from_crs("EPSG:4326", world.grid.crs, always_xy=True).transform(*np.meshgrid(lon, lat))
    cx, cy = world.towns[0][:2]
    return np.hypot(x - cx, y - cy)


def test_viirs_grid(world, lights):
    g = nl.viirs_grid(world)
    assert g.epsg == 4326 and g.res == pytest.approx(1 / 240, abs=1e-15)
    assert g.xmin * 240 == pytest.approx(round(g.xmin * 240), abs=1e-6)
    assert g.ymax * 240 == pytest.approx(round(g.ymax * 240), abs=1e-6)
    lon0, lat0, lon1, lat1 = Transformer.from_crs(world.region.crs, "EPSG:4326", always_xy=True).transform_bounds(
        *world.region.bounds)
    b = g.bounds
    assert b[0] <= lon0 and b[1] <= lat0 and b[2] >= lon1 and b[3] >= lat1
    assert all(r.shape == g.shape and r.dtype == np.float32 for r in lights)


def test_demo_region_is_large_enough():
    # viirs_grid only needs the region; build_world makes it exactly like this (AOI + buffer, 30 m UTM)
    demo = SimpleNamespace(region=city_grid((118.70, 32.00, 118.78, 32.07), res=30.0, buffer_m=30_000.0))
    g = nl.viirs_grid(demo)
    assert g.height >= 150 and g.width >= 150


def test_lights_follow_the_city(world, lights):
    g = nl.viirs_grid(world)
    rad = lights[-1]
    lit = np.where(rad < 100, rad, 0)  # leave the flares out
    brightest = np.unravel_index(np.argmax(lit), lit.shape)
    assert _distance_to_city_m(world, g)[brightest] < 2000
    assert 20 < lit.max() < 150  # tens of nW cm-2 sr-1, like a Chinese city centre
    built = nl._to_grid(nl._region_built(world, len(world.years) - 1), world.region, g)
    some = (built > 0) & (rad < 100)
    assert spearmanr(built[some], rad[some]).correlation > 0.6
    assert np.median(rad[built == 0]) < 1.0 < np.median(rad[built > 0.2])


def test_background_outliers_and_growth(lights):
    for rad in lights:
        assert (rad < 0).any() and 0.2 < np.median(rad) < 0.5  # noisy unlit background around ~0.3
        assert (rad > 100).any() and rad.max() <= 450  # flares
    assert all(b.sum() >= a.sum() for a, b in zip(lights, lights[1:]))


def test_write_viirs(world, lights, tmp_path):
    g = nl.viirs_grid(world)
    name = nl.viirs_filename(2021)
    assert name == "VNL_v21_npp_2021_global_vcmslcfg_c202205302300.average_masked.dat.tif"
    a = nl.write_viirs(tmp_path / "a" / name, lights[1], g, 2021)
    b = nl.write_viirs(tmp_path / "b" / name, lights[1], g, 2021)
    assert a.read_bytes() == b.read_bytes()
    with rasterio.open(a) as src:
        assert (src.count, src.dtypes[0], src.nodata, src.crs.to_epsg()) == (1, "float32", None, 4326)
        assert src.transform == g.transform and src.profile["compress"] == "deflate"
        np.testing.assert_array_equal(src.read(1), lights[1])
    assert sorted(p.name for p in a.parent.iterdir()) == [name]


def test_population(world):
    pop, g = nl.render_population(world, len(world.years) - 1)
    assert g.epsg == 4326 and g.res == pytest.approx(1 / 120, abs=1e-15)
    assert pop.shape == g.shape and pop.dtype == np.float32 and pop.min() >= 0
    # ~0.4 million in a 25 km square of towns and fields around a small city
    assert 1e5 < pop.sum() < 2e6
    dist = _distance_to_city_m(world, g)
    core, ring = pop[dist < 1000].max(), pop[(dist > 2000) & (dist < 4000)]
    assert core > 10_000  # people per ~0.75 km2 cell: a dense Chinese city core
    assert core >= 0.75 * pop.max()  # as dense as the densest town centre of the region
    assert core > 3 * np.median(ring)
    earlier, _ = nl.render_population(world, 0)
    assert pop.sum() > earlier.sum()
