"""Seed 003's samples and classical baselines on the tiny city's aligned night lights and urban label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from urbaneo import align
from urbaneo.config import load_city
from urbaneo.grid import Grid
from urbaneo.stages.urban import baselines as base
from urbaneo.stages.urban.data import (IGNORE, Region, UrbanChips, chips, held_out_town, label_fraction,
                                       label_mask, load_region, normalise, towns)
from urbaneo.tiles import checkerboard_chips

from conftest import REPO


@pytest.fixture(scope="module")
def region(tiny_urban) -> Region:
    """The tiny city's last year, aligned from its generated files as a real city would be."""
    reg = load_region(tiny_urban)
    grids = align.grids_of(load_city(tiny_urban / "tiny.yaml"))
    assert (reg.grid, reg.fine_grid) == (grids.region, grids.region_fine)
    assert reg.year == yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())["years"][-1]
    return reg


@pytest.fixture(scope="module")
def train_chips(region):
    """The demo preset's sampling (36-pixel chips), upsampled to 224 as in the paper."""
    index = checkerboard_chips(region.grid, 1, 36, valid=np.isfinite(region.radiance), seed=0)
    return index, *chips(region, index[index.split == "train"], 224)


def _f1(pred, y):
    keep = y != IGNORE
    p, t = pred[keep] == 1, y[keep] == 1
    return 2 * (p & t).sum() / (p.sum() + t.sum())


def test_label_fraction_and_mask_cover_the_bright_town_centres(region):
    frac = label_fraction(region)
    assert frac.shape == region.grid.shape
    assert np.nanmin(frac) >= 0 and np.nanmax(frac) <= 1 and np.isfinite(frac).mean() > 0.95
    mask = label_mask(region)
    # the cell area the mask calls urban matches the 30 m label's urban area to within a quarter
    fine_area = (region.label == 1).sum() * region.fine_grid.res**2
    assert mask.sum() * region.grid.res**2 == pytest.approx(fine_area, rel=0.25)
    from scipy import ndimage

    lit = ndimage.median_filter(np.nan_to_num(region.radiance), 3)  # not the single-pixel gas flares
    brightest = np.argsort(-lit.ravel())[:20]
    assert mask.ravel()[brightest].all()
    assert np.nanmedian(region.radiance[mask]) > 10 * np.nanmedian(region.radiance[~mask])


def test_towns_are_numbered_by_size_and_held_out_town_is_honest(region, train_chips):
    zones = towns(region)
    assert zones.dtype == np.int32 and zones.max() >= 2
    sizes = np.bincount(zones.ravel())[1:]
    assert (np.diff(sizes) <= 0).all() and ((zones > 0) == label_mask(region)).all()

    whole = {"row": [0], "col": [0], "size": [max(region.grid.shape)]}
    free = held_out_town(region, pd.DataFrame({**whole, "split": ["test"]}))  # test chips do not count
    assert free.town == 2 and (free.mask == (zones == 2)).all()
    r0, c0, r1, c1 = free.window
    assert free.mask[r0:r1, c0:c1].sum() == free.mask.sum()
    none = held_out_town(region, pd.DataFrame({**whole, "split": ["train"]}))
    assert none.town is None and "touches each of the" in none.reason

    # two training chips: one over everything, one in a corner -> hold out a town, drop the big chip
    two = pd.DataFrame({"tile_id": [7, 8], "row": [0, 0], "col": [0, 0], "size": [max(region.grid.shape), 1],
                        "split": ["train", "train"]})
    assert held_out_town(region, two).dropped == (7,)

    index = train_chips[0]  # the demo sampling: the chips left after `dropped` never touch the town
    held = held_out_town(region, index)
    if held.town is None:  # one sub-region: every training chip may touch every town
        assert "touches each" in held.reason and held.dropped == ()
        return
    kept = index[(index.split == "train") & ~index.tile_id.isin(held.dropped)]
    for r, c, s in kept[["row", "col", "size"]].to_numpy():
        assert not held.mask[r : r + s, c : c + s].any()


