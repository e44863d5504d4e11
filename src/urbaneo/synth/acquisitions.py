"""Landsat acquisitions of the synthetic city: dates on the 16-day cycle, sun, atmosphere and clouds.

Each year gets one scene per season near mid-season, with a cloud cover drawn from 0 to ~60 %;
one date is split between two adjacent WRS-2 rows (each scene with fill beyond its edge), as a
city on a row boundary is in reality, so readers must mosaic scenes of one date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..seasons import season_of
from ..sun import local_solar_time_utc, sun_position
from .world import ROOF, ROOF_TYPES, World, _unit_noise
from .spectra import ROOFS, cover_spectra

CYCLE_ANCHOR = dt.date(2020, 1, 7)  # an acquisition date of the demo's WRS-2 path (16-day repeat)
MID_SEASON = {"winter": (1, 15), "spring": (4, 15), "summer": (7, 15), "autumn": (10, 15)}
OVERPASS_SOLAR_HOUR = 10.2  # Landsat 8's descending node is ~10:11 mean local time
PATH_RADIANCE = np.array([0.055, 0.035, 0.022, 0.012], np.float32)  # haze adds most to blue
CLOUD_REFLECTANCE = np.array([0.62, 0.61, 0.60, 0.58], np.float32)


@dataclass(frozen=True)
class Acquisition:
    date: dt.date
    season: str
    cloud_cover: float  # target fraction of the scene under cloud
    haze: float
    sun_azimuth: float
    sun_elevation: float


def plan(world: World, rng: np.random.Generator, southern: bool = False) -> list[Acquisition]:
    lon = (world.aoi[0] + world.aoi[2]) / 2
    lat = (world.aoi[1] + world.aoi[3]) / 2
    out = []
    for year in world.years:
        for month, day in MID_SEASON.values():
            target = dt.date(year, month, day)
            cycles = round((target - CYCLE_ANCHOR).days / 16)
            date = CYCLE_ANCHOR + dt.timedelta(days=16 * cycles)
            # a clear scene now and then, otherwise anything up to ~60 %
            cover = 0.0 if rng.uniform() < 0.2 else float(rng.uniform(0.03, 0.6))
            az, el = sun_position(lon, lat, local_solar_time_utc(lon, date, OVERPASS_SOLAR_HOUR))
            out.append(Acquisition(date, season_of(date, southern), cover, float(rng.uniform(0.6, 1.4)), az, el))
    return out


def cover_fractions(cover: np.ndarray, roof: np.ndarray, factor: int) -> np.ndarray:
    """Area fraction of every surface (land-cover codes, then one per roof type) in blocks of factor x factor."""
    code = cover.astype(np.int16)
    code[roof >= 0] = ROOF + 1 + roof[roof >= 0]
    h, w = code.shape[0] // factor, code.shape[1] // factor
    code = code[: h * factor, : w * factor].reshape(h, factor, w, factor)
    return np.stack([(code == c).mean(axis=(1, 3), dtype=np.float32) for c in range(ROOF + 1 + len(ROOF_TYPES))])


def surface_from_fractions(fractions: np.ndarray, doy: float, southern: bool = False) -> np.ndarray:
    """(4, h, w) surface reflectance as the area-weighted mix of every surface's spectrum."""
    table = np.concatenate([cover_spectra(doy, southern),
                            np.array([ROOFS[name] for name in ROOF_TYPES], np.float32)])
    return np.einsum("chw,cb->bhw", fractions, table).astype(np.float32)


@dataclass
class CloudMasks:
    cloud: np.ndarray
    dilated: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray
    opacity: np.ndarray  # 0-1 cloud optical opacity (thick cores, thin edges)


def simulate_clouds(shape: tuple[int, int], acq: Acquisition, res: float, rng: np.random.Generator) -> CloudMasks:
    """Cumulus fields from thresholded noise, their shadows displaced away from the sun, thin cirrus."""
    field_ = _unit_noise(rng, shape, 300.0 / res) + 0.4 * _unit_noise(rng, shape, 90.0 / res)
    none = np.zeros(shape, bool)
    if acq.cloud_cover <= 0:
        return CloudMasks(none, none.copy(), none.copy(), none.copy(), np.zeros(shape, np.float32))
    thr = np.quantile(field_, 1 - acq.cloud_cover)
    opacity = np.clip((field_ - thr) / 0.6, 0, 1) ** 0.5
    cloud = opacity > 0
    # the shadow falls on the ground opposite the sun, displaced by cloud height / tan(elevation)
    dist = rng.uniform(800, 2500) / np.tan(np.radians(acq.sun_elevation)) / res
    az = np.radians(acq.sun_azimuth)
    shift = (dist * np.cos(az), -dist * np.sin(az))  # rows grow southwards, columns eastwards
    shadow = ndimage.shift(cloud.astype(np.uint8), shift, order=0, mode="constant").astype(bool) & ~cloud
    dilated = ndimage.binary_dilation(cloud, iterations=3) & ~cloud
    cirrus = none.copy()
    if rng.uniform() < 0.35:
        cirrus = _unit_noise(rng, shape, 600.0 / res) > 1.5
    return CloudMasks(cloud, dilated, shadow, cirrus, opacity.astype(np.float32))


def toa_reflectance(surface: np.ndarray, acq: Acquisition, clouds: CloudMasks, rng: np.random.Generator) -> np.ndarray:
    """Top-of-atmosphere reflectance: haze path + transmitted surface, shadows, clouds, sensor noise."""
    transmit = 1.0 - 0.08 * acq.haze
    toa = PATH_RADIANCE[:, None, None] * acq.haze + transmit * surface
    toa[:, clouds.shadow] = PATH_RADIANCE[:, None] * acq.haze + 0.3 * transmit * surface[:, clouds.shadow]
    toa[:, clouds.cirrus] += 0.03
    op = clouds.opacity[None]
    toa = (1 - op) * toa + op * CLOUD_REFLECTANCE[:, None, None]
    toa += rng.normal(0, 0.002, toa.shape).astype(np.float32)
    return np.clip(toa, 0.001, 1.2).astype(np.float32)
