"""Seed 001's planning objectives (eqs. 31-35), hard constraints and the incremental Tracker."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from urbaneo.errors import InputError
from urbaneo.stages.vegplan import objectives as vo

from vegplan_toys import assert_hard_constraints, random_fill, random_problem

TRAITS = ("carbon_rate", "survival", "growth", "esv", "procurement", "preparation", "planting", "maintenance")


def toy(settings=None, **over) -> vo.Problem:
    """3x3 grid, 2 species; cell (2, 0) is existing green; cell (1, 1) has no plantable area."""
    area = np.full((3, 3), 100.0)
    area[2, 2] = 200.0
    area[1, 1] = 0.0
    suit = np.empty((2, 3, 3))
    suit[0] = 0.8
    suit[0, 2, 2] = 0.6
    suit[1] = 0.5
    green = np.zeros((3, 3), bool)
    green[2, 0] = True
    kw = {"carbon_rate": [2.0, 1.0], "survival": [0.9, 1.0], "growth": [0.5, 1.0], "esv": [10.0, 4.0],
          "procurement": [20.0, 5.0], "preparation": [5.0, 2.0], "planting": [5.0, 3.0], "maintenance": [2.0, 1.0]}
    kw.update(over)
    return vo.build_problem((3, 3), area, np.ones((2, 3, 3), bool), suit, green=green,
                            settings=settings or vo.Settings(budget_cny=1e6, max_species_share=1.0), **kw)


def test_toy_eqs_31_35_by_hand():
    pb = toy()
    plan = np.zeros((3, 3), np.int16)
    plan[0, 0], plan[0, 1], plan[2, 2] = 1, 2, 1
    v = vo.objectives(pb, plan)
    # CSP = 100*2*0.9*0.5*0.8 + 100*1*1*1*0.5 + 200*2*0.9*0.5*0.6 = 72 + 50 + 108
    assert v["csp_total"] == pytest.approx(230.0)
    assert v["planted_m2"] == 400.0 and v["planted_cells"] == 3
    assert v["csp"] == pytest.approx(230.0 / 400)
    assert v["esv_total"] == pytest.approx(800 + 200 + 1200) and v["esv"] == pytest.approx(5.5)
    # IC: species costs 20+5+5+3*2 = 36 and 5+2+3+3*1 = 13 CNY/m2
    assert v["ic_total"] == pytest.approx(3600 + 1300 + 7200) and v["ic"] == pytest.approx(12100 / 400)
    assert v["maintenance_total"] == pytest.approx(200 + 100 + 400)
    assert v["cer"] == pytest.approx((2200 + 230 * 30 / 1000) / 12100)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert v["shannon"] == pytest.approx(h) and v["evenness"] == pytest.approx(h / math.log(2))
    # (0,0) and (0,1) touch each other; (2,2) has no planted or green neighbour ((1,1) is bare)
    assert v["connectivity"] == pytest.approx(2 / 3)
    assert v["bi"] == pytest.approx(h * h / math.log(2) * 2 / 3)
    assert v["species_used"] == 2
    # a green neighbour connects too: plant (2,1), next to green (2,0) and to (2,2)
    plan[2, 1] = 2
    assert vo.objectives(pb, plan)["connectivity"] == 1.0


def test_empty_plan_is_zeros_and_composite_is_the_cost_term():
    pb = toy()
    v = vo.objectives(pb, np.zeros((3, 3), int))
    for k in ("csp", "bi", "esv", "ic", "cer", "csp_total", "ic_total", "shannon", "evenness", "connectivity"):
        assert v[k] == 0.0, k
    assert all(np.isfinite(x) for x in v.values())
    w = pb.settings.weight
    assert v["composite"] == pytest.approx(w["ic"] / sum(w.values()))  # f_ic = 1, everything else 0


def test_shannon_evenness_over_the_table():
    pb = random_problem(0, s=6, max_species_share=1.0, budget_cny=1e12)
    cells = np.flatnonzero(pb.area > 0)[:4]
    plan = np.zeros(pb.n_cells, int)
    plan[cells] = [1, 2, 3, 4]
    area = pb.area[cells]
    p = area / area.sum()
    v = vo.objectives(pb, plan)
    assert v["shannon"] == pytest.approx(-(p * np.log(p)).sum())
    assert v["evenness"] == pytest.approx(v["shannon"] / math.log(6))  # Pielou over the table's 6 species
    plan[cells] = 3  # one species: H' = 0, BI = 0
    assert vo.objectives(pb, plan)["shannon"] == 0.0 and vo.objectives(pb, plan)["bi"] == 0.0


def test_connectivity_isolated_and_joined():
    pb = toy()
    plan = np.zeros((3, 3), int)
    plan[0, 0] = 1
    assert vo.objectives(pb, plan)["connectivity"] == 0.0  # alone
    plan[1, 0] = 1  # touches (0,0) and the green (2,0)
    assert vo.objectives(pb, plan)["connectivity"] == 1.0
    plan[0, 2] = 2  # (1,1) is bare and (1,2), (0,1) empty: isolated
    assert vo.objectives(pb, plan)["connectivity"] == pytest.approx(2 / 3)


def test_hand_constraints_and_validate():
    pb = toy(vo.Settings(budget_cny=5000.0, maintenance_cny_yr=250.0, max_species_share=0.5, min_shannon=1.0))
    plan = np.zeros((3, 3), int)
    plan[0, 0], plan[0, 1] = 1, 2  # 3600 + 1300 CNY, 200 + 100 CNY/yr, shares 0.5 / 0.5
    g = vo.constraints(pb, plan)
    assert g["budget"] == pytest.approx(4900 / 5000 - 1)
    assert g["maintenance"] == pytest.approx(300 / 250 - 1)
    assert g["species_share"] == pytest.approx(0.0) and g["compatibility"] == 0.0
    assert g["biodiversity"] == pytest.approx(1.0 - math.log(2))
    bad = vo.validate_plan(pb, plan, strict=False)
    assert len(bad) == 1 and bad[0].startswith("maintenance")
    with pytest.raises(InputError, match="maintenance"):
        vo.validate_plan(pb, plan)
    plan[0, 2] = 1  # 3 cells: 2/3 of the area species 1 > 0.5, and over budget
    names = [b.split(":")[0] for b in vo.validate_plan(pb, plan, strict=False)]
    assert names == ["budget", "maintenance", "species_share"]
    # a species on a single cell may exceed the share; incompatibility is caught
    pb2 = vo.build_problem((1, 2), [100.0, 10.0], np.array([[[True, True]], [[False, True]]]), np.ones((2, 1, 2)),
                           settings=vo.Settings(budget_cny=1e6, max_species_share=0.25),
                           **{k: [1.0, 1.0] for k in TRAITS})
    assert vo.validate_plan(pb2, [[1, 2]], strict=False) == []
    assert vo.validate_plan(pb2, [[2, 1]], strict=False)[0].startswith("compatibility")
    with pytest.raises(InputError, match="plan"):
        vo.objectives(pb2, [[3, 0]])


def test_random_feasible_plans_respect_every_hard_constraint():
    for seed in range(5):
        cap = None if seed % 2 else 6e5
        pb = random_problem(seed, budget_share=0.2, max_species_share=0.3, maintenance_cny_yr=cap)
        if seed == 4:  # 4 species at most 30% each: the share cap, not the budget, ends the plan
            pb = random_problem(seed, s=4, budget_share=1.0, max_species_share=0.3)
        t = random_fill(pb, np.random.default_rng(seed))
        assert t.cells > 3
        assert_hard_constraints(pb, t.plan.reshape(pb.shape))
        assert not vo.feasible_actions(pb, t.plan).any()  # nothing left
        assert 0.0 <= vo.objectives(pb, t.plan)["composite"] <= 1.0
        f = vo.normalised(pb, vo.objectives(pb, t.plan))
        assert all(-1e-12 <= x <= 1 + 1e-12 for x in f.values()), f


def test_share_cap_blocks_a_second_cell_until_the_plan_grows():
    pb = vo.build_problem((1, 6), np.full(6, 100.0), np.ones((3, 1, 6), bool), np.ones((3, 1, 6)),
                          settings=vo.Settings(budget_cny=1e9, max_species_share=0.5),
                          **{k: [1.0, 1.0, 1.0] for k in TRAITS})
    t = vo.Tracker(pb)
    t.apply(0, 0)
    mask = t.feasible()
    assert not mask[:, 0].any() and mask[1:, 1:].all()  # a second cell would make species 1 100%
    t.apply(1, 1)
    mask = t.feasible()
    assert not mask[:, :2].any() and mask[2:, 2].all()  # 200 of 300 m2 > 50%
    t.apply(2, 2)
    assert t.feasible()[3:].all()  # 200 of 400 m2 = 50%: allowed (at the cap)
    t.apply(3, 0)
    assert vo.validate_plan(pb, t.plan) == [] and not t.feasible()[:, 0].any()


def test_budget_too_small_gives_an_empty_plan_and_a_note():
    pb = toy(vo.Settings(budget_cny=50.0))
    assert pb.cheapest_cell_cost == pytest.approx(1300.0) and pb.cheapest_cell_cost > pb.budget
    assert "budget" in pb.note and "empty" in pb.note
    assert not vo.feasible_actions(pb).any()
    assert vo.objectives(pb, np.zeros((3, 3), int))["csp"] == 0.0
    assert toy().note == ""
    capped = toy(vo.Settings(budget_cny=1e6, maintenance_cny_yr=10.0))
    assert "maintenance" in capped.note and not vo.feasible_actions(capped).any()


def test_tracker_matches_full_recomputation():
    for seed in (1, 2, 3):
        pb = random_problem(seed, budget_share=0.15)
        rng = np.random.default_rng(seed)
        t = vo.Tracker(pb)
        for step in range(40):
            mask = t.feasible()
            if not mask.any():
                break
            gains = t.gains()
            before = t.plan.copy()
            c, s = np.argwhere(mask)[rng.integers(mask.sum())]
            change = t.apply(c, s)
            assert change == pytest.approx(gains[c, s], abs=1e-12)
            if step % 7 == 0:
                full = vo.objectives(pb, t.plan)
                for k, v in t.values().items():
                    assert v == pytest.approx(full[k], rel=1e-9, abs=1e-12), k
                assert t.constraints() == pytest.approx(vo.constraints(pb, t.plan))
                np.testing.assert_array_equal(mask, vo.feasible_actions(pb, before))
                np.testing.assert_array_equal(t.feasible(), vo.feasible_actions(pb, t.plan))
        # a tracker started from a plan equals the one built step by step
        t2 = vo.Tracker(pb, t.plan.reshape(pb.shape))
        assert t2.values() == pytest.approx(t.values())
        np.testing.assert_array_equal(t2.support, t.support)


def test_feasible_actions_spent_override():
    pb = toy(vo.Settings(budget_cny=5000.0, max_species_share=1.0))
    assert vo.feasible_actions(pb)[0].tolist() == [True, True]
    assert vo.feasible_actions(pb, spent=3000.0)[0].tolist() == [False, True]  # 3600 no longer fits, 1300 does
    assert not vo.feasible_actions(pb, spent=5000.0).any()


def site_dataset(h=5, w=4, s=3, seed=0) -> xr.Dataset:
    """A site Dataset with the variables of the spec's section 1 (synthetic)."""
    rng = np.random.default_rng(seed)
    species = [f"SP{i + 1:02d}" for i in range(s)]
    feats = ["ndvi", "green_fraction"]
    f = rng.random((2, h, w)).astype("f4")
    area = (rng.uniform(0, 10000, (h, w)) * (rng.random((h, w)) > 0.2)).astype("f4")
    ds = xr.Dataset({"plantable_m2": (("y", "x"), area),
                     "compatible": (("species", "y", "x"), (rng.random((s, h, w)) > 0.3) & (area > 0)),
                     "suitability": (("species", "y", "x"), rng.random((s, h, w)).astype("f4")),
                     "rule_suitability": (("species", "y", "x"), rng.random((s, h, w)).astype("f4")),
                     "features": (("feature", "y", "x"), f)},
                    coords={"species": species, "feature": feats, "y": np.arange(h), "x": np.arange(w)})
    for name in vo.SPECIES_VARIABLES.values():
        ds[name] = ("species", rng.uniform(1, 50, s))
    ds["life_form"] = ("species", ["tree", "shrub", "grass"][:s])
    return ds


