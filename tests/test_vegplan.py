"""The vegetation-plan stage (seed 001) on the tiny city's session run: products, constraints, refusals."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from urbaneo.artifacts.cog import validate_cog
from urbaneo.errors import InputError
from urbaneo.stages.vegplan import shared as vp
from urbaneo.stages.vegplan.evaluate import METHODS, PREDICTORS
from urbaneo.stages.vegplan.objectives import HARD, Settings, constraints, objectives, problem_from_site
from urbaneo.stages.vegplan.site import read_site

pytestmark = pytest.mark.integration


def _paths(root):
    res, out = root / "resources/demo/vegplan/tiny", root / "results/demo/tiny/vegplan"
    return res, out


def test_stage_publishes_the_comparison(tiny_run):
    out = _paths(tiny_run)[1]
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["table2"]) == set(METHODS)
    for method, row in m["table2"].items():
        assert row["hard_constraints_met"], method
        assert {"csp", "bi", "esv", "ic", "cer", "composite"} <= set(row)
        assert m["pareto"][method]["hypervolume"] >= 0
    robustness = json.loads((out / "robustness.json").read_text())["robustness"]
    assert all(len(robustness[method]["reduction_pct"]) == 4 for method in METHODS)
    assert set(m["table3"]) == set(PREDICTORS.values())
    assert set(m["goal"]) == {"best_csp", "best_cer", "largest_hypervolume"}
    for kind in ("cnn", "gnn", "fusion", "paper_cnn", "paper_gnn", "paper_fusion", "paper_qnet"):
        assert m["complexity"][kind]["parameters"] > 0 and m["complexity"][kind]["gflops_per_sample"] > 0, kind
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings["table4"]) == set(METHODS)
    for name in ("table.png", "pareto.png", "robustness.png", "plan.png"):
        assert (out / name).stat().st_size > 1000, name


def test_the_plan_respects_every_hard_constraint(tiny_run):
    res, out = _paths(tiny_run)
    site = read_site(res / "site.nc")
    ok, errors, _ = validate_cog(out / "plan.tif")
    assert ok, errors
    with rasterio.open(out / "plan.tif") as src:
        plan = src.read(1)
        colours = src.colormap(1)
    assert plan.max() <= site.sizes["species"] and all(c in colours for c in np.unique(plan))
    truth = problem_from_site(site, Settings())  # the stage ran with the default settings
    g = constraints(truth, plan)
    assert all(g[k] <= 1e-9 for k in HARD), g
    planted = plan > 0
    assert planted.any()
    compatible = site["compatible"].values
    rows, cols = np.nonzero(planted)
    assert compatible[plan[rows, cols] - 1, rows, cols].all()
    vector = gpd.read_file(out / "plan.geojson")
    assert len(vector) == planted.sum() and vector.crs.to_epsg() == 4326
    assert sorted(vector["code"]) == sorted(plan[planted].tolist())
    assert objectives(truth, plan)["planted_cells"] == planted.sum()


def test_stac_items_link_what_the_plan_used(tiny_run):
    from urbaneo.artifacts.stac import load_items

    item_id = (tiny_run / "results/demo/tiny/vegplan/item.txt").read_text().strip()
    items = load_items(tiny_run / "results/demo")
    item = items[item_id]
    assets = item["assets"]
    assert {"plan", "plan_vector", "plan_quicklook", "metrics", "pareto", "robustness", "table"} <= set(assets)
    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    for used in ("lcz-tiny", "npp-tiny", "urban-tiny", "models/vegplan", "inputs"):
        assert any(used.split("/")[-1] in href for href in derived), (used, derived)


def test_a_budget_too_small_is_a_result_not_a_crash(tiny_run, tmp_path, capsys):
    from urbaneo.cli import main

    res, _ = _paths(tiny_run)
    out = tmp_path / "plan.tif"
    assert main(["vegplan", "plan", "--site", str(res / "site.nc"), "--features", str(res / "features.pt"),
                 "--agent", str(res / "agent_cnn_gnn_drl.pt"), "--budget-cny", "1", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "0 cells planted" in said and "nothing can be planted" in said
    with rasterio.open(out) as src:
        assert not src.read(1).any()


def test_a_model_file_of_another_kind_stops_with_one_line(tiny_run):
    res, _ = _paths(tiny_run)
    with pytest.raises(InputError, match="not an EcoDeep-Green agent"):
        vp.read_agent(res / "features.pt")
    with pytest.raises(InputError, match="not an EcoDeep-Green features"):
        vp.read_features(tiny_run / "resources/demo/lcz/tiny/model.pt")
