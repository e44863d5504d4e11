"""`urbaneo synth-city`: write the demo city's raw inputs in the formats users download.

Layout under the output folder (the paths config/cities/demo.yaml points at):

    landsat/<USGS product id>/      Landsat 8 C2 L1 scenes (B2-B5, QA_PIXEL, MTL txt + json)
    gf2/GF2_PMS1_*.tif (+ .xml)     4-band VHR image (B, G, R, NIR)
    viirs/VNL_v21_npp_<year>_*.tif  annual night lights, EPSG:4326, 15 arc-second
    par/par_daily.nc                daily PAR, CF-NetCDF, 0.05 degree
    osm/<city>.osm.pbf              OpenStreetMap extract
    npp_reference/MOD17A2HGF.*.tif  8-day NPP reference (MODIS sinusoidal, 500 m)
    labels/lcz_<year>.tif           LCZ 1-17, 100 m;  labels/urban_<year>.tif construction land, 30 m
    stations/, tables/, population/ station series, soil samples, species table, 1 km population
    manifest.json                   what was written, with the parameters that made it
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import rasterio
import shapely
from tqdm import tqdm

from .. import lcz
from ..atomic import atomic_dir
from ..grid import Grid, snapped_grid
from ..readers.landsat import encode_qa_pixel
from . import acquisitions
from .landsat import write_l1_scene
from .osm import OsmFeature, write_osm_pbf
from .world import (MORPHOLOGY, WATER, World, build_world, impervious_fraction, region_built_fraction)

DEMO_AOI = (118.70, 32.00, 118.78, 32.07)
DEMO_YEARS = (2019, 2020, 2021)
WRS_PATH, WRS_ROW = 120, 38  # Nanjing's WRS-2 path/row; one date also comes from the row north of it


def synth_city(out_dir: str | Path, *, seed: int = 0, profile: str = "demo", aoi=None, years=None,
               region_buffer_km: float | None = None, name: str = "demo") -> dict:
    """Generate every raw input of a synthetic city into ``out_dir`` (atomically); returns the manifest."""
    aoi = tuple(aoi or DEMO_AOI)
    years = list(years or DEMO_YEARS)
    region_buffer_km = float(region_buffer_km if region_buffer_km is not None else (30.0 if profile == "demo" else 12.0))
    southern = (aoi[1] + aoi[3]) / 2 < 0
    steps = ["world", "landsat", "labels", "osm"]
    with atomic_dir(out_dir) as tmp, tqdm(total=len(steps), desc=f"synth-city {name}", unit="step") as bar:
        world = build_world(aoi, years, seed=seed, profile=profile, region_buffer_km=region_buffer_km)
        covers = [world.land_cover(k) for k in range(len(years))]
        bar.update()
        factor = int(round(30.0 / world.grid.res))
        fractions = [acquisitions.cover_fractions(c, r, factor) for c, _, r in covers]
        impervious = [impervious_fraction(c, factor) for c, _, _ in covers]

        bar.set_postfix_str("landsat")
        written = {"landsat": _write_landsat(tmp / "landsat", world, fractions, southern,
                                             np.random.default_rng([seed, 2]))}
        bar.update()
        bar.set_postfix_str("labels")
        written["lcz_labels"] = _write_lcz(tmp / "labels", world)
        written["urban_labels"] = _write_urban(tmp / "labels", world, impervious)
        bar.update()
        bar.set_postfix_str("osm")
        written["osm"] = [_write_osm(tmp / "osm" / f"{name}.osm.pbf", world)]
        bar.update()

        manifest = {
            "name": name, "seed": seed, "profile": profile, "aoi": list(aoi), "years": years,
            "region_buffer_km": region_buffer_km, "crs": world.grid.crs,
            "inputs": {key: sorted(str(Path(p).relative_to(tmp)) for p in paths) for key, paths in written.items()},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_landsat(folder: Path, world: World, fractions: list[np.ndarray], southern: bool,
                   rng: np.random.Generator) -> list[Path]:
    plan = acquisitions.plan(world, rng, southern)
    grid30 = world.grid.with_res(30.0)
    split = _split_acquisition(plan, world.years)
    out = []
    for acq in tqdm(plan, desc="landsat scenes", leave=False):
        k = world.years.index(acq.date.year)
        surface = acquisitions.surface_from_fractions(fractions[k], acq.date.timetuple().tm_yday, southern)
        clouds = acquisitions.simulate_clouds(grid30.shape, acq, 30.0, rng)
        toa = acquisitions.toa_reflectance(surface, acq, clouds, rng)
        water = (fractions[k][WATER] > 0.5) & ~clouds.cloud
        # one date lies across two WRS rows: each scene holds its part of the city, fill beyond its edge
        parts = [(WRS_ROW, np.zeros(grid30.shape, bool))]
        if acq is split:
            edge = int(grid30.height * 0.55)
            north = np.zeros(grid30.shape, bool)
            north[edge + 8 :] = True  # the northern scene ends a little south of the split
            south = np.zeros(grid30.shape, bool)
            south[: edge - 8] = True
            parts = [(WRS_ROW - 1, north), (WRS_ROW, south)]
        for row, fill in parts:
            qa = encode_qa_pixel(fill=fill, cloud=clouds.cloud & ~fill, shadow=clouds.shadow & ~fill,
                                 cirrus=clouds.cirrus & ~fill, snow=np.zeros_like(fill), water=water & ~fill,
                                 dilated_cloud=clouds.dilated & ~fill)
            bands = {b: np.where(fill, np.nan, toa[i]).astype(np.float32)
                     for i, b in enumerate(("B2", "B3", "B4", "B5"))}
            valid = ~fill
            out.append(write_l1_scene(
                folder, wrs_path=WRS_PATH, wrs_row=row, acquired=acq.date,
                processed=acq.date + dt.timedelta(days=9), toa=bands, qa=qa, transform=grid30.transform,
                epsg=grid30.epsg, sun_azimuth=acq.sun_azimuth, sun_elevation=acq.sun_elevation,
                cloud_cover=float(100.0 * clouds.cloud[valid].mean())))
    return out


def _split_acquisition(plan, years):
    """The acquisition shared between two WRS rows: summer of the last year."""
    return next(a for a in plan if a.date.year == years[-1] and a.season == "summer")


def _write_tif(path: Path, data: np.ndarray, grid: Grid, nodata, *, colormap=None, tags=None,
               description: str | None = None) -> Path:
    """Plain deterministic GeoTIFF for a raw input (the published products are COGs, written elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype=data.dtype.name,
                   crs=grid.crs, transform=grid.transform, nodata=nodata, compress="deflate",
                   tiled=max(grid.shape) > 256)
    if profile["tiled"]:
        profile.update(blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if colormap:
            dst.write_colormap(1, colormap)
        if tags:
            dst.update_tags(**tags)
        if description:
            dst.set_band_description(1, description)
    return path


def _write_lcz(folder: Path, world: World) -> list[Path]:
    grid100 = snapped_grid(world.grid.epsg, world.grid.bounds, 100.0)
    out = []
    for k, year in enumerate(world.years):
        out.append(_write_tif(folder / f"lcz_{year}.tif", world.lcz_map(k, grid100), grid100, 0,
                              colormap=lcz.colormap(), description="LCZ class (1-17)",
                              tags={"CODING": "LCZ 1-17 (A-G = 11-17)", "YEAR": str(year)}))
    return out


def _write_urban(folder: Path, world: World, impervious: list[np.ndarray]) -> list[Path]:
    out = []
    for k, year in enumerate(world.years):
        built = region_built_fraction(world, k, impervious[k])
        label = (built >= 0.5).astype(np.uint8)  # FROM-GLC-style impervious/construction land class
        out.append(_write_tif(folder / f"urban_{year}.tif", label, world.region, 255,
                              colormap={0: (0, 0, 0, 0), 1: (230, 0, 0, 255)},
                              description="construction land (1) / other (0)", tags={"YEAR": str(year)}))
    return out


# OSM building tags by LCZ: what mappers typically tag such buildings
_BUILDING_TAG = {1: "apartments", 2: "apartments", 3: "residential", 4: "apartments", 5: "apartments",
                 6: "house", 7: "yes", 8: "retail", 9: "house", 10: "industrial"}
_LANDUSE_TAG = {8: "commercial", 10: "industrial"}
_NATURAL_TAGS = {11: {"landuse": "forest"}, 12: {"natural": "wood"}, 13: {"natural": "scrub"},
                 14: {"landuse": "farmland"}, 16: {"natural": "sand"}}
OSM_BUILDING_COMPLETENESS = 0.9  # real OSM misses buildings; the demo extract does too


def _write_osm(path: Path, world: World) -> Path:
    """The city as OSM describes it in the last year; roads, buildings, green, water, land use."""
    to_ll = world.to_lonlat()
    rng = np.random.default_rng([world.seed, 3])
    k = len(world.years) - 1

    def ll(geom):  # works on one geometry or an array of them, in one pyproj call
        return shapely.transform(geom, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))

    features = [OsmFeature(ll(g), {"highway": hw}) for g, hw, y0 in world.roads if y0 <= k]
    features += [OsmFeature(ll(g), dict(tags)) for g, tags in world.water + world.waterways]
    for i, cell in enumerate(world.districts):
        code = int(world.district_lcz[i, k])
        if world.district_park[i]:
            tags = {"leisure": "park"}
        elif code in MORPHOLOGY:
            tags = {"landuse": _LANDUSE_TAG.get(code, "residential")}
        else:
            tags = _NATURAL_TAGS.get(code)
        if tags:
            features.append(OsmFeature(ll(cell), dict(tags)))
    b = world.buildings
    keep = (b["year0"] <= k) & (rng.uniform(size=b["height"].size) < OSM_BUILDING_COMPLETENESS)
    with_height = rng.uniform(size=b["height"].size) < 0.3  # most buildings carry levels only
    idx = np.flatnonzero(keep)
    for i, geom in zip(idx, ll(b["geom"][idx])):
        tags = {"building": _BUILDING_TAG[int(b["lcz"][i])], "building:levels": str(int(b["levels"][i]))}
        if with_height[i]:
            tags["height"] = f"{float(b['height'][i]):.1f}"
        features.append(OsmFeature(geom, tags))
    lon0, lat0 = to_ll.transform(world.grid.bounds[0], world.grid.bounds[1])
    lon1, lat1 = to_ll.transform(world.grid.bounds[2], world.grid.bounds[3])
    write_osm_pbf(path, features, bbox=(lon0, lat0, lon1, lat1))
    return path
