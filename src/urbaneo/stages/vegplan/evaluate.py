"""``urbaneo vegplan evaluate`` (rule vegplan_evaluate): the vegetation plan's comparison (seed 001,
Tables 2-4, Figs. 2 and 4) on one city.

Every method plans under the same settings (budget, constraints, weights) and every plan is scored
with the site's suitability (the truth). A method differs by the suitability it *believes* and by
how it allocates:

=============  ==============================  ========================================================
method         belief                          allocation
=============  ==============================  ========================================================
MPM            the paper's indices (CLI x SFI)  integer program (PuLP / CBC; greedy beyond its size)
RFR            random forest on the features    greedy by marginal composite gain per CNY
CNN, GNN       the pretrained CNN / GNN          greedy
DRL            the paper's indices              DQN on the raw normalised inputs
CNN+MP         the CNN                          integer program
CNN+DRL        the CNN                          DQN on the CNN's features
GNN+DRL        the GNN                          DQN on the GNN's features
CNN-GNN-DRL    the fused CNN-GNN model          DQN on the fused features (the plan published)
=============  ==============================  ========================================================

* Table 2: CSP, BI, ESV, IC, CER of each plan (per m2 planted, as the paper) and the composite index.
* Fig. 2: each method's plans along its planting order (prefixes: the budget spent step by step,
  or for the integer programs their plantings by value density) in (CSP, BI, IC); the non-dominated
  ones form its Pareto front, and the hypervolume (pymoo) is taken with one reference for all:
  CSP 0, BI 0 and the budget, each objective scaled by its largest value over every method.
* Table 3: suitability prediction accuracy of each belief on the test blocks per life form (a pair
  (cell, species) is suitable at >= 0.5; the accuracy is the share of test pairs called right).
* Fig. 4 (robustness.py, its own step and job): the normalised inputs (and the index belief) are perturbed
  by uniform multiplicative noise of 5-20 %, each method plans again with its trained models, and the
  loss of composite against its unperturbed plan is reported.
* Table 4 (``timings.json``, apart: measured, so never the same twice): seconds to train and to plan,
  the peak resident memory while planning (sampled) and of each training job.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...presets import VEGPLAN_AGENTS
from ..options import add_runtime_args, set_threads
from . import shared
from .objectives import (
    HARD,
    OBJECTIVES,
    Settings,
    add_settings_args,
    constraints,
    objectives,
    problem_from_site,
    settings_of,
    with_suitability,
)
from .planners import (
    RandomForestSuitability,
    greedy_plan,
    hypervolume,
    ilp_order,
    ilp_plan,
    pareto_front,
    prefix_fronts,
)
from .site import read_site

log = logging.getLogger(__name__)

METHODS = {  # name -> (belief, allocation)
    "MPM": ("rule", "ilp"), "RFR": ("rfr", "greedy"), "CNN": ("cnn", "greedy"), "GNN": ("gnn", "greedy"),
    "DRL": ("drl", "agent"), "CNN+MP": ("cnn", "ilp"), "CNN+DRL": ("cnn_drl", "agent"),
    "GNN+DRL": ("gnn_drl", "agent"), "CNN-GNN-DRL": ("cnn_gnn_drl", "agent"),
}
OURS = "CNN-GNN-DRL"
PREDICTORS = {"rule": "CLI x SFI (MPM, DRL)", "rfr": "RFR", "cnn": "CNN (CNN, CNN+MP, CNN+DRL)",
              "gnn": "GNN (GNN, GNN+DRL)", "fusion": "CNN-GNN (CNN-GNN-DRL)"}
FRONT_STEPS = 20
SUITABLE = 0.5


@contextmanager
def peak_rss(interval: float = 0.01):
    """Sample this process's resident memory every ``interval`` s; yields a dict that gets ``peak_mb``
    (the largest sample above the level at entry)."""
    import psutil

    proc = psutil.Process()
    start = proc.memory_info().rss
    out = {"peak_mb": 0.0}
    stop = threading.Event()

    def sample():
        peak = start
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            stop.wait(interval)
        out["peak_mb"] = max(0.0, (max(peak, proc.memory_info().rss) - start) / 2**20)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()


class Context:
    """What every method's planning needs, made once: the site, the truth, the beliefs, the agents."""

    def __init__(self, site_path, features_path, agents_dir, settings: Settings, seed: int):
        self.site = read_site(site_path)
        self.data = shared.read_features(features_path)
        self.settings, self.seed = settings, seed
        self.x = shared.normalised(self.site)
        self.rule = self.site["rule_suitability"].values.astype(np.float32)
        self.truth = problem_from_site(self.site, settings)
        self.split = self.data["split"].numpy()
        self.models = shared.load_models(self.data, self.site)
        self.agents = {a: shared.read_agent(Path(agents_dir) / f"agent_{a}.pt") for a in VEGPLAN_AGENTS}
        self.feature_timings = shared.read_timings(features_path)
        self.agent_timings = {a: shared.read_timings(Path(agents_dir) / f"agent_{a}.pt") for a in VEGPLAN_AGENTS}
        t0 = time.perf_counter()
        self.forest = RandomForestSuitability(seed=seed).fit(self.x, self.site["suitability"].values,
                                                             self.split == shared.SPLITS["train"])
        self.forest_seconds = time.perf_counter() - t0

    def beliefs(self, x: np.ndarray | None = None, rule: np.ndarray | None = None) -> tuple[dict, dict]:
        """Every belief (S, H, W) and every model's state features: for the site's own stack those the
        features file holds, else (perturbed inputs) the trained models' on ``x``."""
        if x is None:
            learned, features = shared.stored(self.data)
            x, rule = self.x, self.rule
        else:
            learned, features = shared.infer(self.models, x, self.site, self.data["hyperparameters"], self.seed)
        return {"rule": rule, "rfr": self.forest.predict(x), **learned}, features

    def plan(self, method: str, x: np.ndarray, beliefs: dict, features: dict):
        """(plan, order, info) of ``method``."""
        belief, allocation = METHODS[method]
        if allocation == "agent":
            plan, order, _ = shared.agent_plan(self.agents[belief], self.site, beliefs, features, x, self.truth,
                                               self.seed)
            return plan, order, {}
        problem = with_suitability(self.truth, _flat(beliefs[belief]))
        if allocation == "greedy":
            plan, order = greedy_plan(problem)
            return plan, order, {}
        plan, info = ilp_plan(problem)
        return plan, ilp_order(problem, plan), info

    def train_seconds(self, method: str) -> float:
        """Seconds to train what the method uses (its learned model, then its agent), from the timing files."""
        belief, allocation = METHODS[method]
        if belief == "rfr":
            return self.forest_seconds
        kind = shared.AGENT_MODEL[belief] if allocation == "agent" else belief
        seconds = self.feature_timings["seconds"].get(kind, 0.0) if kind != "rule" and kind else 0.0
        if allocation == "agent":
            seconds += self.agent_timings[belief]["seconds"][belief]
        return float(seconds)


