"""Synthetic weather for the demo city: daily and hourly station series and a daily PAR grid.

The climate is a Nanjing-like humid subtropical monsoon climate (seed 001 quotes an annual mean of
15.4 °C for Nanjing). One *regional* weather realisation (:class:`Weather`) drives every location,
so stations and the PAR grid see the same synoptic days; locations differ by latitude (solar
geometry), a smooth cloud perturbation field, elevation, urban heat and small local noise.

Daily cloudiness drives everything else. A latent AR(1) series z (persistent weather spells) is
mapped to a cloudiness c in (0, 1), read as 1 - relative sunshine duration n/N. Then
  shortwave = (0.18 + 0.55 (1 - c)) Ra        Angstrom-Prescott (FAO-56 eq. 35), locally lowered a
  wet day   = z above the quantile that gives the month's wet-day frequency (rain on cloudy days)
  PAR       = 0.48 shortwave
Seasonality comes from monthly climatological tables, interpolated between mid-month days.

Everything is deterministic given the numpy Generator passed in; nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr, ndtri  # standard normal CDF and its inverse

from ..errors import InputError

# --- monthly climatology, January..December ---------------------------------------------------------
# Rounded values in the spirit of the CMA 1981-2010 normals for Nanjing (WMO 58238); temperatures are
# shifted so the annual mean is the 15.4 °C of seed 001. Demo numbers, not an official climatology.
TMEAN_C = np.array([2.1, 4.4, 9.1, 15.2, 20.5, 24.3, 27.7, 27.2, 22.7, 16.9, 10.4, 4.3])
DTR_C = np.array([8.6, 8.4, 9.0, 9.8, 9.6, 8.0, 7.4, 7.6, 8.0, 9.2, 9.4, 9.0])  # tmax - tmin
# ~1100 mm/yr; the June-July peak is the Meiyu (plum-rain) front, August the late monsoon.
PRECIP_MM = np.array([47, 53, 82, 82, 97, 182, 200, 140, 80, 58, 52, 32], dtype=float)
WET_DAYS = np.array([9, 9.5, 12, 11, 11, 12, 13, 12, 9, 8, 8, 7])  # days with >= 0.1 mm
# Relative sunshine n/N (~1950 h/yr over the astronomical day length at 32 N): lowest in the
# Meiyu month of June, highest under the subtropical high in August.
SUNSHINE = np.array([0.41, 0.42, 0.41, 0.45, 0.43, 0.36, 0.46, 0.50, 0.45, 0.46, 0.47, 0.46])
RH_PCT = np.array([74, 73, 72, 71, 71, 77, 80, 80, 78, 75, 75, 72], dtype=float)
WIND_MS = np.array([2.4, 2.6, 2.8, 2.7, 2.5, 2.4, 2.5, 2.4, 2.2, 2.1, 2.2, 2.3])
CLIMATE_ELEVATION_M = 30.0  # elevation the tables refer to (assumed; a low-lying city station)

# --- physical constants and model choices -----------------------------------------------------------
GSC = 0.0820  # solar constant, MJ m-2 min-1 (FAO-56, Allen et al. 1998, eq. 21)
# Angstrom-Prescott Rs/Ra = a + b n/N (FAO-56 eq. 35). FAO-56's defaults (0.25, 0.50) give ~5,300
# MJ m-2 yr-1 here, more than the roughly 4,500-4,800 measured at Nanjing under its hazy skies; the
# lower intercept below (an assumption in the range of local fits for eastern China) gives ~4,700.
ANGSTROM_A, ANGSTROM_B = 0.18, 0.55
# PAR share of global shortwave energy: 0.45-0.50 is the range usually reported for clear to overcast
# skies (e.g. Monteith & Unsworth, Principles of Environmental Physics); 0.48 is mid-range. MOD17
# itself uses 0.45 (MOD17 User's Guide), so do not mix this PAR with that constant.
PAR_FRACTION = 0.48
LAPSE_K_PER_M = 0.0065  # ICAO standard-atmosphere lapse rate
# Urban heat island: strongest at night (Oke 1982), so it mostly raises tmin; ~1-2 K for a large city.
UHI_TMIN_K, UHI_TMAX_K = 1.5, 0.5
CLOUD_AR1 = 0.65  # lag-1 autocorrelation of daily cloudiness: spells of 2-4 days
TEMP_AR1 = 0.75  # lag-1 autocorrelation of daily temperature anomalies
CLOUD_SPREAD = 1.0  # c = PHI(alpha + CLOUD_SPREAD * z): how far single days stray from the mean
CLOUD_FIELD_WEIGHT = 0.35  # share of the spatial cloud perturbation in the latent variable
CLOUD_WAVES = 3  # plane waves per day making the smooth spatial cloud field
PRECIP_GAMMA_SHAPE = 0.75  # daily wet-day amounts are gamma with shape < 1 (skewed), cf. Wilks (2011)


@dataclass(frozen=True)
class Weather:
    """One regional weather realisation, shared by every location of the region."""

    dates: pd.DatetimeIndex
    z: np.ndarray  # (T,) latent cloudiness, stationary AR(1) with N(0, 1) margins
    t_anom: np.ndarray  # (T,) regional temperature anomaly in units of the day's standard deviation
    rain: np.ndarray  # (T,) unit-mean gamma draw: wet-day amount relative to the climatological mean
    wind: np.ndarray  # (T,) unit-mean lognormal wind factor
    wave_k: np.ndarray  # (T, CLOUD_WAVES, 2) wave vectors of the spatial cloud field, rad per degree
    wave_phase: np.ndarray  # (T, CLOUD_WAVES)

    def latent(self, lon, lat) -> np.ndarray:
        """Latent cloudiness at points (..., ) -> (T, ...), still N(0, 1) at every point."""
        lon, lat = np.broadcast_arrays(np.asarray(lon, float), np.asarray(lat, float))
        shape = lon.shape
        arg = (self.wave_k[:, :, 0, None] * lon.ravel() + self.wave_k[:, :, 1, None] * lat.ravel()
               + self.wave_phase[:, :, None])  # (T, K, N)
        field = np.sqrt(2.0 / CLOUD_WAVES) * np.cos(arg).sum(axis=1)  # unit variance over phases
        w = CLOUD_FIELD_WEIGHT
        local = (self.z[:, None] + w * field) / np.sqrt(1 + w * w)
        return local.reshape((len(self.dates),) + shape)


def _daily_dates(dates) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    if len(idx) == 0:
        raise InputError("dates", "no dates given")
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    if len(idx) > 1 and not (np.diff(idx.to_numpy().astype("datetime64[D]").astype(np.int64)) == 1).all():
        raise InputError("dates", "must be consecutive days in increasing order")
    return idx.rename("date")


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with N(0, 1) margins."""
    eps = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = eps[0]
    s = np.sqrt(1 - phi * phi)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + s * eps[i]
    return out


