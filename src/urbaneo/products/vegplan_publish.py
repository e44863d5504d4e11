"""Publish the vegetation plan: the plan COG (colour table by life form) and GeoJSON, a quicklook, the
comparison (metrics, Table 2, Pareto fronts, robustness), and STAC items for the product and the
trained CNN-GNN-DRL agent (MLM), linked to the inputs and to the city's other products it used."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio

from ..artifacts import quicklook, stac
from ..artifacts.cog import validate_cog
from ..atomic import atomic_path
from ..errors import InputError
from ..grid import grid_of
from ..presets import TILES
from .vegplan import hyperparameters, read_agent, read_features
from .vegplan_site import read_site

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
    files = {"plan": out_dir / "plan.tif", "plan_vector": out_dir / "plan.geojson",
             **{name: out_dir / name for name in EVALUATION}}
    for key, source in sources.items():
        if Path(source).resolve() != files[key].resolve():
            with atomic_path(files[key]) as tmp:
                shutil.copyfile(source, tmp)
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
    cog = "image/tiff; application=geotiff; profile=cloud-optimized"
    item = stac.publish(
        run_dir, product="vegplan", city=city, grid=grid, params=params, lineage="publish_vegplan", period=period,
        inputs=[*INPUTS, *_products_used(site), "models/vegplan"],
        assets={"plan": (files["plan"], cog, ["data"]),
                "plan_vector": (files["plan_vector"], "application/geo+json", ["data"]),
                "plan_quicklook": (files["plan_quicklook"], "image/png", ["overview", "visual"]),
                "metrics": (files["metrics.json"], "application/json", ["metadata"]),
                "table": (files["table.png"], "image/png", ["metadata"]),
                "pareto": (files["pareto.png"], "image/png", ["overview"]),
                "robustness": (files["robustness.json"], "application/json", ["metadata"]),
                "robustness_figure": (files["robustness.png"], "image/png", ["overview"])})
    return item.id


def product_params(preset: str, seed: int, max_epochs, settings) -> dict:
    """The params that shape the product (its version id hashes them)."""
    return {"preset": preset, "seed": seed, "tiles": TILES["vegplan"][preset],
            "ecodeep": hyperparameters(preset, max_epochs), "settings": settings.as_dict()}
