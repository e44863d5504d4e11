"""A GF-2 PMS-like 4-band very-high-resolution image of the synthetic city.

Local Climate Zones are told apart in VHR imagery by texture and shadow as much as by colour, so
the render adds what a flat land-cover lookup lacks: building and tree shadows cast for the
acquisition's sun, tree-crown texture, per-building roof brightness, the sensor's blur and noise.
Reflectance is turned into 10-bit DN through GF-2's published calibration form
L = gain * DN + offset and rho = pi * L * d^2 / (ESUN * cos(sun zenith)).

The file is an orthorectified, map-projected (L2-type) product on the world's fine UTM grid. Real
L1A deliveries carry RPCs and no map transform; handling those is the readers' job.
"""

from __future__ import annotations

import datetime as dt
import math
from os import PathLike
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.crs import CRS
from scipy import ndimage

from ..atomic import atomic_path
from ..grid import Grid
from .acquisitions import PATH_RADIANCE
from .spectra import surface_reflectance
from ..sun import earth_sun_distance, local_solar_time_utc, sun_position
from .world import TREE, World

BAND_NAMES = ("B1 blue 450-520 nm", "B2 green 520-590 nm", "B3 red 630-690 nm", "B4 NIR 770-890 nm")
# Band-averaged exo-atmospheric solar irradiance of GF-2 PMS1 MSS B1-B4 (W m-2 um-1), rounded
# values as commonly used with CRESDA's calibration coefficients for GF-2 TOA reflectance.
ESUN = (1945.0, 1854.0, 1542.0, 1080.0)
# Radiance per DN (W m-2 sr-1 um-1). CRESDA publishes new PMS1/PMS2 MSS gains every year, 0.12-0.22
# for 2014-2018, without offsets after 2014; these sit at the top of that span so that summer
# concrete and paving stay well inside 10 bits (white roofs saturate in the visible in summer).
GAIN = (0.22, 0.21, 0.19, 0.20)
OFFSET = (0.0, 0.0, 0.0, 0.0)
DN_MIN, DN_MAX = 1, 1023  # 10-bit quantisation; 0 is nodata

OVERPASS_SOLAR_HOUR = 10 + 50 / 60  # GF-2 scenes of eastern China are taken near 10:50 local solar time
TREE_HEIGHT = 8.0  # m: street and park trees of the Yangtze plain (camphor, plane) are mostly 6-12 m
# Share of the irradiance left in cast shadow: skylight (bluer, Rayleigh) plus light from sunlit
# walls; clear-sky diffuse shares are ~0.3 in the visible and lower in the NIR.
SHADOW_DIFFUSE = np.array([0.35, 0.31, 0.28, 0.25], np.float32)
# A clear day: 70 % of the haze path reflectance the Landsat scenes get on an average day.
PATH_REFLECTANCE = (0.7 * PATH_RADIANCE).astype(np.float32)
MTF_SIGMA_PX = 0.4  # optics + detector blur; edges in real MSS imagery spread over ~1 pixel
READ_NOISE_DN, SHOT_NOISE_DN = 1.0, 0.01  # noise variance = read^2 + shot * DN: SNR ~150 at DN 300


