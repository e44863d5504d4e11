"""Publish the NPP product: COGs of NPP per season and year, its trend, the gap-filled composites
and the seasonal PAR, quicklooks, the evaluation, and STAC items for the product and both st-MAEs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...artifacts import quicklook, stac
from ...artifacts.cog import write_cog
from ..options import add_publish_args
from ..publication import COG, gather, loss_figure, publish_product, write_item_id
from . import function
from .data import add_common_args, model_files
from .predict import open_maps
from .train import load_model

CHOICES_TAG = {f"npp_{k}": str(v) for k, v in function.CHOICES.items()}


def _season_bands(ds) -> list[str]:
    return [f"{y}-{s}" for y in ds["year"].values for s in ds["season"].values]


def write_products(ds, grid, out_dir: Path) -> dict[str, Path]:
    """The product's COGs and quicklooks (from ``predict.open_maps``) in ``out_dir``; key -> path."""
    years = [int(y) for y in ds["year"].values]
    seasons = list(ds["season"].values)
    tags = {**CHOICES_TAG, "missing_seasons": ds.attrs["missing_seasons"], "osm_mask": ds.attrs["osm_mask"],
            "heldout_year": str(ds.attrs["heldout_year"])}
    files = {k: out_dir / f"{k}.tif" for k in ("npp_seasonal", "npp_annual", "npp_trend", "composites",
                                                 "par_seasonal", "par_forecast")}
    npp = ds["npp"].values.reshape(-1, *grid.shape)
    write_cog(files["npp_seasonal"], npp, grid, nodata=np.nan, band_names=_season_bands(ds),
              units="g C m-2 per season", tags=tags)
    write_cog(files["npp_annual"], ds["npp_annual"].values, grid, nodata=np.nan, band_names=[str(y) for y in years],
              units="g C m-2 yr-1", tags=tags)
    write_cog(files["npp_trend"], ds["npp_trend"].values, grid, nodata=np.nan, band_names=f"trend {years[0]}-{years[-1]}",
              units="g C m-2 yr-2", tags=tags)
    bands = [str(b) for b in ds["band"].values]
    write_cog(files["composites"], ds["composite"].values.reshape(-1, *grid.shape), grid, nodata=np.nan,
              band_names=[f"{name}-{b}" for name in _season_bands(ds) for b in bands], units="TOA reflectance",
              tags={"fill": "st-MAE reconstruction of cloudy patches, then the season's per-pixel median"})
    source = ds["par_source"].values.reshape(-1)
    write_cog(files["par_seasonal"], ds["par"].values.reshape(-1, *grid.shape), grid, nodata=np.nan,
              band_names=[f"{name} ({src})" for name, src in zip(_season_bands(ds), source)], units="MJ m-2 per season")
    write_cog(files["par_forecast"], ds["par_heldout_forecast"].values, grid, nodata=np.nan,
              band_names=[f"{years[-1]}-{s} (RNN forecast)" for s in seasons], units="MJ m-2 per season",
              tags={"rnn": ds.attrs["par_rnn"]})
    annual = ds["npp_annual"].values
    files["npp_quicklook"] = quicklook.quicklook(
        out_dir / "npp_annual.png", annual[-1], grid, title=f"NPP {years[-1]} (st-MAE route)",
        units="g C m-2 yr-1", cmap="YlGn", vmin=0)
    files["trend_quicklook"] = quicklook.quicklook(
        out_dir / "npp_trend.png", ds["npp_trend"].values, grid, title=f"NPP trend {years[0]}-{years[-1]}",
        units="g C m-2 yr-2", cmap="RdBu")
    return files


def _mlm_io(data: dict) -> tuple[list, list]:
    hp, kind = data["hyperparameters"], data["kind"]
    shape = [-1, 3, hp["img"], hp["img"]]
    inputs = [{"name": f"{kind} composite", "bands": [],
               "input": {"shape": shape, "dim_order": ["batch", "channel", "height", "width"], "data_type": "float32"},
               "description": "TOA reflectance standardised per band (the saved scaler), the season 0..3 and the "
                              "mask of patches to reconstruct"}]
    outputs = [{"name": "reconstruction", "tasks": ["generative"],
                "result": {"shape": shape, "dim_order": ["batch", "channel", "height", "width"], "data_type": "float32"},
                "description": "the chip with its masked patches reconstructed"}]
    return inputs, outputs


