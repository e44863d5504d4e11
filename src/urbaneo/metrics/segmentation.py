"""Binary segmentation scores and the shape metrics of the IFCN paper (seed 003, Tables 1-4).

Pixel scores follow the paper's tables (TP, FP, FN, prediction ratio, recall, F1, kappa) and the
FCN evaluation it reports for training (overall accuracy, mean accuracy, mean IU, fwavacc; Long et
al. 2015, the Caffe ``score.py`` the paper's FCN code base uses). The paper gives no formula for the
shape index (SI) or total edge length (TE), only that SID and TED are "discrepancies" in percent
between the extracted and the real construction land of a city (Table 3); we use the FRAGSTATS raster
definitions (McGarigal's SHAPE and TE) and a relative difference, both spelled out below.

Masks are 2-D arrays of 0/1 (or bool), 1 = built-up / construction land. ``truth`` may hold an
``ignore`` value (its nodata, e.g. 255) whose pixels are left out of every score.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import ndimage

# 8-neighbour patches, FRAGSTATS' usual rule: diagonal cells belong to the same patch.
_EIGHT = np.ones((3, 3), dtype=bool)


def _binary(name: str, values: np.ndarray, ignore: int | None = None) -> np.ndarray:
    """``values`` as bool, after checking it holds only 0/1 (and ``ignore``)."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values
    allowed = {0, 1} if ignore is None else {0, 1, ignore}
    found = set(np.unique(values).tolist())
    if not found <= allowed:
        bad = sorted(found - allowed, key=str)[:5]
        raise ValueError(f"{name} must hold only 0/1{'' if ignore is None else f' or {ignore}'}, found {bad}")
    return values == 1


def _mask2d(name: str, values) -> np.ndarray:
    """A 2-D 0/1 mask as bool (patches and edges need the raster's layout)."""
    if np.ndim(values) != 2:
        raise ValueError(f"{name} must be a 2-D mask, got shape {np.shape(values)}")
    return _binary(name, values)


def _valid(truth: np.ndarray, ignore: int | None) -> np.ndarray:
    truth = np.asarray(truth)
    return np.ones(truth.shape, bool) if ignore is None else truth != ignore


def _same_shape(pred: np.ndarray, truth: np.ndarray) -> None:
    if np.shape(pred) != np.shape(truth):
        raise ValueError(f"prediction {np.shape(pred)} and truth {np.shape(truth)} differ in shape")


def confusion(pred, truth, ignore: int | None = None) -> np.ndarray:
    """2x2 confusion matrix ``[[TN, FP], [FN, TP]]``: rows are the truth, columns the prediction."""
    _same_shape(pred, truth)
    valid = _valid(truth, ignore)
    p = _binary("prediction", pred)[valid]
    t = _binary("truth", truth, ignore)[valid]
    # class index 2*truth + pred -> TN, FP, FN, TP
    return np.bincount(2 * t.astype(np.int64) + p, minlength=4).reshape(2, 2)


def _ratio(num: float, den: float, nothing_wrong: bool) -> float:
    """num/den; an empty denominator scores 1 when nothing was got wrong, else 0 (never NaN)."""
    if den > 0:
        return num / den
    return 1.0 if nothing_wrong else 0.0


def scores_from_confusion(cm: np.ndarray) -> dict:
    """The paper's pixel scores from a ``confusion`` matrix, as plain ints and floats."""
    tn, fp, fn, tp = (int(v) for v in np.asarray(cm).ravel())
    n = tn + fp + fn + tp
    # precision ("prediction ratio" in Tables 2 and 4) = TP / (TP + FP); recall = TP / (TP + FN)
    precision = _ratio(tp, tp + fp, nothing_wrong=fn == 0)
    recall = _ratio(tp, tp + fn, nothing_wrong=fp == 0)
    # F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, nothing_wrong=True)
    # Cohen's kappa = (p_o - p_e) / (1 - p_e), p_o = (TP + TN) / N,
    # p_e = [(TP + FP)(TP + FN) + (TN + FN)(TN + FP)] / N^2  (chance agreement from the marginals)
    po = (tp + tn) / n if n else 1.0
    pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / n**2 if n else 1.0
    kappa = (po - pe) / (1.0 - pe) if pe < 1.0 else 1.0  # p_e = 1 only when both maps are one same class
    # FCN score.py with hist[truth, pred] = n_ij, t_i = sum_j n_ij (truth pixels of class i):
    #   overall acc = sum_i n_ii / sum_i t_i
    #   mean acc    = (1/n_cl) sum_i n_ii / t_i
    #   mean IU     = (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
    #   fwavacc     = (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)
    # classes absent from both maps (empty union) are left out of the means, as score.py's nanmean does.
    hist = np.asarray(cm, dtype=float)
    diag, t, p = np.diag(hist), hist.sum(1), hist.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = diag / t
        iu = diag / (t + p - diag)
    freq = t / n if n else np.zeros(2)
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": float(precision), "recall": float(recall), "f1": float(f1), "kappa": float(kappa),
        "oa": float(po),
        "mean_acc": float(np.nanmean(acc)) if np.isfinite(acc).any() else 1.0,
        "mean_iu": float(np.nanmean(iu)) if np.isfinite(iu).any() else 1.0,
        "fwavacc": float((freq[t > 0] * iu[t > 0]).sum()) if n else 1.0,
    }


def binary_scores(pred, truth, ignore: int | None = None) -> dict:
    """TP, FP, FN, TN, precision, recall, F1, kappa, OA, mean accuracy, mean IU and fwavacc."""
    return scores_from_confusion(confusion(pred, truth, ignore))


