"""Model-ready tiles of an aligned grid, their index, train/validation/test splits, and mosaicking back.

A tile index is a GeoDataFrame (one row per tile: id, pixel window, footprint polygon in the
grid's CRS, split), saved as GeoParquet beside the tiles, so any prediction made per tile can be
put back on the city grid by `mosaic`.
"""

from __future__ import annotations

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


def mosaic(predictions: np.ndarray, index: gpd.GeoDataFrame, grid: Grid, *, blend: bool = True) -> np.ndarray:
    """Put per-tile predictions (n_tiles, [channels,] size, size) back on the grid (channels, H, W).

    Overlaps are averaged with edge-tapered weights; pixels no tile covers are NaN.
    """
    preds = np.asarray(predictions, dtype=np.float32)
    if preds.ndim == 3:
        preds = preds[:, None]
    if len(preds) != len(index):
        raise ValueError(f"{len(preds)} predictions for {len(index)} tiles")
    size = preds.shape[-1]
    w = blend_weights(size) if blend else np.ones((size, size), np.float32)
    acc = np.zeros((preds.shape[1], *grid.shape), np.float64)
    total = np.zeros(grid.shape, np.float64)
    for p, r, c in zip(preds, index["row"].to_numpy(), index["col"].to_numpy()):
        acc[:, r : r + size, c : c + size] += p * w
        total[r : r + size, c : c + size] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (acc / total).astype(np.float32)
    out[:, total == 0] = np.nan
    return out
