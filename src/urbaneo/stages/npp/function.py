"""The NPP function of seed 000 (CiSL-NPP, eqs. 5-8), on reflectance arrays and summed PAR.

    NDVI = (NIR - Red) / (NIR + Red)                                  (eq. 8)
    fPAR = 1.24 NDVI - 0.168                                          (eq. 7)
    APAR = fPAR x sum(PAR)                                            (eq. 6)
    PRI  = [0.53 (b3 - b2) / (b3 + b2) + 1] / 2                       (eq. 8; Landsat 8 b3 green, b2 blue)
    NPP  = 0.5139 (PRI x APAR) - 1.9818                               (eq. 5)

The paper leaves three things open; the choices below are applied by ``npp`` and written into every
NPP product's metadata (``CHOICES``):

* fPAR is a fraction of PAR, so eq. 7 is clipped to [0, 1] (unclipped, water and roofs get a
  negative absorbed radiation and NDVI > 0.94 more than all of it);
* sum(PAR) is in MJ m-2, summed over the composite's window (the PAR granularity, 90 days by
  default), so NPP is per window; eq. 5's constants are used as published, which makes NPP's unit
  the paper's (g C m-2 per window, its ground truth being MODIS/Chen NPP in g C m-2);
* pixels without vegetation (clipped fPAR = 0: water, roofs, bare soil) get NPP 0, not eq. 5's
  intercept -1.9818: nothing there produces or respires plant carbon. Everywhere else eq. 5 holds
  exactly, small negative values of sparse vegetation included.
"""

from __future__ import annotations

import numpy as np

CHOICES = {
    "fpar_clip": [0.0, 1.0],
    "par_sum_units": "MJ m-2 per composite window",
    "npp_units": "g C m-2 per composite window (eq. 5 constants as published)",
    "non_vegetated_npp": "0 where clipped fPAR is 0 (water, built, bare)",
    "pri_bands": "Landsat 8 OLI b3 (green) and b2 (blue) reflectance",
}


def _ratio(a, b) -> np.ndarray:
    """(a - b) / (a + b) in float64; NaN where the sum is 0 or an input is NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, (a - b) / np.where(total != 0, total, 1.0), np.nan)


def ndvi(nir, red) -> np.ndarray:
    """Normalised difference vegetation index (eq. 8)."""
    return _ratio(nir, red)


def fpar(ndvi_values, clip: bool = True) -> np.ndarray:
    """Fraction of absorbed PAR from NDVI (eq. 7), clipped to [0, 1] unless ``clip`` is False."""
    f = 1.24 * np.asarray(ndvi_values, np.float64) - 0.168
    return np.clip(f, 0.0, 1.0) if clip else f


def apar(fpar_values, par_sum) -> np.ndarray:
    """Absorbed PAR (eq. 6): fPAR times the PAR summed over the window (MJ m-2)."""
    return np.asarray(fpar_values, np.float64) * np.asarray(par_sum, np.float64)


def pri(green, blue) -> np.ndarray:
    """Photochemical reflectance index, rescaled to [0, 1] (eq. 8): Landsat 8 b3 green, b2 blue."""
    return (0.53 * _ratio(green, blue) + 1.0) / 2.0


SLOPE, INTERCEPT = 0.5139, -1.9818  # eq. 5


def terms(blue, green, red, nir, par_sum) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 5's regressor PRI x APAR and the vegetated indicator (clipped fPAR > 0; NaN where an
    input is NaN): NPP = SLOPE x term + INTERCEPT x vegetated."""
    f = fpar(ndvi(nir, red))
    vegetated = np.where(np.isnan(f), np.nan, (f > 0).astype(np.float64))
    return pri(green, blue) * apar(f, par_sum) * np.where(f > 0, 1.0, 0.0), vegetated


def npp(blue, green, red, nir, par_sum, slope: float = SLOPE, intercept: float = INTERCEPT) -> np.ndarray:
    """NPP of one composite (eq. 5) from its reflectances and the window's summed PAR (MJ m-2).

    float32, NaN where an input is NaN; 0 where there is no vegetation (see ``CHOICES``).
    ``slope`` / ``intercept``: eq. 5's constants (as published unless given).
    """
    term, vegetated = terms(blue, green, red, nir, par_sum)
    return (slope * term + intercept * vegetated).astype(np.float32)
