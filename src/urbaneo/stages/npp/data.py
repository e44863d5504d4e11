"""The NPP stage's samples: Landsat acquisitions as st-MAE chips, with seasons, OSM vegetation and clouds.

st-MAE (seed 000) sees 3-band composites: RGB (Landsat 8 bands 4-3-2: red, green, blue) and false
colour (5-4-3: nir, red, green); two models, one per composite, as in the paper. A chip is a
``size`` x ``size`` window of one acquisition on the city's 30 m base grid, with:

* the season of the acquisition (0..3, hemisphere-aware, from the aligned cube's ``season_index``);
* the OSM green share of every pixel (aligned osm ``green_fraction``), for the OSM mask (eq. 3);
* the cloudy patches: a patch is cloudy when any of its pixels is not ``usable`` (QA cloud,
  dilated cloud, shadow, cirrus, snow or fill), the patches gap filling reconstructs.

Training chips are the clear ones (no cloudy patch) of the years before the held-out last year;
the held-out year's clear chips measure the reconstruction MSE (the evaluation's first metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...align import open_aligned
from ...errors import InputError

COMPOSITES = {"rgb": ("red", "green", "blue"), "false_colour": ("nir", "red", "green")}
KINDS = ("rgb", "false_colour")  # the two st-MAEs, in the order of the steps' options (--benchmarks)


@dataclass
class Acquisitions:
    """Every aligned Landsat acquisition of a city on the base grid, with what the chips need."""

    reflectance: np.ndarray  # (T, 4, H, W) float32, bands blue, green, red, nir; NaN where unusable
    usable: np.ndarray  # (T, H, W) bool
    season: np.ndarray  # (T,) int, 0..3
    year: np.ndarray  # (T,) int
    green: np.ndarray  # (H, W) OSM green share, 0..1 (zeros when the city has no OSM)
    bands: tuple[str, ...]

    def composite(self, kind: str) -> np.ndarray:
        """(T, 3, H, W) of the composite ``kind`` (``COMPOSITES``)."""
        if kind not in COMPOSITES:
            raise InputError("composite", f"one of {', '.join(COMPOSITES)}, not {kind!r}")
        return self.reflectance[:, [self.bands.index(b) for b in COMPOSITES[kind]]]


def model_files(root: str | Path) -> dict[str, Path]:
    """The city's st-MAE files under ``root`` (resources/<run>/npp/<city>): kind -> mae_<kind>.pt."""
    return {kind: Path(root) / f"mae_{kind}.pt" for kind in KINDS}


def add_common_args(p, *, maps: bool = False, models: bool = True) -> None:
    """The options every step of the stage shares: the aligned city, preset, seed, epoch cap, and
    the models' folder (``models``) and the maps NetCDF (``maps``)."""
    from ...presets import ST_MAE

    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (landsat, par, osm, ...)")
    p.add_argument("--preset", default="demo", choices=sorted(ST_MAE))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
    # Said by the workflow (the city lists no osm), never guessed from what lies on disk.
    p.add_argument("--no-osm", dest="osm", action="store_false",
                   help="the city has no OSM: st-MAE masks at random and no osm.zarr is read")
    if models:
        p.add_argument("--models", required=True, metavar="DIR", help="resources/<run>/npp/<city> (mae_<kind>.pt)")
    if maps:
        p.add_argument("--maps", required=True, metavar="NC", help="the NetCDF of npp predict")


def load(aligned_dir: str | Path, *, osm: bool = True) -> Acquisitions:
    """The acquisitions under ``aligned_dir`` (landsat.zarr, and osm.zarr when ``osm``)."""
    aligned_dir = Path(aligned_dir)
    ds = open_aligned(aligned_dir / "landsat.zarr", "base").load()
    usable = ds["usable"].values.astype(bool)
    reflectance = np.where(usable[:, None], ds["reflectance"].values, np.nan).astype(np.float32)
    shape = usable.shape[1:]
    green = np.zeros(shape, np.float32)
    if osm:
        if not (aligned_dir / "osm.zarr").exists():
            raise InputError(aligned_dir / "osm.zarr", "not found: pass --no-osm for a city without OSM "
                                                       "(st-MAE then masks at random)")
        green = np.nan_to_num(open_aligned(aligned_dir / "osm.zarr", "base")["green_fraction"].values.astype(np.float32))
    years = np.array([int(str(t)[:4]) for t in ds["time"].values])
    return Acquisitions(reflectance, usable, ds["season_index"].values.astype(int), years, green,
                        tuple(str(b) for b in ds["band"].values))


@dataclass
class Chips:
    images: np.ndarray  # (N, 3, S, S) float32 reflectance (NaN in cloudy pixels)
    season: np.ndarray  # (N,)
    green: np.ndarray  # (N, S, S)
    cloudy: np.ndarray  # (N, L) bool: patches with any unusable pixel
    year: np.ndarray  # (N,)
    origin: np.ndarray  # (N, 3): acquisition index, row, column of the chip's top-left pixel


def chips(acq: Acquisitions, kind: str, size: int, patch: int, stride: int | None = None) -> Chips:
    """Every ``size`` window (``stride`` apart, default ``size``) of every acquisition that has at
    least one usable pixel; ``cloudy`` marks its patches of ``patch`` pixels with any unusable pixel."""
    if size % patch:
        raise InputError("chips", f"chip size {size} is no multiple of the patch size {patch}")
    data = acq.composite(kind)
    t, _, h, w = data.shape
    if h < size or w < size:
        raise InputError("chips", f"the city's base grid ({h} x {w} px) is smaller than one chip ({size} px)")
    stride = stride or size
    g = size // patch
    out: dict[str, list] = {k: [] for k in ("images", "season", "green", "cloudy", "year", "origin")}
    for i in range(t):
        for r in range(0, h - size + 1, stride):
            for c in range(0, w - size + 1, stride):
                ok = acq.usable[i, r:r + size, c:c + size]
                if not ok.any():
                    continue
                out["images"].append(data[i, :, r:r + size, c:c + size])
                out["season"].append(acq.season[i])
                out["green"].append(acq.green[r:r + size, c:c + size])
                out["cloudy"].append(~ok.reshape(g, patch, g, patch).all(axis=(1, 3)).reshape(-1))
                out["year"].append(acq.year[i])
                out["origin"].append((i, r, c))
    if not out["images"]:
        raise InputError("chips", "no acquisition has a usable pixel (every scene is cloud, shadow or fill)")
    return Chips(np.stack(out["images"]).astype(np.float32), np.array(out["season"]), np.stack(out["green"]),
                 np.stack(out["cloudy"]), np.array(out["year"]), np.array(out["origin"]))


def split(c: Chips, last_train_year: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the clear training chips (years up to ``last_train_year``, default: all but the
    last year) and the clear held-out ones (the last year)."""
    clear = ~c.cloudy.any(axis=1)
    last = c.year.max()
    upto = last - 1 if last_train_year is None else last_train_year
    train, held = np.flatnonzero(clear & (c.year <= upto)), np.flatnonzero(clear & (c.year == last))
    if len(train) == 0:
        raise InputError("chips", f"no cloud-free chip up to {upto} to train st-MAE on")
    return train, held