def test_chip_label_footprint_matches_the_night_light_footprint():
    # a 500 m region grid and a 30 m label grid offset from it, as the aligned grids are
    grid = Grid(32650, 0.0, 5000.0, 500.0, 10, 10)
    fine = Grid(32650, 240.0, 4970.0, 30.0, 160, 160)
    fx, fy = fine.xy()
    rx, ry = grid.xy()
    index = pd.DataFrame({"row": [0, 1], "col": [0, 2], "size": [8, 8], "split": ["train", "train"]})
    centre = 25.0 + 50.0 * np.arange(80)  # output pixel centres (50 m each) from the chip's corner
    for axis in ("x", "y"):  # a west half-plane, then a north half-plane, both split at 2000 m / 3000 m
        if axis == "x":
            label = np.broadcast_to(fx[None, :] < 2000, fine.shape)
            light = np.broadcast_to(rx[None, :] < 2000, grid.shape)
        else:
            label = np.broadcast_to(fy[:, None] > 3000, fine.shape)
            light = np.broadcast_to(ry[:, None] > 3000, grid.shape)
        reg = Region(2021, np.where(light, 20.0, 0.0).astype(np.float32), label.astype(np.uint8), grid, fine)
        x, y = chips(reg, index, 80)
        assert x.shape == (2, 1, 80, 80) and x.dtype == np.float32 and y.shape == (2, 80, 80) and y.dtype == np.int64
        for k, (r, c) in enumerate([(0, 0), (1, 2)]):
            px, py = c * 500.0 + centre, 5000.0 - r * 500.0 - centre
            coord = px if axis == "x" else py
            inside = (px[None, :] >= 240) & (px[None, :] < 5040) & (py[:, None] <= 4970) & (py[:, None] > 170)
            assert ((y[k] == IGNORE) == ~inside).all()  # outside the 30 m grid: no label
            urban = coord < 2000 if axis == "x" else coord > 3000
            expect = np.broadcast_to(urban[None, :] if axis == "x" else urban[:, None], (80, 80))
            bright = x[k, 0] > normalise(20.0) / 2
            assert (bright == expect).all()  # bilinear crosses half-way exactly on the cell edge
            sure = np.abs(coord - (2000 if axis == "x" else 3000)) > fine.res  # away from the 30 m boundary pixel
            sure = np.broadcast_to(sure[None, :] if axis == "x" else sure[:, None], (80, 80)) & inside
            assert (y[k][sure] == expect[sure]).all()
    ds = UrbanChips(x, y)
    xi, yi = ds[1]
    assert len(ds) == 2 and tuple(xi.shape) == (1, 80, 80) and tuple(yi.shape) == (80, 80)


def test_real_chips_have_network_shapes(region, train_chips):
    index, x, y = train_chips
    n = (index.split == "train").sum()
    assert x.shape == (n, 1, 224, 224) and y.shape == (n, 224, 224)
    assert np.isfinite(x).all() and 0 <= x.min() and x.max() < 1.0
    assert set(np.unique(y)) <= {0, 1, IGNORE} and (y == 1).any()


def test_otsu_splits_a_bimodal_sample_at_the_gap():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.1, 0.02, 5000), rng.normal(0.8, 0.03, 500)])
    t = base.otsu_threshold(values)
    assert 0.2 < t < 0.7
    assert base.threshold_predict(values, t).sum() == 500


def test_best_threshold_beats_otsu_and_bad_thresholds(train_chips):
    _, x, y = train_chips
    best = base.best_threshold(x, y)
    f1 = {t: _f1(base.threshold_predict(x, t), y) for t in (best, base.otsu_threshold(x), 0.05, 0.9)}
    assert f1[best] == max(f1.values()) and f1[best] > 0.85 and f1[best] > f1[0.05] + 0.3
    # a noiseless step is recovered
    v = np.linspace(0, 1, 1001)
    assert base.best_threshold(v, (v > 0.42).astype(np.uint8)) == pytest.approx(0.42, abs=0.01)


def test_svm_learns_the_training_chips_and_maps_the_region(region, train_chips):
    _, x, y = train_chips
    zoom = 224 / 36
    svm = base.SvmBaseline(seed=0).fit(x, y, zoom=zoom)
    pred = svm.predict(x, zoom=zoom)
    keep = y != IGNORE
    assert pred.shape == y.shape and (pred[keep] == y[keep]).mean() > 0.9
    assert _f1(pred, y) > 0.8  # accuracy alone is easy when urban is a few percent of the pixels
    whole = svm.predict(normalise(region.radiance))
    assert whole.shape == region.grid.shape and (whole == label_mask(region)).mean() > 0.95
    again = base.SvmBaseline(seed=0).fit(x, y, zoom=zoom).predict(x, zoom=zoom)
    assert (again == pred).all()  # seeded subsample: the same fit every time
