"""A MOD17-style light-use-efficiency model: the demo city's NPP reference ("ground truth").

It is deliberately *not* seed 000's NPP function (eqs. 5-8: fPAR = 1.24 NDVI - 0.168 and a PRI-based
NPP regression), so evaluating that function against this reference is not circular.

Daily, per pixel (Running et al. 2004; MOD17 User's Guide, Collection 6):
  GPP    = LUEmax f(Tmin) f(VPD) fPAR PAR                      kg C m-2 d-1
  PsnNet = GPP - R_leaf - R_froot                              kg C m-2 d-1
  R_leaf  = LAI / SLA x leaf_mr_base x Q10_leaf^((Tmean - 20) / 10), Q10_leaf = 3.22 - 0.046 Tmean
  R_froot = LAI / SLA x froot_leaf_ratio x froot_mr_base x Q10^((Tmean - 20) / 10), Q10 = 2
f(Tmin) rises linearly from 0 at Tmin_min to 1 at Tmin_max; f(VPD) falls linearly from 1 at VPD_min
to 0 at VPD_max. The 8-day product sums the daily PsnNet, as MOD17A2H's PsnNet does.

Simplifications against the operational algorithm:
- fPAR comes from NDVI (Myneni & Williams 1994) instead of MOD15A2H, and LAI from fPAR by Beer's law
  (k = 0.5) instead of MOD15's LAI;
- PAR is an input (the demo climate uses 0.48 x shortwave; MOD17 itself takes 0.45 x shortwave);
- parameters are the Collection 5.1 BPLUT; no gap filling, QC or snow handling;
- livewood and growth respiration (annual NPP, MOD17A3H) are left out, as in the 8-day PsnNet.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..errors import InputError

# MOD17 Collection 5.1 Biome Properties Look-Up Table (MERRA-driven), copied from
# shared/data/real/mod17-bplut-params/MOD17_BPLUT_C5.1_MERRA_NASA.csv, itself from github.com/arthur-e/MOD17
# (mod17/data/, MIT licence). Units: LUEmax kg C MJ-1 (the CSV's "KgC/m^2/d/MJ" is per MJ of APAR),
# Tmin °C, VPD Pa, SLA m2 leaf (projected) per kg C, mr_base kg C per kg C per day at 20 °C.
_FIELDS = ("LUEmax", "Tmin_min", "Tmin_max", "VPD_min", "VPD_max", "SLA", "Q10", "froot_leaf_ratio",
           "leaf_mr_base", "froot_mr_base")
BPLUT: dict[str, dict[str, float]] = {
    name: dict(zip(_FIELDS, values)) for name, values in {
        # UMD class        LUEmax  Tmin_min Tmin_max VPD_min VPD_max SLA  Q10 froot leaf_mr  froot_mr
        "ENF": (0.001211, -8.0, 8.31, 650.0, 3000.0, 15.0, 2.0, 1.2, 0.00604, 0.00519),   # evergreen needleleaf
        "EBF": (0.001405, -8.0, 9.09, 1000.0, 4000.0, 26.9, 2.0, 1.1, 0.00604, 0.00519),  # evergreen broadleaf
        "DBF": (0.001526, -6.0, 9.94, 650.0, 2900.0, 24.7, 2.0, 1.1, 0.00778, 0.00519),   # deciduous broadleaf
        "MF": (0.001226, -7.0, 9.50, 650.0, 2900.0, 22.6, 2.0, 1.1, 0.00778, 0.00519),    # mixed forest
        "CSH": (0.001495, -8.0, 8.61, 650.0, 4300.0, 9.4, 2.0, 1.0, 0.00869, 0.00519),    # closed shrubland
        "OSH": (0.001027, -8.0, 8.80, 650.0, 4400.0, 12.0, 2.0, 1.3, 0.00519, 0.00519),   # open shrubland
        "GRS": (0.001215, -8.0, 12.02, 650.0, 4200.0, 38.0, 2.0, 2.6, 0.0098, 0.00819),   # grassland
        "CRO": (0.001300, -8.0, 12.02, 650.0, 4500.0, 38.0, 2.0, 2.0, 0.0098, 0.00819),   # cropland
    }.items()
}

FPAR_MAX = 0.95  # upper clip of the NDVI-fPAR line, as commonly applied with Myneni & Williams (1994)
BEER_K = 0.5  # canopy extinction coefficient for a spherical leaf-angle distribution (Monsi & Saeki 1953)


def _param(biome, name: str):
    """BPLUT parameter for a biome name or an array of biome names (vectorised lookup)."""
    b = np.asarray(biome)
    if b.ndim == 0:
        key = str(b)
        if key not in BPLUT:
            raise InputError("biome", f"unknown biome {key!r}; known: {sorted(BPLUT)}")
        return BPLUT[key][name]
    out = np.empty(b.shape)
    for key in np.unique(b):
        if str(key) not in BPLUT:
            raise InputError("biome", f"unknown biome {key!r}; known: {sorted(BPLUT)}")
        out[b == key] = BPLUT[str(key)][name]
    return out


def fpar_from_ndvi(ndvi):
    """fPAR = 1.1638 NDVI - 0.1426 (Myneni & Williams 1994, Remote Sens. Environ. 49: 200-211), clipped to [0, 0.95]."""
    return np.clip(1.1638 * np.asarray(ndvi, float) - 0.1426, 0.0, FPAR_MAX)


def lai_from_fpar(fpar, k: float = BEER_K):
    """LAI from Beer's law, fPAR = 1 - exp(-k LAI); fPAR 0.95 gives LAI 6.0 at k = 0.5."""
    f = np.clip(np.asarray(fpar, float), 0.0, FPAR_MAX)
    return -np.log1p(-f) / k