def regional_weather(dates, rng: np.random.Generator) -> Weather:
    """Draw the regional weather for consecutive ``dates``; pass it to the functions below to share it."""
    idx = _daily_dates(dates)
    n = len(idx)
    z = _ar1(rng, n, CLOUD_AR1)
    t_anom = _ar1(rng, n, TEMP_AR1)
    rain = rng.gamma(PRECIP_GAMMA_SHAPE, 1.0 / PRECIP_GAMMA_SHAPE, n)
    sigma = 0.25
    wind = np.exp(sigma * _ar1(rng, n, 0.5) - sigma**2 / 2)
    # Cloud structures of 30-100 km (0.3-1 degree wavelength) in random directions, new every day.
    wavelength = rng.uniform(0.3, 1.0, (n, CLOUD_WAVES))
    direction = rng.uniform(0, 2 * np.pi, (n, CLOUD_WAVES))
    k = 2 * np.pi / wavelength
    wave_k = np.stack([k * np.cos(direction), k * np.sin(direction)], axis=-1)
    phase = rng.uniform(0, 2 * np.pi, (n, CLOUD_WAVES))
    return Weather(idx, z, t_anom, rain, wind, wave_k, phase)


# --- seasonal interpolation and solar geometry --------------------------------------------------------
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_MID_MONTH = np.cumsum(_MONTH_DAYS) - _MONTH_DAYS / 2 + 0.5  # day of year at mid-month


