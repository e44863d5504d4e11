"""Publish the urban construction-land product: mask COG, polygons, overlay quicklook and STAC items.

The product is IFCN's mask (`model.PRODUCT_METHOD`); the evaluation of every method travels with it
(metrics JSON, the table and Fig. 6). Every trained model is registered as an MLM item of its own
series (``models/urban-<method>``) with the raw inputs it was trained on, and the product item is
derived from the inputs and from IFCN's model item.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio

from ...artifacts import quicklook, stac
from ...artifacts.cog import validate_cog
from ...artifacts.vector import write_vector
from ...errors import InputError
from ...presets import TILES
from ..options import add_publish_args
from ..publication import COG, gather, loss_figure, publish_product, write_item_id
from .data import load_region, on_fine_grid
from .model import (DEEP, LABELS, METHODS, PRODUCT_METHOD, add_input_args, add_training_args, hyperparameters,
                    load_model)

INPUTS = ("inputs/viirs", "inputs/urban_labels")


def polygons(mask: np.ndarray, grid):
    """Urban polygons of a 0/1 mask (8-connected, as the towns), with their area in m2 and km2."""
    import geopandas as gpd
    import shapely
    from rasterio import features

    shapes = [shapely.geometry.shape(geom) for geom, value in
              features.shapes(mask.astype(np.uint8), mask=mask == 1, transform=grid.transform, connectivity=8)
              if value == 1]
    gdf = gpd.GeoDataFrame({"area_m2": [s.area for s in shapes]}, geometry=shapes, crs=grid.crs)
    gdf["area_km2"] = gdf["area_m2"] / 1e6
    gdf = gdf.sort_values("area_m2", ascending=False, kind="mergesort").reset_index(drop=True)
    gdf.insert(0, "polygon_id", np.arange(1, len(gdf) + 1))
    return gdf


def _mlm_io(model: dict) -> tuple[list, list]:
    size = model["input_size"]
    data_type = "float32"
    inputs = [{"name": "night lights", "bands": [],
               "input": {"shape": [-1, 1, size, size], "dim_order": ["batch", "channel", "height", "width"],
                         "data_type": data_type},
               "description": f"VIIRS chips of {model['chip']} px, log1p(radiance)/6, upsampled to {size} px"}]
    outputs = [{"name": "construction land", "tasks": ["semantic-segmentation"],
                "result": {"shape": [-1, 2 if model["method"] in DEEP else 1, size, size],
                           "dim_order": ["batch", "channel", "height", "width"], "data_type": data_type},
                # classes in words: `classification:classes` would need the classification schema vendored
                "description": "class 0 other land, class 1 construction land"
                               + (" (softmax over 2 logits, argmax)" if model["method"] in DEEP else " (0/1)")}]
    return inputs, outputs


def publish(run_dir, city: str, aligned_dir, models: dict[str, str], mask_path, metrics_json, table_png,
            figure_png, out_dir, *, params: dict, period) -> str:
    """Write the product files into ``out_dir``, register models and product in the catalog; the item id."""
    import torch

    out_dir = Path(out_dir)
    ok, errors, _ = validate_cog(mask_path)
    if not ok:
        raise InputError(mask_path, f"not a valid COG: {'; '.join(errors)}")
    region = load_region(aligned_dir)
    with rasterio.open(mask_path) as src:
        mask = src.read(1)
    fine = region.fine_grid
    files = {"polygons": out_dir / "urban_polygons.gpkg", "overlay": out_dir / "urban_overlay.png",
             **gather(out_dir, {"mask": (mask_path, "urban_mask.tif"), "metrics": (metrics_json, "metrics.json"),
                                "table": (table_png, "metrics.png"), "methods": (figure_png, "methods.png")})}
    write_vector(files["polygons"], polygons(mask, fine), layer="urban_construction_land")
    lights = on_fine_grid(region, region.radiance, fill=np.nan)
    quicklook.overlay(files["overlay"], lights, mask == 1, fine,
                      f"{city}: urban construction land {region.year} ({LABELS[PRODUCT_METHOD]}) on VIIRS night lights",
                      units="nW cm-2 sr-1", mask_label="construction land")

    histories = {}
    for method, path in sorted(models.items()):
        if method not in DEEP and method != "svm":
            continue  # thresholds are one number each, kept in the metrics
        model = load_model(path)
        if method in DEEP:
            histories[LABELS[method]] = model["history"]
        inputs, outputs = _mlm_io(model)
        stac.register_model(run_dir, product=f"urban-{method}", city=city, checkpoint_path=path,
                            architecture=LABELS[method], framework="pytorch" if method in DEEP else "scikit-learn",
                            framework_version=torch.__version__ if method in DEEP else _sklearn_version(),
                            hyperparameters=model["hyperparameters"], input_spec=inputs, output_spec=outputs,
                            training_items=INPUTS, period=period, grid=region.grid)
    files["loss"] = loss_figure(out_dir, histories, f"{city}: training of the deep urban methods (cross-entropy)")
    return publish_product(
        run_dir, "urban", city, grid=fine, params=params, period=period,
        inputs=[*INPUTS, f"models/urban-{PRODUCT_METHOD}"],
        assets={
            "mask": (files["mask"], COG, ["data"]),
            "polygons": (files["polygons"], "application/geopackage+sqlite3", ["data"]),
            "overlay": (files["overlay"], "image/png", ["overview", "visual"]),
            "metrics": (files["metrics"], "application/json", ["metadata"]),
            "table": (files["table"], "image/png", ["metadata"]),
            "methods": (files["methods"], "image/png", ["overview"]),
            "loss": (files["loss"], "image/png", ["overview"]),
        })


def _sklearn_version() -> str:
    from importlib.metadata import version

    return version("scikit-learn")


def product_params(preset: str, seed: int, max_epochs, vgg16) -> dict:
    """The params that shape the product (its version id hashes them)."""
    return {"preset": preset, "seed": seed, "tiles": TILES["urban"][preset], "vgg16": vgg16 or None,
            "methods": {m: hyperparameters(m, preset, max_epochs) for m in METHODS}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_publish_args(p)
    add_input_args(p, tiles=False)
    add_training_args(p)
    p.add_argument("--predictions", required=True, metavar="DIR", help="resources/<run>/urban/<city>")


def main(args: argparse.Namespace) -> int:
    root = Path(args.predictions)
    out_dir = Path(args.out).parent
    item = publish(args.run_dir, args.city, args.aligned, {m: root / m / "model.pt" for m in METHODS},
                   root / "ifcn" / "mask.tif", out_dir / "metrics.json", out_dir / "metrics.png",
                   out_dir / "methods.png", out_dir,
                   params=product_params(args.preset, args.seed, args.max_epochs, args.vgg16),
                   period=tuple(args.period))
    return write_item_id(args, item, "urban")