def ramp_tmin(tmin, biome):
    """Minimum-temperature scalar: 0 at or below Tmin_min, 1 at or above Tmin_max, linear between."""
    lo, hi = _param(biome, "Tmin_min"), _param(biome, "Tmin_max")
    return np.clip((np.asarray(tmin, float) - lo) / (hi - lo), 0.0, 1.0)


def ramp_vpd(vpd, biome):
    """VPD scalar: 1 at or below VPD_min, 0 at or above VPD_max (Pa), linear between."""
    lo, hi = _param(biome, "VPD_min"), _param(biome, "VPD_max")
    return np.clip((hi - np.asarray(vpd, float)) / (hi - lo), 0.0, 1.0)


def gpp_daily(fpar, par, tmin, vpd, biome):
    """Daily GPP, kg C m-2 d-1, from fPAR (0-1), PAR (MJ m-2 d-1), Tmin (°C) and daytime VPD (Pa)."""
    return (_param(biome, "LUEmax") * ramp_tmin(tmin, biome) * ramp_vpd(vpd, biome)
            * np.asarray(fpar, float) * np.asarray(par, float))


def maintenance_respiration(lai, tmean, biome):
    """Daily leaf and fine-root maintenance respiration, kg C m-2 d-1 each, as in MOD17's PsnNet.

    The leaf Q10 is temperature-acclimated (Tjoelker et al. 2001), as in MOD17 Collection 6; fine roots
    use the BPLUT's Q10.
    """
    tmean = np.asarray(tmean, float)
    leaf_c = np.asarray(lai, float) / _param(biome, "SLA")  # kg C m-2
    x = (tmean - 20.0) / 10.0
    r_leaf = leaf_c * _param(biome, "leaf_mr_base") * np.power(3.22 - 0.046 * tmean, x)
    r_froot = leaf_c * _param(biome, "froot_leaf_ratio") * _param(biome, "froot_mr_base") * np.power(
        _param(biome, "Q10"), x)
    return r_leaf, r_froot


def psn_net_daily(fpar, par, tmin, tmean, vpd, biome, lai=None):
    """Daily net photosynthesis GPP - R_leaf - R_froot, kg C m-2 d-1 (LAI from fPAR if not given)."""
    lai = lai_from_fpar(fpar) if lai is None else lai
    r_leaf, r_froot = maintenance_respiration(lai, tmean, biome)
    return gpp_daily(fpar, par, tmin, vpd, biome) - r_leaf - r_froot


def composite_start(day) -> dt.date:
    """First day of the MODIS 8-day composite holding ``day`` (DOY 1, 9, ..., 361; restarts each year)."""
    day = pd.Timestamp(day).date()
    doy = day.timetuple().tm_yday
    return day - dt.timedelta(days=(doy - 1) % 8)


def _composite_length(start: dt.date) -> int:
    year_end = dt.date(start.year, 12, 31)
    return min(8, (year_end - start).days + 1)  # the last composite of a year has 5 or 6 days


def npp_8day(dates, fpar, par, tmin, tmean, vpd, biome, lai=None) -> dict[dt.date, np.ndarray]:
    """8-day sums of daily PsnNet (kg C m-2 per composite), keyed by each composite's first day.

    Every array input is time-first, ``(T, *pixels)`` aligned with ``dates`` (a 1-D input is a time
    series shared by all pixels; a leading axis of length 1 means constant in time); scalars are
    constant. ``biome`` is a name or an array of names over the pixels only. Only composites fully
    covered by ``dates`` are returned.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    n = len(idx)
    if n == 0 or idx.has_duplicates or not idx.is_monotonic_increasing:
        raise InputError("npp_8day", "dates must be non-empty, unique and increasing")
    arrays = {k: np.asarray(v, float) for k, v in
              dict(fpar=fpar, par=par, tmin=tmin, tmean=tmean, vpd=vpd, lai=lai).items() if v is not None}
    pixel_ndim = max([np.ndim(biome)] + [a.ndim - 1 for a in arrays.values()])
    for k, a in arrays.items():
        if a.ndim == 0:
            continue
        if a.shape[0] not in (1, n):
            raise InputError("npp_8day", f"{k} has {a.shape[0]} time steps for {n} dates")
        # pad the pixel axes on the left so numpy broadcasts pixels against pixels, time against time
        arrays[k] = a.reshape(a.shape[:1] + (1,) * (pixel_ndim - a.ndim + 1) + a.shape[1:])
    daily = psn_net_daily(arrays["fpar"], arrays["par"], arrays["tmin"], arrays["tmean"], arrays["vpd"],
                          biome, arrays.get("lai"))
    daily = np.asarray(daily)
    if daily.ndim == pixel_ndim:  # nothing varied in time
        daily = daily[None]
    daily = np.broadcast_to(daily, (n,) + daily.shape[1:])

    starts = np.array([composite_start(d) for d in idx])
    out = {}
    for start in sorted(set(starts)):
        sel = starts == start
        if sel.sum() == _composite_length(start):
            out[start] = daily[sel].sum(axis=0)
    return out
