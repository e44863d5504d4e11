"""Synthetic demo-city weather: seasonal cycle, radiation bounds, hourly consistency, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from urbaneo.errors import InputError
from urbaneo.synth import climate as C

LON, LAT = 118.75, 32.05
YEAR = pd.date_range("2023-01-01", "2023-12-31", freq="D")


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return C.daily_climate(LON, LAT, YEAR, np.random.default_rng(7))


@pytest.fixture(scope="module")
def hourly(daily) -> pd.DataFrame:
    return C.hourly_series(daily, np.random.default_rng(8))


def test_columns_and_ranges(daily):
    assert list(daily.columns) == ["tmin", "tmax", "tmean", "precip", "rh", "vpd", "wind", "cloud",
                                   "shortwave", "par"]
    assert (daily.tmin < daily.tmax).all()
    assert daily.precip.min() >= 0 and daily.vpd.min() >= 0 and daily.wind.min() > 0
    assert daily.rh.between(25, 100).all() and daily.cloud.between(0, 1).all()
    assert abs(daily.tmean.mean() - 15.4) < 1.5  # seed 001: Nanjing annual mean 15.4 °C
    assert 600 < daily.precip.sum() < 1700  # ~1100 mm climatology, one random year


def test_seasonal_cycle(daily):
    month = daily.index.month
    assert daily.tmean[month == 7].mean() - daily.tmean[month == 1].mean() > 15
    summer = daily.precip[month.isin([6, 7, 8])].sum()
    winter = daily.precip[month.isin([12, 1, 2])].sum()
    assert summer > winter


def test_rain_falls_on_cloudy_days(daily):
    wet = daily.precip > 0
    assert 60 < wet.sum() < 180
    assert daily.cloud[wet].min() > 0.4
    assert daily.cloud[wet].mean() > daily.cloud[~wet].mean() + 0.2


def test_shortwave_bounded_by_extraterrestrial(daily):
    ra = C.extraterrestrial_radiation(LAT, daily.index.day_of_year.to_numpy())
    assert (daily.shortwave <= ra).all()
    assert (daily.shortwave >= C.ANGSTROM_A * ra - 1e-9).all()
    np.testing.assert_allclose(daily.par, 0.48 * daily.shortwave)


def test_extraterrestrial_radiation_fao56_example():
    # FAO-56 Example 8: 20 degrees S on 3 September (day 246) -> Ra = 32.2 MJ m-2 d-1
    assert C.extraterrestrial_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.1)
    # winter solstice: less energy further north
    ra = C.extraterrestrial_radiation(np.array([31.0, 32.0, 33.0]), 355)
    assert (np.diff(ra) < 0).all()


def test_hourly_integrates_to_daily(daily, hourly):
    assert list(hourly.columns) == ["time", "temp_c", "precip_mm", "rh_pct", "solar_wm2", "wind_ms"]
    assert len(hourly) == 24 * len(daily)
    # local day in UTC+8: 2023-01-01 00:00 local is 2022-12-31 16:00 UTC
    assert hourly.time.iloc[0] == pd.Timestamp("2022-12-31T16:00Z")
    solar_mj = hourly.solar_wm2.to_numpy().reshape(-1, 24).sum(axis=1) * 3600 / 1e6
    np.testing.assert_allclose(solar_mj, daily.shortwave, rtol=0.01)
    assert (hourly.solar_wm2.to_numpy().reshape(-1, 24)[:, [0, 1, 2, 22, 23]] == 0).all()  # night
    np.testing.assert_allclose(hourly.precip_mm.to_numpy().reshape(-1, 24).sum(axis=1), daily.precip, atol=1e-9)
    np.testing.assert_allclose(hourly.wind_ms.to_numpy().reshape(-1, 24).mean(axis=1), daily.wind, rtol=1e-9)
    temp = hourly.temp_c.to_numpy().reshape(-1, 24)
    assert np.abs(temp.mean(axis=1) - daily.tmean).max() < 0.5
    assert hourly.rh_pct.between(5, 100).all()
    # RH is anti-correlated with temperature within the day
    rh = hourly.rh_pct.to_numpy().reshape(-1, 24)
    t_anom, rh_anom = temp - temp.mean(axis=1, keepdims=True), rh - rh.mean(axis=1, keepdims=True)
    assert np.corrcoef(t_anom.ravel(), rh_anom.ravel())[0, 1] < -0.5


def test_deterministic_from_seed():
    days = YEAR[:40]
    a = C.daily_climate(LON, LAT, days, np.random.default_rng(1))
    b = C.daily_climate(LON, LAT, days, np.random.default_rng(1))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(C.hourly_series(a, np.random.default_rng(2)),
                                  C.hourly_series(b, np.random.default_rng(2)))
    c = C.daily_climate(LON, LAT, days, np.random.default_rng(2))
    assert not np.allclose(a.shortwave, c.shortwave)


def test_par_field_matches_station_and_varies_smoothly():
    days = YEAR[150:180]
    weather = C.regional_weather(days, np.random.default_rng(3))
    lons, lats = C.par_grid(LON, LAT, half_width_deg=0.3)
    assert np.allclose(np.diff(lons), 0.05) and np.allclose(np.diff(lats), -0.05)
    field = C.par_field(lons, lats, days, np.random.default_rng(0), weather=weather)
    assert field.dims == ("time", "lat", "lon") and field.shape == (30, len(lats), len(lons))
    assert field.attrs["units"] == "MJ m-2 d-1" and field.dtype == np.float32
    # a station at a grid point sees exactly the grid's PAR on the same weather
    station = C.daily_climate(lons[3], lats[4], days, np.random.default_rng(9), weather=weather)
    np.testing.assert_allclose(field.values[:, 4, 3], station.par, rtol=1e-6)
    # regional weather dominates: clouds differ only slightly across the 0.6 degree region
    spatial_cv = (field.std(dim=("lat", "lon")) / field.mean(dim=("lat", "lon"))).values
    assert 0 < spatial_cv.mean() < 0.25
    same = C.par_field(lons, lats, days, np.random.default_rng(0), weather=weather)
    assert same.equals(field)


def test_station_network_inside_and_around():
    aoi = (118.6, 31.9, 118.9, 32.2)
    st = C.station_network(aoi, np.random.default_rng(0), n=15)
    assert len(st) == 15 and st.station_id.is_unique
    inside = st.lon.between(aoi[0], aoi[2]) & st.lat.between(aoi[1], aoi[3])
    assert 3 <= inside.sum() <= 12
    hourly = C.station_hourly(st.iloc[:3], YEAR[:5], np.random.default_rng(0))
    assert len(hourly) == 3 * 5 * 24 and list(hourly.columns)[0] == "station_id"


def test_bad_dates():
    with pytest.raises(InputError, match="consecutive"):
        C.daily_climate(LON, LAT, ["2023-01-01", "2023-01-03"], np.random.default_rng(0))