def _flat(belief: np.ndarray) -> np.ndarray:
    belief = np.asarray(belief, np.float32)
    return belief.reshape(belief.shape[0], -1).T


def suitability_accuracy(ctx: Context, beliefs: dict) -> dict:
    """Table 3: per predictor and life form, the share of test (cell, species) pairs called suitable or not
    as the truth says, and the mean absolute error of the suitability."""
    test = ctx.split == shared.SPLITS["test"]
    truth = ctx.site["suitability"].values[:, test]
    forms = ctx.site["life_form"].values.astype(str)
    out = {}
    for name, label in PREDICTORS.items():
        pred = np.asarray(beliefs[name])[:, test]
        row = {}
        for form in sorted(set(forms)):
            s = forms == form
            row[form] = float(((pred[s] >= SUITABLE) == (truth[s] >= SUITABLE)).mean())
        row["mean"] = float(np.mean([row[f] for f in sorted(set(forms))]))
        row["mae"] = float(np.abs(pred - truth).mean())
        out[label] = row
    return out


def current_vs_plan(ctx: Context, plan: np.ndarray) -> dict:
    """The city's existing vegetation against what the plan adds (totals per year)."""
    site, truth = ctx.site, ctx.truth
    cell = float(site.attrs.get("cell_m2", truth.area.max()))
    names = [str(f) for f in site["feature"].values]
    green = site["features"].values[names.index("green_fraction")]
    baseline = site["features"].values[names.index("baseline_co2")]
    green_m2 = float(np.nansum(green) * cell)
    current = {"green_m2": green_m2, "csp_total": float(np.nansum(baseline) * cell),
               "esv_total": green_m2 * float(truth.esv.mean()), "ic_total": 0.0}
    o = objectives(truth, plan)
    added = {"green_m2": float(o["planted_m2"]), "csp_total": float(o["csp_total"]),
             "esv_total": float(o["esv_total"]), "ic_total": float(o["ic_total"]), "bi": float(o["bi"]),
             "cer": float(o["cer"])}
    after = {k: current[k] + added[k] for k in current}
    change = {k: (after[k] / current[k] - 1.0) if current[k] else None for k in current}
    return {"current": current, "plan": added, "after": after, "relative_change": change,
            "notes": "current CSP from the NPP map (or green cover x a typical rate when there is none); current "
                     "ESV = existing green m2 x the table's mean ESV (its species are unknown, so BI and CER are "
                     "the plan's only); IC of what exists is sunk (0)."}


