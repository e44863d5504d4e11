"""Seed 003's evaluation: Tables 2-4 for IFCN and every baseline, and the side-by-side masks (Fig. 6).

* Table 2: pixel scores of each method on the held-out TEST chips (input resolution, 30 m labels).
* Table 3: per town of the region (connected urban areas of the label, `data.towns`), shape-index
  and edge-length differences (SID, TED) of the region mask against the 30 m label.
* Table 4: pixel scores and SID / TED on the town held out of training (`data.held_out_town`),
  in its bounding box plus a margin, so kappa sees the land around the town too.
* Complexity: parameters and GFLOPs per sample of every deep model, at the run's preset and at the
  paper's (counted on the meta device: no memory, no arithmetic).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import torch
from scipy import ndimage

from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...errors import InputError
from ...metrics.segmentation import binary_scores, mean_of, per_zone
from ...models import fcn
from .data import IGNORE, Region, fine_cells, normalise, on_fine_grid, towns
from .model import DEEP, LABELS, METHODS, PRODUCT_METHOD, add_input_args, load, load_model, prediction_files

HELD_OUT_MARGIN = 2  # region cells around the held-out town's bounding box
TABLE = {"precision": "P", "recall": "R", "f1": "F1", "kappa": "kappa", "oa": "OA", "mean_iu": "mIU",
         "fwavacc": "fwavacc"}


def town_zones(region: Region) -> np.ndarray:
    """Towns on the 30 m grid, each grown by one region cell so the label's town edges fall inside it."""
    zones = towns(region)
    dist, (ir, ic) = ndimage.distance_transform_edt(zones == 0, return_indices=True)
    grown = np.where(dist <= 1.5, zones[ir, ic], 0).astype(np.int32)
    return on_fine_grid(region, grown)


def complexity(method: str, preset: str) -> dict:
    size = fcn.PRESETS[preset]["input_size"]
    with torch.device("meta"):
        model = fcn.build(method, preset)
        return fcn.complexity(model, (1, 1, size, size))


def evaluate(aligned_dir, tiles, predictions: dict[str, tuple[str, str, str]], out_json, out_table, out_figure,
             *, preset: str) -> dict:
    """Metrics of every method from its (model, mask COG, test-chip .npy) files; JSON and two PNGs."""
    missing = sorted(set(METHODS) - set(predictions))
    if missing:
        raise ValueError(f"no prediction for {', '.join(missing)}")
    region, s = load(aligned_dir, tiles, preset, train=False)
    zones = town_zones(region)
    held = s.held
    window = None
    if held.town is not None:
        r0, c0, r1, c1 = held.window
        rows, cols = fine_cells(region)
        m = HELD_OUT_MARGIN
        window = np.ix_((rows >= r0 - m) & (rows < r1 + m), (cols >= c0 - m) & (cols < c1 + m))
    out: dict = {}
    masks = {}
    train_chips = 0
    for method in METHODS:
        model_path, mask_path, chips_path = predictions[method]
        model = load_model(model_path)
        with rasterio.open(mask_path) as src:
            mask = src.read(1)
        if mask.shape != region.label.shape:
            raise InputError(mask_path, f"mask of shape {mask.shape}, the label grid is {region.label.shape}")
        pred = (mask == 1).astype(np.uint8)
        masks[method] = pred
        test = np.load(chips_path)
        per_town = per_zone(pred, region.label, zones, region.fine_grid.res, ignore=IGNORE)
        entry = {
            "label": LABELS[method],
            "hyperparameters": model["hyperparameters"],
            "test_chips": binary_scores(test, s.y_test, ignore=IGNORE) if len(test) else None,
            "towns": per_town, "mean_sid": mean_of(per_town, "sid"), "mean_ted": mean_of(per_town, "ted"),
            "urban_share": float(pred[region.label != IGNORE].mean()),
        }
        if window is not None:
            entry["held_out_town"] = {**binary_scores(pred[window], region.label[window], ignore=IGNORE),
                                      **{k: per_town[held.town][k] for k in ("sid", "ted")}}
        if model["history"]:
            entry["training"] = {"epochs": len(model["history"]["epoch"]),
                                 "final_train_loss": model["history"]["train_loss"][-1]}
        if method == PRODUCT_METHOD:
            train_chips = int(model["train_chips"])
        if method in DEEP:
            entry["complexity"] = {"run": complexity(method, preset), "paper": complexity(method, "paper")}
        out[method] = entry

    metrics = {
        "product": "urban", "year": region.year, "preset": preset, "product_method": PRODUCT_METHOD,
        "chips": {"train": train_chips, "test": len(s.y_test), "input_size": s.input_size,
                  "chip": s.chip, "dropped_for_held_out_town": list(held.dropped)},
        "towns": int(zones.max()),
        "held_out_town": ({"town": held.town, "cells": int(held.mask.sum()), "bounds": list(held.bounds),
                           "margin_cells": HELD_OUT_MARGIN} if held.town is not None else {"town": None, "reason": held.reason}),
        "methods": out,
        "goal": _goal(out),
        "choices": [
            "label: a region cell is urban when at least half of its 30 m label pixels are",
            "towns: 8-connected urban cells of the region grid, numbered by size; town 1 is the main city",
            "region mask: chip windows every chip/4 pixels, blended, resampled to 30 m, cut at p >= 0.5",
            "SI: FRAGSTATS area-weighted SHAPE; TE: FRAGSTATS total edge; SID/TED relative differences in %",
        ],
    }
    write_metrics(out_json, metrics)
    _figures(region, metrics, masks, out_table, out_figure)
    return metrics


