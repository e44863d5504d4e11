"""Seed 003's samples: VIIRS chips and 30 m urban-land labels of one region, and its towns.

The region grid (500 m) carries the night lights, the region_fine grid (30 m) the label, as the
paper pairs VIIRS with FROM-GLC30. A chip is cut on the region grid and its label is cut from the
SAME map footprint on the 30 m grid, then both are resampled to the network input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...grid import Grid, grid_of, warp_array

IGNORE = 255  # label of pixels without a label (nodata, or outside the 30 m grid): use as ignore_index
# Radiance transform, the same for training and prediction: log1p compresses the city-centre peaks
# (tens to hundreds of nW cm-2 sr-1), and log1p(~400) = 6 keeps bright cities near 1.
LOG_SCALE = 6.0


def normalise(radiance: np.ndarray) -> np.ndarray:
    """Network input from radiance: log1p(max(radiance, 0)) / LOG_SCALE; NaN (no data) becomes 0 (dark)."""
    r = np.nan_to_num(np.asarray(radiance, dtype=np.float32), nan=0.0)
    return (np.log1p(np.maximum(r, 0.0)) / LOG_SCALE).astype(np.float32)


def radiance_of(x: np.ndarray) -> np.ndarray:
    """Inverse of `normalise` (radiance in nW cm-2 sr-1) for features that want the linear scale."""
    return np.expm1(np.asarray(x, dtype=np.float32) * LOG_SCALE)


@dataclass
class Region:
    """One year of a city's region: night lights on the 500 m grid, the 0/1/255 label on the 30 m grid."""

    year: int
    radiance: np.ndarray  # (H, W) float32, NaN where no data
    label: np.ndarray  # (Hf, Wf) uint8: 1 urban, 0 other, IGNORE nodata
    grid: Grid  # the region grid of `radiance`
    fine_grid: Grid  # the region_fine grid of `label`


def load_region(align_dir: str | Path, year: int | None = None) -> Region:
    """The night lights and urban label of ``year`` (default: the last year of the night lights)."""
    import rioxarray  # noqa: F401  (the .rio accessor)

    from ...align import open_aligned
    from ...errors import InputError

    align_dir = Path(align_dir)
    viirs = open_aligned(align_dir / "viirs.zarr", "region")["radiance"]
    urban = open_aligned(align_dir / "urban_labels.zarr", "region_fine")["urban"]
    year = int(viirs.year.values[-1]) if year is None else int(year)
    for path, da in ((align_dir / "viirs.zarr", viirs), (align_dir / "urban_labels.zarr", urban)):
        if year not in da.year.values:
            raise InputError(path, f"no year {year} (it has {[int(y) for y in da.year.values]})")
    return Region(year, viirs.sel(year=year).values.astype(np.float32), urban.sel(year=year).values.astype(np.uint8),
                  grid_of(viirs), grid_of(urban))


def label_fraction(region: Region) -> np.ndarray:
    """Share of urban 30 m label pixels in each region cell (NaN where the label has no data).

    500 m is not a multiple of 30 m, so the grids nest only approximately: GDAL's area-weighted
    "average" warp gives each 30 m pixel its overlap with the cell.
    """
    return warp_array(region.label, region.fine_grid, region.grid, resampling="average", nodata=IGNORE)


def label_mask(region: Region) -> np.ndarray:
    """Urban cells of the region grid: at least half of the cell is urban in the 30 m label."""
    with np.errstate(invalid="ignore"):
        return label_fraction(region) >= 0.5


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """(N, s, s) normalised chips -> (N, 1, size, size) network inputs, bilinear (section 3.2.1)."""
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False).numpy()


def chips(region: Region, index, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, 1, S, S) float32 and labels (N, S, S) int64 of every chip of ``index`` (S = input_size).

    Radiance chips are `normalise`d and upsampled bilinearly; the label is read by nearest neighbour
    straight from the 30 m grid at the centres of the S x S output pixels over the chip's footprint,
    so it keeps the finer label's detail. Label pixels outside the 30 m grid are IGNORE.
    """
    g, fine = region.grid, region.fine_grid
    image = normalise(region.radiance)
    rows, cols, sizes = (index[k].to_numpy().astype(int) for k in ("row", "col", "size"))
    xs = np.zeros((len(rows), 1, input_size, input_size), np.float32)
    ys = np.full((len(rows), input_size, input_size), IGNORE, np.int64)
    for i, (r, c, s) in enumerate(zip(rows, cols, sizes)):
        xs[i] = upsample(image[None, r : r + s, c : c + s], input_size)[0]
        # centres of the output pixels in map units, then the 30 m pixel that holds each
        step = s * g.res / input_size
        px = g.xmin + c * g.res + (np.arange(input_size) + 0.5) * step
        py = g.ymax - r * g.res - (np.arange(input_size) + 0.5) * step
        fc = np.floor((px - fine.xmin) / fine.res).astype(int)
        fr = np.floor((fine.ymax - py) / fine.res).astype(int)
        okc, okr = (fc >= 0) & (fc < fine.width), (fr >= 0) & (fr < fine.height)
        ys[i][np.ix_(okr, okc)] = region.label[np.ix_(fr[okr], fc[okc])]
    return xs, ys


class UrbanChips(Dataset):
    """(input (1, S, S) float32 tensor, label (S, S) int64 tensor) pairs from `chips`.

    ``augment``: each draw is one of the 8 flips / quarter turns of the chip, picked with torch's global
    generator (checkpointed by the training loop, so a resumed run draws the same ones). Night lights
    have no preferred orientation, and the paper's few hundred chips are a small set for a VGG16.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool = False):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs for {len(y)} labels")
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x, y = self.x[i], self.y[i]
        if self.augment:
            k = int(torch.randint(8, (1,)))
            x, y = torch.rot90(x, k % 4, (-2, -1)), torch.rot90(y, k % 4, (-2, -1))
            if k >= 4:
                x, y = x.flip(-1), y.flip(-1)
        return x, y


