"""Seed 002's evaluation (Tables 1-2, Figures 4-5) on the city's test scenes, beside a random forest.

* Pure test scenes through PSC-Net: confusion matrix (row-normalised PNG, Figure 4), OA, precision
  and recall (eqs. 3-5, ``metrics.classification``) and per class.
* Mixed test scenes through MSU-Net: abundance MAE (eq. 6), overall and per class.
* Pure test scenes through MSU-Net, the class being the largest abundance (the paper's
  pseudo-classification, Figure 5): OPA, P-precision, P-recall.
* The same on the same split for the baseline a user would otherwise pick: a random forest on
  per-patch spectral and texture statistics (``baselines``).
* The published map against the label map, on the map cells inside test scenes (a cell's label is
  its majority class; cells less than half labelled are left out).
* Complexity at the run's preset and at the paper's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio

from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...errors import InputError
from ...lcz_classes import CLASSES
from ...metrics.classification import abundance_mae, abundance_mae_per_class, confusion, scores
from ...models import su_net
from ..options import add_runtime_args, set_threads
from .baselines import RandomForestBaseline
from .data import Scenes, load_scenes
from .model import CELLS_PER_SCENE, MODEL_HELP, NODATA, load_model, scene_outputs
from .predict import map_files

# seed 002, Table 2, experiment A (random sampling in Wuhan)
PAPER = {"oa": 0.9678, "precision": 0.9679, "recall": 0.9678, "opa": 0.9684, "p_precision": 0.9688,
         "p_recall": 0.9684, "mae": 0.0495}
ROWS = {"oa": "OA", "precision": "Precision", "recall": "Recall", "opa": "OPA", "p_precision": "P-precision",
        "p_recall": "P-Recall", "mae": "MAE"}


def _route(truth_pure: np.ndarray, classified: np.ndarray, pseudo: np.ndarray, fractions: np.ndarray,
           abundances: np.ndarray) -> dict:
    """Table 2's numbers for one method from its outputs on the test scenes."""
    cm, pcm = confusion(truth_pure, classified), confusion(truth_pure, pseudo)
    pure, pseudo_scores = scores(cm), scores(pcm)
    out = {"pure": pure, "pseudo": pseudo_scores, "confusion": cm.tolist(), "pseudo_confusion": pcm.tolist(),
           "mae": abundance_mae(fractions, abundances) if len(fractions) else None,
           "mae_per_class": {c: float(v) for c, v in zip(CLASSES, abundance_mae_per_class(fractions, abundances))}
           if len(fractions) else {}}
    # Table 2's Precision differs from its OA: the support-weighted mean of the classes' precisions
    out["table2"] = {"oa": pure["oa"], "precision": pure["precision_weighted"], "recall": pure["recall"],
                     "opa": pseudo_scores["oa"], "p_precision": pseudo_scores["precision_weighted"],
                     "p_recall": pseudo_scores["recall"], "mae": out["mae"]}
    return out


