"""Scene classification and unmixing scores of the SU-Net paper (seed 002, section 3.3, Tables 1-2).

Classes are LCZ codes 1..n (n = 17). The confusion matrix has the reference in rows and the
prediction in columns, as the paper's Figure 4. Table 1 gives OA (eq. 3), precision (eq. 4),
recall (eq. 5) and MAE (eq. 6); `scores` returns each one as written and the readings that match the
numbers of Table 2, every key saying which formula it is.
"""

from __future__ import annotations

import math

import numpy as np


def _codes(name: str, values, n_classes: int) -> np.ndarray:
    values = np.asarray(values).ravel()
    bad = values[(values < 1) | (values > n_classes) | (values != np.round(values))]
    if bad.size:
        raise ValueError(f"{name} must hold class codes 1..{n_classes}, found {sorted(set(bad.tolist()))[:5]}")
    return values.astype(np.int64)


def confusion(truth, pred, n_classes: int = 17) -> np.ndarray:
    """(n, n) int64 counts: row = reference class code - 1, column = predicted class code - 1."""
    if np.shape(truth) != np.shape(pred):
        raise ValueError(f"truth {np.shape(truth)} and prediction {np.shape(pred)} differ in shape")
    t, p = _codes("truth", truth, n_classes), _codes("prediction", pred, n_classes)
    return np.bincount((t - 1) * n_classes + (p - 1), minlength=n_classes**2).reshape(n_classes, n_classes)


def scores(cm) -> dict:
    """Scores of a `confusion` matrix; with one-vs-rest counts TP_c, FP_c, FN_c, TN_c of class c:

    - ``oa``: trace / N, the usual overall accuracy (Table 2's OA equals its recall, so this is it).
    - ``oa_eq3``: eq. 3 as written, sum_c (TP_c + TN_c) / sum_c (TP_c + TN_c + FP_c + FN_c) over all
      n classes of the matrix; it equals 1 - 2 (N - trace) / (n N), so it grows with n and is not
      the reported OA.
    - ``precision``: eq. 4, micro sum_c TP_c / sum_c (TP_c + FP_c) (= ``oa`` for single-label data).
    - ``recall``: eq. 5, micro sum_c TP_c / sum_c (TP_c + FN_c) (= ``oa`` as well).
    - ``precision_weighted`` / ``recall_weighted``: per-class values averaged with the class support
      as weights (scikit-learn's "weighted"; a class never predicted counts as precision 0).
    - ``per_class``: {code: {"precision", "recall", "f1", "support"}} for classes with reference or
      predicted samples; precision is None for a class never predicted, recall None without support.
    - ``n``: number of samples. An empty matrix gives NaN scores.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    fp, fn = predicted - tp, support - tp
    tn = n - tp - fp - fn
    nan = math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        precision_c = np.where(predicted > 0, tp / predicted, 0.0)
        recall_c = np.where(support > 0, tp / support, 0.0)
    per_class = {}
    for i in np.flatnonzero((support > 0) | (predicted > 0)):
        p = float(precision_c[i]) if predicted[i] else None
        r = float(recall_c[i]) if support[i] else None
        f1 = 2 * tp[i] / (2 * tp[i] + fp[i] + fn[i])  # = 2PR / (P + R), defined whenever the class appears
        per_class[int(i) + 1] = {"precision": p, "recall": r, "f1": float(f1), "support": int(support[i])}
    if n == 0:
        return {"oa": nan, "oa_eq3": nan, "precision": nan, "recall": nan, "precision_weighted": nan,
                "recall_weighted": nan, "per_class": per_class, "n": 0}
    return {
        "oa": float(tp.sum() / n),
        "oa_eq3": float((tp + tn).sum() / (tp + tn + fp + fn).sum()),
        "precision": float(tp.sum() / (tp + fp).sum()),
        "recall": float(tp.sum() / (tp + fn).sum()),
        # Table 2's precision (96.79 %) differs from its OA and recall (96.78 %), which the micro
        # eq. 4 cannot do; the support-weighted mean can, and its recall is OA, as in the table.
        "precision_weighted": float((support * precision_c).sum() / n),
        "recall_weighted": float((support * recall_c).sum() / n),
        "per_class": per_class,
        "n": n,
    }


def _fractions(true, pred) -> tuple[np.ndarray, np.ndarray]:
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if true.shape != pred.shape or true.ndim != 2:
        raise ValueError(f"fractions must be two (N, classes) arrays of one shape, got {true.shape} and {pred.shape}")
    return true, pred


def abundance_mae(true, pred) -> float:
    """Eq. 6 on (N, 17) class fractions: mean |true - pred| over every (sample, class) element.

    We read Table 1's "N reference labels" as every reference fraction, i.e. N = samples x classes;
    the per-sample L1 distance averaged over samples would be 17 times larger. NaN with no sample.
    """
    true, pred = _fractions(true, pred)
    return float(np.abs(true - pred).mean()) if true.size else math.nan


def abundance_mae_per_class(true, pred) -> np.ndarray:
    """Eq. 6 for each class column on its own: (classes,) mean |true - pred| over the samples."""
    true, pred = _fractions(true, pred)
    if not len(true):
        return np.full(true.shape[1], np.nan)
    return np.abs(true - pred).mean(axis=0)