def test_problem_from_site_and_budget_resolution():
    ds = site_dataset()
    pb = vo.problem_from_site(ds, vo.Settings(budget_share=0.1))
    n, s = 20, 3
    assert pb.shape == (5, 4) and pb.area.shape == (n,) and pb.compatible.shape == (n, s)
    cost = (ds.procurement_cost_cny_m2 + ds.preparation_cost_cny_m2 + ds.planting_cost_cny_m2
            + 3 * ds.maintenance_cost_cny_m2_yr).values
    np.testing.assert_allclose(pb.cost, cost)
    assert pb.budget == pytest.approx(0.1 * float(ds.plantable_m2.sum()) * np.median(cost), rel=1e-6)
    np.testing.assert_array_equal(pb.green, (ds.features.sel(feature="green_fraction").values >= 0.5).ravel())
    # cell (y, x) of species k is row y*W + x, column k
    np.testing.assert_allclose(pb.suitability[1 * 4 + 2, 1], ds.suitability.values[1, 1, 2], rtol=1e-6)
    assert pb.species == ("SP01", "SP02", "SP03") and pb.life_form[0] == "tree"
    rule = vo.problem_from_site(ds, vo.Settings(), suitability="rule_suitability")
    np.testing.assert_allclose(rule.suitability[:, 0], ds.rule_suitability.values[0].ravel(), rtol=1e-6)
    belief = vo.with_suitability(pb, np.zeros((s, 5, 4)))
    assert belief.norms == pb.norms and not belief.suitability.any()
    bad = ds.copy()
    bad["survival_rate"] = ("species", [0.9, -0.1, 0.8])
    with pytest.raises(InputError, match="survival_rate: SP02"):
        vo.problem_from_site(bad, vo.Settings())
    with pytest.raises(InputError, match="site: missing variable 'compatible'"):
        vo.problem_from_site(ds.drop_vars("compatible"), vo.Settings())


