"""Publish the LCZ product: the class COG (LCZ colour table), the 17-band abundance COG, quicklooks,
the evaluation, and STAC items for the product and the trained SU-Net (MLM)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio

from ..artifacts import quicklook, stac
from ..artifacts.cog import validate_cog
from ..atomic import atomic_path
from ..errors import InputError
from ..grid import Grid, grid_of_dataset
from ..lcz import CLASSES
from ..presets import TILES
from .lcz import NODATA, hyperparameters, read_model

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
    files = {"lcz": out_dir / "lcz.tif", "abundance": out_dir / "abundance.tif",
             **{Path(name).stem: out_dir / name for name in EVALUATION}}
    for key, source in (("lcz", class_map), ("abundance", abundance_map)):
        if Path(source).resolve() != files[key].resolve():
            with atomic_path(files[key]) as tmp:
                shutil.copyfile(source, tmp)
    data = read_model(model_path)
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
    cog = "image/tiff; application=geotiff; profile=cloud-optimized"
    item = stac.publish(
        run_dir, product="lcz", city=city, grid=grid, params=params, lineage="publish_lcz", period=period,
        inputs=[*INPUTS, "models/lcz"],
        assets={"lcz": (files["lcz"], cog, ["data"]), "abundance": (files["abundance"], cog, ["data"]),
                "lcz_quicklook": (files["lcz_quicklook"], "image/png", ["overview", "visual"]),
                "abundance_quicklook": (files["abundance_quicklook"], "image/png", ["overview"]),
                "metrics": (files["metrics"], "application/json", ["metadata"]),
                "table": (files["table"], "image/png", ["metadata"]),
                "confusion": (files["confusion"], "image/png", ["overview"]),
                "pseudo_confusion": (files["pseudo_confusion"], "image/png", ["overview"]),
                "baseline_confusion": (files["baseline_confusion"], "image/png", ["overview"])})
    return item.id


def product_params(preset: str, seed: int, max_epochs, pure_share: float, weights) -> dict:
    """The params that shape the product (its version id hashes them)."""
    return {"preset": preset, "seed": seed, "tiles": TILES["lcz"][preset], "pretrained": weights or None,
            "su_net": hyperparameters(preset, max_epochs, pure_share)}
