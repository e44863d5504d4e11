"""`urbaneo synth`: write the demo city's raw inputs in the formats users download.

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
import pandas as pd
import shapely
from tqdm import tqdm

from .. import lcz_classes as lcz
from ..atomic import atomic_dir
from ..grid import snapped_grid
from pyproj import Transformer
from ..readers.landsat import encode_qa_pixel
from . import acquisitions, climate, formats, mod17, nightlights, vhr
from .landsat import write_l1_scene
from .osm import OsmFeature, write_osm_pbf
from .spectra import cover_spectra
from .world import (CROP, GRASS, MORPHOLOGY, SHRUB, TREE, URBAN_THRESHOLD, WATER, World, build_world,
                    impervious_fraction, region_built_fraction)

DEMO_AOI = (118.70, 32.00, 118.78, 32.07)
DEMO_YEARS = (2019, 2020, 2021)
WRS_PATH, WRS_ROW = 120, 38  # Nanjing's WRS-2 path/row; one date also comes from the row north of it


def synth_city(out_dir: str | Path, *, seed: int = 0, profile: str = "demo", aoi=None, years=None,
               region_buffer_km: float = 30.0, name: str = "demo") -> dict:
    """Generate every raw input of a synthetic city into ``out_dir`` (atomically); returns the manifest."""
    aoi = tuple(aoi or DEMO_AOI)
    years = list(years or DEMO_YEARS)
    region_buffer_km = float(region_buffer_km)
    southern = (aoi[1] + aoi[3]) / 2 < 0
    with atomic_dir(out_dir) as tmp, tqdm(total=9, desc=f"synth {name}", unit="step") as bar:
        bar.set_postfix_str("world")
        world = build_world(aoi, years, seed=seed, profile=profile, region_buffer_km=region_buffer_km)
        covers = [world.land_cover(k) for k in range(len(years))]
        factor = int(round(30.0 / world.grid.res))
        fractions = [acquisitions.cover_fractions(c, r, factor) for c, _, r in covers]
        impervious = [impervious_fraction(c, factor) for c, _, _ in covers]

        def rng(stream: int) -> np.random.Generator:  # one independent stream per input
            return np.random.default_rng([seed, stream])

        def step(name: str) -> None:
            bar.update()
            bar.set_postfix_str(name)

        step("landsat")
        written = {"landsat": _write_landsat(tmp / "landsat", world, fractions, southern, rng(2))}
        step("gf2")
        written["gf2"] = [_write_gf2(tmp / "gf2", world, rng(4))]
        step("viirs")
        written["viirs"] = _write_viirs(tmp / "viirs", world, rng(5))
        step("labels")
        written["lcz_labels"] = _write_lcz(tmp / "labels", world)
        written["urban_labels"] = _write_urban(tmp / "labels", world, impervious)
        step("osm")
        written["osm"] = [_write_osm(tmp / "osm" / f"{name}.osm.pbf", world)]
        step("stations, par")
        dates = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31", freq="D")
        weather = climate.regional_weather(dates, rng(6))  # stations, PAR and the NPP reference share it
        written["stations"], written["par"] = _write_climate(tmp, world, dates, weather, region_buffer_km, rng(7))
        step("npp_reference")
        written["npp_reference"] = _write_npp_reference(tmp / "npp_reference", world, fractions, dates, weather,
                                                        southern, rng(8))
        step("tables")
        written["soil"] = [formats.write_soil(tmp / "tables" / "soil.csv", formats.soil_samples(
            aoi, rng(9), spacing_m=world.profile.soil_spacing_m, built_fraction=_built_at(world)))]
        written["species"] = [formats.write_species(tmp / "tables" / "species.csv", rng(10))]
        counts, pop_grid = nightlights.render_population(world, len(years) - 1)
        written["population"] = [formats.write_population(tmp / "population" / f"population_{years[-1]}.tif",
                                                          counts, pop_grid.transform, pop_grid.epsg)]
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


def _write_gf2(folder: Path, world: World, rng: np.random.Generator) -> Path:
    """One cloud-free autumn VHR acquisition in the last year (sun low enough for telling shadows)."""
    acquired = dt.date(world.years[-1], 10, 12)
    dn, meta = vhr.render_gf2(world, len(world.years) - 1, acquired, rng)
    lon, lat = (world.aoi[0] + world.aoi[2]) / 2, (world.aoi[1] + world.aoi[3]) / 2
    return vhr.write_gf2(folder / vhr.gf2_filename(lon, lat, acquired, 1), dn, world.grid, meta)


def _write_viirs(folder: Path, world: World, rng: np.random.Generator) -> list[Path]:
    grid = nightlights.viirs_grid(world)
    return [nightlights.write_viirs(folder / nightlights.viirs_filename(year),
                                    nightlights.render_viirs(world, k, rng), grid, year)
            for k, year in enumerate(world.years)]


def _built_at(world: World):
    """(lon, lat) -> built-up share in the last year, for tables placed by coordinates."""
    to_utm = Transformer.from_crs("EPSG:4326", world.grid.crs, always_xy=True)

    def built(lon, lat):
        x, y = to_utm.transform(np.asarray(lon, float), np.asarray(lat, float))
        u = world.intensity(x, y, len(world.years) - 1)
        return np.clip((u - URBAN_THRESHOLD + 0.1) / 0.25, 0.0, 1.0)

    return built


def _write_climate(root: Path, world: World, dates, weather, region_buffer_km: float,
                   rng: np.random.Generator) -> tuple[list[Path], list[Path]]:
    """Hourly station series (stations/) and the daily PAR grid (par/) from one regional weather."""
    stations = climate.station_network(world.aoi, rng, n=world.profile.n_stations,
                                       region_buffer_km=region_buffer_km)
    stations["built_fraction"] = np.round(_built_at(world)(stations["lon"], stations["lat"]), 2)  # urban heat
    hourly = climate.station_hourly(stations, dates, rng, weather=weather)
    formats.write_stations(root / "stations", stations, hourly)
    lon = (world.aoi[0] + world.aoi[2]) / 2
    lat = (world.aoi[1] + world.aoi[3]) / 2
    half = max(world.aoi[2] - world.aoi[0], world.aoi[3] - world.aoi[1]) / 2 + region_buffer_km / 111.0
    lons, lats = climate.par_grid(lon, lat, half_width_deg=half, res_deg=0.05)
    par = climate.par_field(lons, lats, dates, rng, weather=weather)
    return [root / "stations"], [formats.write_par_netcdf(root / "par" / "par_daily.nc", par)]


BIOME = {TREE: "DBF", SHRUB: "CSH", GRASS: "GRS", CROP: "CRO"}  # MOD17 biome of each vegetation cover


def _write_npp_reference(folder: Path, world: World, fractions: list[np.ndarray], dates, weather,
                         southern: bool, rng: np.random.Generator) -> list[Path]:
    """MOD17-style 8-day PsnNet on the MODIS 500 m grid: the ground truth NPP maps are judged against.

    Light-use efficiency with the MOD17 BPLUT per cover, fPAR from each cover's clean NDVI
    (Myneni & Williams), and the city-centre weather: independent of seed 000's NPP function.
    """
    from rasterio.warp import Resampling, reproject

    transform, shape = formats.modis_500m_grid(world.aoi)
    lon = (world.aoi[0] + world.aoi[2]) / 2
    lat = (world.aoi[1] + world.aoi[3]) / 2
    met = climate.daily_climate(lon, lat, dates, rng, weather=weather, built_fraction=0.3)
    doy = dates.day_of_year.to_numpy()
    tables = np.stack([cover_spectra(d, southern) for d in doy])  # (T, cover, band)
    grid30 = world.grid.with_res(30.0)
    out = {}
    for k, year in enumerate(world.years):
        in_year = dates.year == year
        share = {}
        for code in (*BIOME, WATER):
            dst = np.zeros(shape, np.float32)
            reproject(fractions[k][code], dst, src_transform=grid30.transform, src_crs=grid30.crs,
                      dst_transform=transform, dst_crs=formats.MODIS_SINUSOIDAL, resampling=Resampling.average)
            share[code] = dst
        total = {}
        for code, biome in BIOME.items():
            spec = tables[in_year, code]
            ndvi = (spec[:, 3] - spec[:, 2]) / (spec[:, 3] + spec[:, 2])
            per_area = mod17.npp_8day(dates[in_year].date, mod17.fpar_from_ndvi(ndvi), met["par"][in_year].to_numpy(),
                                      met["tmin"][in_year].to_numpy(), met["tmean"][in_year].to_numpy(),
                                      met["vpd"][in_year].to_numpy(), biome)
            for start, value in per_area.items():
                total[start] = total.get(start, 0.0) + share[code] * float(value)
        for start, npp in total.items():
            out[start] = np.where(share[WATER] > 0.5, np.nan, npp).astype(np.float32)  # MOD17 fills water
    return formats.write_npp_reference(folder, out, transform)


def _split_acquisition(plan, years):
    """The acquisition shared between two WRS rows: summer of the last year."""
    return next(a for a in plan if a.date.year == years[-1] and a.season == "summer")


def _write_lcz(folder: Path, world: World) -> list[Path]:
    # whole 100 m cells inside the rendered area (snapped inwards), so every cell has a class
    xmin, ymin, xmax, ymax = world.grid.bounds
    grid100 = snapped_grid(world.grid.epsg, (xmin + 99.999, ymin + 99.999, xmax - 99.999, ymax - 99.999), 100.0)
    out = []
    for k, year in enumerate(world.years):
        out.append(formats.write_geotiff(folder / f"lcz_{year}.tif", world.lcz_map(k, grid100),
                                         transform=grid100.transform, crs=grid100.crs, nodata=0,
                                         colormap=lcz.colormap(), description="LCZ class (1-17)",
                                         tags={"CODING": "LCZ 1-17 (A-G = 11-17)", "YEAR": str(year)}))
    return out


def _write_urban(folder: Path, world: World, impervious: list[np.ndarray]) -> list[Path]:
    out = []
    for k, year in enumerate(world.years):
        built = region_built_fraction(world, k, impervious[k])
        label = (built >= 0.5).astype(np.uint8)  # FROM-GLC-style impervious/construction land class
        out.append(formats.write_geotiff(folder / f"urban_{year}.tif", label, transform=world.region.transform,
                                         crs=world.region.crs, nodata=255,
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
