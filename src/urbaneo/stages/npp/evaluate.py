"""Evaluation of the NPP product (seed 000, section IV): against the reference, beside the baselines.

* NPP against the reference product (MOD17), on the reference's own grid (our 30 m maps averaged
  onto its cells): MAE, RMSE, R² and bias (ours minus reference), per season and per year.
  MOD17A2H's 8-day PsnNet is summed over the 8-day composites starting in each season (a season
  counts only when all of them are there) and turned into g C m-2; an annual reference (MOD17A3H)
  is compared per year only.
* The held-out last year, the paper's long-term protocol: the st-MAE route (models trained on the
  earlier years, PAR forecast by the RNN) beside the NPP function on conventionally gap-filled
  composites (what st-MAE's reconstruction adds) and the LR / MLP / DBN baselines
  (``baselines``).
* st-MAE's reconstruction MSE on the held-out year's clear chips (standardised pixels), per composite.
* PAR RNN, Table 3: L1 and loss ratio (L1 / mean PAR) of the held-out year's forecast, per granularity.
* Compute cost, Table 4: parameters and GFLOPs per image (torch.utils.flop_counter) of each st-MAE,
  of the demo and paper architectures, CO2 equivalent by eq. 9, training time and its price.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ...align import open_aligned
from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...grid import Grid, grid_of, warp_stack
from ...seasons import SEASONS
from . import baselines, function
from .data import KINDS, add_common_args, model_files
from .predict import open_maps, season_sums

CO2EE_PER_GFLOP = 5.22e-9  # eq. 9: "1 GFLOPS = 5.22e-9 CO2EE" (Table 4's column is 1.1 x GFLOPs; see compute_cost)
GPU_HOUR_PRICE = 1.58  # RMB, the paper's cheapest rented GPU hour (section IV-D)


def scores(pred, ref) -> dict:
    """MAE, RMSE, R² and bias (pred - ref) over the cells finite in both; ``n`` cells."""
    pred, ref = np.asarray(pred, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(pred) & np.isfinite(ref)
    if not ok.any():
        return {"mae": None, "rmse": None, "r2": None, "bias": None, "n": 0}
    d = pred[ok] - ref[ok]
    ss = ((ref[ok] - ref[ok].mean()) ** 2).sum()
    return {"mae": float(np.abs(d).mean()), "rmse": float(np.sqrt((d ** 2).mean())),
            "r2": float(1 - (d ** 2).sum() / ss) if ss > 0 else None, "bias": float(d.mean()), "n": int(ok.sum())}


def reference_seasons(ref, years: list[int], southern: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """MOD17 -> (seasonal (Y, 4, y, x) or None for an annual product, annual (Y, y, x)), g C m-2."""
    times = pd.DatetimeIndex(ref["time"].values)
    values = ref.values.astype(np.float64) * 1000.0  # kg -> g C m-2
    if ref.attrs.get("period") == "annual":
        annual = np.stack([values[times.year == y][0] if (times.year == y).any() else np.full(values.shape[1:], np.nan)
                           for y in years])
        return None, annual
    def composites(year):  # MOD17's 8-day composites start on day 1, 9, ... of each year
        return pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="8D")

    seasonal = season_sums(values, times, years, southern, composites)
    return seasonal, seasonal.sum(axis=1)


def to_reference(maps: np.ndarray, grid: Grid, ref_grid: Grid) -> np.ndarray:
    """(..., H, W) on the base grid -> (..., h, w) cell means on the reference grid (NaN skipped)."""
    return warp_stack(maps, grid, ref_grid, resampling="average").astype(np.float32)


def _features(composite: np.ndarray, par: np.ndarray, green: np.ndarray) -> np.ndarray:
    """(4 seasons, B, h, w), (4, h, w), (h, w) -> (4 * h * w, B + 1 + 1 + 4) baseline features."""
    seasons, bands = composite.shape[:2]
    cells = composite.shape[-2] * composite.shape[-1]
    rows = []
    for s in range(seasons):
        onehot = np.zeros((cells, 4))
        onehot[:, s] = 1
        rows.append(np.column_stack([composite[s].reshape(bands, -1).T, par[s].ravel(), green.ravel(), onehot]))
    return np.concatenate(rows)


def _calibrated(ds, agg, ref_seasonal: np.ndarray, held: int, bands: tuple[str, ...], composites: str = "composite"
                ) -> tuple[np.ndarray, dict]:
    """The st-MAE route with eq. 5's slope and intercept fitted on the training years' reference
    (the paper's own future work: "adjust the parameters to be adaptive"), by least squares on the
    reference grid, where a cell's NPP is slope x mean(PRI x APAR) + intercept x vegetated share."""
    comp = ds[composites].values
    par = ds["par"].values.copy()
    par[held] = ds["par_heldout_forecast"].values  # the held-out year's PAR is not known yet
    term, veg = function.terms(*(comp[:, :, bands.index(b)] for b in ("blue", "green", "red", "nir")), par)
    term, veg = agg(term), agg(veg)
    x = np.column_stack([term[:held].ravel(), veg[:held].ravel()])
    y = ref_seasonal[:held].ravel()
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    (slope, intercept), *_ = np.linalg.lstsq(x[ok], y[ok], rcond=None)
    return slope * term[held] + intercept * veg[held], {
        "slope": float(slope), "intercept": float(intercept), "published": [function.SLOPE, function.INTERCEPT],
        "fitted_on": [int(v) for v in ds["year"].values[:held]]}


def heldout_comparison(ds, grid: Grid, ref_grid: Grid, ref_seasonal: np.ndarray, seed: int) -> dict:
    """The held-out year's NPP per method (st-MAE route, NPP function on conventional composites, baselines)."""
    held = ds.sizes["year"] - 1
    agg = lambda a: to_reference(a, grid, ref_grid)  # noqa: E731
    conventional_ref = agg(ds["conventional"].values)
    par_ref = agg(ds["par"].values)
    par_fc_ref = agg(ds["par_heldout_forecast"].values)
    green_ref = agg(ds["green"].values)
    bands = tuple(str(b) for b in ds["band"].values)
    truth = ref_seasonal[held]
    predictions = {"st_mae": agg(ds["npp_heldout_forecast_par"].values)}
    predictions["st_mae_calibrated"], calibration = _calibrated(ds, agg, ref_seasonal, held, bands)
    conv = conventional_ref[held]
    predictions["npp_function_conventional"] = function.npp(
        *(conv[:, bands.index(b)] for b in ("blue", "green", "red", "nir")), par_fc_ref)
    predictions["npp_function_conventional_calibrated"] = _calibrated(ds, agg, ref_seasonal, held, bands,
                                                                      "conventional")[0]
    x_train = np.concatenate([_features(conventional_ref[i], par_ref[i], green_ref) for i in range(held)])
    y_train = np.concatenate([ref_seasonal[i].reshape(4, -1) for i in range(held)]).ravel()
    keep = np.isfinite(y_train)
    x_test = _features(conv, par_fc_ref, green_ref)
    for method in baselines.METHODS:
        predictions[method] = baselines.fit_predict(method, x_train[keep], y_train[keep], x_test, seed
                                                        ).reshape(truth.shape)
    # every method on the same cells: those the 30 m maps cover (edge cells of the reference grid
    # reach past the AOI) and the reference has
    common = np.isfinite(truth) & np.all([np.isfinite(p) for p in predictions.values()], axis=0)
    predictions = {m: np.where(common, p, np.nan) for m, p in predictions.items()}
    return {"year": int(ds["year"].values[held]), "train_samples": int(keep.sum()), "calibration": calibration,
            "methods": {m: {"per_season": {SEASONS[s]: scores(p[s], truth[s]) for s in range(4)},
                            "season_cells": scores(p, truth), "annual": scores(p.sum(0), truth.sum(0))}
                        for m, p in predictions.items()},
            "_maps": predictions}


def par_table(par_daily, years: list[int], *, preset: str, seed: int, epochs: int | None) -> dict:
    """Table 3: the RNN trained on the city-mean series before the last year, per granularity."""
    from ...models import par_rnn
    from ...readers.par import WINDOW_DAYS, aggregate, city_series

    out = {}
    for days in WINDOW_DAYS:
        sums = city_series(aggregate(par_daily, days))
        sums = sums[(sums.index.year >= years[0]) & (sums.index.year <= years[-1])]
        holdout = int((sums.index.year == years[-1]).sum())
        if holdout == 0 or holdout >= len(sums) - 1:
            out[f"{days}d"] = None
            continue
        result = par_rnn.evaluate(sums.to_numpy(), holdout=holdout, preset=preset, seed=seed, epochs=epochs)
        out[f"{days}d"] = {k: result[k] for k in ("par_mean", "l1", "loss_ratio", "persistence_l1")}
        out[f"{days}d"]["context"] = result["hyperparameters"]["context"]
    return out


def gflops_per_image(model, img: int) -> float:
    """Forward GFLOPs of one image through the st-MAE (encoder on the visible patches + decoder)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    x = torch.zeros(1, model.channels, img, img)
    mask = model.choose_mask(1, None, torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.zeros(1, dtype=torch.long), mask)
    return counter.get_total_flops() / 1e9


def train_seconds(benchmark_tsv) -> float | None:
    """Wall time of a training job from its Snakemake benchmark file (not in the model file, which
    stays byte-identical between runs)."""
    try:
        return float(pd.read_csv(benchmark_tsv, sep="\t")["s"].iloc[-1])
    except (OSError, KeyError, IndexError, ValueError, pd.errors.ParserError):
        return None


def timings(benchmarks: dict[str, str | Path], price: float = GPU_HOUR_PRICE) -> dict:
    """Table 4's measured part: each st-MAE's training wall time and its price. Kept out of
    metrics.json, which is byte-identical between runs: wall times are not."""
    out = {}
    for kind, path in benchmarks.items():
        wall = train_seconds(path)
        out[kind] = {"train_seconds": wall, "train_hours": None if wall is None else wall / 3600,
                     "cost": None if wall is None else wall / 3600 * price}
    return {"price_per_gpu_hour": price, "currency": "RMB", "models": out}


def compute_cost(model_files: dict[str, str | Path], price: float = GPU_HOUR_PRICE) -> dict:
    """Table 4 for the trained models and for the paper architecture (built, not trained)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ...models import st_mae
    from ...presets import ST_MAE
    from .train import load_model

    rows = {}
    for kind, path in model_files.items():
        model, _, data = load_model(path)
        hp = data["hyperparameters"]
        g = gflops_per_image(model, hp["img"])
        images = data["train_chips"] * len(data["history"].get("epoch", []))
        train_gflop = 3 * g * images  # forward + backward ~ 3 forward passes
        rows[f"st-MAE {kind} ({data['preset']})"] = {
            "params_m": st_mae.parameter_count(model) / 1e6, "gflops_per_image": g, "input": hp["img"],
            "train_images": images, "train_gflop": train_gflop, "co2ee_eq9": train_gflop * CO2EE_PER_GFLOP,
            "co2ee_table4": 1.1 * g}
    for preset in ("paper", "paper_large"):
        model = st_mae.build(ST_MAE[preset])
        g = gflops_per_image(model, ST_MAE[preset]["img"])
        rows[f"st-MAE ({preset}, not trained here)"] = {
            "params_m": st_mae.parameter_count(model) / 1e6, "gflops_per_image": g, "input": ST_MAE[preset]["img"],
            "co2ee_table4": 1.1 * g, "paper_epoch_minutes": 6.0,
            "paper_cost_two_models": 2 * ST_MAE[preset]["epochs"] * 6 / 60 * price}
        del model
    from ...models.par_rnn import ParRNN
    from ...presets import PAR_RNN

    rnn = ParRNN(PAR_RNN["paper"]["hidden"])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        rnn(torch.zeros(1, PAR_RNN["paper"]["context"], 1))
    hidden, steps = PAR_RNN["paper"]["hidden"], PAR_RNN["paper"]["context"]
    recurrent = 2 * steps * hidden * (1 + hidden)  # the RNN cell's products: flop_counter counts only the head
    rows["PAR RNN (paper)"] = {"params_m": st_mae.parameter_count(rnn) / 1e6,
                               "gflops_per_image": (counter.get_total_flops() + recurrent) / 1e9,
                               "input": f"{PAR_RNN['paper']['context']} windows"}
    return {"price_per_gpu_hour": price, "currency": "RMB", "models": rows,
            "note": "eq. 9 applied to the training FLOPs (3 x forward per image and epoch); Table 4's "
                    "column is 1.1 x GFLOPs per image, reported as co2ee_table4 for comparison"}


def evaluate(maps_path, aligned_dir, model_files: dict[str, str | Path], metrics_out, table_png, figure_png, *,
             preset: str = "demo", seed: int = 0, max_epochs: int | None = None,
             price: float = GPU_HOUR_PRICE, benchmarks: dict[str, str | Path] | None = None,
             timings_out=None) -> dict:
    ds, grid = open_maps(maps_path)
    aligned_dir = Path(aligned_dir)
    ref = open_aligned(aligned_dir / "npp_reference.zarr", "native")["npp"].load()
    ref_grid = grid_of(ref)
    years = [int(y) for y in ds["year"].values]
    seasonal, annual = reference_seasons(ref, years, bool(ds.attrs["southern"]))
    ours = to_reference(ds["npp"].values, grid, ref_grid)
    per_year = {str(y): {"annual": scores(ours[i].sum(0), annual[i])} for i, y in enumerate(years)}
    if seasonal is not None:
        for i, y in enumerate(years):
            per_year[str(y)].update({SEASONS[s]: scores(ours[i, s], seasonal[i, s]) for s in range(4)})
        comparison = heldout_comparison(ds, grid, ref_grid, seasonal, seed)
    else:
        comparison = None
    par = open_aligned(aligned_dir / "par.zarr", "coarse")["par"].load()
    from .train import load_model

    mae = {}
    for kind, path in model_files.items():
        data = load_model(path)[2]
        mae[kind] = {"heldout_mse": data["heldout_mse"], "heldout_chips": data["heldout_chips"],
                     "train_chips": data["train_chips"], "mask_mode": data["hyperparameters"]["mask_mode"]}
    metrics = {
        "units": "g C m-2 per season (annual: per year); bias = ours - reference",
        "reference": {"product": ref.attrs.get("product"), "period": ref.attrs.get("period"),
                      "grid_res_m": ref_grid.res, "cells": int(np.prod(ref_grid.shape))},
        "per_year": per_year, "heldout": comparison and {k: v for k, v in comparison.items() if k != "_maps"},
        "st_mae": mae, "par_rnn_table3": par_table(par, years, preset=preset, seed=seed, epochs=max_epochs),
        "compute_table4": compute_cost(model_files, price),
        "missing_seasons": ds.attrs["missing_seasons"], "osm_mask": ds.attrs["osm_mask"],
        "choices": function.CHOICES,
    }
    write_metrics(metrics_out, metrics)
    if timings_out:
        write_metrics(timings_out, timings(benchmarks or {}, price))
    _table(metrics, table_png)
    _figure(comparison, seasonal, ref_grid, figure_png, years[-1])
    return metrics


def _table(metrics: dict, path) -> None:
    held = metrics["heldout"]
    columns = ["MAE", "RMSE", "R²", "bias", "annual MAE"]
    if held:
        rows = {name: [m["season_cells"]["mae"], m["season_cells"]["rmse"], m["season_cells"]["r2"],
                       m["season_cells"]["bias"], m["annual"]["mae"]] for name, m in held["methods"].items()}
        title = f"NPP {held['year']} (held out) vs reference, g C m-2 per season"
    else:
        rows = {year: [None, None, None, None, v["annual"]["mae"]] for year, v in metrics["per_year"].items()}
        title = "NPP vs annual reference, g C m-2 yr-1"
    quicklook.table(path, columns, rows, title, highlight="st_mae")


def _figure(comparison: dict | None, seasonal, ref_grid: Grid, path, year: int) -> None:
    maps = {}
    if comparison:
        common = np.isfinite(comparison["_maps"]["st_mae"].sum(0))  # the cells every method is scored on
        maps[f"reference {year} (annual)"] = np.where(common, seasonal[-1].sum(0), np.nan)
        maps.update({f"{name} (annual)": m.sum(0) for name, m in comparison["_maps"].items()})
    else:
        maps["no seasonal reference"] = np.zeros(ref_grid.shape)
    quicklook.panels(path, maps, ref_grid, f"NPP {year} on the reference grid", columns=4, cmap="YlGn", shared=True,
                     units="g C m-2 yr-1")


# --- the command: urbaneo npp evaluate -----------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_args(p, maps=True)
    p.add_argument("--price", type=float, default=1.58, help="price of a GPU hour (Table 4)")
    p.add_argument("--benchmarks", nargs=len(KINDS), metavar="TSV",
                   help="Snakemake benchmark files of the two training jobs (rgb, false_colour): their wall time")
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--timings", metavar="JSON", help="the training wall times and their price (not reproducible)")
    p.add_argument("--table", required=True, metavar="PNG")
    p.add_argument("--figure", required=True, metavar="PNG")


def main(args: argparse.Namespace) -> int:
    bench = dict(zip(KINDS, args.benchmarks)) if args.benchmarks else None
    metrics = evaluate(args.maps, args.aligned, model_files(args.models), args.metrics, args.table, args.figure,
                       preset=args.preset, seed=args.seed, max_epochs=args.max_epochs, price=args.price,
                       benchmarks=bench, timings_out=args.timings)
    held = metrics["heldout"]
    if held:
        for method, m in held["methods"].items():
            s = m["season_cells"]
            print(f"npp evaluate {held['year']} {method:<26} MAE {s['mae']:8.2f}  RMSE {s['rmse']:8.2f}  "
                  f"bias {s['bias']:8.2f}  (g C m-2 per season, {s['n']} cells x seasons)")
    return 0
