"""The baseline a user would otherwise pick for seed 002: a random forest on per-patch statistics.

This is the LCZ Generator / WUDAPT method family (Demuzere et al. 2021; Bechtel et al. 2015): hand-made
spectral and texture features of each scene patch and random forests, here one classifier for the
pure scenes and one multi-output regressor for the class fractions of every scene (the SU-Net's two
tasks). Patches are (N, 4, S, S) TOA reflectance in the band order blue, green, red, nir.
"""

from __future__ import annotations

import numpy as np

BANDS = ("blue", "green", "red", "nir")
PERCENTILES = (10, 50, 90)
GLCM_LEVELS = 16
GLCM_RANGE = (0.0, 0.5)  # fixed reflectance bounds: every patch is quantised on the same scale
GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation")
N_CLASSES = 17
FEATURE_NAMES = (
    [f"{b}_{s}" for b in BANDS for s in ("mean", "std", *(f"p{q}" for q in PERCENTILES))]
    + ["ndvi_mean", "ndvi_std", "brightness_mean", "brightness_std", "gradient_mean", "gradient_std"]
    + [f"glcm_{p}" for p in GLCM_PROPS]
)


def _stats(v: np.ndarray, percentiles: tuple[int, ...] = ()) -> list[np.ndarray]:
    """Mean, std and linear-interpolated percentiles of each row of (..., P), ignoring NaN (NaN if none)."""
    valid = np.isfinite(v)
    count = valid.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, v, 0).sum(-1) / count
        std = np.sqrt(np.where(valid, (v - mean[..., None]) ** 2, 0).sum(-1) / count)
        out = [mean, std]
        if percentiles:
            ordered = np.sort(np.where(valid, v, np.inf), axis=-1)  # invalid values sort last
            for q in percentiles:
                k = np.maximum(count - 1, 0)[..., None] * (q / 100)
                lo, hi = np.floor(k).astype(np.int64), np.ceil(k).astype(np.int64)
                a, b = np.take_along_axis(ordered, lo, -1), np.take_along_axis(ordered, hi, -1)
                out.append(np.where(count > 0, (a + (b - a) * (k - lo))[..., 0], np.nan))
    return out


def glcm(brightness: np.ndarray) -> np.ndarray:
    """(N, L, L) grey-level co-occurrence of (N, S, S) brightness: offsets (0, 1) and (1, 0) pooled,
    symmetric, normalised to sum 1 (all zero for a patch without a valid pixel pair)."""
    n = len(brightness)
    lo, hi = GLCM_RANGE
    finite = np.isfinite(brightness)
    levels = np.clip(np.floor((np.where(finite, brightness, lo) - lo) / (hi - lo) * GLCM_LEVELS), 0, GLCM_LEVELS - 1)
    q = np.where(finite, levels, -1).astype(np.int64)  # -1 marks a pixel left out
    patch = np.arange(n, dtype=np.int64)[:, None, None] * GLCM_LEVELS**2
    counts = np.zeros(n * GLCM_LEVELS**2, np.int64)
    for a, b in ((q[:, :, :-1], q[:, :, 1:]), (q[:, :-1, :], q[:, 1:, :])):
        ok = (a >= 0) & (b >= 0)
        index = np.broadcast_to(patch, a.shape)[ok] + a[ok] * GLCM_LEVELS + b[ok]
        counts += np.bincount(index, minlength=counts.size)
    p = counts.reshape(n, GLCM_LEVELS, GLCM_LEVELS).astype(np.float64)
    p += p.transpose(0, 2, 1)
    total = p.sum((1, 2), keepdims=True)
    return np.divide(p, total, out=np.zeros_like(p), where=total > 0)


def glcm_properties(p: np.ndarray) -> np.ndarray:
    """(N, 4) contrast, homogeneity, energy and correlation of (N, L, L) GLCMs (scikit-image's definitions;
    correlation is 1 for a constant patch, as there, and everything 0 for an empty GLCM)."""
    i, j = np.indices(p.shape[1:], dtype=np.float64)
    contrast = (p * (i - j) ** 2).sum((1, 2))
    homogeneity = (p / (1 + (i - j) ** 2)).sum((1, 2))
    energy = np.sqrt((p**2).sum((1, 2)))
    mu_i, mu_j = (p * i).sum((1, 2)), (p * j).sum((1, 2))
    sd_i = np.sqrt((p * (i - mu_i[:, None, None]) ** 2).sum((1, 2)))
    sd_j = np.sqrt((p * (j - mu_j[:, None, None]) ** 2).sum((1, 2)))
    cov = (p * (i - mu_i[:, None, None]) * (j - mu_j[:, None, None])).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(sd_i * sd_j > 1e-15, cov / (sd_i * sd_j), (p.sum((1, 2)) > 0).astype(np.float64))
    return np.stack([contrast, homogeneity, energy, correlation], axis=1)