def map_scores(map_path, scenes: Scenes) -> dict:
    """The class map against the label map on the map cells lying inside test scenes."""
    try:
        with rasterio.open(map_path) as src:
            codes = src.read(1)
    except rasterio.errors.RasterioError as err:
        raise InputError(map_path, f"cannot be read as the LCZ map ({err})") from None
    labels = scenes.label
    size = scenes.x.shape[-1]
    cell = size // CELLS_PER_SCENE
    cells = set()
    for r0, c0 in zip(scenes.rows[scenes.split == "test"], scenes.cols[scenes.split == "test"]):
        cells.update((r, c) for r in range(-(-r0 // cell), (r0 + size) // cell)
                     for c in range(-(-c0 // cell), (c0 + size) // cell))
    truth, pred = [], []
    for r, c in sorted(cells):
        counts = np.bincount(labels[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell].ravel(), minlength=18)[1:18]
        if counts.sum() >= 0.5 * cell * cell and r < codes.shape[0] and c < codes.shape[1] and codes[r, c] != NODATA:
            truth.append(int(counts.argmax()) + 1)
            pred.append(int(codes[r, c]))
    s = scores(confusion(np.array(truth, int), np.array(pred, int)))
    return {"cells": s["n"], "cell_m": float(scenes.grid.res * cell), "oa": s["oa"],
            "precision_weighted": s["precision_weighted"]}


def evaluate(model_path, aligned_dir, tiles, map_path, out_json, table_png, confusion_png, pseudo_png,
             baseline_png, *, seed: int, progress: bool = True) -> dict:
    """Every metric above into ``out_json``; Table 2 and the three confusion matrices as PNGs."""
    model, data = load_model(model_path)
    hp = data["hyperparameters"]
    scenes = load_scenes(aligned_dir, tiles, hp["pure_share"])
    train, test = scenes.subset(scenes.split == "train"), scenes.subset(scenes.split == "test")
    if not len(test):
        raise InputError(tiles, "has no test scene to evaluate on")
    pure = test.pure
    truth = test.dominant[pure]
    probs, abundances = scene_outputs(model, data, test.x)
    su = _route(truth, probs[pure].argmax(1) + 1, abundances[pure].argmax(1) + 1, test.fractions[~pure],
                abundances[~pure])
    rf = RandomForestBaseline(seed=seed).fit(train.x, train.fractions, train.pure)
    rf_abundances = rf.unmix(test.x)
    baseline = _route(truth, rf.classify(test.x[pure]) if pure.any() else np.zeros(0, int),
                      rf_abundances[pure].argmax(1) + 1, test.fractions[~pure], rf_abundances[~pure])
    baseline["hyperparameters"] = rf.hyperparameters()

    labels = [f"{c} {CLASSES[c][0]}" for c in CLASSES]
    n_pure = int(pure.sum())
    quicklook.confusion(confusion_png, np.array(su["confusion"]), labels,
                        f"SU-Net PSC-Net, {n_pure} pure test scenes: OA {su['pure']['oa']:.3f} (Fig. 4)")
    quicklook.confusion(pseudo_png, np.array(su["pseudo_confusion"]), labels,
                        f"SU-Net MSU-Net pseudo-classification, {n_pure} pure test scenes: OPA {su['pseudo']['oa']:.3f} (Fig. 5)")
    quicklook.confusion(baseline_png, np.array(baseline["confusion"]), labels,
                        f"Random forest, {n_pure} pure test scenes: OA {baseline['pure']['oa']:.3f}")
    quicklook.table(table_png, ["SU-Net", "random forest", "paper (exp. A)"],
                    {ROWS[k]: [su["table2"][k], baseline["table2"][k], PAPER[k]] for k in ROWS},
                    f"Table 2: {n_pure} pure, {int((~pure).sum())} mixed test scenes", digits=4)
    metrics = {
        "table2": {"su_net": su["table2"], "random_forest": baseline["table2"], "paper_experiment_a": PAPER},
        "su_net_better": {"oa": su["table2"]["oa"] > baseline["table2"]["oa"],
                          "mae": (su["table2"]["mae"] or np.inf) < (baseline["table2"]["mae"] or np.inf)},
        "su_net": su, "random_forest": baseline,
        "map": map_scores(map_path, scenes),
        "scenes": data["scenes"], "label_year": data["label_year"], "pure_share": hp["pure_share"],
        "paper_mixed_to_pure": 2.0,
        "classes_without_pure_scenes": data["classes_without_pure_scenes"],
        "training": {"hyperparameters": hp, "task_weights": dict(zip(su_net.TASKS, data["task_weights"])),
                     "epochs": len(data["history"]["epoch"]), "final_train_loss": data["history"]["train_loss"][-1],
                     "final_val_loss": data["history"]["val_loss"][-1], "pretrained": data["pretrained"]},
        "complexity": {"run": su_net.complexity(data["preset"]), "paper": su_net.complexity("paper")},
    }
    write_metrics(out_json, metrics)
    return metrics


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PT", help=MODEL_HELP)
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2, lcz_labels)")
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/lcz.parquet")
    p.add_argument("--seed", type=int, default=0, help="the random forest's seed")
    p.add_argument("--metrics", required=True, metavar="JSON", help="its folder also gets the PNGs")
    add_runtime_args(p)


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    out = Path(args.metrics).parent
    m = evaluate(args.model, args.aligned, args.tiles, map_files(Path(args.model).parent)[0], args.metrics,
                 out / "table.png", out / "confusion.png", out / "pseudo_confusion.png", out / "baseline_confusion.png",
                 seed=args.seed)
    for name, t in m["table2"].items():
        print(f"lcz evaluate {name:<18} OA {t['oa']:.3f}  OPA {t['opa']:.3f}  MAE {t['mae'] or float('nan'):.4f}")
    return 0
