"""``urbaneo vegplan robustness`` (rule vegplan_robustness), Fig. 4 of seed 001: every method of the
comparison (evaluate.py) plans again on inputs perturbed by uniform multiplicative noise of 5-20 % (the
normalised inputs and the index belief), with its trained models, and the loss of composite against its
unperturbed plan is reported. Apart from the evaluation (it plans the clean case again) so that the two
run side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ..options import set_threads
from .evaluate import METHODS, Context, add_comparison_args
from .objectives import Settings, objectives, settings_of

PERTURBATIONS = (0.05, 0.10, 0.15, 0.20)


def robustness(site_path, features_path, agents_dir, out, *, settings: Settings, seed: int = 0,
               progress: bool = False) -> dict:
    """Fig. 4: every method plans again on perturbed inputs; the composite it loses against its own
    unperturbed plan, per perturbation level. Written to ``out`` (JSON) and beside it as robustness.png.
    Apart from :func:`evaluate` (it plans the clean case again) so that the two run side by side."""
    from tqdm.auto import tqdm

    ctx = Context(site_path, features_path, agents_dir, settings, seed)
    beliefs, features = ctx.beliefs()
    clean = {m: float(objectives(ctx.truth, ctx.plan(m, ctx.x, beliefs, features)[0])["composite"]) for m in METHODS}
    rng = np.random.default_rng(seed + 1)
    result = {m: {"perturbation": list(PERTURBATIONS), "composite": [], "reduction_pct": []} for m in METHODS}
    for p in tqdm(PERTURBATIONS, desc="robustness", disable=not progress):
        x = np.clip(ctx.x * (1 + rng.uniform(-p, p, ctx.x.shape)), 0, 1).astype(np.float32)
        noisy_rule = np.clip(ctx.rule * (1 + rng.uniform(-p, p, ctx.rule.shape)), 0, 1).astype(np.float32)
        beliefs, features = ctx.beliefs(x, noisy_rule)
        for method in METHODS:
            plan, _, _ = ctx.plan(method, x, beliefs, features)
            c = float(objectives(ctx.truth, plan)["composite"])
            result[method]["composite"].append(c)
            result[method]["reduction_pct"].append(100.0 * (clean[method] - c) / clean[method] if clean[method] else 0.0)
    out = Path(out)
    write_metrics(out, {"robustness": result, "perturbations": list(PERTURBATIONS),
                        "noise": "uniform multiplicative, x (1 + U(-p, p)), on the normalised inputs and the index "
                                 "belief; scored with the unperturbed truth"})
    quicklook.lines(out.with_suffix(".png"),
                    {m: ([100 * p for p in r["perturbation"]], r["reduction_pct"]) for m, r in result.items()},
                    "Fig. 4: composite lost under input perturbation", xlabel="perturbation (%)",
                    ylabel="composite reduction (%)")
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_comparison_args(p, "out")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    r = robustness(args.site, args.features, args.agents, args.out, settings=settings_of(args), seed=args.seed,
                   progress=args.progress)
    for name, row in r.items():
        print(f"vegplan robustness {name:<12} composite lost (%) " + " ".join(f"{v:6.2f}" for v in row["reduction_pct"]))
    return 0
