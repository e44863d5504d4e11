"""``urbaneo vegplan plan`` (rule vegplan_plan): the CNN-GNN-DRL agent's greedy plan as a COG (species
code per cell, colour table by life form) and GeoJSON (one polygon per planted cell), scored against the
site's suitability (the truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from ...grid import grid_of
from .objectives import Problem, Settings, add_settings_args, objectives, problem_from_site, settings_of
from .shared import FEATURES_HELP, SITE_HELP, agent_plan, normalised, read_agent, read_features, stored
from .site import read_site


def life_form_colours(site: xr.Dataset) -> dict[int, tuple[int, int, int, int]]:
    """Plan code -> RGBA: a hue per life form (trees green, bamboo teal, shrubs olive, grass yellow), lighter
    for each further species of the form; 0 (nothing new) transparent."""
    base = {"tree": (27, 120, 55), "bamboo": (1, 133, 113), "shrub": (128, 128, 0), "grass": (210, 190, 40)}
    seen: dict[str, int] = {}
    colours = {0: (0, 0, 0, 0)}
    for code, form in enumerate(site["life_form"].values, start=1):
        k = seen[form] = seen.get(form, -1) + 1
        r, g, b = base.get(str(form), (120, 120, 120))
        t = min(0.6, 0.12 * k)  # mix towards white
        colours[code] = (int(r + (255 - r) * t), int(g + (255 - g) * t), int(b + (255 - b) * t), 255)
    return colours


def write_plan(plan: np.ndarray, site: xr.Dataset, truth: Problem, tif, geojson) -> None:
    """The plan as a COG (uint8 species code per cell, 0 = nothing new) and as GeoJSON polygons."""
    import geopandas as gpd
    import shapely

    from ...artifacts.cog import write_cog
    from ...artifacts.vector import write_vector

    grid = grid_of(site["plantable_m2"])
    write_cog(tif, plan.astype(np.uint8), grid, nodata=None, band_names="species code (0: no new planting)",
              colormap=life_form_colours(site),
              tags={"species": ";".join(f"{i + 1}={sid}" for i, sid in enumerate(site["species"].values))})
    rows, cols = np.nonzero(plan)
    x0 = grid.xmin + cols * grid.res
    y1 = grid.ymax - rows * grid.res
    codes = plan[rows, cols].astype(int) - 1
    area = truth.area.reshape(plan.shape)[rows, cols]
    suit = truth.suitability.reshape(*plan.shape, -1)[rows, cols, codes] if len(codes) else np.zeros(0)
    gdf = gpd.GeoDataFrame({
        "row": rows.astype(int), "col": cols.astype(int), "code": codes + 1,
        "species_id": site["species"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "scientific_name": site["scientific_name"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "life_form": site["life_form"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "area_m2": area.astype(float), "suitability": np.asarray(suit, float).round(4),
    }, geometry=shapely.box(x0, y1 - grid.res, x0 + grid.res, y1), crs=grid.crs)
    write_vector(geojson, gdf, sort_by=["row", "col"])


def make_plan(site_path, features_path, agent_path, out_tif, *, settings: Settings, seed: int = 0) -> dict:
    site = read_site(site_path)
    data = read_features(features_path)
    agent = read_agent(agent_path)
    truth = problem_from_site(site, settings)
    plan, order, _ = agent_plan(agent, site, *stored(data), normalised(site), truth, seed)
    out_tif = Path(out_tif)
    write_plan(plan, site, truth, out_tif, out_tif.with_suffix(".geojson"))
    return {"planted_cells": len(order), "objectives": objectives(truth, plan), "note": truth.note}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="NC", help=SITE_HELP)
    p.add_argument("--features", required=True, metavar="PT", help=FEATURES_HELP)
    p.add_argument("--agent", required=True, metavar="PT", help="resources/<run>/vegplan/<city>/agent_cnn_gnn_drl.pt")
    add_settings_args(p)
    p.add_argument("--out", required=True, metavar="TIF", help="the GeoJSON is written beside it")


def main(args: argparse.Namespace) -> int:
    info = make_plan(args.site, args.features, args.agent, args.out, settings=settings_of(args))
    if info["note"]:
        print(f"vegplan plan: nothing can be planted: {info['note']}")
    o = info["objectives"]
    print(f"vegplan plan: {info['planted_cells']} cells planted; CSP {o['csp']:.3f} kgCO2/m2/yr, BI {o['bi']:.3f}, "
          f"IC {o['ic']:.1f} CNY/m2, CER {o['cer']:.3f} -> {args.out}")
    return 0