def seasonal(table: np.ndarray, doy) -> np.ndarray:
    """Periodic linear interpolation of a Jan..Dec table between mid-month days."""
    x = np.concatenate([[_MID_MONTH[-1] - 365], _MID_MONTH, [_MID_MONTH[0] + 365]])
    y = np.concatenate([[table[-1]], table, [table[0]]])
    return np.interp(np.asarray(doy, float), x, y)


def _declination(doy):
    return 0.409 * np.sin(2 * np.pi * np.asarray(doy, float) / 365 - 1.39)  # FAO-56 eq. 24


def extraterrestrial_radiation(lat, doy) -> np.ndarray:
    """Daily extraterrestrial radiation Ra, MJ m-2 d-1 (FAO-56 eqs. 21-25); broadcasts lat and doy."""
    phi = np.radians(np.asarray(lat, float))
    doy = np.asarray(doy, float)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)  # inverse relative Earth-Sun distance, eq. 23
    delta = _declination(doy)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))  # sunset hour angle, eq. 25
    return (24 * 60 / np.pi * GSC * dr
            * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)))


def sat_vapour_pressure_pa(t_c) -> np.ndarray:
    """Saturation vapour pressure over water, Pa (FAO-56 eq. 11)."""
    t_c = np.asarray(t_c, float)
    return 610.8 * np.exp(17.27 * t_c / (t_c + 237.3))


def _diurnal_temperature(tmean, dtr, solar_hour):
    """Diurnal sine: tmean +- dtr/2, warmest at 14 h apparent solar time."""
    return tmean + dtr / 2 * np.cos(2 * np.pi * (solar_hour - 14) / 24)


def _vapour_pressure_pa(rh_pct, tmean, dtr):
    """Actual vapour pressure held through the day such that the day's mean hourly RH is ``rh_pct``.

    With e constant, RH(h) = e / es(T(h)), so e = RH_mean / mean(1 / es(T(h))) over the diurnal sine.
    (FAO-56 eq. 19 uses the plain mean of es(tmax) and es(tmin), which pushes night-time RH over 100 %.)
    """
    hours = (np.arange(24) + 0.5)[None, :]
    t = _diurnal_temperature(np.asarray(tmean, float)[:, None], np.asarray(dtr, float)[:, None], hours)
    return rh_pct / 100 / (1 / sat_vapour_pressure_pa(t)).mean(axis=1)


