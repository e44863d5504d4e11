"""Surface reflectance of the rendered city in the four VNIR bands every sensor here shares.

Band order is always (blue, green, red, nir): Landsat 8 B2-B5 and GF-2 PMS B1-B4 both cover it.
Vegetation mixes a green-leaf and a senescent spectrum by a phenology curve, so NDVI follows the
seasons; water has NIR below red (negative NDVI). Values are typical library spectra (USGS splib07
style magnitudes), rounded.
"""

from __future__ import annotations

import numpy as np

from .world import CROP, GRASS, PAVED, ROAD, ROOF, ROOF_TYPES, SHRUB, SOIL, TREE, WATER

BANDS = ("blue", "green", "red", "nir")

GREEN = {TREE: (0.030, 0.070, 0.040, 0.42), SHRUB: (0.035, 0.075, 0.050, 0.33),
         GRASS: (0.040, 0.090, 0.050, 0.36), CROP: (0.040, 0.090, 0.045, 0.40)}
# leafless branches, dry grass, bare fields: NDVI about 0.1-0.25, as dormant vegetation shows
SENESCENT = {TREE: (0.060, 0.080, 0.100, 0.17), SHRUB: (0.060, 0.090, 0.110, 0.18),
             GRASS: (0.080, 0.110, 0.150, 0.20), CROP: (0.090, 0.120, 0.160, 0.21)}
STATIC = {WATER: (0.070, 0.060, 0.040, 0.015), SOIL: (0.100, 0.140, 0.180, 0.24),
          PAVED: (0.130, 0.140, 0.150, 0.17), ROAD: (0.060, 0.070, 0.080, 0.10)}
ROOFS = {"concrete": (0.19, 0.20, 0.21, 0.23), "dark": (0.07, 0.08, 0.09, 0.10),
         "red_tile": (0.08, 0.10, 0.22, 0.27), "blue_steel": (0.30, 0.24, 0.12, 0.14),
         "white": (0.45, 0.47, 0.48, 0.50)}


def _season_curve(doy: float, up: float, down: float, width: float = 12.0) -> float:
    """Logistic green-up at ``up`` and senescence at ``down`` (days of year)."""
    return float(1 / (1 + np.exp(-(doy - up) / width)) - 1 / (1 + np.exp(-(doy - down) / width)))


def greenness(cover: int, doy: float, southern: bool = False) -> float:
    """Share of green leaves (0-1) of a vegetation cover on a day of year."""
    if southern:
        doy = (doy + 182.5) % 365.0  # seasons are shifted by half a year
    if cover == TREE:  # deciduous broadleaf with an evergreen share (camphor, privet)
        return 0.3 + 0.7 * _season_curve(doy, 105, 300)
    if cover == GRASS:
        return 0.35 + 0.65 * _season_curve(doy, 95, 310)
    if cover == SHRUB:
        return 0.45 + 0.55 * _season_curve(doy, 100, 305)
    if cover == CROP:  # wheat-rice double cropping of the Yangtze plain
        wheat = np.exp(-0.5 * ((doy - 105) / 28) ** 2)
        rice = np.exp(-0.5 * ((doy - 235) / 32) ** 2)
        return float(0.1 + 0.85 * max(wheat, rice))
    return 0.0


def cover_spectra(doy: float, southern: bool = False) -> np.ndarray:
    """Lookup table (cover code -> 4 reflectances) for a day of year; row 0 is unused."""
    table = np.zeros((ROOF + 1, 4), dtype=np.float32)
    for code, spec in STATIC.items():
        table[code] = spec
    for code in GREEN:
        g = greenness(code, doy, southern)
        table[code] = g * np.array(GREEN[code]) + (1 - g) * np.array(SENESCENT[code])
    table[ROOF] = ROOFS["concrete"]
    return table


def surface_reflectance(cover: np.ndarray, roof: np.ndarray, doy: float, southern: bool = False) -> np.ndarray:
    """(4, H, W) float32 surface reflectance of a fine land-cover raster on a day of year."""
    out = cover_spectra(doy, southern)[cover].transpose(2, 0, 1).copy()
    roof_table = np.array([ROOFS[name] for name in ROOF_TYPES], dtype=np.float32)
    has_roof = roof >= 0
    out[:, has_roof] = roof_table[roof[has_roof]].T
    return out
