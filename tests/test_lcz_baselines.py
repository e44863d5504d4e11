"""The random-forest LCZ baseline: patch features, GLCM texture, classification and unmixing."""

from __future__ import annotations

import numpy as np
import pytest

from urbaneo.stages.lcz.baselines import (
    FEATURE_NAMES,
    RandomForestBaseline,
    glcm,
    glcm_properties,
    patch_features,
)

S = 16


def _patches(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Smooth dark vegetation-like patches, or bright built-up-like ones with a 2-pixel checker texture."""
    if kind == "smooth":
        base = np.array([0.03, 0.05, 0.04, 0.30])[None, :, None, None]
        noise = 0.005
    else:
        y, x = np.indices((S, S))
        checker = ((y // 2 + x // 2) % 2)[None, None]
        base = np.array([0.15, 0.17, 0.19, 0.22])[None, :, None, None] + 0.12 * checker
        noise = 0.02
    return (base + noise * rng.standard_normal((n, 4, S, S))).astype(np.float32)


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = np.concatenate([_patches(n, "smooth", rng), _patches(n, "textured", rng)])
    codes = np.repeat([14, 2], n)  # low plants, compact midrise
    fractions = np.zeros((2 * n, 17))
    fractions[np.arange(2 * n), codes - 1] = 1.0
    return x, fractions, codes


def test_feature_shape_and_names():
    x, _, _ = _data(3, 0)
    f = patch_features(x)
    assert f.shape == (6, len(FEATURE_NAMES)) == (6, 30) and f.dtype == np.float32
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    col = FEATURE_NAMES.index
    np.testing.assert_allclose(f[:, col("nir_mean")], x[:, 3].mean((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(f[:, col("red_p90")], np.percentile(x[:, 2].reshape(6, -1), 90, axis=1), rtol=1e-5)
    ndvi = (x[:, 3] - x[:, 2]) / (x[:, 3] + x[:, 2])
    np.testing.assert_allclose(f[:, col("ndvi_mean")], ndvi.mean((1, 2)), rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(N, 4, S, S\)"):
        patch_features(x[:, :3])


def test_features_ignore_nan():
    x, _, _ = _data(2, 1)
    x[0, :, :4] = np.nan  # a stripe of no data
    x[1] = np.nan  # nothing valid
    with np.errstate(all="raise"):
        f = patch_features(x)
    assert np.isfinite(f).all() and not f[1].any()  # an all-NaN patch has every feature 0
    valid = x[0, 0, 4:].ravel()
    col = FEATURE_NAMES.index
    assert f[0, col("blue_mean")] == pytest.approx(valid.mean(), rel=1e-5)
    assert f[0, col("blue_std")] == pytest.approx(valid.std(), rel=1e-4)
    assert f[0, col("blue_p10")] == pytest.approx(np.percentile(valid, 10), rel=1e-5)


def test_glcm_constant_and_checkerboard():
    constant = np.full((1, 8, 8), 0.2)
    checker = np.where(np.indices((8, 8)).sum(0) % 2 == 0, 0.0, 0.49)[None]  # levels 0 and 15
    p = glcm(np.concatenate([constant, checker]))
    assert p.sum((1, 2)) == pytest.approx([1.0, 1.0])
    np.testing.assert_array_equal(p, p.transpose(0, 2, 1))  # symmetric
    props = glcm_properties(p)
    contrast, homogeneity, energy, correlation = props.T
    assert contrast[0] == 0 and homogeneity[0] == 1 and energy[0] == 1 and correlation[0] == 1
    # every neighbour pair differs by 15 levels: contrast 15^2, perfectly anti-correlated
    assert contrast[1] == pytest.approx(225) and correlation[1] == pytest.approx(-1)
    assert homogeneity[1] == pytest.approx(1 / 226)


def test_random_forest_separates_patch_types_and_unmixes():
    x, fractions, _ = _data(20, 2)
    pure = np.ones(len(x), bool)
    model = RandomForestBaseline(seed=3, n_estimators=20).fit(x, fractions, pure)
    test_x, test_fractions, test_codes = _data(10, 99)
    pred = model.classify(test_x)
    assert pred.dtype == np.int64 and (pred == test_codes).all()
    f = model.unmix(test_x)
    assert f.shape == (20, 17) and f.dtype == np.float32
    assert (f >= 0).all() and np.allclose(f.sum(1), 1.0, atol=1e-6)
    assert np.abs(f - test_fractions).mean() < 0.01
    again = RandomForestBaseline(seed=3, n_estimators=20).fit(x, fractions, pure)
    np.testing.assert_array_equal(again.classify(test_x), pred)
    np.testing.assert_array_equal(again.unmix(test_x), f)
    hp = model.hyperparameters()
    assert hp["n_estimators"] == 20 and hp["n_features"] == 30 and hp["classes"] == [2, 14]
    assert hp["n_pure_train"] == 40 and hp["min_samples_leaf"] == 1


def test_random_forest_with_one_pure_class():
    x, fractions, codes = _data(6, 4)
    pure = codes == 14  # only the low-plant patches are pure; the others are mixed
    fractions[~pure] = 0.5 * fractions[~pure]
    fractions[~pure, 13] += 0.5
    model = RandomForestBaseline(n_estimators=5).fit(x, fractions, pure)
    assert (model.classify(x) == 14).all()
    f = model.unmix(x)
    assert (f >= 0).all() and np.allclose(f.sum(1), 1.0, atol=1e-6)
    with pytest.raises(RuntimeError, match="before fit"):
        RandomForestBaseline().classify(x)
