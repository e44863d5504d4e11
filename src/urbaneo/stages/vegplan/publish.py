"""``urbaneo vegplan publish`` (rule vegplan_publish): publish the vegetation plan: the plan COG (colour
table by life form) and GeoJSON, a quicklook, the comparison (metrics, Table 2, Pareto fronts,
robustness), and STAC items for the product and the trained CNN-GNN-DRL agent (MLM), linked to the
inputs and to the city's other products it used."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio

from ...artifacts import quicklook, stac
from ...artifacts.cog import validate_cog
from ...errors import InputError
from ...grid import grid_of
from ...presets import TILES
from ..options import add_publish_args
from ..publication import COG, gather, loss_figure, publish_product, write_item_id
from .objectives import add_settings_args, settings_of
from .shared import FEATURES_HELP, SITE_HELP, add_training_args, hyperparameters, read_agent, read_features
from .site import read_site

INPUTS = ("inputs/landsat", "inputs/gf2", "inputs/osm", "inputs/stations", "inputs/soil", "inputs/species",
          "inputs/population")
EVALUATION = ("metrics.json", "table.png", "pareto.png", "robustness.json", "robustness.png")


def _products_used(site) -> list[str]:
    """The city's other products the site was built from (their latest items are linked)."""
    return [name for name in ("lcz", "npp", "urban") if site.attrs.get(f"{name}_used") == "yes"]


def publish(run_dir, city: str, site_path: Path, features_path: Path, agent_path: Path, out_dir: Path, *,
            params: dict, period) -> str:
    import torch

    site = read_site(site_path)
    grid = grid_of(site["plantable_m2"])
    plan_tif = agent_path.parent / "plan.tif"
    sources = {"plan": plan_tif, "plan_vector": plan_tif.with_suffix(".geojson")}
    ok, errors, _ = validate_cog(plan_tif)
    if not ok:
        raise InputError(plan_tif, f"not a valid COG: {'; '.join(errors)}")
    files = {**gather(out_dir, {key: (source, Path(source).name) for key, source in sources.items()}),
             **{name: out_dir / name for name in EVALUATION}}
    with rasterio.open(plan_tif) as src:
        plan = src.read(1)
        colours = src.colormap(1)
    present = sorted(int(c) for c in np.unique(plan) if c > 0)
    names = {code: (f"{site['scientific_name'].values[code - 1]} ({site['life_form'].values[code - 1]})",
                    "#{:02x}{:02x}{:02x}".format(*colours[code][:3])) for code in present}
    files["plan_quicklook"] = quicklook.quicklook(
        out_dir / "plan.png", plan, grid, kind="classes", classes=names,
        title=f"{city}: vegetation plan (CNN-GNN-DRL, {len(present)} species, {grid.res:g} m cells)")

    agent = read_agent(agent_path)
    features = read_features(features_path)
    files["loss"] = loss_figure(out_dir, {kind.upper() if kind != "fusion" else "CNN-GNN fusion":
                                          {"epoch": [e + 1 for e in h["epoch"]], "train_loss": h["train_loss"],
                                           "val_loss": h["val_mse"]}
                                          for kind, h in features["history"].items()},
                                f"{city}: suitability models (training loss; validation: MSE)")
    n_in = int(site.sizes["feature"])
    io_in = [{"name": "planning-grid stack", "bands": [],
              "input": {"shape": [1, n_in, -1, -1], "dim_order": ["batch", "channel", "height", "width"],
                        "data_type": "float32"},
              "description": f"the site's {n_in} features min-max normalised over the city (eq. 9), through the "
                             "CNN-GNN model to its fused features, with the configuration planes"}]
    io_out = [{"name": "Q values", "tasks": ["regression"],
               "result": {"shape": [1, int(site.sizes["species"]), -1, -1],
                          "dim_order": ["batch", "class", "height", "width"], "data_type": "float32"},
               "description": "Q of planting each species on each cell; the plan takes the best feasible one per step"}]
    stac.register_model(run_dir, product="vegplan", city=city, checkpoint_path=agent_path,
                        architecture="EcoDeep-Green (dilated ResNet + CBAM, GAT, cross-attention fusion, DQN)",
                        framework="pytorch", framework_version=torch.__version__,
                        hyperparameters={"features": features["hyperparameters"], "dqn": agent["hyperparameters"]},
                        input_spec=io_in, output_spec=io_out, training_items=INPUTS, period=period, grid=grid)
    return publish_product(
        run_dir, "vegplan", city, grid=grid, params=params, period=period,
        inputs=[*INPUTS, *_products_used(site), "models/vegplan"],
        assets={"plan": (files["plan"], COG, ["data"]),
                "plan_vector": (files["plan_vector"], "application/geo+json", ["data"]),
                "plan_quicklook": (files["plan_quicklook"], "image/png", ["overview", "visual"]),
                "metrics": (files["metrics.json"], "application/json", ["metadata"]),
                "table": (files["table.png"], "image/png", ["metadata"]),
                "pareto": (files["pareto.png"], "image/png", ["overview"]),
                "robustness": (files["robustness.json"], "application/json", ["metadata"]),
                "robustness_figure": (files["robustness.png"], "image/png", ["overview"]),
                "loss": (files["loss"], "image/png", ["overview"])})


def product_params(preset: str, seed: int, max_epochs, settings) -> dict:
    """The params that shape the product (its version id hashes them)."""
    return {"preset": preset, "seed": seed, "tiles": TILES["vegplan"][preset],
            "ecodeep": hyperparameters(preset, max_epochs), "settings": settings.as_dict()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_publish_args(p)
    p.add_argument("--site", required=True, metavar="NC", help=SITE_HELP)
    p.add_argument("--features", required=True, metavar="PT", help=FEATURES_HELP)
    p.add_argument("--agent", required=True, metavar="PT")
    add_training_args(p)
    add_settings_args(p)


def main(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    item = publish(args.run_dir, args.city, Path(args.site), Path(args.features), Path(args.agent),
                   Path(args.out).parent, params=product_params(args.preset, args.seed, args.max_epochs, settings),
                   period=tuple(args.period))
    return write_item_id(args, item, "vegplan")
