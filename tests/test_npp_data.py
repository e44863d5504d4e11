"""The NPP stage's chips from the tiny city's aligned Landsat and OSM: composites, seasons, clouds, split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import align_tiny

from urbaneo.errors import InputError
from urbaneo.stages.npp import data, train


@pytest.fixture(scope="module")
def acq(tiny_city, tmp_path_factory):
    root = tmp_path_factory.mktemp("npp")
    align_tiny(tiny_city, root, "landsat", "osm")
    return data.load(root)


def test_acquisitions_and_composites(acq):
    t, _, h, w = acq.reflectance.shape
    assert acq.usable.shape == (t, h, w) and acq.green.shape == (h, w) and t >= 6
    assert set(acq.season) <= {0, 1, 2, 3} and len(set(acq.year)) >= 2
    assert np.isnan(acq.reflectance[:, 0][~acq.usable]).all()  # unusable pixels carry no value
    assert 0.0 <= acq.green.min() and acq.green.max() <= 1.0 and acq.green.mean() > 0.05
    rgb, false = acq.composite("rgb"), acq.composite("false_colour")
    blue, green, red, nir = (acq.reflectance[:, acq.bands.index(b)] for b in ("blue", "green", "red", "nir"))
    np.testing.assert_array_equal(rgb[:, 0], red)  # Landsat 8 bands 4-3-2
    np.testing.assert_array_equal(rgb[:, 2], blue)
    np.testing.assert_array_equal(false[:, 0], nir)  # and 5-4-3
    np.testing.assert_array_equal(false[:, 2], green)
    with pytest.raises(InputError, match="one of rgb, false_colour"):
        acq.composite("ndvi")


def test_chips_mark_cloudy_patches(acq):
    c = data.chips(acq, "rgb", size=16, patch=4, stride=8)
    n = len(c.images)
    assert c.images.shape == (n, 3, 16, 16) and c.cloudy.shape == (n, 16) and c.green.shape == (n, 16, 16)
    for k in range(0, n, max(1, n // 7)):  # a patch is cloudy exactly when one of its pixels is unusable
        i, r, col = c.origin[k]
        ok = acq.usable[i, r:r + 16, col:col + 16]
        expected = [not ok[4 * a:4 * a + 4, 4 * b:4 * b + 4].all() for a in range(4) for b in range(4)]
        assert c.cloudy[k].tolist() == expected
        assert c.season[k] == acq.season[i] and c.year[k] == acq.year[i]
    train_idx, held = data.split(c)
    assert len(train_idx) and not c.cloudy[train_idx].any() and (c.year[train_idx] < c.year.max()).all()
    assert (c.year[held] == c.year.max()).all()


def test_bad_input_is_one_line(acq):
    cloudy = dataclasses.replace(acq, usable=np.zeros_like(acq.usable))
    with pytest.raises(InputError, match="no acquisition has a usable pixel"):
        data.chips(cloudy, "rgb", size=16, patch=4)
    with pytest.raises(InputError, match=r"smaller than one chip \(64 px\)"):
        data.chips(acq, "rgb", size=64, patch=4)
    with pytest.raises(InputError, match="no multiple of the patch size"):
        data.chips(acq, "rgb", size=18, patch=4)


def test_st_mae_trains_on_the_city_and_fills_its_cloud_gaps(acq, tmp_path):
    out = tmp_path / "rgb" / "model.pt"
    saved = train.train(acq, "rgb", out, preset="demo", seed=0, max_epochs=2, progress=False)
    assert out.is_file() and not list(out.parent.glob(".*.partial"))
    assert saved["train_chips"] > 0 and len(saved["history"]["epoch"]) == 2
    assert saved["heldout_mse"] is None or np.isfinite(saved["heldout_mse"])
    again = train.train(acq, "rgb", tmp_path / "again.pt", preset="demo", seed=0, max_epochs=2, progress=False)
    assert (tmp_path / "again.pt").read_bytes() == out.read_bytes()  # seeded: the same bytes
    assert again["heldout_mse"] == saved["heldout_mse"]

    model, scaler, facts = train.load_model(out)
    assert facts["kind"] == "rgb" and facts["hyperparameters"]["mask_mode"] == "osm"
    images = acq.composite("rgb")
    filled = train.fill_gaps(model, scaler, images, acq.usable, acq.season)
    observed = ~np.isnan(images)
    np.testing.assert_array_equal(filled[observed], images[observed])  # what was seen stays as it was
    partly = [i for i in range(len(images)) if 0.05 < acq.usable[i].mean() < 0.95]
    assert partly, "the tiny city has a partly cloudy acquisition"
    for i in partly:
        assert np.isnan(images[i]).any() and np.isnan(filled[i]).mean() < np.isnan(images[i]).mean()
        assert np.nanmin(filled[i]) > -0.5 and np.nanmax(filled[i]) < 1.5  # reflectance, not noise
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"other.pt: not an st-MAE model file"):
        train.load_model(tmp_path / "other.pt")


def test_a_city_without_its_osm_store_is_one_line(tiny_aligned, tmp_path):
    (tmp_path / "landsat.zarr").symlink_to(tiny_aligned / "resources/align/tiny/landsat.zarr")
    with pytest.raises(InputError, match=r"osm.zarr: not found: pass --no-osm"):
        data.load(tmp_path)
    assert data.load(tmp_path, osm=False).green.max() == 0
