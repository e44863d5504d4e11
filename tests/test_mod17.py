"""MOD17-style reference model: BPLUT transcription, ramps and hand-computed values."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from urbaneo.errors import InputError
from urbaneo.synth import mod17 as M

BPLUT_CSV = Path(__file__).resolve().parent / "data/real/mod17-bplut-params/MOD17_BPLUT_C5.1_MERRA_NASA.csv"


def test_bplut_matches_csv():
    with open(BPLUT_CSV, newline="") as f:
        rows = list(csv.reader(f))
    classes = [c.split("=")[0].strip() for c in rows[0][1:]]
    table = {r[0].split("(")[0]: dict(zip(classes, map(float, r[1:]))) for r in rows[1:]}
    ours = {"ENF": "ENF", "EBF": "EBF", "DBF": "DBF", "MF": "MF", "CSH": "CShrub", "OSH": "OShrub",
            "GRS": "Grass", "CRO": "Crop"}
    for biome, column in ours.items():
        for field in M.BPLUT[biome]:
            assert M.BPLUT[biome][field] == table[field][column], (biome, field)


def test_fpar_from_ndvi_myneni_williams():
    # 1.1638 * 0.5 - 0.1426 = 0.4393; NDVI 0.1 -> -0.0262 -> 0; NDVI 0.95 -> 0.9630 -> 0.95
    np.testing.assert_allclose(M.fpar_from_ndvi([0.5, 0.1, 0.95]), [0.4393, 0.0, 0.95])
    assert M.fpar_from_ndvi(0.5) != pytest.approx(1.24 * 0.5 - 0.168)  # not seed 000's eq. 7


def test_ramp_limits():
    p = M.BPLUT["DBF"]  # Tmin -6 .. 9.94 °C, VPD 650 .. 2900 Pa
    assert M.ramp_tmin(p["Tmin_min"], "DBF") == 0 and M.ramp_tmin(-20, "DBF") == 0
    assert M.ramp_tmin(p["Tmin_max"], "DBF") == 1 and M.ramp_tmin(30, "DBF") == 1
    assert M.ramp_tmin((p["Tmin_min"] + p["Tmin_max"]) / 2, "DBF") == pytest.approx(0.5)
    assert M.ramp_vpd(p["VPD_min"], "DBF") == 1 and M.ramp_vpd(100, "DBF") == 1
    assert M.ramp_vpd(p["VPD_max"], "DBF") == 0 and M.ramp_vpd(6000, "DBF") == 0
    assert M.ramp_vpd(1775, "DBF") == pytest.approx(0.5)


def test_gpp_hand_computed():
    # DBF, fPAR 0.8, PAR 10 MJ, Tmin 5 °C, VPD 1000 Pa:
    # f(Tmin) = (5 + 6) / (9.94 + 6) = 0.690088; f(VPD) = (2900 - 1000) / (2900 - 650) = 0.844444
    # GPP = 0.001526 * 0.690088 * 0.844444 * 0.8 * 10 = 0.0071141 kg C m-2 d-1
    assert M.gpp_daily(0.8, 10.0, 5.0, 1000.0, "DBF") == pytest.approx(0.0071141, rel=1e-4)
    # GRS, fPAR 0.5, PAR 8, Tmin 15 (>= 12.02), VPD 500 (<= 650): 0.001215 * 0.5 * 8 = 0.00486
    assert M.gpp_daily(0.5, 8.0, 15.0, 500.0, "GRS") == pytest.approx(0.00486)


def test_respiration_and_psn_net_hand_computed():
    # fPAR 0.8 -> LAI = -ln(0.2) / 0.5 = 3.218876; DBF leaf C = 3.218876 / 24.7 = 0.130319 kg C m-2
    assert M.lai_from_fpar(0.8) == pytest.approx(3.218876, rel=1e-6)
    # Tmean 10 °C: leaf Q10 = 3.22 - 0.46 = 2.76 -> 2.76^-1; fine-root Q10 2 -> 0.5
    # R_leaf = 0.130319 * 0.00778 / 2.76 = 0.00036735; R_froot = 0.130319 * 1.1 * 0.00519 * 0.5 = 0.00037200
    r_leaf, r_froot = M.maintenance_respiration(3.218876, 10.0, "DBF")
    assert r_leaf == pytest.approx(0.00036735, rel=1e-4)
    assert r_froot == pytest.approx(0.00037200, rel=1e-4)
    # PsnNet = 0.0071141 - 0.00036735 - 0.00037200 = 0.0063748
    assert M.psn_net_daily(0.8, 10.0, 5.0, 10.0, 1000.0, "DBF") == pytest.approx(0.0063748, rel=1e-4)
    # at 20 °C both Q10 terms are 1: R = leaf C * (0.00778 + 1.1 * 0.00519)
    r_leaf, r_froot = M.maintenance_respiration(3.218876, 20.0, "DBF")
    assert r_leaf + r_froot == pytest.approx(0.130319 * (0.00778 + 1.1 * 0.00519), rel=1e-5)


def test_npp_8day_composites():
    dates = pd.date_range("2023-01-01", "2023-12-31")
    n = len(dates)
    out = M.npp_8day(dates, np.full(n, 0.8), np.full(n, 10.0), np.full(n, 5.0), np.full(n, 10.0),
                     np.full(n, 1000.0), "DBF")
    assert len(out) == 46  # DOY 1, 9, ..., 361
    assert list(out)[:2] == [dt.date(2023, 1, 1), dt.date(2023, 1, 9)]
    assert list(out)[-1] == dt.date(2023, 12, 27)
    daily = M.psn_net_daily(0.8, 10.0, 5.0, 10.0, 1000.0, "DBF")
    assert out[dt.date(2023, 1, 9)] == pytest.approx(8 * daily)
    assert out[dt.date(2023, 12, 27)] == pytest.approx(5 * daily)  # DOY 361-365
    # a partial first composite is dropped
    late = M.npp_8day(dates[3:20], 0.8, np.full(17, 10.0), np.full(17, 5.0), np.full(17, 10.0), 1000.0, "DBF")
    assert list(late) == [dt.date(2023, 1, 9)]


def test_npp_8day_broadcasts_pixels_and_biomes():
    dates = pd.date_range("2024-03-05", periods=16)  # DOY 65 of a leap year starts a composite
    t = len(dates)
    biome = np.array([["DBF", "GRS"], ["ENF", "CRO"]])
    fpar = np.linspace(0.3, 0.9, t)[:, None, None] * np.ones((t, 2, 2))
    par, tmin, tmean, vpd = np.full(t, 9.0), np.linspace(0, 12, t), np.linspace(5, 18, t), np.full(t, 900.0)
    out = M.npp_8day(dates, fpar, par, tmin, tmean, vpd, biome)
    assert list(out) == [dt.date(2024, 3, 5), dt.date(2024, 3, 13)]
    for (i, j), b in np.ndenumerate(biome):
        expected = sum(M.psn_net_daily(fpar[k, i, j], par[k], tmin[k], tmean[k], vpd[k], b) for k in range(8))
        assert out[dt.date(2024, 3, 5)][i, j] == pytest.approx(expected)


def test_unknown_biome():
    with pytest.raises(InputError, match="unknown biome"):
        M.gpp_daily(0.5, 8.0, 10.0, 800.0, "TUNDRA")
    assert math.isfinite(M.gpp_daily(0.5, 8.0, 10.0, 800.0, np.array(["EBF"]))[0])