def cast_shadow(surface: np.ndarray, res: float, sun_azimuth: float, sun_elevation: float) -> np.ndarray:
    """Pixels in cast shadow of a surface-height raster (m) for a sun at (azimuth, elevation) degrees.

    Ray-march towards the sun one pixel at a time up to the longest shadow the tallest object can
    cast: a pixel is shadowed where something at distance d towards the sun stands more than
    d * tan(elevation) above it.
    """
    tan_el = math.tan(math.radians(sun_elevation))
    h, w = surface.shape
    shadow = np.zeros(surface.shape, bool)
    steps = int(math.ceil(float(surface.max()) / tan_el / res)) if surface.size else 0
    east, north = math.sin(math.radians(sun_azimuth)), math.cos(math.radians(sun_azimuth))
    seen = set()
    for s in range(1, steps + 1):
        dr, dc = int(round(-s * north)), int(round(s * east))  # rows grow southwards
        if (dr, dc) in seen or abs(dr) >= h or abs(dc) >= w:
            continue
        seen.add((dr, dc))
        rise = math.hypot(dr, dc) * res * tan_el
        r0, r1, c0, c1 = max(0, -dr), min(h, h - dr), max(0, -dc), min(w, w - dc)
        blocker = surface[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        shadow[r0:r1, c0:c1] |= blocker - surface[r0:r1, c0:c1] > rise
    return shadow


def _tree_texture(tree: np.ndarray, res: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative brightness of tree pixels: crowns a few metres across, darker crown edges."""
    crown = ndimage.gaussian_filter(rng.standard_normal(tree.shape).astype(np.float32), max(0.7, 2.0 / res))
    crown /= crown.std() + 1e-12
    factor = 1 + 0.06 * crown + 0.03 * rng.standard_normal(tree.shape).astype(np.float32)
    edge = tree & ~ndimage.binary_erosion(tree)  # the canopy's rim sees less sky and is self-shaded
    factor[edge] *= 0.85
    return np.where(tree, np.clip(factor, 0.75, 1.25), 1.0).astype(np.float32)


def _roof_jitter(height: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One brightness factor per building (weathering, dirt, material batch), about +-6 %."""
    roof = height > 0
    label, _ = ndimage.label(roof)
    # touching buildings share a label but rarely a height, so (label, height) tells them apart
    key = label.astype(np.int64) * 100_000 + np.rint(height * 10).astype(np.int64)
    ids, inverse = np.unique(key[roof], return_inverse=True)
    factor = np.ones(height.shape, np.float32)
    factor[roof] = np.clip(1 + 0.06 * rng.standard_normal(ids.size), 0.85, 1.15)[inverse]
    return factor


def gf2_filename(lon: float, lat: float, acquired: dt.date, product_no: int) -> str:
    """GF-2 style file name, e.g. ``GF2_PMS1_E118.7_N32.0_20211012_L2A0000000001-MSS1.tif``."""
    ew, ns = ("E" if lon >= 0 else "W"), ("N" if lat >= 0 else "S")
    return f"GF2_PMS1_{ew}{abs(lon):.1f}_{ns}{abs(lat):.1f}_{acquired:%Y%m%d}_L2A{product_no:010d}-MSS1.tif"


def render_gf2(world: World, k: int, acquired: dt.date, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(4, H, W) uint16 DN (B, G, R, NIR) of the world's fine grid in year index k, and its metadata."""
    lon = (world.aoi[0] + world.aoi[2]) / 2
    lat = (world.aoi[1] + world.aoi[3]) / 2
    when = local_solar_time_utc(lon, acquired, OVERPASS_SOLAR_HOUR)
    azimuth, elevation = sun_position(lon, lat, when)
    if elevation <= 5:
        raise ValueError(f"sun elevation {elevation:.1f} deg on {acquired} is too low for an optical scene")
    res = world.grid.res

    cover, height, roof = world.land_cover(k)
    rho = surface_reflectance(cover, roof, acquired.timetuple().tm_yday, southern=lat < 0)
    tree = cover == TREE
    rho *= _tree_texture(tree, res, rng) * _roof_jitter(height, rng)
    surface = np.where(tree, np.maximum(height, TREE_HEIGHT), height).astype(np.float32)
    shadow = cast_shadow(surface, res, azimuth, elevation)
    rho[:, shadow] *= SHADOW_DIFFUSE[:, None]

    toa = PATH_REFLECTANCE[:, None, None] + rho
    toa = np.stack([ndimage.gaussian_filter(b, MTF_SIGMA_PX) for b in toa])
    esd = earth_sun_distance(when)
    cos_zen = math.cos(math.radians(90 - elevation))
    gain, offset, esun = (np.array(v, np.float32)[:, None, None] for v in (GAIN, OFFSET, ESUN))
    radiance = toa * esun * np.float32(cos_zen / (math.pi * esd**2))
    dn = (radiance - offset) / gain
    noise_sd = np.sqrt(READ_NOISE_DN**2 + SHOT_NOISE_DN * np.maximum(dn, 0))
    dn += rng.standard_normal(dn.shape, dtype=np.float32) * noise_sd
    dn = np.clip(np.rint(dn), DN_MIN, DN_MAX).astype(np.uint16)

    product_no = int(f"{acquired:%Y%m%d}{k:02d}")  # unique per scene, stable across runs
    meta = {
        "filename": gf2_filename(lon, lat, acquired, product_no),
        "satellite": "GF2", "sensor": "PMS1", "product_level": "L2A",
        "acquired": acquired, "time_utc": when,
        "sun_azimuth": azimuth, "sun_elevation": elevation, "earth_sun_distance": esd,
        "gain": GAIN, "offset": OFFSET, "esun": ESUN,
        "shadow_fraction": float(shadow.mean()),
    }
    return dn, meta


def _xml(dn: np.ndarray, grid: Grid, meta: dict) -> str:
    """A minimal sidecar in the shape of a GF-2 ProductMetaData XML, holding the same facts as the tags."""
    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    xmin, ymin, xmax, ymax = grid.bounds
    corners = {"TopLeft": (xmin, ymax), "TopRight": (xmax, ymax),
               "BottomRight": (xmax, ymin), "BottomLeft": (xmin, ymin)}
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Synthetic GF-2-like scene written by urbaneo, not a CRESDA product. Times are UTC. -->",
        "<ProductMetaData>",
        f"  <SatelliteID>{meta['satellite']}</SatelliteID>",
        f"  <SensorID>{meta['sensor']}</SensorID>",
        f"  <ReceiveTime>{meta['time_utc']:%Y-%m-%d %H:%M:%S}</ReceiveTime>",
        f"  <ProductLevel>{meta['product_level']}</ProductLevel>",
        f"  <ImageGSD>{grid.res:.2f}</ImageGSD>",
        f"  <WidthInPixels>{dn.shape[2]}</WidthInPixels>",
        f"  <HeightInPixels>{dn.shape[1]}</HeightInPixels>",
        "  <Bands>1,2,3,4</Bands>",
        f"  <SolarAzimuth>{meta['sun_azimuth']:.6f}</SolarAzimuth>",
        f"  <SolarZenith>{90 - meta['sun_elevation']:.6f}</SolarZenith>",
        f"  <EarthSunDistance>{meta['earth_sun_distance']:.6f}</EarthSunDistance>",
    ]
    for name, (x, y) in corners.items():
        lon, lat = to_lonlat.transform(x, y)
        lines += [f"  <{name}Latitude>{lat:.6f}</{name}Latitude>", f"  <{name}Longitude>{lon:.6f}</{name}Longitude>"]
    lines += ["  <MapProjection>UTM</MapProjection>", f"  <EPSG>{grid.epsg}</EPSG>",
              "  <!-- CRESDA publishes these separately; repeated here so the scene is self-contained -->",
              "  <Radiometry>"]
    for i in range(4):
        lines.append(f'    <Band id="{i + 1}" gain="{meta["gain"][i]:.4f}" offset="{meta["offset"][i]:.4f}" '
                     f'esun="{meta["esun"][i]:.1f}"/>')
    lines += ["  </Radiometry>", "</ProductMetaData>"]
    return "\n".join(lines) + "\n"


def write_gf2(path: str | PathLike, dn: np.ndarray, grid: Grid, meta: dict) -> Path:
    """Write the DN as a tiled, deflated 4-band GeoTIFF plus ``<name>.xml``; both appear atomically.

    The sidecar is written first, so an existing .tif always has its .xml.
    """
    path = Path(path)
    dn = np.asarray(dn)
    if dn.dtype != np.uint16 or dn.shape != (4, grid.height, grid.width):
        raise ValueError(f"dn must be uint16 of shape (4, {grid.height}, {grid.width}), got {dn.dtype} {dn.shape}")
    with atomic_path(path.with_suffix(".xml")) as tmp:
        tmp.write_text(_xml(dn, grid, meta), encoding="utf-8", newline="\n")
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=4, dtype="uint16",
                   crs=CRS.from_epsg(grid.epsg), transform=grid.transform, nodata=0,
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2,
                   interleave="pixel")
    with atomic_path(path) as tmp:
        # GDAL stamps no DateTime unless asked, so identical input gives identical bytes
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(dn)
            dst.update_tags(SATELLITE=meta["satellite"], SENSOR=meta["sensor"],
                            PRODUCT_LEVEL=meta["product_level"],
                            ACQUISITION_DATE=meta["acquired"].isoformat(),
                            ACQUISITION_TIME_UTC=f"{meta['time_utc']:%H:%M:%S}",
                            SUN_AZIMUTH=f"{meta['sun_azimuth']:.6f}",
                            SUN_ELEVATION=f"{meta['sun_elevation']:.6f}",
                            EARTH_SUN_DISTANCE=f"{meta['earth_sun_distance']:.6f}",
                            RADIANCE_UNITS="W m-2 sr-1 um-1 (L = GAIN * DN + OFFSET)")
            for i, name in enumerate(BAND_NAMES):
                dst.set_band_description(i + 1, name)
                dst.update_tags(i + 1, GAIN=f"{meta['gain'][i]:.4f}", OFFSET=f"{meta['offset'][i]:.4f}",
                                ESUN=f"{meta['esun'][i]:.1f}")
    return path
