"""st-MAE ablation (seed 000, Fig. 9 and Table 2): the held-out year's reconstruction MSE of the RGB
model when one setting changes from the paper's best (4 frozen blocks, 4 season-projection layers,
mask ratio 0.75, OSM mask, season embedding on).

Grids: ``paper`` is the paper's (frozen 12/8/4/2, projection 12/8/4/2, ratio 0.55-0.95 by 0.1);
``demo`` is the same idea on the demo ViT's 4 blocks. Freezing needs learned weights to keep: the
configured MAE checkpoint when there is one; otherwise (the demo) a plain MAE (random masks, no
season) pre-trained on the city's false-colour chips, so the RGB model transfers from another input
domain as the paper's transfers from ImageNet. Every variant trains with the same seed and split.

The effects are reported with their sign: ``osm_mask_effect`` = MSE(random) - MSE(OSM) and
``season_effect`` = MSE(without) - MSE(with); positive means the paper's addition helps. Each
model's MSE masks the held-out chips as it was trained (so the OSM model is scored on the harder
vegetation patches); ``osm_mask_effect_same_masks`` scores both on the same random masks.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ...artifacts import quicklook
from ...artifacts.metrics import write_metrics
from ...presets import ST_MAE
from ..options import add_runtime_args, set_threads
from .data import add_common_args, load
from .train import train

GRIDS = {
    "demo": {"freeze": (4, 2, 1, 0), "season_layers": (1, 2, 4, 8), "mask_ratio": (0.55, 0.65, 0.75, 0.85, 0.95)},
    "paper": {"freeze": (12, 8, 4, 2), "season_layers": (12, 8, 4, 2),
              "mask_ratio": (0.55, 0.65, 0.75, 0.85, 0.95)},
}


def _pretrain(acq, preset: str, seed: int, max_epochs, folder: Path) -> Path:
    """A plain MAE on the false-colour chips, saved with MAE's checkpoint layout ({"model": ...})."""
    data = train(acq, "false_colour", folder / "plain.pt", preset=preset, seed=seed, max_epochs=max_epochs,
                 mask_mode="random", progress=False, season_layers=0)
    path = folder / "plain_mae.pth"
    torch.save({"model": data["state"]}, path)
    return path


def variants(preset: str, osm: bool) -> list[tuple[str, dict]]:
    """(row name, settings changed from the reference) of every run; "frozen" rows load the pretrained model."""
    best, grid = ST_MAE[preset], GRIDS["paper" if preset.startswith("paper") else "demo"]
    out = [(f"frozen {k}", {"freeze": k, "pretrained": True}) for k in grid["freeze"]]
    out.append(("from scratch", {}))
    out += [(f"projection {n}", {"season_layers": n}) for n in grid["season_layers"] if n != best["season_layers"]]
    out.append(("no season embedding", {"season_layers": 0}))
    out += [(f"mask ratio {r:.2f}", {"mask_ratio": r}) for r in grid["mask_ratio"] if r != best["mask_ratio"]]
    return out + ([("random mask", {"mask_mode": "random"})] if osm else [])


def ablate(aligned_dir, metrics_out, table_png, *, preset: str = "demo", seed: int = 0, max_epochs: int | None = None,
           pretrained: str | None = None, osm: bool = True, progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    acq = load(aligned_dir, osm=osm)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = pretrained or _pretrain(acq, preset, seed, max_epochs, folder)
        for name, settings in tqdm(variants(preset, osm), desc="st-MAE ablation", disable=not progress):
            settings = dict(settings)
            mask = settings.pop("mask_mode", "osm" if osm else "random")
            if settings.pop("pretrained", False):
                settings["pretrained"] = str(source)
            data = train(acq, "rgb", folder / "variant.pt", preset=preset, seed=seed, max_epochs=max_epochs,
                         mask_mode=mask, progress=False, **settings)
            rows[name] = {"heldout_mse": data["heldout_mse"], "train_chips": data["train_chips"],
                          "heldout_mse_random_masks": data["heldout_mse_random_masks"],
                          "settings": {"mask_mode": mask, **{k: data["hyperparameters"][k] for k in
                                                              ("freeze", "season_layers", "mask_ratio")}}}

    def effect(other: str, key: str = "heldout_mse"):
        value, base = rows.get(other, {}).get(key), rows["from scratch"][key]
        return None if value is None or base is None else value - base

    metrics = {"composite": "rgb", "preset": preset, "pretrained": pretrained or "plain MAE on the false-colour chips",
               "reference": "from scratch: OSM mask, season embedding, the preset's projection layers and ratio",
               "variants": rows, "osm_mask_effect": effect("random mask"), "season_effect": effect("no season embedding"),
               "osm_mask_effect_same_masks": effect("random mask", "heldout_mse_random_masks"),
               "note": "effects: MSE of the variant without the addition minus MSE with it; > 0: the addition helps. "
                       "heldout_mse masks each model as it was trained (OSM: vegetation first); "
                       "heldout_mse_random_masks gives every model the same random masks"}
    write_metrics(metrics_out, metrics)
    quicklook.table(table_png, ["held-out MSE", "same random masks", "train chips"],
                    {name: [r["heldout_mse"], r["heldout_mse_random_masks"], r["train_chips"]] for name, r in rows.items()},
                    "st-MAE ablation (RGB, held-out year, standardised pixels)", highlight="from scratch", digits=4)
    return metrics


# --- the command: urbaneo npp ablation -----------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_args(p, models=False)
    p.add_argument("--mae", metavar="PATH", default=None, help="official MAE checkpoint for the frozen-block rows")
    add_runtime_args(p)
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--table", required=True, metavar="PNG")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    metrics = ablate(args.aligned, args.metrics, args.table, preset=args.preset, seed=args.seed,
                     max_epochs=args.max_epochs, pretrained=args.mae, osm=args.osm, progress=args.progress)
    for name, row in metrics["variants"].items():
        print(f"npp ablation {name:<22} held-out MSE {row['heldout_mse']}")
    print(f"npp ablation: OSM mask effect {metrics['osm_mask_effect']} (on the same random masks "
          f"{metrics['osm_mask_effect_same_masks']}), season embedding effect {metrics['season_effect']} (> 0: helps)")
    return 0
