"""Scene classification and unmixing scores (seed 002, Table 1) against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from urbaneo.metrics.classification import (
    abundance_mae,
    abundance_mae_per_class,
    confusion,
    scores,
)

# 6 samples of 3 classes: class 1 has one sample taken for 2, class 2 one taken for 3
TRUTH = [1, 1, 1, 2, 2, 3]
PRED = [1, 1, 2, 2, 3, 3]


def test_confusion_layout_and_bad_codes():
    cm = confusion(TRUTH, PRED, n_classes=3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows = reference, columns = prediction
    assert confusion(TRUTH, PRED).shape == (17, 17) and confusion(TRUTH, PRED)[:3, :3].tolist() == cm.tolist()
    with pytest.raises(ValueError, match=r"truth must hold class codes 1..3, found \[0, 4\]"):
        confusion([0, 1, 4], [1, 1, 1], n_classes=3)
    with pytest.raises(ValueError, match=r"prediction .* found \[18\]"):
        confusion([1], [18])
    with pytest.raises(ValueError, match="differ in shape"):
        confusion([1, 2], [1])


def test_scores_by_hand():
    s = scores(confusion(TRUTH, PRED, n_classes=3))
    # TP = [2, 1, 1], support = [3, 2, 1], predicted = [2, 2, 2]
    # FP = predicted - TP = [0, 1, 1], FN = support - TP = [1, 1, 0], TN = 6 - TP - FP - FN = [3, 3, 4]
    assert s["n"] == 6
    assert s["oa"] == pytest.approx(4 / 6)  # trace 4 of 6
    # eq. 3: sum(TP + TN) = 5 + 4 + 5 = 14 over sum(TP + TN + FP + FN) = 3 * 6 = 18
    assert s["oa_eq3"] == pytest.approx(14 / 18)
    assert s["precision"] == pytest.approx(4 / 6)  # eq. 4: (2 + 1 + 1) / (2 + 2 + 2)
    assert s["recall"] == pytest.approx(4 / 6)  # eq. 5: (2 + 1 + 1) / (3 + 2 + 1)
    # per-class precision 2/2, 1/2, 1/2 weighted by support 3, 2, 1: (3 + 1 + 0.5) / 6 = 0.75
    assert s["precision_weighted"] == pytest.approx(0.75)
    # per-class recall 2/3, 1/2, 1/1 weighted by support: (2 + 1 + 1) / 6 = OA
    assert s["recall_weighted"] == pytest.approx(4 / 6)
    # F1 = 2 TP / (2 TP + FP + FN): 4/5, 2/4, 2/3
    expected = {1: (1.0, 2 / 3, 0.8, 3), 2: (0.5, 0.5, 0.5, 2), 3: (0.5, 1.0, 2 / 3, 1)}
    assert sorted(s["per_class"]) == [1, 2, 3]
    for code, (p, r, f1, support) in expected.items():
        got = s["per_class"][code]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f1))
        assert got["support"] == support


def test_scores_classes_never_predicted_or_without_support():
    # truth 1, 2, 2; prediction 1, 1, 4: class 2 is never predicted, class 4 has no reference, 3 neither
    s = scores(confusion([1, 2, 2], [1, 1, 4], n_classes=4))
    assert sorted(s["per_class"]) == [1, 2, 4]
    assert s["per_class"][2] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 2}
    assert s["per_class"][4] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert s["per_class"][1]["precision"] == pytest.approx(0.5) and s["per_class"][1]["recall"] == 1.0
    # weighted precision: (1 * 0.5 + 2 * 0) / 3; the never-predicted class counts as 0
    assert s["precision_weighted"] == pytest.approx(0.5 / 3)
    assert s["oa"] == pytest.approx(1 / 3)
    # eq. 3 with all 4 classes of the matrix: 1 - 2 * (3 - 1) / (4 * 3)
    assert s["oa_eq3"] == pytest.approx(1 - 4 / 12)


def test_scores_of_empty_matrix_are_nan():
    s = scores(np.zeros((17, 17), dtype=np.int64))
    assert s["n"] == 0 and s["per_class"] == {}
    for key in ("oa", "oa_eq3", "precision", "recall", "precision_weighted", "recall_weighted"):
        assert math.isnan(s[key])


def test_abundance_mae_by_hand():
    true = np.zeros((2, 17))
    pred = np.zeros((2, 17))
    true[0, 0], true[1, 16] = 1.0, 1.0  # one pure LCZ 1 and one pure water sample
    pred[0, :2] = [0.75, 0.25]  # |diff| 0.25 + 0.25
    pred[1, 15:] = [0.5, 0.5]  # |diff| 0.5 + 0.5
    # (0.25 + 0.25 + 0.5 + 0.5) / (2 samples x 17 classes)
    assert abundance_mae(true, pred) == pytest.approx(1.5 / 34)
    per_class = abundance_mae_per_class(true, pred)
    assert per_class.shape == (17,)
    expected = np.zeros(17)
    expected[[0, 1, 15, 16]] = [0.125, 0.125, 0.25, 0.25]
    np.testing.assert_allclose(per_class, expected)
    assert abundance_mae(true, true) == 0.0
    assert math.isnan(abundance_mae(np.zeros((0, 17)), np.zeros((0, 17))))
    with pytest.raises(ValueError, match="one shape"):
        abundance_mae(true, pred[:, :16])