def publish(run_dir, city: str, maps_path, models: dict[str, str | Path], metrics_json, table_png, figure_png,
            out_dir, *, params: dict, period, has_osm: bool) -> str:
    import torch

    out_dir = Path(out_dir)
    ds, grid = open_maps(maps_path)
    files = write_products(ds, grid, out_dir)
    files.update(gather(out_dir, {key: (source, Path(source).name) for key, source in (
        ("metrics", metrics_json), ("table", table_png), ("methods", figure_png),
        ("longterm", Path(metrics_json).with_name("longterm.json")),
        ("longterm_figure", Path(metrics_json).with_name("longterm.png")))}))
    histories = {}
    inputs = ["inputs/landsat", "inputs/par", "inputs/npp_reference"] + (["inputs/osm"] if has_osm else [])
    for kind, path in sorted(models.items()):
        data = load_model(path)[2]
        histories[f"st-MAE {kind}"] = data["history"]
        io_in, io_out = _mlm_io(data)
        stac.register_model(run_dir, product=f"npp-{kind}", city=city, checkpoint_path=path,
                            architecture="st-MAE (ViT masked autoencoder, season embedding, OSM mask)",
                            framework="pytorch", framework_version=torch.__version__,
                            hyperparameters=data["hyperparameters"], input_spec=io_in, output_spec=io_out,
                            training_items=[i for i in inputs if i != "inputs/npp_reference"], period=period, grid=grid)
    files["loss"] = loss_figure(out_dir, histories, f"{city}: st-MAE training (masked-patch MSE)")
    return publish_product(
        run_dir, "npp", city, grid=grid, params=params, period=period,
        inputs=[*inputs, *(f"models/npp-{kind}" for kind in sorted(models))],
        assets={**{k: (files[k], COG, ["data"]) for k in ("npp_seasonal", "npp_annual", "npp_trend", "composites",
                                                        "par_seasonal", "par_forecast")},
                "npp_quicklook": (files["npp_quicklook"], "image/png", ["overview", "visual"]),
                "trend_quicklook": (files["trend_quicklook"], "image/png", ["overview"]),
                "metrics": (files["metrics"], "application/json", ["metadata"]),
                "table": (files["table"], "image/png", ["metadata"]),
                "methods": (files["methods"], "image/png", ["overview"]),
                "longterm": (files["longterm"], "application/json", ["metadata"]),
                "longterm_figure": (files["longterm_figure"], "image/png", ["overview"]),
                "loss": (files["loss"], "image/png", ["overview"])})


def product_params(preset: str, seed: int, max_epochs, mae_weights, price: float, has_osm: bool) -> dict:
    """The params that shape the product (its version id hashes them)."""
    from ...presets import PAR_RNN
    from .train import hyperparameters

    return {"preset": preset, "seed": seed, "mae_weights": mae_weights or None, "gpu_hour_price": price,
            "st_mae": hyperparameters(preset, max_epochs, "osm" if has_osm else "random", None),
            "par_rnn": PAR_RNN[preset], "choices": function.CHOICES}


# --- the command: urbaneo npp publish ------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_publish_args(p)
    add_common_args(p, maps=True)
    p.add_argument("--mae", metavar="PATH", default=None)
    p.add_argument("--price", type=float, default=1.58)


def main(args: argparse.Namespace) -> int:
    out_dir = Path(args.out).parent
    osm = args.osm
    item = publish(args.run_dir, args.city, args.maps, model_files(args.models), out_dir / "metrics.json",
                   out_dir / "metrics.png", out_dir / "methods.png", out_dir,
                   params=product_params(args.preset, args.seed, args.max_epochs, args.mae, args.price, osm),
                   period=tuple(args.period), has_osm=osm)
    return write_item_id(args, item, "npp")