def evaluate(site_path, features_path, agents_dir, metrics_path, *, settings: Settings, seed: int = 0,
             progress: bool = False) -> dict:
    metrics_path = Path(metrics_path)
    out_dir = metrics_path.parent
    ctx = Context(site_path, features_path, agents_dir, settings, seed)
    beliefs, features = ctx.beliefs()

    table2, table4, fronts, plans = {}, {}, {}, {}
    for method in METHODS:
        with peak_rss() as mem:
            t0 = time.perf_counter()
            plan, order, info = ctx.plan(method, ctx.x, beliefs, features)
            seconds = time.perf_counter() - t0
        o = objectives(ctx.truth, plan)
        g = constraints(ctx.truth, plan)
        table2[method] = {**{k: float(o[k]) for k in OBJECTIVES}, "composite": float(o["composite"]),
                          "csp_total": float(o["csp_total"]), "planted_cells": int((plan > 0).sum()),
                          "planted_m2": float(o["planted_m2"]), "shannon": float(o["shannon"]),
                          "hard_constraints_met": bool(all(g[k] <= 1e-9 for k in HARD)),
                          "constraints": {k: float(v) for k, v in g.items()}}
        if info:  # the integer programs' solver report, less its measured time
            table2[method]["solver"] = {k: v for k, v in info.items() if k != "seconds"}
        # times are measured, so never the same twice: Table 4 only (timings.json), not metrics.json
        table4[method] = {"train_seconds": ctx.train_seconds(method), "plan_seconds": seconds,
                          "plan_peak_mb": mem["peak_mb"]}
        fronts[method] = prefix_fronts(ctx.truth, order, steps=FRONT_STEPS)
        plans[method] = plan
        log.info("%s: composite %.4f, %d cells, %.1f s", method, o["composite"], (plan > 0).sum(), seconds)

    pareto = _pareto(fronts, ctx.truth.budget, ctx.truth.norms["bi"])
    table3 = suitability_accuracy(ctx, beliefs)
    metrics = {
        "city_cells": list(ctx.truth.shape), "budget_cny": ctx.truth.budget, "settings": settings.as_dict(),
        "note": ctx.truth.note or None,
        "table2": table2, "table3": table3, "pareto": pareto,
        "current_vs_plan": current_vs_plan(ctx, plans[OURS]),
        "goal": {"best_csp": max(table2, key=lambda m: table2[m]["csp"]) == OURS,
                 "best_cer": max(table2, key=lambda m: table2[m]["cer"]) == OURS,
                 "largest_hypervolume": max(pareto, key=lambda m: pareto[m]["hypervolume"]) == OURS},
        "complexity": ctx.data["complexity"], "feature_training": {
            k: {"epochs": len(h["epoch"]), "val_mse": h["val_mse"][-1]} for k, h in ctx.data["history"].items()},
        "agents": {a: {"episodes": len(d["history"]["episode"]),
                       "composite_last_episode": d["history"]["composite"][-1]} for a, d in ctx.agents.items()},
    }
    _figures(out_dir, metrics)
    write_metrics(metrics_path, metrics)
    # Table 4's times and memory are measured, hence different on every run: a file of their own
    write_metrics(out_dir / "timings.json", {"table4": table4, "peak_rss_mb": {
        "features": ctx.feature_timings["peak_rss_mb"],
        **{f"agent_{a}": t["peak_rss_mb"] for a, t in ctx.agent_timings.items()}}})
    return {**metrics, "table4": table4}