def _patch_edges(labels: np.ndarray) -> np.ndarray:
    """Cell edges on the outline of each labelled patch (index = label); outside the array is background."""
    lab = np.pad(labels, 1)
    counts = np.zeros(int(lab.max()) + 1, dtype=np.int64)
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :])):
        # with 8-connected patches two different patches never share an edge, so a boundary edge
        # always separates one patch from background: credit it to that patch.
        edge = a != b
        counts += np.bincount(np.maximum(a, b)[edge], minlength=counts.size)
    return counts


def _min_perimeter(area: np.ndarray) -> np.ndarray:
    """Smallest outline (in cell edges) of a patch of ``area`` cells on a square grid (FRAGSTATS)."""
    m = np.floor(np.sqrt(area)).astype(np.int64)
    m = np.where(m * m > area, m - 1, np.where((m + 1) ** 2 <= area, m + 1, m))  # exact integer sqrt
    return np.where(area == m * m, 4 * m, np.where(area <= m * (m + 1), 4 * m + 2, 4 * m + 4))


def patch_shape_indices(mask) -> tuple[np.ndarray, np.ndarray]:
    """(area in cells, shape index) of each 8-connected built-up patch.

    FRAGSTATS SHAPE for rasters: perimeter / minimum perimeter of a maximally compact patch of the
    same area, both in cell edges; 1 for a square (or as-square-as-possible) patch, growing with
    irregularity. Dimensionless, so it does not depend on the pixel size.
    """
    labels, n = ndimage.label(_mask2d("mask", mask), structure=_EIGHT)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    perimeter = _patch_edges(labels)[1:]
    return area, perimeter / _min_perimeter(area)


def shape_index(mask) -> float:
    """Shape index of a city's construction land: the area-weighted mean patch SHAPE (FRAGSTATS SHAPE_AM).

    Weighting by area lets the main urban patch dominate, so scattered single-pixel patches (SHAPE 1)
    do not mask its form. NaN when there is no built-up pixel.
    """
    area, shape = patch_shape_indices(mask)
    return float((area * shape).sum() / area.sum()) if area.size else math.nan


def edge_length(mask, res: float) -> float:
    """Total edge length (FRAGSTATS TE) in metres: every cell side between built-up and not built-up.

    Cells outside the array count as not built-up, so a patch touching the border is still outlined;
    e.g. a lone 2 x 3 patch at 30 m has 2 * (2 + 3) = 10 sides, 300 m.
    """
    return float(_patch_edges(_mask2d("mask", mask).astype(np.int64)).sum() * res)


def _relative_difference(pred_value: float, truth_value: float) -> float:
    """|pred - truth| / truth in percent; 0 when both are empty, NaN when only the truth is empty."""
    if math.isnan(truth_value) or truth_value == 0:
        return 0.0 if (math.isnan(pred_value) or pred_value == 0) else math.nan
    if math.isnan(pred_value):
        return math.nan
    return abs(pred_value - truth_value) / truth_value * 100.0


def sid(pred, truth) -> float:
    """Shape index difference in percent (Table 3): SID = |SI_pred - SI_truth| / SI_truth * 100."""
    _same_shape(pred, truth)
    return _relative_difference(shape_index(pred), shape_index(truth))


def ted(pred, truth) -> float:
    """Total edge length difference in percent (Table 3): TED = |TE_pred - TE_truth| / TE_truth * 100.

    A ratio of lengths, so the pixel size cancels (use ``edge_length`` for metres).
    """
    _same_shape(pred, truth)
    return _relative_difference(edge_length(pred, 1.0), edge_length(truth, 1.0))


def per_zone(pred, truth, zones, res: float, ignore: int | None = None, background: int = 0) -> dict[int, dict]:
    """SI, TE, SID, TED and the pixel scores of each city/town zone id (``background`` is skipped).

    Each zone is cut out on its own (pixels of other zones are non-built-up), and pixels whose truth
    is ``ignore`` are non-built-up in both maps so that nodata adds no edges.
    Returns ``{zone_id: {"si_pred", "si_truth", "sid", "te_pred_m", "te_truth_m", "ted",
    "tp", "fp", "fn", "precision", "recall", "f1", "kappa", "pixels"}}``.
    """
    _same_shape(pred, truth)
    zones = np.asarray(zones)
    _same_shape(zones, truth)
    valid = _valid(truth, ignore)
    p = _binary("prediction", pred) & valid
    t = _binary("truth", truth, ignore) & valid
    out: dict[int, dict] = {}
    for zone in sorted(int(z) for z in np.unique(zones) if z != background):
        inside = zones == zone
        zp, zt = p & inside, t & inside
        # crop to the zone's bounding box: same metrics, far less work for a small town in a big region
        rows, cols = np.nonzero(inside)
        box = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        zp, zt = zp[box], zt[box]
        scored = inside[box] & valid[box]
        scores = scores_from_confusion(confusion(zp[scored], zt[scored]))
        si_p, si_t = shape_index(zp), shape_index(zt)
        te_p, te_t = edge_length(zp, res), edge_length(zt, res)
        out[zone] = {
            "si_pred": si_p, "si_truth": si_t, "sid": _relative_difference(si_p, si_t),
            "te_pred_m": te_p, "te_truth_m": te_t, "ted": _relative_difference(te_p, te_t),
            **{k: scores[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1", "kappa")},
            "pixels": int((inside & valid).sum()),
        }
    return out


def mean_of(per_zone_scores: Mapping[int, Mapping[str, float]], key: str) -> float:
    """Mean of one per-zone value over the zones where it is defined (the paper's "mean discrepancy")."""
    values = [v[key] for v in per_zone_scores.values() if not math.isnan(v[key])]
    return float(np.mean(values)) if values else math.nan
