"""The long-term protocol of seed 000 (section IV-E-2, Figs. 7 and 14): a model trained on the years
up to k estimates every later year, with nothing of those years but their (cloudy) imagery: st-MAE
trained up to k fills the gaps, the RNN trained on PAR up to k forecasts the PAR. The paper's BJ3,
BJ4, BJ5 are k = the third, fourth, fifth year; here every k from the first year to the last but
one (that last one is the product's own model, reused). Reported: per model and estimated year the
absolute error against the reference (MAE and bias of seasonal NPP, g C m-2 per season).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ...align import open_aligned
from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...grid import grid_of, warp_stack
from ..options import add_runtime_args, set_threads
from . import evaluate, predict
from .data import add_common_args, model_files
from .train import train


def estimate_after(acq, grid, years: list[int], k: int, models: dict[str, Path], observed, par_grid,
                   par_years: list[int], *, preset: str, seed: int, max_epochs) -> np.ndarray:
    """(Y - i, 4, H, W) NPP of the years after ``k`` from models trained up to ``k``, PAR forecast."""
    filled, _ = predict.filled_acquisitions(acq, models)
    later = [y for y in years if y > k]
    composites = predict.seasonal_median(filled, acq.year, acq.season, later)
    forecast = predict.forecast_par(observed, par_years.index(k) + 1, preset=preset, seed=seed, epochs=max_epochs)
    par = warp_stack(forecast["sums"][[par_years.index(y) for y in later]], par_grid, grid, resampling="bilinear")
    return predict.npp_maps(composites, par, acq.bands)


def longterm(aligned_dir, models: dict[str, str | Path], metrics_out, figure_png, *, preset: str = "demo",
             seed: int = 0, max_epochs: int | None = None, pretrained: str | None = None, osm: bool = True) -> dict:
    """Absolute errors of every model k (``models``: the product's, trained up to the last year but one)."""
    acq, grid, southern, years = predict.city_inputs(aligned_dir, osm)
    observed, par_grid, par_years = predict.observed_par(Path(aligned_dir), years, southern)
    ref = open_aligned(Path(aligned_dir) / "npp_reference.zarr", "native")["npp"].load()
    ref_grid = grid_of(ref)
    seasonal, _ = evaluate.reference_seasons(ref, years, southern)
    if seasonal is None:
        raise ValueError("the long-term protocol compares seasons: the reference is annual")
    mask = "osm" if osm else "random"
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in years[:-1]:
            if k == years[-2]:
                chosen = {kind: Path(p) for kind, p in models.items()}
            else:
                chosen = {kind: Path(tmp) / f"{kind}_{k}.pt" for kind in models}
                for kind, path in chosen.items():
                    train(acq, kind, path, preset=preset, seed=seed, max_epochs=max_epochs, mask_mode=mask,
                          pretrained=pretrained, progress=False, last_train_year=k)
            estimate = estimate_after(acq, grid, years, k, chosen, observed, par_grid, par_years, preset=preset,
                                      seed=seed, max_epochs=max_epochs)
            on_ref = evaluate.to_reference(estimate, grid, ref_grid)
            rows[f"trained to {k}"] = {str(y): evaluate.scores(on_ref[i], seasonal[years.index(y)])
                                       for i, y in enumerate(y for y in years if y > k)}
    metrics = {"units": "g C m-2 per season", "years": years, "models": rows,
               "note": "each model: st-MAE and PAR RNN trained on the years up to k, NPP of the later years"}
    write_metrics(metrics_out, metrics)
    _figure(rows, figure_png)
    return metrics


def _figure(rows: dict, path) -> None:
    series = {name: ([int(y) for y in per_year], [per_year[y]["mae"] for y in per_year]) for name, per_year in rows.items()}
    quicklook.lines(path, series, "Long-term NPP: error per estimated year of each model (Fig. 14)",
                    xlabel="estimated year", ylabel="MAE, g C m-2 per season")


# --- the command: urbaneo npp longterm -----------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_args(p)
    p.add_argument("--mae", metavar="PATH", default=None)
    add_runtime_args(p)
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--figure", required=True, metavar="PNG")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    metrics = longterm(args.aligned, model_files(args.models), args.metrics, args.figure, preset=args.preset,
                       seed=args.seed, max_epochs=args.max_epochs, pretrained=args.mae, osm=args.osm)
    for name, per_year in metrics["models"].items():
        print(f"npp longterm {name}: " + ", ".join(f"{y} MAE {s['mae']:.2f}" for y, s in per_year.items()))
    return 0
