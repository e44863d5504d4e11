"""Seed 002's samples: VHR scene patches of a city with their LCZ class fractions.

A scene is one tile of the LCZ tile index (``resources/tiles/<city>/lcz.parquet``: 64 px in
`demo`, 256 in `paper`, split 4:1:1 at random) cut from the aligned 4-band VHR image (GF-2 TOA
reflectance on the 3 m grid), and its label is the share of each of the 17 classes in the LCZ map
under it (the abundances). A scene is *pure* when one class covers at least ``pure_share`` of its
labelled pixels (default 0.9), else *mixed*; scenes less than half labelled are not used.

The label map is the one of the VHR image's year (its acquisition date), else the nearest year.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError
from ...grid import Grid, grid_of
from ...lcz_classes import CLASSES
from ...models.scaling import Scaler
from ...presets import PURE_SHARE
from ...tiles import read_index

log = logging.getLogger(__name__)

N_CLASSES = len(CLASSES)
MIN_LABELLED = 0.5  # scenes with less labelled area carry too little truth to train or score on


@dataclass
class Scenes:
    """Every usable scene of a city: pixels, class fractions, pure flags and the split."""

    x: np.ndarray  # (N, 4, S, S) float32 reflectance, NaN where the image has no data
    fractions: np.ndarray  # (N, 17) float32, column i = LCZ code i + 1
    split: np.ndarray  # (N,) "train" | "val" | "test"
    rows: np.ndarray  # (N,) top-left pixel of each scene on the VHR grid
    cols: np.ndarray
    pure_share: float
    year: int  # of the label map
    grid: Grid  # the VHR grid
    label: np.ndarray  # (H, W) uint8 the label map of `year` on the grid (0 = no label)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def pure(self) -> np.ndarray:
        return self.fractions.max(1) >= self.pure_share

    @property
    def dominant(self) -> np.ndarray:
        """(N,) the LCZ code covering most of each scene."""
        return self.fractions.argmax(1) + 1

    def subset(self, keep: np.ndarray) -> Scenes:
        return Scenes(self.x[keep], self.fractions[keep], self.split[keep], self.rows[keep], self.cols[keep],
                      self.pure_share, self.year, self.grid, self.label)

    def counts(self) -> dict:
        """Pure and mixed scenes per split, and the mixed:pure ratio (about 2:1 in the paper)."""
        out = {}
        for split in ("train", "val", "test", "all"):
            sel = np.ones(len(self.split), bool) if split == "all" else self.split == split
            pure = int((self.pure & sel).sum())
            out[split] = {"pure": pure, "mixed": int(sel.sum()) - pure}
        out["mixed_to_pure"] = out["all"]["mixed"] / max(out["all"]["pure"], 1)
        return out

    def classes_without_pure_scenes(self, split: str = "train") -> list[int]:
        """Codes present in the scenes but never the class of a pure scene of ``split``: PSC-Net never
        sees them as a class, MSU-Net learns them only from mixtures."""
        present = np.nonzero(self.fractions.sum(0) > 0)[0] + 1
        pure_codes = set(self.dominant[self.pure & (self.split == split)].tolist())
        return [int(c) for c in present if c not in pure_codes]


def label_year(labels, image_date: str | None, path) -> int:
    """The label map's year to pair with an image of ``image_date`` (ISO): the same, else the nearest."""
    years = [int(y) for y in labels.year.values]
    if not years:
        raise InputError(path, "holds no LCZ label map")
    if not image_date:
        return years[-1]
    wanted = int(str(image_date)[:4])
    year = min(years, key=lambda y: (abs(y - wanted), -y))
    if year != wanted:
        log.warning("no LCZ labels for %d (the VHR image's year); using those of %d", wanted, year)
    return year


def load_scenes(aligned_dir: str | Path, tiles: str | Path, pure_share: float = PURE_SHARE) -> Scenes:
    """Cut every tile of the index from ``<aligned_dir>/gf2.zarr`` and ``lcz_labels.zarr`` (vhr grids)."""
    from ...align import open_aligned

    if not 0.5 < pure_share <= 1:
        raise InputError("pure_share", f"must be in (0.5, 1], got {pure_share}")
    aligned_dir = Path(aligned_dir)
    image = open_aligned(aligned_dir / "gf2.zarr", "vhr")["reflectance"]
    labels_path = aligned_dir / "lcz_labels.zarr"
    labels = open_aligned(labels_path, "vhr")["lcz"]
    year = label_year(labels, image.attrs.get("date"), labels_path)
    grid = grid_of(image)
    if grid_of(labels) != grid:
        raise InputError(labels_path, "is not on the VHR image's grid; align both for the same city")
    index = read_index(tiles)
    if len(index) == 0:
        raise InputError(tiles, "holds no tile")
    size = int(index["size"].iloc[0])
    pixels = image.values.astype(np.float32)
    label = labels.sel(year=year).values
    rows, cols = index["row"].to_numpy(), index["col"].to_numpy()
    x = np.stack([pixels[:, r : r + size, c : c + size] for r, c in zip(rows, cols)])
    counts = np.stack([np.bincount(label[r : r + size, c : c + size].ravel(), minlength=N_CLASSES + 1)
                       for r, c in zip(rows, cols)])[:, : N_CLASSES + 1]
    labelled = counts[:, 1:].sum(1)
    keep = labelled >= MIN_LABELLED * size * size
    if not keep.any():
        raise InputError(labels_path, f"labels less than {MIN_LABELLED:.0%} of every {size} px scene in {year}")
    fractions = (counts[:, 1:] / np.maximum(labelled, 1)[:, None]).astype(np.float32)
    scenes = Scenes(x, fractions, index["split"].to_numpy().astype(str), rows, cols, float(pure_share), year, grid,
                    label)
    return scenes.subset(keep)


# ------------------------------------------------------------------------------------ model inputs

def normalise(x: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Bands standardised by the model's scaler; no-data pixels become 0 (the mean)."""
    return np.nan_to_num(scaler.forward(np.asarray(x, np.float32)), nan=0.0).astype(np.float32)


class ScenePairs(Dataset):
    """Training items: a pure scene and a mixed scene, ``((pure, mixed), (class index, fractions, mixed))``.

    An epoch walks the larger of the two sets; the smaller one is cycled. ``augment``: the same
    random quarter turn and flip for both scenes (LCZs have no preferred orientation), drawn from
    torch's generator, which the training loop checkpoints.
    """

    def __init__(self, pure_x, pure_class, mixed_x, mixed_fractions, *, augment: bool):
        if not len(pure_x) or not len(mixed_x):
            raise ValueError(f"needs pure and mixed scenes, got {len(pure_x)} pure and {len(mixed_x)} mixed")
        self.pure_x, self.mixed_x = torch.from_numpy(pure_x), torch.from_numpy(mixed_x)
        self.pure_class = torch.from_numpy(np.asarray(pure_class, np.int64) - 1)
        self.fractions = torch.from_numpy(mixed_fractions)
        self.augment = augment

    def __len__(self) -> int:
        return max(len(self.pure_x), len(self.mixed_x))

    def __getitem__(self, i):
        p, m = self.pure_x[i % len(self.pure_x)], self.mixed_x[i % len(self.mixed_x)]
        if self.augment:
            k, flip = int(torch.randint(4, ())), bool(torch.randint(2, ()))
            p, m = (torch.rot90(t, k, (1, 2)) for t in (p, m))
            if flip:
                p, m = p.flip(2), m.flip(2)
        return (p, m), (self.pure_class[i % len(self.pure_x)], self.fractions[i % len(self.mixed_x)], m)
