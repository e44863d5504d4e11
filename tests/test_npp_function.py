"""Seed 000's NPP function (eqs. 5-8) against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from urbaneo.stages.npp import function as F


def test_each_equation_by_hand():
    assert F.ndvi(0.4, 0.1) == pytest.approx(0.6)  # (0.4 - 0.1) / (0.4 + 0.1)
    assert F.fpar(0.6) == pytest.approx(0.576)  # 1.24 * 0.6 - 0.168
    assert F.apar(0.576, 500.0) == pytest.approx(288.0)  # 0.576 * 500 MJ m-2
    assert F.pri(0.08, 0.06) == pytest.approx(0.5378571428571)  # (0.53 * 0.02 / 0.14 + 1) / 2
    # 0.5139 * (0.5378571428571 * 288) - 1.9818 = 0.5139 * 154.9028571 - 1.9818
    assert F.npp(0.06, 0.08, 0.1, 0.4, 500.0) == pytest.approx(77.6227783, rel=1e-6)


def test_the_choices_the_paper_leaves_open():
    assert F.fpar(0.99) == 1.0 and F.fpar(0.99, clip=False) == pytest.approx(1.0596)  # a fraction: <= 1
    assert F.fpar(0.1) == 0.0 and F.fpar(0.1, clip=False) == pytest.approx(-0.044)  # and >= 0
    # water (NDVI < 0) and roofs (NDVI ~ 0.1): no vegetation, NPP 0 rather than the intercept -1.9818
    water = F.npp(0.05, 0.04, 0.05, 0.02, 500.0)
    roof = F.npp(0.2, 0.22, 0.25, 0.3, 500.0)
    assert water == 0.0 and roof == 0.0
    # sparse vegetation just above fPAR 0 keeps eq. 5, negative values included
    sparse = F.npp(0.06, 0.07, 0.1, 0.14, 10.0)  # NDVI 0.167, fPAR 0.039
    assert -1.9818 < sparse < 0.0
    assert set(F.CHOICES) >= {"fpar_clip", "par_sum_units", "npp_units", "non_vegetated_npp"}


def test_arrays_nan_and_zero_sums():
    blue, green = np.array([0.06, np.nan, 0.0]), np.array([0.08, 0.08, 0.0])
    red, nir = np.array([0.1, 0.1, 0.0]), np.array([0.4, 0.4, 0.0])
    out = F.npp(blue, green, red, nir, np.array([500.0, 500.0, 500.0]))
    assert out.dtype == np.float32 and out[0] == pytest.approx(77.6227783, rel=1e-6)
    assert np.isnan(out[1])  # a missing band: no value
    assert np.isnan(F.ndvi(0.0, 0.0)) and np.isnan(out[2])  # no reflectance at all: undefined, not 0
    # PAR sums per pixel broadcast against the bands
    grid = F.npp(np.full((2, 2), 0.06), np.full((2, 2), 0.08), np.full((2, 2), 0.1), np.full((2, 2), 0.4),
                 np.array([[500.0], [1000.0]]))
    assert grid.shape == (2, 2) and grid[1, 0] == pytest.approx(0.5139 * 0.5378571428571 * 576.0 - 1.9818, rel=1e-6)
