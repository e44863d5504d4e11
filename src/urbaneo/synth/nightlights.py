"""VIIRS annual night lights and a gridded population for the synthetic city's region.

Both come from the world's built-up fraction on its 30 m region grid (the real impervious share of
the rendered buildings and roads inside the city, the towns' urban intensity outside), so lights,
people and buildings agree, and grow together from year to year.

Night lights are on EOG's VIIRS grid (15 arc-second pixels, EPSG:4326) in nW cm-2 sr-1. The files
are named like EOG's VNL v2.1 ``average_masked`` layer, but keep what EOG's masking removes (noisy
background with negative values, a few flares), as the unmasked ``average`` layer and the monthly
avg_rade9 composites have them, so the readers' compositing and thresholding have work to do.
Population is on a 30 arc-second grid, the resolution of LandScan / WorldPop's 1 km products.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from scipy import ndimage

from ..grid import Grid, snapped_grid
from .formats import write_geotiff
from .world import GROWTH_PER_YEAR, URBAN_THRESHOLD, World, impervious_fraction, region_built_fraction

VIIRS_RES = 1 / 240  # degrees: 15 arc-seconds, the EOG VNL / monthly composite grid
POP_RES = 1 / 120  # degrees: 30 arc-seconds

# Lights ~ LIGHT_SCALE * built^1.5 * (1 + CORE_BONUS * centrality): radiance rises faster than the
# built-up share (denser land has more street, shop and facade lighting), and the regional centre's
# core outshines county towns of the same built-up share (its CBD and commercial streets). In VNL
# v2, cores of Chinese provincial capitals read 50-150 nW cm-2 sr-1 and county-town centres 10-40.
LIGHT_SCALE = 25.0
CORE_BONUS = 3.0
FOOTPRINT_FWHM_M = 750.0  # VIIRS DNB ground footprint is ~742 m, near constant across the swath
BACKGROUND, BACKGROUND_NOISE = 0.3, 0.18  # unlit land: airglow + residual stray light, some pixels < 0
N_FLARES = (2, 5)  # persistent point sources (gas flares, furnaces) per region
FLARE_RADIANCE = (100.0, 400.0)

# People: residential floor area / 35 m2 (urban housing floor space per person in China is about
# 36 m2, National Bureau of Statistics 2016). The share of a zone's floor space that is homes
# follows its usual use: high-rise cores mix in offices, hotels and malls; large low-rise (8) and
# heavy industry (10) house only guards and dormitories.
FLOOR_M2_PER_PERSON = 35.0
RESIDENTIAL_SHARE = {1: 0.4, 2: 0.6, 3: 0.9, 4: 0.85, 5: 0.8, 6: 0.9, 7: 1.0, 8: 0.02, 9: 1.0, 10: 0.02}
# Outside the rendered city: residential floor per m2 of built-up land, ~0.3 at a town's fringe to
# ~1.0 in its centre (county towns of 3-6 storey blocks), i.e. ~9 000 to ~29 000 people per km2.
FAR_FRINGE, FAR_CORE = 0.3, 1.0


def _lonlat_bounds(world: World) -> tuple[float, float, float, float]:
    return Transformer.from_crs(world.region.crs, "EPSG:4326", always_xy=True).transform_bounds(*world.region.bounds)


def viirs_grid(world: World) -> Grid:
    """The 15 arc-second EPSG:4326 grid (edges on multiples of 1/240 degree) covering the region."""
    return snapped_grid(4326, _lonlat_bounds(world), VIIRS_RES)


def population_grid(world: World) -> Grid:
    """The 30 arc-second EPSG:4326 grid (edges on multiples of 1/120 degree) covering the region."""
    return snapped_grid(4326, _lonlat_bounds(world), POP_RES)


def _city_shape_30m(world: World) -> tuple[int, int]:
    factor = int(round(30.0 / world.grid.res))
    return world.grid.height // factor, world.grid.width // factor


def _region_built(world: World, k: int) -> np.ndarray:
    """Built-up fraction on the 30 m region grid in year index k (the city's from its land cover)."""
    cover, _, _ = world.land_cover(k)
    return region_built_fraction(world, k, impervious_fraction(cover, int(round(30.0 / world.grid.res))))


def _to_grid(data: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    out = np.zeros(dst.shape, np.float32)
    reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=dst.transform,
              dst_crs=dst.crs, resampling=Resampling.average, src_nodata=None, dst_nodata=None)
    return out


def render_viirs(world: World, k: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 annual average radiance (nW cm-2 sr-1) on ``viirs_grid(world)`` in year index k."""
    grid = viirs_grid(world)
    built = _to_grid(_region_built(world, k), world.region, grid)

    # centrality: the main city's own intensity kernel (the first town), widening as it grows
    cx, cy, _, sigma_city = world.towns[0]
    s_city = sigma_city * (1 + GROWTH_PER_YEAR * k)
    lon, lat = grid.xy()
    x, y = Transformer.from_crs("EPSG:4326", world.region.crs, always_xy=True).transform(*np.meshgrid(lon, lat))
    centrality = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s_city**2))
    lights = LIGHT_SCALE * built**1.5 * (1 + CORE_BONUS * centrality)
    # the sensor's footprint, in pixels (a degree of longitude shrinks with latitude)
    px_y = grid.res * 111_320.0
    px_x = px_y * math.cos(math.radians(grid.ymax - grid.height * grid.res / 2))
    fp_sigma = FOOTPRINT_FWHM_M / 2.3548
    lights = ndimage.gaussian_filter(lights, (fp_sigma / px_y, fp_sigma / px_x), mode="nearest")

    # Noise grows a little with signal (more variable lighting in bright areas); the background
    # noise makes some unlit pixels negative as in EOG's avg_rade9 before masking.
    lights += BACKGROUND + rng.normal(0, 1, lights.shape) * (BACKGROUND_NOISE + 0.03 * lights)

    # Flares sit at fixed sites of the world, far from every town in every year (persistent
    # sources), and flicker a little from year to year.
    sites = np.random.default_rng([world.seed, 240])
    rows, cols = sites.integers(0, grid.height, 64), sites.integers(0, grid.width, 64)
    lon, lat = grid.xmin + (cols + 0.5) * grid.res, grid.ymax - (rows + 0.5) * grid.res
    x, y = Transformer.from_crs("EPSG:4326", world.region.crs, always_xy=True).transform(lon, lat)
    gx0, gy0, gx1, gy1 = world.grid.bounds
    rural = (world.intensity(x, y, len(world.years) - 1) < 0.1) & ~((x > gx0) & (x < gx1) & (y > gy0) & (y < gy1))
    n = int(sites.integers(N_FLARES[0], N_FLARES[1] + 1))
    rows, cols = rows[rural][:n], cols[rural][:n]
    level = sites.uniform(*FLARE_RADIANCE, rows.size)
    lights[rows, cols] = level * rng.uniform(0.9, 1.1, rows.size)
    return lights.astype(np.float32)


def viirs_filename(year: int) -> str:
    """EOG VNL v2.1 annual file name (the unzipped .tif of the ``average_masked`` layer)."""
    return f"VNL_v21_npp_{year}_global_vcmslcfg_c202205302300.average_masked.dat.tif"


def write_viirs(path: str | PathLike, radiance: np.ndarray, grid: Grid, year: int) -> Path:
    """float32 single-band GeoTIFF on the EPSG:4326 grid, deflate, atomic.

    No nodata value, like the EOG composites in shared/data/real: negative radiance is data.
    """
    path = Path(path)
    radiance = np.asarray(radiance, dtype=np.float32)
    if radiance.shape != grid.shape or grid.epsg != 4326:
        raise ValueError(f"radiance {radiance.shape} must be on an EPSG:4326 grid of shape {grid.shape}")
    return write_geotiff(path, radiance, transform=grid.transform, crs=CRS.from_epsg(4326), nodata=None,
                         description="average radiance",
                         tags={"YEAR": year, "UNITS": "nW cm-2 sr-1", "SENSOR": "VIIRS DNB (synthetic)"})


def render_population(world: World, k: int) -> tuple[np.ndarray, Grid]:
    """Residents per 30 arc-second cell over the region in year index k, and that grid."""
    grid = population_grid(world)
    to_lonlat = Transformer.from_crs(world.region.crs, "EPSG:4326", always_xy=True)

    def add(counts: np.ndarray, x: np.ndarray, y: np.ndarray, people: np.ndarray) -> None:
        lon, lat = to_lonlat.transform(x, y)
        col = np.floor((lon - grid.xmin) / grid.res).astype(np.int64)
        row = np.floor((grid.ymax - lat) / grid.res).astype(np.int64)
        ok = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
        counts += np.bincount(row[ok] * grid.width + col[ok], people[ok], grid.width * grid.height).reshape(grid.shape)

    counts = np.zeros(grid.shape, np.float64)
    # Inside the rendered city: every standing building's floor space
    b = world.buildings
    live = np.flatnonzero(b["year0"] <= k)
    if live.size:
        floor = shapely.area(b["geom"][live]) * b["levels"][live]
        share = np.zeros(max(RESIDENTIAL_SHARE) + 1)
        share[list(RESIDENTIAL_SHARE)] = list(RESIDENTIAL_SHARE.values())
        share = share[b["lcz"][live]]
        centre = shapely.centroid(b["geom"][live])
        add(counts, shapely.get_x(centre), shapely.get_y(centre), floor * share / FLOOR_M2_PER_PERSON)

    # Outside it: built-up land x a residential floor ratio that rises with urban intensity
    # (the city's block is left at zero: its people are in its buildings above)
    r = world.region
    built = region_built_fraction(world, k, np.zeros(_city_shape_30m(world), np.float32))
    x, y = r.xy()
    X, Y = np.meshgrid(x, y)
    dense = np.clip((world.intensity(X, Y, k) - URBAN_THRESHOLD) / 0.5, 0, 1)
    people = built * r.res**2 * (FAR_FRINGE + (FAR_CORE - FAR_FRINGE) * dense) / FLOOR_M2_PER_PERSON
    keep = people > 0
    add(counts, X[keep], Y[keep], people[keep])
    return counts.astype(np.float32), grid