def patch_features(x: np.ndarray) -> np.ndarray:
    """(N, len(FEATURE_NAMES)) float32 features of (N, 4, S, S) patches; NaN pixels are left out and a
    feature that cannot be computed (e.g. an all-NaN patch) is 0."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != len(BANDS):
        raise ValueError(f"patches must be (N, {len(BANDS)}, S, S), got {x.shape}")
    n = len(x)
    feats = _stats(x.reshape(n, len(BANDS), -1), PERCENTILES)  # each (N, 4)
    columns = [np.stack(feats, axis=2).reshape(n, -1)]  # band-major, as FEATURE_NAMES
    red, nir = x[:, 2].astype(np.float64), x[:, 3].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = np.where(nir + red > 0, (nir - red) / (nir + red), np.nan)
    brightness = x.mean(axis=1, dtype=np.float64)  # NaN where any band is
    gy, gx = np.gradient(brightness, axis=(1, 2))
    for v in (ndvi, brightness, np.hypot(gx, gy)):
        columns.append(np.stack(_stats(v.reshape(n, -1)), axis=1))
    columns.append(glcm_properties(glcm(brightness)))
    return np.nan_to_num(np.concatenate(columns, axis=1), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


class RandomForestBaseline:
    """Random forests on `patch_features`: a classifier of the pure scenes' LCZ (`classify`) and a
    multi-output regressor of every scene's 17 class fractions (`unmix`).

    The classifier learns from the pure patches, labelled with their dominant class; with no pure
    patch it falls back to every patch's dominant class. One class only is fine: it is always predicted.
    """

    min_samples_leaf = 1
    # features tried per split: sqrt(p) for classification, p/3 for regression (Breiman's and R
    # randomForest's defaults; p/3 also fits 17 outputs about 3x faster than scikit-learn's all p)
    max_features_classifier = "sqrt"
    max_features_regressor = 1 / 3

    def __init__(self, seed: int = 0, n_estimators: int = 200, n_jobs: int = 1):
        self.seed, self.n_estimators, self.n_jobs = seed, n_estimators, n_jobs
        self.classifier = self.regressor = None
        self.n_pure = 0

    def fit(self, x, fractions, pure) -> RandomForestBaseline:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        fractions, pure = np.asarray(fractions, dtype=np.float64), np.asarray(pure, dtype=bool)
        if fractions.shape != (len(x), N_CLASSES) or pure.shape != (len(x),):
            raise ValueError(f"need fractions ({len(x)}, {N_CLASSES}) and pure ({len(x)},), "
                             f"got {fractions.shape} and {pure.shape}")
        feats = patch_features(x)
        labels = fractions.argmax(axis=1) + 1
        train = pure if pure.any() else np.ones(len(x), bool)
        self.n_pure = int(pure.sum())
        common = {"n_estimators": self.n_estimators, "min_samples_leaf": self.min_samples_leaf,
                  "random_state": self.seed, "n_jobs": self.n_jobs}
        self.classifier = RandomForestClassifier(max_features=self.max_features_classifier, **common)
        self.classifier.fit(feats[train], labels[train])
        self.regressor = RandomForestRegressor(max_features=self.max_features_regressor, **common)
        self.regressor.fit(feats, fractions)
        return self

    def _fitted(self):
        if self.classifier is None:
            raise RuntimeError("RandomForestBaseline used before fit")

    def classify(self, x) -> np.ndarray:
        """(N,) int64 LCZ codes 1..17."""
        self._fitted()
        return self.classifier.predict(patch_features(x)).astype(np.int64)

    def unmix(self, x) -> np.ndarray:
        """(N, 17) float32 fractions, >= 0 and summing to 1 (the paper's ANC and ASC)."""
        self._fitted()
        f = np.clip(self.regressor.predict(patch_features(x)).reshape(len(x), N_CLASSES), 0.0, None)
        total = f.sum(axis=1, keepdims=True)
        f = np.divide(f, total, out=np.full_like(f, 1.0 / N_CLASSES), where=total > 0)
        return f.astype(np.float32)

    def hyperparameters(self) -> dict:
        return {
            "method": "random forest on patch statistics (LCZ Generator / WUDAPT family)",
            "n_estimators": self.n_estimators, "min_samples_leaf": self.min_samples_leaf,
            "max_features_classifier": self.max_features_classifier,
            "max_features_regressor": round(self.max_features_regressor, 4),
            "seed": self.seed, "n_features": len(FEATURE_NAMES), "features": list(FEATURE_NAMES),
            "glcm_levels": GLCM_LEVELS, "glcm_range": list(GLCM_RANGE), "glcm_offsets": [[0, 1], [1, 0]],
            "n_pure_train": self.n_pure,
            "classes": [] if self.classifier is None else [int(c) for c in self.classifier.classes_],
        }
