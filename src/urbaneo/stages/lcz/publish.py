"""Publish the LCZ product: the class COG (LCZ colour table), the 17-band abundance COG, quicklooks,
the evaluation, and STAC items for the product and the trained SU-Net (MLM)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio

from ...artifacts import quicklook, stac
from ...artifacts.cog import validate_cog
from ...errors import InputError
from ...grid import Grid, grid_of_dataset
from ...lcz_classes import CLASSES
from ...presets import TILES
from ..options import add_publish_args
from ..publication import COG, gather, loss_figure, publish_product, write_item_id
from .model import MODEL_HELP, NODATA, add_training_args, hyperparameters, read_model
from .predict import map_files

INPUTS = ("inputs/gf2", "inputs/lcz_labels")
EVALUATION = ("metrics.json", "table.png", "confusion.png", "pseudo_confusion.png", "baseline_confusion.png")
SHOWN_ABUNDANCES = 8  # the classes with the largest mapped shares get an abundance panel


def _read(path) -> tuple[np.ndarray, Grid]:
    ok, errors, _ = validate_cog(path)
    if not ok:
        raise InputError(path, f"not a valid COG: {'; '.join(errors)}")
    with rasterio.open(path) as src:
        return src.read(), grid_of_dataset(src)


def _mlm_io(data: dict) -> tuple[list, list]:
    size = data["img"]
    # bands in words: naming them in `bands` makes MLM require raster:bands on the model asset
    inputs = [{"name": "VHR scene", "bands": [],
               "input": {"shape": [-1, 4, size, size], "dim_order": ["batch", "channel", "height", "width"],
                         "data_type": "float32"},
               "description": "blue, green, red, NIR TOA reflectance standardised per band with the saved mean "
                              "and std; no data as 0"}]
    outputs = [{"name": "PSC-Net class", "tasks": ["scene-classification"],
                "result": {"shape": [-1, 17], "dim_order": ["batch", "class"], "data_type": "float32"},
                "description": "ReLU outputs; their softmax is the probability of LCZ 1-17"},
               {"name": "MSU-Net abundances", "tasks": ["regression"],
                "result": {"shape": [-1, 17], "dim_order": ["batch", "class"], "data_type": "float32"},
                "description": "ReLU outputs; their softmax is the share of LCZ 1-17 in the scene"}]
    return inputs, outputs


def publish(run_dir, city: str, model_path, class_map, abundance_map, out_dir, *, params: dict, period) -> str:
    """Copy the maps into ``out_dir`` (which holds the evaluation), draw quicklooks, register model and product."""
    import torch

    out_dir = Path(out_dir)
    codes, grid = _read(class_map)
    abundances, _ = _read(abundance_map)
    files = {**gather(out_dir, {"lcz": (class_map, "lcz.tif"), "abundance": (abundance_map, "abundance.tif")}),
             **{Path(name).stem: out_dir / name for name in EVALUATION}}
    data = read_model(model_path)
    files["loss"] = loss_figure(out_dir, {"SU-Net": data["history"]}, f"{city}: SU-Net training")
    files["lcz_quicklook"] = quicklook.quicklook(
        out_dir / "lcz.png", codes[0], grid, kind="classes", classes=CLASSES,
        title=f"{city}: Local Climate Zones (SU-Net, {grid.res:g} m cells)")
    mapped = codes[0] != NODATA
    shares = np.bincount(codes[0][mapped], minlength=18)[1:]
    shown = [int(i) for i in np.argsort(-shares, kind="stable")[:SHOWN_ABUNDANCES] if shares[i] > 0]
    files["abundance_quicklook"] = quicklook.panels(
        out_dir / "abundance.png", {f"LCZ {i + 1} {CLASSES[i + 1][0]}": np.where(abundances[i] < 0, np.nan, abundances[i])
                                    for i in shown}, grid,
        f"{city}: MSU-Net abundances of the {len(shown)} most mapped classes", cmap="viridis", shared=True, units="share")

    io_in, io_out = _mlm_io(data)
    stac.register_model(run_dir, product="lcz", city=city, checkpoint_path=model_path,
                        architecture="SU-Net (Swin-V2 PSC-Net + MSU-Net with UperNet decoder, GradNorm)",
                        framework="pytorch", framework_version=torch.__version__, hyperparameters=data["hyperparameters"],
                        input_spec=io_in, output_spec=io_out, training_items=INPUTS, period=period, grid=grid)
    return publish_product(
        run_dir, "lcz", city, grid=grid, params=params, period=period,
        inputs=[*INPUTS, "models/lcz"],
        assets={"lcz": (files["lcz"], COG, ["data"]), "abundance": (files["abundance"], COG, ["data"]),
                "lcz_quicklook": (files["lcz_quicklook"], "image/png", ["overview", "visual"]),
                "abundance_quicklook": (files["abundance_quicklook"], "image/png", ["overview"]),
                "metrics": (files["metrics"], "application/json", ["metadata"]),
                "table": (files["table"], "image/png", ["metadata"]),
                "confusion": (files["confusion"], "image/png", ["overview"]),
                "pseudo_confusion": (files["pseudo_confusion"], "image/png", ["overview"]),
                "baseline_confusion": (files["baseline_confusion"], "image/png", ["overview"]),
                "loss": (files["loss"], "image/png", ["overview"])})


def product_params(preset: str, seed: int, max_epochs, pure_share: float, weights) -> dict:
    """The params that shape the product (its version id hashes them)."""
    return {"preset": preset, "seed": seed, "tiles": TILES["lcz"][preset], "pretrained": weights or None,
            "su_net": hyperparameters(preset, max_epochs, pure_share)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_publish_args(p)
    p.add_argument("--model", required=True, metavar="PT", help=MODEL_HELP)
    add_training_args(p)


def main(args: argparse.Namespace) -> int:
    model = Path(args.model)
    out_dir = Path(args.out).parent
    params = product_params(args.preset, args.seed, args.max_epochs, args.pure_share, args.weights)
    item = publish(args.run_dir, args.city, model, *map_files(model.parent), out_dir, params=params,
                   period=tuple(args.period))
    return write_item_id(args, item, "lcz")
