"""``urbaneo urban predict``: region masks (COG) and test-chip masks of the trained urban methods.

Whole-region prediction (our choice; the paper shows maps but not how it tiles a region): windows of
one chip (36 VIIRS pixels) every chip/4 pixels, upsampled to the network input like the training chips,
their urban probability blended back on the network's own grid (chip / input_size finer than VIIRS),
then resampled bilinearly to the 30 m label grid and cut at 0.5. The mask so lies on the grid of the
label it is compared with (FROM-GLC30 in the paper).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ...atomic import atomic_path
from ...errors import InputError
from ...grid import Grid, warp_array
from ...tiles import Mosaic
from ..options import add_runtime_args, set_threads
from .data import IGNORE, Region, normalise, upsample
from .model import METHODS, add_input_args, load, load_model, prediction_files

WINDOWS_PER_CHIP = 4  # region windows start every chip / 4 VIIRS pixels
COLOURS = {0: (240, 240, 240, 255), 1: (227, 26, 28, 255)}  # mask colour table: other land, construction land


def predict_region(probability, region: Region, input_size: int, chip: int, batch: int = 64,
                   progress: bool = True) -> np.ndarray:
    """Urban probability of the whole region on its 30 m label grid (NaN where VIIRS has no data)."""
    from tqdm.auto import tqdm

    step = chip // WINDOWS_PER_CHIP
    zoom = input_size / chip
    if chip % WINDOWS_PER_CHIP or (step * input_size) % chip:
        raise ValueError(f"windows every {step} px of a {chip} px chip do not fall on whole {input_size} px inputs")
    g = region.grid
    image = normalise(region.radiance)
    h, w = image.shape
    hp, wp = (chip + step * math.ceil(max(n - chip, 0) / step) for n in (h, w))
    padded = np.zeros((hp, wp), np.float32)  # outside the region is dark, as missing data is
    padded[:h, :w] = image
    net = Grid(g.epsg, g.xmin, g.ymax, g.res / zoom, round(wp * zoom), round(hp * zoom), g.wkt)
    starts = [(r, c) for r in range(0, hp - chip + 1, step) for c in range(0, wp - chip + 1, step)]
    acc = Mosaic(net, 1, input_size)
    for i in tqdm(range(0, len(starts), batch), desc="urban windows", disable=not progress, leave=False):
        rc = np.array(starts[i : i + batch])
        x = upsample(np.stack([padded[r : r + chip, c : c + chip] for r, c in rc]), input_size)
        acc.add(probability(x), np.round(rc[:, 0] * zoom).astype(int), np.round(rc[:, 1] * zoom).astype(int))
    prob = acc.result()[0]
    # network pixels over region cells without night-light data carry no prediction
    rows, cols = (np.minimum((np.arange(n) / zoom).astype(int), m - 1) for n, m in ((net.height, hp), (net.width, wp)))
    nodata = np.ones((hp, wp), bool)
    nodata[:h, :w] = ~np.isfinite(region.radiance)
    prob[nodata[np.ix_(rows, cols)]] = np.nan
    return warp_array(prob, net, region.fine_grid, resampling="bilinear")


def to_mask(probability: np.ndarray) -> np.ndarray:
    """0/1 uint8 (urban at probability >= 0.5), IGNORE where there is no prediction."""
    mask = np.full(probability.shape, IGNORE, np.uint8)
    ok = np.isfinite(probability)
    mask[ok] = probability[ok] >= 0.5
    return mask


def predict(models: dict, aligned_dir, tiles, root, *, progress: bool = True) -> list[dict]:
    """Each method's region mask (COG on the 30 m label grid) and test-chip masks (N, S, S) as .npy."""
    from ...artifacts.cog import write_cog

    region, s, out = None, None, []
    for method, path in models.items():
        model = load_model(path)
        if model["method"] != method:
            raise InputError(path, f"holds a {model['method']} model, expected {method}")
        if s is None or s.input_size != model["input_size"]:
            region, s = load(aligned_dir, tiles, model["preset"], train=False)
        prob = model["probability"]
        test = (prob(s.x_test) >= 0.5).astype(np.uint8) if len(s.x_test) else np.zeros((0, *s.y_test.shape[1:]), np.uint8)
        mask = to_mask(predict_region(prob, region, s.input_size, s.chip, progress=progress))
        mask_path, chips_path = prediction_files(root, method)
        write_cog(mask_path, mask, region.fine_grid, nodata=IGNORE, band_names="urban", colormap=COLOURS,
                  tags={"urbaneo:method": method, "urbaneo:year": region.year,
                        "urbaneo:classes": "0 other land, 1 urban construction land"})
        with atomic_path(chips_path) as tmp, open(tmp, "wb") as f:
            np.save(f, test)  # .npy, not .npz: zip entries carry the time of writing
        out.append({"method": method, "urban_share": float((mask == 1).mean()), "test_chips": len(test)})
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictions", required=True, metavar="DIR",
                   help="resources/<run>/urban/<city>: reads <method>/model.pt, writes <method>/mask.tif, test_chips.npy")
    p.add_argument("--methods", nargs="*", help="only these (default: every method)")
    add_input_args(p, preset=False)
    add_runtime_args(p)


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    root = Path(args.predictions)
    for info in predict({m: root / m / "model.pt" for m in args.methods or METHODS}, args.aligned, args.tiles,
                        root, progress=args.progress):
        print(f"urban predict {info['method']}: {info['urban_share']:.1%} of the region urban, "
              f"{info['test_chips']} test chips -> {root / info['method']}")
    return 0