def towns(region: Region) -> np.ndarray:
    """Connected urban areas of the region grid (8-connected label_mask), int32, 1 = largest, 0 = none."""
    from scipy import ndimage

    zones, n = ndimage.label(label_mask(region), structure=np.ones((3, 3), bool))
    sizes = np.bincount(zones.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-sizes, kind="stable")  # ties keep raster order, so ids are deterministic
    relabel = np.zeros(n + 1, np.int32)
    relabel[order + 1] = np.arange(1, n + 1, dtype=np.int32)
    return relabel[zones]


@dataclass
class HeldOutTown:
    """Table 4's generalisation check: a town no training chip comes from (town None, with the reason, if none).

    ``dropped`` are the tile_ids of the training chips that touched the town and must be left out of training.
    """

    town: int | None
    mask: np.ndarray | None  # region-grid cells of the town
    window: tuple[int, int, int, int] | None  # (row0, col0, row1, col1), end-exclusive, on the region grid
    bounds: tuple[float, float, float, float] | None  # (xmin, ymin, xmax, ymax) in the grid's CRS
    reason: str = ""
    dropped: tuple[int, ...] = ()


def held_out_town(region: Region, index) -> HeldOutTown:
    """A town other than the main city (town 1) to hold out of training, for Table 4.

    The paper tested on cities its chips did not come from. Chips are drawn all over the region, so
    the town touched by the fewest TRAINING chips is chosen (the larger on a tie) and those chips are
    dropped from training: no trained pixel then lies in the town.
    """
    zones = towns(region)
    n = int(zones.max())
    if n < 2:
        return HeldOutTown(None, None, None, None, f"the label has {n} town(s) on the region grid: none besides the main city")
    train = index[index["split"] == "train"]
    ids = train["tile_id"].to_numpy() if "tile_id" in train else np.arange(len(train))
    touching: dict[int, list[int]] = {t: [] for t in range(2, n + 1)}
    for tile, r, c, s in zip(ids, *(train[k].to_numpy().astype(int) for k in ("row", "col", "size"))):
        for t in np.unique(zones[r : r + s, c : c + s]):
            if t >= 2:
                touching[int(t)].append(int(tile))
    town = min(touching, key=lambda t: (len(touching[t]), t))  # ids go by decreasing size
    if len(touching[town]) == len(train) and len(train) > 0:
        return HeldOutTown(None, None, None, None,
                           f"every one of the {len(train)} training chips touches each of the {n - 1} towns besides "
                           "the main city; use more sub-regions or a larger region to hold one out")
    mask = zones == town
    ys, xs = np.nonzero(mask)
    window = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
    g = region.grid
    bounds = (g.xmin + window[1] * g.res, g.ymax - window[2] * g.res, g.xmin + window[3] * g.res, g.ymax - window[0] * g.res)
    return HeldOutTown(town, mask, window, bounds, dropped=tuple(sorted(touching[town])))


# ------------------------------------------------- the region grid on the 30 m label grid

def fine_cells(region: Region) -> tuple[np.ndarray, np.ndarray]:
    """Region-grid row of every 30 m row and column of every 30 m column (-1 outside the region grid)."""
    g, f = region.grid, region.fine_grid
    fx, fy = f.xy()
    rows = np.floor((g.ymax - fy) / g.res).astype(int)
    cols = np.floor((fx - g.xmin) / g.res).astype(int)
    return np.where((rows >= 0) & (rows < g.height), rows, -1), np.where((cols >= 0) & (cols < g.width), cols, -1)


def on_fine_grid(region: Region, values: np.ndarray, fill=0) -> np.ndarray:
    """A region-grid array on the 30 m grid (each 30 m pixel takes the region cell holding its centre)."""
    rows, cols = fine_cells(region)
    out = values[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))]
    out[(rows < 0)[:, None] | (cols < 0)[None, :]] = fill
    return out
