"""Point tables: stations (hourly -> daily), soil samples, species; interpolation onto a grid."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_CITY
from urbaneo.errors import InputError
from urbaneo.grid import Grid, city_grid
from urbaneo.readers import tables as T

BUFFER_M = TINY_CITY["region_buffer_km"] * 1000.0


@pytest.fixture(scope="module")
def grid100():
    return city_grid(TINY_CITY["aoi"], 100)


@pytest.fixture(scope="module")
def stations(tiny_city):
    return T.read_stations(tiny_city / "stations")


@pytest.fixture(scope="module")
def hourly_sample(tiny_city):
    """The first 50 hours of every demo station, as read by pandas."""
    return pd.read_csv(tiny_city / "stations" / "hourly.csv.gz").groupby("station_id").head(50).reset_index(drop=True)


def _station_copy(tiny_city, hourly_sample, tmp_path, edit_hourly=None, edit_stations=None):
    """A copy of the demo station folder (50 hours a station) with one table edited, as plain CSV."""
    folder = tmp_path / "stations"
    folder.mkdir()
    st = pd.read_csv(tiny_city / "stations" / "stations.csv")
    hr = hourly_sample.copy()
    (edit_stations or (lambda d: d))(st).to_csv(folder / "stations.csv", index=False)
    (edit_hourly or (lambda d: d))(hr).to_csv(folder / "hourly.csv", index=False)
    return folder


# --- stations ------------------------------------------------------------------------------------------
def test_demo_stations(stations):
    st, hr = stations
    assert list(st.columns) == ["station_id", "name", "lon", "lat", "elevation_m"] and len(st) == 6
    days = 366 + 365
    assert len(hr) == 6 * days * 24 and str(hr["time"].dt.tz) == "UTC"
    assert hr["rh_pct"].between(0, 100).all() and (hr["solar_wm2"] >= 0).all()


def test_daily_series_from_hourly(stations):
    st, hr = stations
    daily = T.daily_station_series(hr, st)
    assert len(daily) == 6 * 731 and (daily["hours"] == 24).all()
    first = daily.iloc[0]  # local (UTC+8) 1 January 2020 of ST01: 16:00 UTC the day before to 15:00 UTC
    assert first["station_id"] == "ST01" and first["date"] == pd.Timestamp("2020-01-01")
    hours = hr[(hr.station_id == "ST01") & (hr.time >= "2019-12-31T16:00Z") & (hr.time < "2020-01-01T16:00Z")]
    assert len(hours) == 24
    assert first["temp_c"] == pytest.approx(hours["temp_c"].mean())
    assert first["temp_max_c"] == pytest.approx(hours["temp_c"].max())
    assert first["precip_mm"] == pytest.approx(hours["precip_mm"].sum())
    assert first["solar_mj_m2"] == pytest.approx(hours["solar_wm2"].sum() * 3600 / 1e6)
    month = daily.groupby(daily["date"].dt.month)[["temp_c", "solar_mj_m2"]].mean()
    assert month.loc[7, "temp_c"] > month.loc[1, "temp_c"] + 15  # Nanjing: ~28 C in July, ~3 C in January
    assert month.loc[6, "solar_mj_m2"] > 1.5 * month.loc[12, "solar_mj_m2"]
    utc = T.daily_station_series(hr)  # without the stations: UTC days
    assert utc["date"].iloc[0] == pd.Timestamp("2019-12-31") and utc["hours"].iloc[0] == 8


def test_daily_series_needs_enough_hours(stations):
    st, hr = stations
    gappy = hr.copy()
    day = (gappy.station_id == "ST02") & (gappy.time >= "2020-02-01T16:00Z") & (gappy.time < "2020-02-02T04:00Z")
    gappy.loc[day, "temp_c"] = np.nan  # 12 of the 24 hours of local 2 February
    daily = T.daily_station_series(gappy, st).set_index(["station_id", "date"])
    assert np.isnan(daily.loc[("ST02", pd.Timestamp("2020-02-02")), "temp_c"])
    assert np.isfinite(daily.loc[("ST02", pd.Timestamp("2020-02-02")), "precip_mm"])


def test_stations_interpolated_onto_the_grid(stations, grid100):
    st, hr = stations
    annual = T.daily_station_series(hr, st).groupby("station_id")[["temp_c", "precip_mm"]].mean()
    points = st.merge(annual.reset_index(), on="station_id")
    points.attrs.update(st.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every station lies in the buffered region
        ds = T.interpolate_points(points, ["temp_c", "precip_mm"], grid100, buffer_m=BUFFER_M)
    assert set(ds.data_vars) == {"temp_c", "precip_mm"} and ds.temp_c.shape == grid100.shape
    assert ds.temp_c.dtype == np.float32 and ds.rio.crs.to_epsg() == 32650 and ds.attrs["points"] == 6
    assert points.temp_c.min() <= float(ds.temp_c.min()) <= float(ds.temp_c.max()) <= points.temp_c.max()
    # the two urban stations sit in the AOI and are warmer than the rural ones: the grid shows it
    assert float(ds.temp_c.mean()) > points.loc[points.name.str.startswith("rural"), "temp_c"].max()

    with pytest.warns(UserWarning, match=r"stations.csv: 4 of 6 stations lie outside the region and are ignored: "
                                         r"\['ST03', 'ST04', 'ST05', 'ST06'\]"):
        ds = T.interpolate_points(points, ["temp_c"], grid100)
    assert ds.attrs["points"] == 2


def test_idw_and_nearest_are_exact_at_the_points():
    grid = Grid(32650, 660000.0, 3550000.0, 100.0, 10, 10)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True).transform(
        [660050.0, 660950.0], [3549950.0, 3549050.0])  # centres of cells (0, 0) and (9, 9)
    df = pd.DataFrame({"id": ["a", "b"], "lon": lon, "lat": lat, "v": [10.0, 20.0], "w": [1.0, np.nan]})
    ds = T.interpolate_points(df, ["v", "w"], grid)
    v = ds.v.values
    assert v[0, 0] == pytest.approx(10.0, abs=1e-3) and v[9, 9] == pytest.approx(20.0, abs=1e-3)
    assert v[4, 5] == pytest.approx(15.0, abs=1e-3)  # equidistant cell on the diagonal's mirror
    assert v[1, 1] < 12 and (ds.w.values == 1.0).all()  # a missing value skips that point for that column
    with pytest.MonkeyPatch.context() as mp:  # the same field when the cells are queried in small blocks
        mp.setattr(T, "CELLS_PER_QUERY", 7)
        np.testing.assert_array_equal(T.interpolate_points(df, ["v"], grid).v.values, v)
    near = T.interpolate_points(df, ["v"], grid, method="nearest").v.values
    assert set(np.unique(near)) == {10.0, 20.0}
    with pytest.raises(InputError, match="points: unknown interpolation method 'kriging'"):
        T.interpolate_points(df, ["v"], grid, method="kriging")


def test_no_station_inside_the_region(stations):
    st, _ = stations
    paris = Grid(32631, 442480.0, 5418020.0, 100.0, 166, 121)
    frame = st.assign(temp_c=1.0)
    frame.attrs.update(st.attrs)
    with pytest.raises(InputError, match=r"stations.csv: no station inside the region EPSG:32631 .* \(all 6 lie "
                                         r"outside\)"):
        T.interpolate_points(frame, ["temp_c"], paris, buffer_m=BUFFER_M)


def test_unedited_station_copy_reads(tiny_city, hourly_sample, tmp_path):
    st, hr = T.read_stations(_station_copy(tiny_city, hourly_sample, tmp_path))  # the copy alone is no error
    assert len(st) == 6 and len(hr) == 300


@pytest.mark.parametrize("edit, file, message", [
    (dict(hourly=lambda d: d.drop(columns="wind_ms")), "hourly.csv", r"missing columns \['wind_ms'\]"),
    (dict(hourly=lambda d: d.rename(columns={"temp_c": "temp_k"}).assign(temp_k=lambda x: x.temp_k + 273.15)),
     "hourly.csv", r"missing columns \['temp_c'\] \(found temp_k instead of temp_c: units are part"),
    (dict(hourly=lambda d: d.assign(temp_c=d.temp_c + 273.15)), "hourly.csv",
     r"column temp_c: 300 values outside \[-90, 60\] \(air temperature in degrees C\), e.g. 276.35 on line 2"),
    (dict(hourly=lambda d: d.assign(rh_pct=d.rh_pct / 100)), "hourly.csv",
     "column rh_pct: every value is <= 1; relative humidity must be in percent"),
    (dict(hourly=lambda d: d.assign(station_id="ST99")), "hourly.csv",
     r"column station_id: stations \['ST99'\] are not in stations.csv"),
    (dict(hourly=lambda d: d.assign(time="yesterday")), "hourly.csv", "column time: not ISO-8601 times"),
    (dict(hourly=lambda d: pd.concat([d, d.iloc[:1]])), "hourly.csv", "station ST01 has two records at"),
    (dict(hourly=lambda d: d.assign(precip_mm=d.precip_mm.astype(str).where(d.index != 3, "trace"))),
     "hourly.csv", r"column precip_mm: 'trace' on line 5 is not a number"),
    (dict(stations=lambda d: d.assign(lat=d.lat + 100)), "stations.csv",
     r"column lat: 6 values outside \[-90, 90\]"),
    (dict(stations=lambda d: d.drop(columns="lon")), "stations.csv", r"missing columns \['lon'\]"),
])
def test_bad_station_tables(tiny_city, hourly_sample, tmp_path, edit, file, message):
    folder = _station_copy(tiny_city, hourly_sample, tmp_path, edit.get("hourly"), edit.get("stations"))
    with pytest.raises(InputError, match=rf"stations/{file}: {message}"):
        T.read_stations(folder)


def test_station_files_and_corrupt_tables(tiny_city, tmp_path):
    src = tiny_city / "stations"
    st, hr = T.read_stations([src / "hourly.csv.gz", src / "stations.csv"])  # two files, any order
    assert len(st) == 6 and len(hr) == 105264
    folder = tmp_path / "cut"
    folder.mkdir()
    shutil.copy(src / "stations.csv", folder)
    (folder / "hourly.csv.gz").write_bytes((src / "hourly.csv.gz").read_bytes()[:2048])
    with pytest.raises(InputError, match="cut/hourly.csv.gz: cannot be read as CSV"):
        T.read_stations(folder)
    (folder / "hourly.csv.gz").unlink()
    with pytest.raises(InputError, match="cut: no hourly.csv or hourly.csv.gz in the station folder"):
        T.read_stations(folder)


# --- soil ------------------------------------------------------------------------------------------------
def test_demo_soil(tiny_city, grid100):
    path = tiny_city / "tables" / "soil.csv"
    top = T.read_soil(path)
    every = T.read_soil(path, depth=None)
    assert len(every) == 2 * len(top) and (top["depth_cm"] == "0-20").all()
    assert top["ph"].between(3, 10).all() and (top["som_g_kg"] > 0).all()
    ds = T.interpolate_points(top, ["som_g_kg", "ph"], grid100)
    assert top["ph"].min() - 1e-4 <= float(ds.ph.min()) and float(ds.ph.max()) <= top["ph"].max() + 1e-4
    assert ds.attrs["points"] == len(top)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.assign(ph=d.ph.where(d.index != 2, 11.2)), r"column ph: 1 values outside \[3, 10\] \(pH\), "
                                                            r"e.g. 11.2 on line 4"),
    (lambda d: d.assign(som_g_kg=-d.som_g_kg), r"column som_g_kg: \d+ values outside \[0, 1000\]"),
    (lambda d: d.rename(columns={"som_g_kg": "som_pct"}),
     r"missing columns \['som_g_kg'\] \(found som_pct instead of som_g_kg"),
    (lambda d: d.drop(columns=["tn_g_kg", "cec_cmol_kg"]), r"missing columns \['tn_g_kg', 'cec_cmol_kg'\]"),
    (lambda d: d.assign(depth_cm="topsoil"), r"column depth_cm: 'topsoil' on line 2 is not 'top-bottom' in cm"),
    (lambda d: d.assign(depth_cm="0-30"), r"no samples at depth_cm '0-20' \(layers in the file: \['0-30'\]\)"),
    (lambda d: d.assign(clay_pct=d.clay_pct + 20), r"sand_pct \+ silt_pct \+ clay_pct = 120 on line 2"),
])
def test_bad_soil(tiny_city, tmp_path, edit, message):
    path = tmp_path / "soil.csv"
    edit(pd.read_csv(tiny_city / "tables" / "soil.csv")).to_csv(path, index=False)
    with pytest.raises(InputError, match=rf"soil.csv: {message}"):
        T.read_soil(path)


# --- species ---------------------------------------------------------------------------------------------
def test_demo_species(tiny_city):
    df = T.read_species(tiny_city / "tables" / "species.csv")
    assert len(df) == 24 and df["species_id"].is_unique
    assert df["survival_rate"].between(0, 1).all() and (df["procurement_cost_cny_m2"] > 0).all()


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.drop(columns=["survival_rate", "esv_cny_m2_yr", "lai"]),
     r"missing columns \['survival_rate', 'esv_cny_m2_yr', 'lai'\]"),
    (lambda d: d.rename(columns={"procurement_cost_cny_m2": "procurement_cost_usd_m2"}),
     r"missing columns \['procurement_cost_cny_m2'\] \(found procurement_cost_usd_m2 instead of "
     r"procurement_cost_cny_m2: units are part of the column name\)"),
    (lambda d: d.assign(planting_cost_cny_m2=d.planting_cost_cny_m2.where(d.index != 2, -5.0)),
     r"species SP03 \(Ginkgo biloba\): planting_cost_cny_m2 = -5 is negative; costs must be >= 0"),
    (lambda d: d.assign(gpp_kgc_m2_yr=d.gpp_kgc_m2_yr.where(d.index != 0, -1.0)),
     r"species SP01 \(Cinnamomum camphora\): gpp_kgc_m2_yr = -1 is negative; rates must be >= 0"),
    (lambda d: d.assign(survival_rate=d.survival_rate.where(d.index != 4, 1.2)),
     r"species SP05 \(Osmanthus fragrans\): survival_rate = 1.2 is outside \[0, 1\]"),
    (lambda d: d.assign(respiration_ratio=d.respiration_ratio.where(d.index != 1, 52.0)),
     r"species SP02 \(Platanus x acerifolia\): respiration_ratio = 52 is outside \[0, 1\]"),
    (lambda d: d.assign(lai=d.lai.astype(str).where(d.index != 1, "dense")), r"column lai: 'dense' on line 3"),
    (lambda d: d.assign(height_m=d.height_m.where(d.index != 5, np.nan)),
     r"species SP06 \(Ligustrum lucidum\): height_m is empty"),
    (lambda d: pd.concat([d, d.iloc[:1]]), r"column species_id: duplicate values \['SP01'\]"),
])
def test_bad_species(tiny_city, tmp_path, edit, message):
    path = tmp_path / "species.csv"
    edit(pd.read_csv(tiny_city / "tables" / "species.csv")).to_csv(path, index=False)
    with pytest.raises(InputError, match=rf"species.csv: {message}"):
        T.read_species(path)


def test_empty_and_missing_tables(tmp_path):
    (tmp_path / "species.csv").write_text("")
    with pytest.raises(InputError, match="species.csv: table is empty"):
        T.read_species(tmp_path / "species.csv")
    (tmp_path / "soil.csv").write_text("sample_id,lon,lat\n")
    with pytest.raises(InputError, match="soil.csv: table has a header but no rows"):
        T.read_soil(tmp_path / "soil.csv")
    with pytest.raises(InputError, match="nothing.csv: file not found"):
        T.read_species(tmp_path / "nothing.csv")


# --- inspect ---------------------------------------------------------------------------------------------
def test_describe_tables(tiny_city, tmp_path):
    facts = T.describe(tiny_city / "stations")
    assert facts["kind"] == "stations" and facts["stations"] == 6 and facts["crs"] == "EPSG:4326"
    assert facts["first"].startswith("2019-12-31T16:00") and facts["hourly_rows"] == 105264
    soil = T.describe(tiny_city / "tables" / "soil.csv")
    assert soil["kind"] == "soil" and soil["depths_cm"] == ["0-20", "20-40"] and soil["rows"] == 18
    species = T.describe(tiny_city / "tables" / "species.csv")
    assert species["kind"] == "species" and species["rows"] == 24 and len(species["columns"]) == 23
    for f in (facts, soil, species):
        assert {"kind", "path", "crs", "bounds", "resolution"} <= set(f)
        json.dumps(f)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="other.csv: not a station folder, soil table or species table"):
        T.describe(tmp_path / "other.csv")
