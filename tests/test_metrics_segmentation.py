"""Segmentation scores and shape metrics against values computed by hand on tiny masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from urbaneo.metrics.segmentation import (
    binary_scores, confusion, edge_length, mean_of, patch_shape_indices, per_zone, scores_from_confusion,
    shape_index, sid, ted,
)

# 10 pixels: truth has 6 built-up, the prediction finds 4 of them and adds 1 false alarm
TRUTH = np.array([[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
PRED = np.array([[1, 1, 1, 1, 0], [0, 1, 0, 0, 0]])


def test_confusion_layout_and_ignore():
    assert confusion(PRED, TRUTH).tolist() == [[3, 1], [2, 4]]  # [[TN, FP], [FN, TP]]
    truth = TRUTH.copy()
    truth[0, 4] = 255  # an FN pixel becomes nodata
    assert confusion(PRED, truth, ignore=255).tolist() == [[3, 1], [1, 4]]
    with pytest.raises(ValueError, match="only 0/1"):
        confusion(PRED, truth)  # 255 without ignore=
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(PRED[:, :4], TRUTH)


def test_known_case_by_hand():
    s = binary_scores(PRED, TRUTH)
    # TP 4, FP 1, FN 2, TN 3, N 10
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (4, 1, 2, 3)
    assert s["precision"] == pytest.approx(4 / 5)  # TP / (TP + FP)
    assert s["recall"] == pytest.approx(4 / 6)  # TP / (TP + FN)
    assert s["f1"] == pytest.approx(8 / 11)  # 2TP / (2TP + FP + FN)
    # p_o = 7/10; p_e = (5*6 + 5*4) / 100 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    assert s["oa"] == pytest.approx(0.7)
    assert s["kappa"] == pytest.approx(0.4)
    # IU built = 4 / (6 + 5 - 4) = 4/7, IU background = 3 / (4 + 5 - 3) = 1/2
    assert s["mean_iu"] == pytest.approx((4 / 7 + 1 / 2) / 2)
    # fwavacc weights IU by truth frequency: 0.6 * 4/7 + 0.4 * 1/2
    assert s["fwavacc"] == pytest.approx(0.6 * 4 / 7 + 0.4 * 0.5)
    assert s["mean_acc"] == pytest.approx((4 / 6 + 3 / 4) / 2)
    assert all(type(v) in (int, float) for v in s.values())


def test_paper_tables_reproduce():
    # Table 2, IFCN: TP 12625, FP 2744, FN 612 -> prediction ratio 0.82, recall 0.95, F1 0.88
    s = scores_from_confusion(np.array([[10**6, 2744], [612, 12625]]))
    assert (round(s["precision"], 2), round(s["recall"], 2), round(s["f1"], 2)) == (0.82, 0.95, 0.88)
    # Table 4, Qingdao: TP 2213, FP 92, FN 280 -> 96.01 %, 88.77 %, 92.25 %
    s = scores_from_confusion(np.array([[10**5, 92], [280, 2213]]))
    assert [round(100 * s[k], 2) for k in ("precision", "recall", "f1")] == [96.01, 88.77, 92.25]


@pytest.mark.parametrize("truth", [TRUTH, np.zeros((3, 4), int), np.ones((3, 4), int)])
def test_perfect_prediction(truth):
    s = binary_scores(truth, truth)
    assert s["f1"] == s["kappa"] == s["oa"] == s["mean_iu"] == s["fwavacc"] == 1.0
    assert sid(truth, truth) == ted(truth, truth) == 0.0


def test_edge_length_of_a_2x3_patch_at_30m():
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True  # 2 rows x 3 columns: 2 * (2 + 3) = 10 sides of 30 m
    assert edge_length(mask, 30) == 300.0
    corner = np.zeros((5, 6), bool)
    corner[:2, :3] = True  # touching the border: outside counts as not built-up, same outline
    assert edge_length(corner, 30) == 300.0
    diagonal = np.array([[1, 0], [0, 1]])  # two cells meeting at a corner share no side: 8 sides
    assert edge_length(diagonal, 30) == 240.0


def test_shape_index_square_line_and_weighting():
    square = np.zeros((6, 10), int)
    square[1:4, 1:4] = 1  # 3x3: perimeter 12 = minimum for 9 cells -> 1
    assert shape_index(square) == 1.0
    rectangle = np.zeros((4, 5), int)
    rectangle[1:3, 1:4] = 1  # 2x3: perimeter 10 = minimum for 6 cells (4m+2, m=2) -> 1
    assert shape_index(rectangle) == 1.0
    line = np.zeros((6, 10), int)
    line[5, 6:10] = 1  # 1x4: perimeter 10, minimum for 4 cells is 8 (a 2x2 square) -> 1.25
    assert shape_index(line) == 1.25
    both = square | line  # area-weighted: (9 * 1 + 4 * 1.25) / 13
    assert shape_index(both) == pytest.approx(14 / 13)
    area, si = patch_shape_indices(both)
    assert sorted(zip(area.tolist(), si.tolist())) == [(4, 1.25), (9, 1.0)]
    # diagonal neighbours form one 8-connected patch: area 2, perimeter 8, minimum 6 -> 4/3
    assert shape_index(np.array([[1, 0], [0, 1]])) == pytest.approx(4 / 3)
    assert math.isnan(shape_index(np.zeros((3, 3), int)))


def test_sid_and_ted_by_hand():
    truth = np.zeros((4, 7), int)
    truth[1:3, 1:3] = 1  # 2x2: SI 1, 8 sides
    pred = np.zeros((4, 7), int)
    pred[1, 1:6] = 1  # 1x5: perimeter 12, minimum for 5 cells 10 -> SI 1.2; 12 sides
    assert sid(pred, truth) == pytest.approx(20.0)  # |1.2 - 1| / 1 * 100
    assert ted(pred, truth) == pytest.approx(50.0)  # |12 - 8| / 8 * 100
    assert math.isnan(ted(pred, np.zeros_like(truth)))  # nothing to compare against


def test_per_zone():
    zones = np.zeros((4, 16), int)
    zones[:, :7] = 1
    zones[:, 8:15] = 2
    truth = np.zeros((4, 16), int)
    pred = np.zeros((4, 16), int)
    truth[1:3, 1:3] = pred[1:3, 1:3] = 1  # town 1 predicted perfectly
    truth[1:3, 9:11] = 1  # town 2: the 2x2 / 1x5 case above
    pred[1, 9:14] = 1
    pred[:, 15] = 1  # built-up outside every town is not scored
    truth[3, 0] = 255  # nodata in town 1 is ignored
    out = per_zone(pred, truth, zones, res=30, ignore=255)
    assert sorted(out) == [1, 2]
    assert (out[1]["sid"], out[1]["ted"], out[1]["f1"], out[1]["kappa"]) == (0.0, 0.0, 1.0, 1.0)
    assert out[1]["pixels"] == 27
    two = out[2]
    assert (two["te_truth_m"], two["te_pred_m"]) == (240.0, 360.0)
    assert (two["si_truth"], two["si_pred"]) == (1.0, 1.2)
    assert two["sid"] == pytest.approx(20.0) and two["ted"] == pytest.approx(50.0)
    # town 2: TP 2 (row 1), FP 3, FN 2 -> F1 = 4 / 9
    assert (two["tp"], two["fp"], two["fn"]) == (2, 3, 2)
    assert two["f1"] == pytest.approx(4 / 9)
    assert mean_of(out, "ted") == pytest.approx(25.0)