def _cloudiness(latent: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Cloudiness c = PHI(alpha + s z); alpha makes E[c] the climatological 1 - n/N of the day.

    For z ~ N(0, 1), E[PHI(alpha + s z)] = PHI(alpha / sqrt(1 + s^2)), so alpha follows in closed form.
    """
    mean_cloud = 1 - seasonal(SUNSHINE, doy)
    alpha = ndtri(mean_cloud) * np.sqrt(1 + CLOUD_SPREAD**2)
    return ndtr(alpha.reshape(alpha.shape + (1,) * (latent.ndim - 1)) + CLOUD_SPREAD * latent)


# --- public generators --------------------------------------------------------------------------------
def daily_climate(lon: float, lat: float, dates, rng: np.random.Generator, *, weather: Weather | None = None,
                  elevation_m: float = CLIMATE_ELEVATION_M, built_fraction: float = 0.0) -> pd.DataFrame:
    """Daily weather at one location.

    Columns: tmin, tmax, tmean (°C), precip (mm), rh (daily mean, %), vpd (daytime, Pa), wind (m/s),
    cloud (0-1, = 1 - relative sunshine), shortwave and par (MJ m-2 d-1). Index: the dates.
    ``weather`` shares one regional realisation between locations (drawn from ``rng`` when omitted);
    ``rng`` then only adds local noise. ``built_fraction`` (0-1) adds urban heat.
    The frame's ``attrs`` carry lon and lat for :func:`hourly_series`.
    """
    if not (np.isfinite(lon) and np.isfinite(lat) and -90 < lat < 90):
        raise InputError("daily_climate", f"bad location lon={lon}, lat={lat}")
    idx = _daily_dates(dates)
    if weather is None:
        weather = regional_weather(idx, rng)
    elif not weather.dates.equals(idx):
        raise InputError("daily_climate", "weather was drawn for other dates")
    n = len(idx)
    doy = idx.day_of_year.to_numpy()

    z = weather.latent(lon, lat)  # (T,)
    cloud = _cloudiness(z, doy)
    mean_cloud = 1 - seasonal(SUNSHINE, doy)

    # Temperature: climatology + synoptic anomaly (more variable in winter: cold-air outbreaks).
    t_sd = 2.25 + 0.75 * np.cos(2 * np.pi * (doy - 15) / 365)
    tmean = (seasonal(TMEAN_C, doy) + t_sd * weather.t_anom + 0.3 * rng.standard_normal(n)
             - LAPSE_K_PER_M * (elevation_m - CLIMATE_ELEVATION_M))
    # Clouds damp the diurnal range (less daytime heating, less night-time cooling).
    dtr = seasonal(DTR_C, doy) * np.clip(1 + 0.8 * (mean_cloud - cloud), 0.4, None)
    tmax = tmean + dtr / 2 + UHI_TMAX_K * built_fraction
    tmin = tmean - dtr / 2 + UHI_TMIN_K * built_fraction
    tmean = (tmax + tmin) / 2

    # Precipitation on the cloudiest days: the wet-day frequency sets the latent threshold.
    days_in_month = _MONTH_DAYS[idx.month.to_numpy() - 1]
    p_wet = np.clip(seasonal(WET_DAYS, doy) / days_in_month, 0.01, 0.99)
    wet = z > ndtri(1 - p_wet)
    intensity = seasonal(PRECIP_MM / WET_DAYS, doy)  # mm per wet day
    local = np.exp(0.3 * rng.standard_normal(n) - 0.045)  # unit-mean lognormal, sigma 0.3
    precip = np.where(wet, np.maximum(weather.rain * intensity * local, 0.1), 0.0)

    # Humidity rises with cloud and rain; VPD uses the daytime temperature of MT-CLIM
    # (Tday = tmean + 0.45 (tmax - tmean), Running et al. 1987), as MOD17's VPD is a daytime value.
    rh = np.clip(seasonal(RH_PCT, doy) + 15 * (cloud - mean_cloud) + 5 * wet, 25, 100)
    ea = _vapour_pressure_pa(rh, tmean, tmax - tmin)
    tday = tmean + 0.45 * (tmax - tmean)
    vpd = np.maximum(sat_vapour_pressure_pa(tday) - ea, 0.0)

    wind = seasonal(WIND_MS, doy) * weather.wind * np.exp(0.15 * rng.standard_normal(n) - 0.01125)
    shortwave = (ANGSTROM_A + ANGSTROM_B * (1 - cloud)) * extraterrestrial_radiation(lat, doy)

    df = pd.DataFrame({"tmin": tmin, "tmax": tmax, "tmean": tmean, "precip": precip, "rh": rh, "vpd": vpd,
                       "wind": wind, "cloud": cloud, "shortwave": shortwave,
                       "par": PAR_FRACTION * shortwave}, index=idx)
    df.attrs.update(lon=float(lon), lat=float(lat))
    return df


def _solar_time_offset_h(lon: float, tz_h: int, doy: np.ndarray) -> np.ndarray:
    """Hours to add to local standard time to get apparent solar time (FAO-56 eqs. 31-33)."""
    b = 2 * np.pi * (doy - 81) / 364
    eot = 0.1645 * np.sin(2 * b) - 0.1255 * np.cos(b) - 0.025 * np.sin(b)  # equation of time, h
    return (lon - 15 * tz_h) / 15 + eot


def hourly_series(daily: pd.DataFrame, rng: np.random.Generator, *, lon: float | None = None,
                  lat: float | None = None) -> pd.DataFrame:
    """Hourly weather from :func:`daily_climate` output.

    Returns columns time (UTC), temp_c, precip_mm, rh_pct, solar_wm2, wind_ms. Each day runs over
    local standard time of the zone round(lon / 15) (UTC+8 for the demo city). Solar radiation
    follows the cosine of the sun's zenith angle and integrates exactly to the daily shortwave;
    temperature is a sine peaking at 14 h solar time; vapour pressure is held for the day so RH
    falls as temperature rises; each wet day's rain falls in one spell of a few hours.
    """
    lon = daily.attrs.get("lon") if lon is None else lon
    lat = daily.attrs.get("lat") if lat is None else lat
    if lon is None or lat is None:
        raise InputError("hourly_series", "location unknown: pass lon/lat or daily_climate() output")
    need = {"tmin", "tmax", "tmean", "precip", "rh", "wind", "shortwave"}
    if missing := need - set(daily.columns):
        raise InputError("hourly_series", f"daily frame lacks columns {sorted(missing)}")
    idx = _daily_dates(daily.index)
    n = len(idx)
    doy = idx.day_of_year.to_numpy()
    tz = int(round(lon / 15))
    col = {k: daily[k].to_numpy(float)[:, None] for k in need}

    # Apparent solar time at 12 sub-steps within each local hour, for the hourly mean cos(zenith).
    sub = 12
    t_local = (np.arange(24 * sub) + 0.5) / sub  # hours
    t_solar = t_local[None, :] + _solar_time_offset_h(lon, tz, doy)[:, None]  # (n, 24*sub)
    omega = np.pi / 12 * (t_solar - 12)
    phi, delta = np.radians(lat), _declination(doy)[:, None]
    cosz = np.maximum(np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega), 0)
    weight = cosz.reshape(n, 24, sub).mean(axis=2)
    total = weight.sum(axis=1, keepdims=True)
    share = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    solar = col["shortwave"] * share * 1e6 / 3600  # MJ per hour -> W m-2

    t_hour_solar = t_solar.reshape(n, 24, sub).mean(axis=2)
    diurnal = np.cos(2 * np.pi * (t_hour_solar - 14) / 24)
    dtr = col["tmax"] - col["tmin"]
    temp = _diurnal_temperature(col["tmean"], dtr, t_hour_solar) + 0.2 * rng.standard_normal((n, 24))

    precip = np.zeros((n, 24))
    for i in np.flatnonzero(col["precip"][:, 0] > 0):
        amount = col["precip"][i, 0]
        hours = int(min(24, 1 + rng.poisson(amount / 5)))  # heavier days rain longer
        start = rng.integers(0, 25 - hours)
        precip[i, start:start + hours] = amount * rng.dirichlet(np.ones(hours))

    ea = _vapour_pressure_pa(col["rh"][:, 0], col["tmean"][:, 0], dtr[:, 0])[:, None]
    rh = np.clip(100 * ea / sat_vapour_pressure_pa(temp), 5, 100)
    rh = np.where(precip > 0, np.maximum(rh, 92), rh)

    # Wind picks up in the afternoon with convective mixing; rescaled to keep the daily mean.
    gust = (1 + 0.3 * diurnal) * np.exp(0.15 * rng.standard_normal((n, 24)))
    wind = col["wind"] * gust / gust.mean(axis=1, keepdims=True)

    start_utc = (idx - pd.Timedelta(hours=tz)).to_numpy()  # naive, read as UTC
    time = (start_utc[:, None] + np.arange(24) * np.timedelta64(1, "h")).ravel()
    return pd.DataFrame({"time": pd.DatetimeIndex(time).tz_localize("UTC"), "temp_c": temp.ravel(),
                         "precip_mm": precip.ravel(), "rh_pct": rh.ravel(), "solar_wm2": solar.ravel(),
                         "wind_ms": wind.ravel()})


def par_grid(center_lon: float, center_lat: float, half_width_deg: float = 0.5,
             res_deg: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre axes (lons ascending, lats descending) of a grid aligned to multiples of res_deg."""
    def axis(c):
        lo = np.floor((c - half_width_deg) / res_deg)
        hi = np.ceil((c + half_width_deg) / res_deg)
        return np.round((np.arange(lo, hi) + 0.5) * res_deg, 6)
    return axis(center_lon), axis(center_lat)[::-1].copy()


def par_field(lons, lats, dates, rng: np.random.Generator, *, weather: Weather | None = None) -> xr.DataArray:
    """Daily PAR (MJ m-2 d-1) on a lon/lat grid, DataArray (time, lat, lon), float32.

    Same cloudiness as :func:`daily_climate` at the same point and weather, so a station's PAR
    equals the grid's PAR there; ``rng`` is only used to draw the weather when none is given.
    """
    lons = np.asarray(lons, float)
    lats = np.asarray(lats, float)
    if lons.ndim != 1 or lats.ndim != 1 or not lons.size or not lats.size:
        raise InputError("par_field", "lons and lats must be non-empty 1-D axes")
    if not (np.isfinite(lons).all() and (np.abs(lats) < 90).all()):
        raise InputError("par_field", "lons/lats hold non-finite values or latitudes beyond +-90")
    idx = _daily_dates(dates)
    if weather is None:
        weather = regional_weather(idx, rng)
    elif not weather.dates.equals(idx):
        raise InputError("par_field", "weather was drawn for other dates")
    doy = idx.day_of_year.to_numpy()
    glon, glat = np.meshgrid(lons, lats)
    cloud = _cloudiness(weather.latent(glon, glat), doy)  # (T, lat, lon)
    ra = extraterrestrial_radiation(lats[None, :, None], doy[:, None, None])
    par = PAR_FRACTION * (ANGSTROM_A + ANGSTROM_B * (1 - cloud)) * ra
    return xr.DataArray(par.astype(np.float32), dims=("time", "lat", "lon"),
                        coords={"time": idx.to_numpy(), "lat": lats, "lon": lons}, name="par",
                        attrs={"units": "MJ m-2 d-1",
                               "long_name": "daily incident photosynthetically active radiation"})


# --- station network ----------------------------------------------------------------------------------
def station_network(aoi: tuple[float, float, float, float], rng: np.random.Generator, n: int = 15,
                    region_buffer_km: float = 40.0, city_share: float = 0.4) -> pd.DataFrame:
    """Weather stations: about ``city_share`` of them inside the AOI, the rest in the region around it.

    Returns station_id, name, lon, lat, elevation_m and built_fraction (used for urban heat; not
    written to stations.csv).
    """
    west, south, east, north = aoi
    if not (west < east and south < north) or n < 1:
        raise InputError("station_network", f"bad aoi {aoi} or n={n}")
    lat0 = (south + north) / 2
    km_lon = 111.32 * np.cos(np.radians(lat0))  # km per degree of longitude
    n_city = max(1, int(round(n * city_share)))
    rows = []
    for i in range(n):
        if i < n_city:
            lon, lat = rng.uniform(west, east), rng.uniform(south, north)
            elevation, built = 8 + rng.gamma(2.0, 8.0), rng.uniform(0.5, 0.9)
        else:  # uniform over the buffered rectangle, outside the AOI
            while True:
                lon = rng.uniform(west - region_buffer_km / km_lon, east + region_buffer_km / km_lon)
                lat = rng.uniform(south - region_buffer_km / 111.32, north + region_buffer_km / 111.32)
                if not (west <= lon <= east and south <= lat <= north):
                    break
            elevation, built = 5 + rng.gamma(1.5, 30.0), rng.uniform(0.0, 0.2)
        kind = "urban" if i < n_city else "rural"
        rows.append((f"ST{i + 1:02d}", f"{kind} station {i + 1:02d}", round(lon, 5), round(lat, 5),
                     round(min(elevation, 400.0), 1), round(built, 2)))
    return pd.DataFrame(rows, columns=["station_id", "name", "lon", "lat", "elevation_m", "built_fraction"])


def station_hourly(stations: pd.DataFrame, dates, rng: np.random.Generator, *,
                   weather: Weather | None = None) -> pd.DataFrame:
    """Hourly series of every station (long format with station_id first), sharing one weather."""
    idx = _daily_dates(dates)
    weather = regional_weather(idx, rng) if weather is None else weather
    parts = []
    for st in stations.itertuples(index=False):
        daily = daily_climate(st.lon, st.lat, idx, rng, weather=weather, elevation_m=st.elevation_m,
                              built_fraction=getattr(st, "built_fraction", 0.0))
        hourly = hourly_series(daily, rng)
        hourly.insert(0, "station_id", st.station_id)
        parts.append(hourly)
    return pd.concat(parts, ignore_index=True)