def _pareto(fronts: dict, budget: float, bi_max: float) -> dict:
    """Each method's non-dominated prefix plans and hypervolume, one reference for all (module docstring)."""
    csp_max = max(float(p[:, 0].max()) for p in fronts.values() if len(p)) or 1.0
    scale = (csp_max, bi_max or 1.0, budget)
    out = {}
    for method, points in fronts.items():
        front = pareto_front(points) if len(points) else points
        out[method] = {"points": np.asarray(front).round(6).tolist(),
                       "hypervolume": float(hypervolume(front, (0.0, 0.0, budget), scale=scale)) if len(front) else 0.0}
    return out


def _figures(out_dir: Path, metrics: dict) -> None:
    t2 = metrics["table2"]
    quicklook.table(out_dir / "table.png", ["CSP", "BI", "ESV", "IC", "CER", "Composite", "HV"],
                    {m: [r["csp"], r["bi"], r["esv"], r["ic"], r["cer"], r["composite"],
                         metrics["pareto"][m]["hypervolume"]] for m, r in t2.items()},
                    "Table 2: CSP kgCO2/m2/yr, ESV CNY/m2/yr, IC CNY/m2 (per m2 planted)", highlight=OURS)
    # (CSP_total kg, BI, IC_total CNY) -> t CO2 / yr, BI, M CNY
    fronts = {m: np.asarray(p["points"]).reshape(-1, 3) * [1e-3, 1.0, 1e-6] for m, p in metrics["pareto"].items()}
    quicklook.pareto_fronts(out_dir / "pareto.png", fronts, ("CSP (t CO2 / yr)", "biodiversity index BI"),
                            "implementation cost (M CNY)",
                            "Fig. 2: Pareto fronts (non-dominated plans along each method's planting order)",
                            highlight=OURS)


def add_comparison_args(p, out: str) -> None:
    """The options of the comparison steps (evaluate, robustness); ``out`` names the JSON option."""
    p.add_argument("--site", required=True, metavar="NC", help=shared.SITE_HELP)
    p.add_argument("--features", required=True, metavar="PT", help=shared.FEATURES_HELP)
    p.add_argument("--agents", required=True, metavar="DIR", help="the folder of agent_<name>.pt")
    p.add_argument("--seed", type=int, default=0)
    add_settings_args(p)
    p.add_argument(f"--{out}", required=True, metavar="JSON", help="its folder also gets the PNGs")
    add_runtime_args(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_comparison_args(p, "metrics")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    m = evaluate(args.site, args.features, args.agents, args.metrics, settings=settings_of(args), seed=args.seed,
                 progress=args.progress)
    for name, row in m["table2"].items():
        print(f"vegplan evaluate {name:<12} CSP {row['csp']:.3f}  BI {row['bi']:.3f}  ESV {row['esv']:.1f}  "
              f"IC {row['ic']:.1f}  CER {row['cer']:.4f}  composite {row['composite']:.4f}")
    return 0
