"""Seed 001's baseline planners: greedy, the ILP (MPM), the random forest (RFR) and the Pareto tools."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from urbaneo.errors import InputError
from urbaneo.stages.vegplan import objectives as vo
from urbaneo.stages.vegplan import planners as vp

from vegplan_toys import assert_hard_constraints, random_fill, random_problem, site, smooth_field

def linear_value(problem: vo.Problem, plan) -> float:
    """The ILP's objective of a plan (ilp_plan's docstring), computed independently of the module."""
    w = problem.settings.weight
    p = np.asarray(plan).reshape(-1).astype(int)
    c = np.flatnonzero(p)
    s = p[c] - 1
    a, suit = problem.area[c], problem.suitability[c, s]
    v = (w["csp"] * (a * problem.carbon_rate[s] * problem.survival[s] * problem.growth[s] * suit).sum()
         / problem.norms["csp"] + w["esv"] * (a * problem.esv[s] * suit).sum() / problem.norms["esv"]
         - w["ic"] * (a * problem.cost[s]).sum() / problem.budget)
    return v / sum(w.values())


# --- greedy ------------------------------------------------------------------------------------------


def test_greedy_gains_are_the_trackers():
    """The planner's incremental gains equal Tracker.gains (the objectives module's definition) along a path."""
    rng = np.random.default_rng(3)
    for pb in (random_problem(1), random_problem(2, max_species_share=1.0, maintenance_cny_yr=2e5)):
        t, gains = vo.Tracker(pb), vp._Gains(pb)
        for _ in range(25):
            mask = t.feasible()
            if not mask.any():
                break
            np.testing.assert_allclose(gains(t)[mask], t.gains()[mask], rtol=1e-9, atol=1e-12)
            c, s = np.argwhere(mask)[rng.integers(mask.sum())]
            t.apply(c, s)
            gains.refresh(t.species_area, (s,))


def test_greedy_is_feasible_and_beats_random_plans():
    pb = vo.problem_from_site(site(), vo.Settings(budget_share=0.2, max_species_share=0.3, maintenance_cny_yr=3e5))
    plan, order = vp.greedy_plan(pb)
    assert plan.shape == pb.shape and plan.dtype == np.int16
    assert_hard_constraints(pb, plan)
    cells = [c for c, _ in order]
    assert len(set(cells)) == len(cells) > 0
    np.testing.assert_array_equal(plan, vp._plan_of(pb, order))
    best = vo.composite(pb, vo.objectives(pb, plan))
    rng = np.random.default_rng(0)
    randoms = [vo.composite(pb, vo.objectives(pb, random_fill(pb, rng).plan)) for _ in range(5)]
    assert best > max(randoms)
    # the textbook stopping rule's plan is a prefix of the same run, never better
    plan0, order0 = vp.greedy_plan(pb, stop="no_gain")
    assert order0 == order[:len(order0)]
    assert vo.composite(pb, vo.objectives(pb, plan0)) <= best
    with pytest.raises(InputError, match="stop must be"):
        vp.greedy_plan(pb, stop="never")


def test_greedy_plants_by_the_belief():
    pb = vo.problem_from_site(site(seed=1), vo.Settings(budget_share=0.3, max_species_share=0.5))
    plan, _ = vp.greedy_plan(pb)
    favourite = np.bincount(plan[plan > 0] - 1, minlength=pb.n_species).argmax()
    belief = pb.suitability.copy()
    belief[:, favourite] = 0.0
    plan_b, order_b = vp.greedy_plan(vo.with_suitability(pb, belief))
    assert favourite + 1 not in plan_b and all(s != favourite for _, s in order_b)
    assert (plan_b > 0).any()
    # other weights, other plan: carbon alone
    plan_c, _ = vp.greedy_plan(pb, weights={"csp": 1.0})
    csp = vo.objectives(pb, plan_c)["csp_total"]
    assert csp >= vo.objectives(pb, plan)["csp_total"]

# --- ILP (MPM) ----------------------------------------------------------------------------------------


def toy(seed=0, **settings) -> vo.Problem:
    """2x3 cells, 3 species: 4^6 = 4096 plans, few enough to enumerate; the budget buys about 3 cells."""
    rng = np.random.default_rng(seed)
    h, w, s = 2, 3, 3
    traits = {"carbon_rate": rng.uniform(1, 6, s), "survival": rng.uniform(0.7, 1, s),
              "growth": rng.uniform(0.3, 1, s), "esv": rng.uniform(30, 120, s), "procurement": rng.uniform(10, 100, s),
              "preparation": rng.uniform(10, 30, s), "planting": rng.uniform(5, 40, s),
              "maintenance": rng.uniform(5, 15, s)}
    st = {"budget_share": 0.6, "max_species_share": 0.4, **settings}
    return vo.build_problem((h, w), rng.uniform(200, 1000, (h, w)), rng.random((s, h, w)) > 0.2,
                            rng.uniform(0.2, 1, (s, h, w)), settings=vo.Settings(**st), **traits)


def brute_force(problem: vo.Problem, keep=lambda plan: True) -> tuple[float, np.ndarray]:
    """The best linear value over every plan that keeps the hard constraints (and ``keep``)."""
    best, best_plan = -math.inf, None
    for combo in itertools.product(range(problem.n_species + 1), repeat=problem.n_cells):
        plan = np.array(combo, np.int16).reshape(problem.shape)
        if vo.validate_plan(problem, plan, strict=False) or not keep(plan):
            continue
        if (v := linear_value(problem, plan)) > best + 1e-12:
            best, best_plan = v, plan
    return best, best_plan


def shares(problem, plan):
    p = plan.reshape(-1).astype(int)
    c = np.flatnonzero(p)
    a = np.bincount(p[c] - 1, weights=problem.area[c], minlength=problem.n_species)
    return a / max(a.sum(), 1e-300), a


@pytest.mark.parametrize("seed", [0, 3])
def test_ilp_equals_brute_force(seed):
    pb = toy(seed)
    best, _ = brute_force(pb)
    plan, info = vp.ilp_plan(pb, biodiversity=None, gap=0)
    assert info["solver"] == "cbc" and info["status"].startswith("Optimal")
    assert info["objective"] == pytest.approx(best, rel=1e-9) == linear_value(pb, plan)
    assert info["bound"] >= info["objective"] - 1e-12
    assert_hard_constraints(pb, plan)
    # entropy: every species at most exp(-min_shannon) of the area, which guarantees the Shannon threshold
    pb = toy(seed, min_shannon=math.log(2.5))  # cap 0.4: at least 3 species
    best, _ = brute_force(pb, lambda p: (p > 0).any() and shares(pb, p)[0].max() <= 0.4)
    plan, info = vp.ilp_plan(pb, biodiversity="entropy", gap=0)
    assert info["objective"] == pytest.approx(best, rel=1e-9)
    assert vo.objectives(pb, plan)["shannon"] >= pb.settings.min_shannon
    # richness: k = ceil(e^1.05) = 3 species with at least the floor area each
    pb = toy(seed, min_shannon=1.05)
    cand = pb.compatible & (pb.area[:, None] * pb.cost <= pb.budget * (1 - vp.CAP_SLACK))
    floor = min(pb.area[cand.any(1)].sum(), pb.budget / np.median(pb.cost[cand.any(0)])) / 6
    best, _ = brute_force(pb, lambda p: (shares(pb, p)[1] >= floor * (1 - 1e-9)).sum() >= 3)
    plan, info = vp.ilp_plan(pb, biodiversity="richness", gap=0)
    assert info["biodiversity"].startswith("richness: >= 3 species")
    assert info["objective"] == pytest.approx(best, rel=1e-9)


def test_ilp_beats_greedy_on_its_objective_and_is_deterministic():
    pb = random_problem(5, maintenance_cny_yr=4e5)
    plan, info = vp.ilp_plan(pb, biodiversity=None, gap=0)
    assert info["solver"] == "cbc" and info["variables"] == (vp._usable(pb, 0.0)).sum()
    assert_hard_constraints(pb, plan)
    greedy, _ = vp.greedy_plan(pb)
    assert info["objective"] >= linear_value(pb, greedy)
    again, info2 = vp.ilp_plan(pb, biodiversity=None, gap=0)
    np.testing.assert_array_equal(plan, again)
    assert info2["objective"] == info["objective"]
    # the default (entropy, 1 % gap) meets the Shannon threshold
    plan, info = vp.ilp_plan(pb)
    assert info["biodiversity"].startswith("entropy") and info["objective"] <= info["bound"]
    assert vo.objectives(pb, plan)["shannon"] >= pb.settings.min_shannon
    assert_hard_constraints(pb, plan)


def test_ilp_falls_back_and_drops_what_cannot_hold(monkeypatch):
    pb = toy(1)
    plan, info = vp.ilp_plan(pb, max_variables=5)
    assert info["solver"] == "greedy" and "max_variables" in info["reason"]
    np.testing.assert_array_equal(plan, vp.greedy_plan(pb)[0])
    assert info["objective"] == pytest.approx(linear_value(pb, plan))
    # a Shannon threshold no 3-species plan can reach: solved without it, and said so
    pb = toy(1, min_shannon=3.0)
    plan, info = vp.ilp_plan(pb, gap=0)
    assert info["solver"] == "cbc" and info["biodiversity"].startswith("dropped")
    assert info["objective"] == pytest.approx(brute_force(pb)[0], rel=1e-9)
    # nothing affordable: an empty plan, no solve
    plan, info = vp.ilp_plan(toy(1, budget_cny=1.0))
    assert not plan.any() and info["status"] == "Empty" and info["variables"] == 0
    # CBC without a solution: greedy, with the reason
    monkeypatch.setattr(vp, "_solve_ilp", lambda *a, **k: (None, "Not Solved", float("nan"), None))
    plan, info = vp.ilp_plan(toy(1))
    assert info["solver"] == "greedy" and "no feasible solution" in info["reason"]
    with pytest.raises(InputError, match="biodiversity must be"):
        vp.ilp_plan(toy(1), biodiversity="shannon")


def test_ilp_order_and_prefix_fronts():
    truth = random_problem(7)
    belief = vo.with_suitability(truth, np.clip(truth.suitability + 0.3, 0, 1))
    plan, _ = vp.ilp_plan(belief, biodiversity=None)
    order = vp.ilp_order(belief, plan)
    assert sorted(order) == sorted((int(c), int(plan.reshape(-1)[c]) - 1) for c in np.flatnonzero(plan))
    value = vp._linear_value(belief)
    density = [value[c, s] / (belief.area[c] * belief.cost[s]) for c, s in order]
    assert density == sorted(density, reverse=True)
    np.testing.assert_array_equal(vp.prefix_lengths(5, 3), [2, 4, 5])
    np.testing.assert_array_equal(vp.prefix_lengths(2, 4), [1, 1, 2, 2])
    fronts = vp.prefix_fronts(truth, order, steps=6)
    assert fronts.shape == (6, 3)
    assert (np.diff(fronts[:, 0]) >= 0).all() and (np.diff(fronts[:, 2]) > 0).all()
    full = vo.objectives(truth, plan)  # scored with the truth, not the belief
    np.testing.assert_allclose(fronts[-1], [full["csp_total"], full["bi"], full["ic_total"]])
    assert fronts[-1, 0] < vo.objectives(belief, plan)["csp_total"]
    assert (vp.prefix_fronts(truth, [], steps=3) == 0).all()


# --- random forest -----------------------------------------------------------------------------------


def test_random_forest_learns_a_smooth_target():
    rng = np.random.default_rng(0)
    h, w = 30, 28
    features = smooth_field(rng, h, w, 5)
    target = np.stack([1 / (1 + np.exp(-2 * (features[0] - 0.5 * features[1]))),
                       np.clip(0.5 + 0.2 * features[2] - 0.1 * features[3], 0, 1),
                       np.exp(-features[4] ** 2)])
    train = rng.random((h, w)) < 0.6
    rf = vp.RandomForestSuitability(n_estimators=30, seed=0).fit(features, target, train)
    pred = rf.predict(features)
    assert pred.shape == target.shape and pred.dtype == np.float32
    assert 0 <= pred.min() and pred.max() <= 1
    test = ~train
    for s in range(len(target)):
        resid = ((pred[s][test] - target[s][test]) ** 2).sum()
        r2 = 1 - resid / ((target[s][test] - target[s][test].mean()) ** 2).sum()
        assert r2 > 0.8, (s, r2)
    again = vp.RandomForestSuitability(n_estimators=30, seed=0).fit(features, target, train).predict(features)
    np.testing.assert_array_equal(pred, again)  # deterministic


def test_random_forest_neighbourhood_inputs_and_missing_values():
    f = np.arange(12, dtype=float).reshape(1, 3, 4)
    f[0, 0, 0] = np.nan
    x = vp.RandomForestSuitability.inputs(f)
    assert x.shape == (12, 2)
    # cell (1, 1): neighbours rows 0-2, cols 0-2 except the NaN: (1+2+4+5+6+8+9+10)/8
    assert x[5, 1] == pytest.approx((1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 8)
    assert x[11, 1] == pytest.approx((6 + 7 + 10 + 11) / 4)  # corner: only cells inside the grid
    target = np.ones((2, 3, 4)) * 0.5
    rf = vp.RandomForestSuitability(n_estimators=3).fit(f, target, np.ones((3, 4), bool))
    assert np.isfinite(rf.predict(f)).all()
    with pytest.raises(vp.InputError, match="features must be"):
        rf.predict(np.zeros((2, 3, 4)))


# --- Pareto tools ------------------------------------------------------------------------------------


def test_pareto_front_keeps_the_non_dominated():
    pts = np.array([[1, 1, 1], [2, 2, 1], [2, 2, 1], [3, 0, 0], [0, 0, 5], [2, 1, 1], [3, 0, 2]])
    front = vp.pareto_front(pts)  # CSP up, BI up, IC down
    np.testing.assert_array_equal(front, [[2, 2, 1], [2, 2, 1], [3, 0, 0]])
    minimised = vp.pareto_front(pts, maximise=(False, False, False))
    np.testing.assert_array_equal(minimised, [[1, 1, 1], [3, 0, 0], [0, 0, 5]])


def test_hypervolume_hand_examples():
    # two maximised objectives, reference at the origin: rectangles 1x2 and 2x1 overlapping 1x1
    assert vp.hypervolume([[1, 2], [2, 1]], (0, 0), maximise=(True, True)) == pytest.approx(3.0)
    # a dominated point and one beyond the reference add nothing
    assert vp.hypervolume([[1, 2], [2, 1], [1, 1], [-1, 5]], (0, 0), maximise=(True, True)) == pytest.approx(3.0)
    # 3-D, minimised: a box 1 x 2 x 3
    assert vp.hypervolume([[1, 1, 1]], (2, 3, 4), maximise=(False, False, False)) == pytest.approx(6.0)
    # CSP, BI up and IC down, two boxes 2x1x3 and 1x2x1 overlapping 1x1x1: 6 + 2 - 1
    pts = [[2, 1, 1], [1, 2, 3]]
    assert vp.hypervolume(pts, (0, 0, 4)) == pytest.approx(7.0)
    # scales divide each axis
    assert vp.hypervolume(pts, (0, 0, 4), scale=(2, 1, 4)) == pytest.approx(7.0 / 8)
    assert vp.hypervolume(np.zeros((0, 3)), (0, 0, 4)) == 0.0
