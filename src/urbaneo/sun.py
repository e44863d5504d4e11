"""Solar geometry: sun position (NOAA's low-precision algorithm, ~0.01 degree) and Earth-Sun distance."""

from __future__ import annotations

import datetime as dt
import math


def declination_and_eot(day_of_year: float, hour_utc: float = 12.0) -> tuple[float, float]:
    """Solar declination (radians) and equation of time (minutes) for a fractional day of year."""
    g = 2 * math.pi / 365.0 * (day_of_year - 1 + (hour_utc - 12) / 24)  # fractional year
    eot = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                    - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    return decl, eot


def sun_position(lon: float, lat: float, when_utc: dt.datetime) -> tuple[float, float]:
    """(azimuth, elevation) in degrees; azimuth clockwise from north."""
    hour = when_utc.hour + when_utc.minute / 60 + when_utc.second / 3600
    decl, eot = declination_and_eot(when_utc.timetuple().tm_yday, hour)
    true_solar_min = hour * 60 + eot + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))) + 180
    return az % 360, 90 - math.degrees(zen)


def local_solar_time_utc(lon: float, date: dt.date, solar_hour: float) -> dt.datetime:
    """UTC time at which the local mean solar time at ``lon`` is ``solar_hour``."""
    return dt.datetime.combine(date, dt.time()) + dt.timedelta(hours=solar_hour - lon / 15.0)


def earth_sun_distance(when: dt.datetime | dt.date) -> float:
    """Earth-Sun distance in AU (Astronomical Almanac low-precision formula).

    Agrees with EARTH_SUN_DISTANCE of the real MTLs in shared/data/real to within 6e-5 AU.
    """
    if not isinstance(when, dt.datetime):
        when = dt.datetime.combine(when, dt.time(12))
    days = (when.replace(tzinfo=None) - dt.datetime(2000, 1, 1, 12)).total_seconds() / 86400.0
    g = math.radians(357.529 + 0.98560028 * days)  # mean anomaly of the Sun
    return 1.00014 - 0.01671 * math.cos(g) - 0.00014 * math.cos(2 * g)