def _goal(methods: dict) -> dict:
    """Does IFCN score the highest kappa and F1, as in the paper's Table 2 (and on the held-out town)?"""
    goal = {}
    for where in ("test_chips", "held_out_town"):
        scored = {m: v[where] for m, v in methods.items() if v.get(where)}
        if PRODUCT_METHOD in scored:
            for key in ("kappa", "f1"):
                best = max(scored, key=lambda m: (scored[m][key], m == PRODUCT_METHOD))
                goal[f"{where}_{key}"] = {"best": best, "ifcn_highest": best == PRODUCT_METHOD}
    return goal


def _figures(region: Region, metrics: dict, masks: dict, out_table, out_figure) -> None:
    methods = metrics["methods"]
    columns = [f"{v} chips" for v in TABLE.values()] + ["F1 town", "kappa town", "SID %", "TED %", "Mparams", "GFLOPs"]
    rows = {}
    for method, m in methods.items():
        test, town = m["test_chips"] or {}, m.get("held_out_town") or {}
        paper = m.get("complexity", {}).get("paper", {})
        rows[m["label"]] = ([test.get(k) for k in TABLE] + [town.get("f1"), town.get("kappa"), m["mean_sid"],
                            m["mean_ted"], paper.get("params", 0) / 1e6 if paper else None, paper.get("gflops")])
    quicklook.table(out_table, columns, rows, f"Urban construction land {metrics['year']}: test chips (Table 2), "
                    "held-out town (Table 4), mean SID/TED over towns (Table 3); complexity at the paper preset",
                    highlight=methods[PRODUCT_METHOD]["label"], digits=2)
    # Fig. 6: the main city with a margin, night lights, label and every method's mask
    zones = towns(region)
    ys, xs = np.nonzero(zones == 1) if zones.max() else (np.array([0, region.grid.height - 1]),) * 2
    m = 4
    r0, r1 = max(ys.min() - m, 0), min(ys.max() + 1 + m, region.grid.height)
    c0, c1 = max(xs.min() - m, 0), min(xs.max() + 1 + m, region.grid.width)
    rows_f, cols_f = fine_cells(region)
    win = np.ix_((rows_f >= r0) & (rows_f < r1), (cols_f >= c0) & (cols_f < c1))
    fine = region.fine_grid
    ri, ci = np.nonzero(win[0].ravel())[0], np.nonzero(win[1].ravel())[0]
    sub = type(fine)(fine.epsg, fine.xmin + ci[0] * fine.res, fine.ymax - ri[0] * fine.res, fine.res,
                     len(ci), len(ri), fine.wkt)
    lights = on_fine_grid(region, normalise(region.radiance), fill=np.nan)[win]
    panels = {"night lights (log)": lights, "label": region.label[win]}
    panels.update({methods[k]["label"]: v[win] for k, v in masks.items()})
    quicklook.panels(out_figure, panels, sub, f"Urban construction land {metrics['year']}, main city: "
                     "label and every method (Fig. 6)", masks=set(panels) - {"night lights (log)"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_args(p)
    p.add_argument("--predictions", required=True, metavar="DIR", help="resources/<run>/urban/<city> (<method>/*)")
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--table", required=True, metavar="PNG")
    p.add_argument("--figure", required=True, metavar="PNG")


def main(args: argparse.Namespace) -> int:
    root = Path(args.predictions)
    files = {m: (root / m / "model.pt", *prediction_files(root, m)) for m in METHODS}
    metrics = evaluate(args.aligned, args.tiles, files, args.metrics, args.table, args.figure, preset=args.preset)
    for method, m in metrics["methods"].items():
        test = m["test_chips"] or {}
        print(f"urban evaluate {method:<10} test F1 {test.get('f1', float('nan')):.3f} "
              f"kappa {test.get('kappa', float('nan')):.3f}  mean SID {m['mean_sid'] or float('nan'):.1f} %")
    return 0
