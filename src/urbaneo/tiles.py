"""Model-ready tiles of an aligned grid, their index, train/validation/test splits, and mosaicking back.

A tile index is a GeoDataFrame (one row per tile: id, pixel window, footprint polygon in the
grid's CRS, split), saved as GeoParquet beside the tiles, so any prediction made per tile can be
put back on the city grid by `mosaic`.
"""

from __future__ import annotations

import argparse

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from .atomic import atomic_path
from .errors import InputError
from .grid import Grid

SPLITS = ("train", "val", "test")


def tile_index(grid: Grid, size: int, stride: int | None = None, *, valid: np.ndarray | None = None,
               min_valid: float = 0.0) -> gpd.GeoDataFrame:
    """Windows of ``size`` x ``size`` pixels every ``stride`` pixels covering the grid.

    The last row/column of tiles is shifted inwards so the whole grid is covered without padding.
    With ``valid`` (a boolean mask on the grid), tiles whose valid share is below ``min_valid`` are dropped.
    """
    stride = stride or size
    if size > min(grid.height, grid.width):
        raise InputError(f"grid {grid.width}x{grid.height}", f"smaller than one {size}x{size} tile")

    def starts(n: int) -> list[int]:
        s = list(range(0, n - size + 1, stride))
        return s if s[-1] == n - size else s + [n - size]

    rows, cols = np.meshgrid(starts(grid.height), starts(grid.width), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    if valid is not None:
        share = np.array([valid[r : r + size, c : c + size].mean() for r, c in zip(rows, cols)])
        keep = share >= min_valid
        rows, cols = rows[keep], cols[keep]
    x0 = grid.xmin + cols * grid.res
    y1 = grid.ymax - rows * grid.res
    geom = shapely.box(x0, y1 - size * grid.res, x0 + size * grid.res, y1)
    return gpd.GeoDataFrame({"tile_id": np.arange(rows.size), "row": rows, "col": cols, "size": size,
                             "split": "train"}, geometry=geom, crs=grid.crs)


def random_split(index: gpd.GeoDataFrame, ratios=(4, 1, 1), seed: int = 0) -> gpd.GeoDataFrame:
    """Seeded random train/val/test assignment in the given ratios (4:1:1 as seed 002 uses)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(index))
    bounds = np.round(np.cumsum(ratios) / np.sum(ratios) * len(index)).astype(int)
    split = np.empty(len(index), dtype=object)
    lo = 0
    for name, hi in zip(SPLITS, bounds):
        split[order[lo:hi]] = name
        lo = hi
    out = index.copy()
    out["split"] = split
    return out


def checkerboard(grid: Grid, n_regions: int) -> tuple[np.ndarray, int, int]:
    """Sub-region number of every pixel for a near-square checkerboard of ``n_regions`` cells.

    Returns (region id raster, rows of regions, cols of regions); seed 003 samples VIIRS chips per
    sub-region so that training and test chips come from different places.
    """
    ny = max(1, int(round(np.sqrt(n_regions * grid.height / grid.width))))
    nx = max(1, int(round(n_regions / ny)))
    r = np.minimum(np.arange(grid.height) * ny // grid.height, ny - 1)
    c = np.minimum(np.arange(grid.width) * nx // grid.width, nx - 1)
    return (r[:, None] * nx + c[None, :]).astype(np.int32), ny, nx


def held_out_years(years: list[int], n_test: int = 1) -> dict[int, str]:
    """Time split: the last ``n_test`` years are the test set (the NPP models' protocol)."""
    years = sorted(years)
    return {y: ("test" if i >= len(years) - n_test else "train") for i, y in enumerate(years)}


def write_index(index: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Save a tile index as GeoParquet, atomically."""
    with atomic_path(path) as tmp:
        index.to_parquet(tmp, index=False)
    return Path(path)


def read_index(path: str | Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise InputError(path, f"not a readable tile index ({type(err).__name__}: {err})") from None


def blend_weights(size: int) -> np.ndarray:
    """Weights falling off towards a tile's edges, so overlapping predictions blend without seams."""
    ramp = np.minimum(np.arange(size) + 1, size - np.arange(size)).astype(np.float32)
    w = np.minimum.outer(ramp, ramp)
    return w / w.max()


class Mosaic:
    """Accumulates per-tile predictions on a grid, batch by batch, so a region never holds all its tiles.

    Overlaps are averaged with edge-tapered weights (``blend``); pixels no tile covers are NaN.
    """

    def __init__(self, grid: Grid, channels: int, size: int, *, blend: bool = True):
        self.size = size
        self.weights = blend_weights(size) if blend else np.ones((size, size), np.float32)
        self.acc = np.zeros((channels, *grid.shape), np.float64)
        self.total = np.zeros(grid.shape, np.float64)

    def add(self, predictions: np.ndarray, rows, cols) -> None:
        """Tiles (n, [channels,] size, size) whose top-left pixels are at ``rows``, ``cols``."""
        preds = np.asarray(predictions, dtype=np.float32)
        preds = preds[:, None] if preds.ndim == 3 else preds
        if preds.shape[-1] != self.size or len(preds) != len(rows) or len(rows) != len(cols):
            raise ValueError(f"{len(preds)} predictions of size {preds.shape[-1]} for {len(rows)} tiles of {self.size}")
        s, w = self.size, self.weights
        for p, r, c in zip(preds, rows, cols):
            self.acc[:, r : r + s, c : c + s] += p * w
            self.total[r : r + s, c : c + s] += w

    def result(self) -> np.ndarray:
        """(channels, H, W) float32."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.acc / self.total).astype(np.float32)
        out[:, self.total == 0] = np.nan
        return out


def mosaic(predictions: np.ndarray, index: gpd.GeoDataFrame, grid: Grid, *, blend: bool = True) -> np.ndarray:
    """Put per-tile predictions (n_tiles, [channels,] size, size) back on the grid (channels, H, W)."""
    preds = np.asarray(predictions, dtype=np.float32)
    preds = preds[:, None] if preds.ndim == 3 else preds
    if len(preds) != len(index):
        raise ValueError(f"{len(preds)} predictions for {len(index)} tiles")
    acc = Mosaic(grid, preds.shape[1], preds.shape[-1], blend=blend)
    acc.add(preds, index["row"].to_numpy(), index["col"].to_numpy())
    return acc.result()


def checkerboard_chips(grid: Grid, n_regions: int, chip: int, *, valid: np.ndarray, per_region=(2, 8),
                       min_coverage: float = 0.9, test_share: float = 4 / 25, seed: int = 0) -> gpd.GeoDataFrame:
    """Seed 003's sampling: a checkerboard of sub-regions, 2-8 random chips from each well-covered one.

    Sub-regions whose valid share is at most ``min_coverage`` are skipped; the split is by sub-region
    (train:test = 21:4 by default) so that no test chip overlaps a training one.
    """
    regions, ny, nx = checkerboard(grid, n_regions)
    side_y, side_x = grid.height // ny, grid.width // nx
    if min(side_y, side_x) < chip:
        need = chip * int(np.ceil(np.sqrt(n_regions)))
        raise InputError(f"region grid {grid.width}x{grid.height} px",
                         f"too small for a checkerboard of {n_regions} sub-regions with {chip}x{chip} chips: "
                         f"it must be at least {need}x{need} pixels (enlarge region_buffer_km)")
    rng = np.random.default_rng(seed)
    kept = [r for r in range(ny * nx) if valid[regions == r].mean() > min_coverage]
    if not kept:
        raise InputError(f"region grid {grid.width}x{grid.height} px", f"no sub-region has more than {min_coverage:.0%} valid data")
    n_test = max(1, int(round(test_share * len(kept)))) if len(kept) > 1 else 0
    test = set(rng.choice(kept, size=n_test, replace=False).tolist()) if n_test else set()
    rows, cols, reg = [], [], []
    for r in kept:
        ys, xs = np.nonzero(regions == r)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        for _ in range(int(rng.integers(per_region[0], per_region[1] + 1))):
            rows.append(int(rng.integers(y0, y1 - chip + 1)))
            cols.append(int(rng.integers(x0, x1 - chip + 1)))
            reg.append(r)
    rows, cols = np.array(rows), np.array(cols)
    x0 = grid.xmin + cols * grid.res
    y1 = grid.ymax - rows * grid.res
    return gpd.GeoDataFrame({"tile_id": np.arange(rows.size), "row": rows, "col": cols, "size": chip,
                             "region": reg, "split": ["test" if r in test else "train" for r in reg]},
                            geometry=shapely.box(x0, y1 - chip * grid.res, x0 + chip * grid.res, y1), crs=grid.crs)


def _valid_mask(ds, model: str) -> np.ndarray:
    """Pixels with data for a model: a usable Landsat date, a full VHR pixel, a night-light value."""
    if model == "npp":
        return ds["usable"].any("time").values
    if model == "lcz":
        return np.isfinite(ds["reflectance"]).all("band").values
    if model == "urban":
        return np.isfinite(ds["radiance"]).any("year").values
    return np.ones((ds.sizes["y"], ds.sizes["x"]), bool)


def make_tiles(city, model: str, preset: str, seed: int, aligned: str | Path, out: str | Path) -> gpd.GeoDataFrame:
    """The tile index of one model for one city, from its aligned cube (``resources/align/{city}/{source}.zarr``)."""
    from .align import grids_of, open_aligned
    from .presets import TILES

    spec = TILES[model]
    size = spec[preset]
    grid = grids_of(city).named(spec["grid"])
    valid = _valid_mask(open_aligned(aligned, spec["grid"]), model)
    if spec["split"] == "checkerboard":
        regions = size["regions"]
        if preset == "demo":  # the demo takes as many sub-regions as its region holds, up to the preset's
            regions = min(regions, max(1, (grid.height // size["size"]) * (grid.width // size["size"])))
        index = checkerboard_chips(grid, regions, size["size"], valid=valid, seed=seed)
    else:
        index = tile_index(grid, size["size"], size["stride"], valid=valid, min_valid=0.5)
        if spec["split"] == "random":
            index = random_split(index, seed=seed)
        else:  # every tile is used in every year; `held_out_years` splits by year at training time
            index["split"] = "all"
    if len(index) == 0:
        raise InputError(aligned, f"no {size['size']}x{size['size']} tile of the {spec['grid']} grid has enough data")
    write_index(index, out)
    return index


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--model", required=True, choices=("npp", "lcz", "urban", "vegplan"))
    p.add_argument("--preset", default="demo", choices=("demo", "paper"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aligned", required=True, metavar="ZARR", help="the aligned source the model is cut from")
    p.add_argument("--out", required=True, metavar="PATH")


def main(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city

    index = make_tiles(load_city(args.city), args.model, args.preset, args.seed, args.aligned, args.out)
    counts = index["split"].value_counts().sort_index()
    print(f"tiles {args.model}: {len(index)} tiles ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {args.out}")
    return 0
