"""Seed 002's LCZ map of the whole city (classes and abundances) from the trained SU-Net.

City-wide mapping (the paper maps districts but does not say how): windows of one scene slide over
the VHR image every half scene; each window's MSU-Net abundances are spread over the map cells it
covers (a cell is a quarter of a scene side: 48 m in `demo`, 192 m in `paper`) with weights
falling off towards the window's edges (``tiles.Mosaic``), and a cell's class is the largest of its
blended abundances. Windows less than half covered by the image are skipped; cells without image
data are nodata. Unmixing, not PSC-Net's classification, makes the map because a map cell is
rarely a pure scene; PSC-Net's accuracy on pure scenes is in the evaluation.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ...errors import InputError
from ...grid import Grid
from ...lcz_classes import CLASSES, colormap
from ...models import su_net
from ...tiles import Mosaic
from ..options import add_runtime_args, set_threads
from .data import normalise
from .model import CELLS_PER_SCENE, MODEL_HELP, NODATA, load_model, scaler


def cell_grid(grid: Grid, size: int) -> Grid:
    """The map's grid: cells of size / CELLS_PER_SCENE VHR pixels over the VHR grid's extent."""
    cell = size // CELLS_PER_SCENE
    return Grid(grid.epsg, grid.xmin, grid.ymax, grid.res * cell, math.ceil(grid.width / cell),
                math.ceil(grid.height / cell), grid.wkt)


def map_city(model: su_net.SUNet, data: dict, pixels: np.ndarray, grid: Grid, *, batch: int = 64,
             progress: bool = True) -> tuple[np.ndarray, Grid]:
    """(17, Hc, Wc) blended abundances (NaN without image data) and the cell grid they lie on."""
    from tqdm.auto import tqdm

    from ...training import predict

    size = data["img"]
    if size % (2 * CELLS_PER_SCENE):
        raise ValueError(f"a {size} px scene does not split into {CELLS_PER_SCENE} cells and half-scene steps")
    cell, step = size // CELLS_PER_SCENE, size // 2
    cells = cell_grid(grid, size)
    hp, wp = (max(n * cell, size) for n in (cells.height, cells.width))
    padded = np.full((pixels.shape[0], hp, wp), np.nan, np.float32)
    padded[:, : grid.height, : grid.width] = pixels
    valid = np.isfinite(padded).all(0)
    z = normalise(padded, scaler(data))

    def starts(n: int) -> list[int]:
        s = list(range(0, n - size + 1, step))
        return s if s[-1] == n - size else s + [n - size]

    windows = [(r, c) for r in starts(hp) for c in starts(wp) if valid[r : r + size, c : c + size].mean() >= 0.5]
    acc = Mosaic(Grid(cells.epsg, cells.xmin, cells.ymax, cells.res, wp // cell, hp // cell, cells.wkt),
                 su_net.N_CLASSES, CELLS_PER_SCENE)
    heads = su_net.SceneHeads(model)
    for i in tqdm(range(0, len(windows), batch), desc="LCZ windows", disable=not progress, leave=False):
        rc = np.array(windows[i : i + batch])
        x = torch.from_numpy(np.stack([z[:, r : r + size, c : c + size] for r, c in rc]))
        _, abundances = predict(heads, DataLoader(TensorDataset(x), batch_size=batch))
        tiles = np.broadcast_to(abundances.numpy()[:, :, None, None], (len(rc), su_net.N_CLASSES, CELLS_PER_SCENE,
                                                                       CELLS_PER_SCENE))
        acc.add(tiles, rc[:, 0] // cell, rc[:, 1] // cell)
    out = acc.result()[:, : cells.height, : cells.width]
    covered = valid.reshape(hp // cell, cell, wp // cell, cell).any((1, 3))[: cells.height, : cells.width]
    out[:, ~covered] = np.nan
    return out, cells


def classes_of(abundances: np.ndarray) -> np.ndarray:
    """(Hc, Wc) uint8 LCZ codes 1-17 of the largest abundance, NODATA where there is none."""
    ok = np.isfinite(abundances).all(0)
    codes = np.where(ok, np.nan_to_num(abundances, nan=-1.0).argmax(0) + 1, NODATA)
    return codes.astype(np.uint8)


def map_files(root) -> tuple[Path, Path]:
    """(class map COG, abundance COG) under ``root`` (resources/<run>/lcz/<city>)."""
    return Path(root) / "lcz.tif", Path(root) / "abundance.tif"


def predict(model_path, aligned_dir, root, *, progress: bool = True) -> dict:
    """Map the city: the class COG (with the LCZ colour table) and the 17-band abundance COG."""
    from ...align import open_aligned
    from ...artifacts.cog import write_cog
    from ...grid import grid_of

    model, data = load_model(model_path)
    image = open_aligned(Path(aligned_dir) / "gf2.zarr", "vhr")["reflectance"]
    if image.sizes["band"] != 4:
        raise InputError(Path(aligned_dir) / "gf2.zarr", f"has {image.sizes['band']} bands; SU-Net takes 4")
    abundances, cells = map_city(model, data, image.values.astype(np.float32), grid_of(image), progress=progress)
    codes = classes_of(abundances)
    class_path, abundance_path = map_files(root)
    tags = {"urbaneo:classes": "; ".join(f"{c} {name}" for c, (name, _) in CLASSES.items()),
            "urbaneo:method": "SU-Net (MSU-Net abundances, argmax)", "urbaneo:image_date": image.attrs.get("date", ""),
            "urbaneo:label_year": data["label_year"]}
    write_cog(class_path, codes, cells, nodata=NODATA, band_names="lcz", colormap=colormap(), tags=tags)
    write_cog(abundance_path, np.nan_to_num(abundances, nan=-1.0).astype(np.float32), cells, nodata=-1.0,
              band_names=[f"lcz{c}" for c in CLASSES], units="1", tags=tags)
    mapped = codes != NODATA
    shares = np.bincount(codes[mapped], minlength=18)[1:] / max(int(mapped.sum()), 1)
    return {"cells": int(mapped.sum()), "cell_m": cells.res,
            "shares": {int(c): float(s) for c, s in zip(CLASSES, shares) if s > 0}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PT", help=MODEL_HELP)
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2)")
    add_runtime_args(p)


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    info = predict(args.model, args.aligned, Path(args.model).parent, progress=args.progress)
    top = sorted(info["shares"].items(), key=lambda kv: -kv[1])[:5]
    print(f"lcz predict: {info['cells']} cells of {info['cell_m']:g} m; largest classes "
          + ", ".join(f"LCZ {c} {s:.0%}" for c, s in top))
    return 0