@pytest.mark.parametrize("kw, name", [
    ({"budget_cny": -1.0}, "budget_cny"), ({"budget_share": 0.0}, "budget_share"),
    ({"budget_share": 1.5}, "budget_share"), ({"max_species_share": 0.0}, "max_species_share"),
    ({"max_species_share": 1.01}, "max_species_share"), ({"maintenance_cny_yr": -5}, "maintenance_cny_yr"),
    ({"min_shannon": float("nan")}, "min_shannon"), ({"carbon_price_cny_t": -1}, "carbon_price_cny_t"),
    ({"weights": (("csp", 1.0), ("fun", 1.0))}, "weights"), ({"weights": {"csp": 0.0}}, "weights"),
])
def test_settings_are_checked(kw, name):
    with pytest.raises(InputError) as err:
        vo.Settings(**kw)
    assert str(err.value).startswith(f"{name}: ") and "\n" not in str(err.value)


def test_weights_from_a_mapping_and_composite_range():
    st = vo.Settings(weights={"csp": 1.0, "bi": 1.0}, budget_cny=1e6, max_species_share=1.0)
    assert st.weights == (("csp", 1.0), ("bi", 1.0))
    pb = toy(st)
    plan = np.ones((3, 3), int)
    plan[1, 1] = 0
    v = vo.objectives(pb, plan)
    f = vo.normalised(pb, v)
    assert v["composite"] == pytest.approx((f["csp"] + f["bi"]) / 2) and 0 <= v["composite"] <= 1
