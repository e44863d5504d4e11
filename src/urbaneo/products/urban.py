"""Seed 003's urban construction-land stage: train each method, predict the region, evaluate them.

Methods: IFCN and its deep baselines (FCN-32s/16s/8s, U-Net) trained with the shared loop, a linear SVM
on pixel features, and two night-light thresholds (Otsu's, and the best F1 on the training chips). All
of them see the same chips and go through the same window pipeline over the region, so the comparison
(Tables 2-4) differs only by the method.

Whole-region prediction (our choice; the paper shows maps but not how it tiles a region): windows of
one chip (36 VIIRS pixels) every chip/4 pixels, upsampled to the network input like the training chips,
their urban probability blended back on the network's own grid (chip / input_size finer than VIIRS),
then resampled bilinearly to the 30 m label grid and cut at 0.5. The mask so lies on the grid of the
label it is compared with (FROM-GLC30 in the paper).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..atomic import atomic_path
from ..errors import InputError
from ..grid import Grid, warp_array
from ..models import fcn
from ..presets import TILES, URBAN_DEEP, URBAN_METHODS, URBAN_TRAIN
from ..tiles import Mosaic, read_index
from .urban_baselines import SvmBaseline, best_threshold, otsu_threshold
from .urban_data import IGNORE, HeldOutTown, Region, UrbanChips, chips, held_out_town, load_region, normalise, upsample

log = logging.getLogger(__name__)

DEEP, METHODS = URBAN_DEEP, URBAN_METHODS
assert DEEP == fcn.MODELS
LABELS = {"ifcn": "IFCN", "fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "unet": "U-Net",
          "svm": "SVM", "otsu": "Otsu threshold", "threshold": "best threshold"}
MODEL_FORMAT = "urbaneo-urban-model/1"
WINDOWS_PER_CHIP = 4  # region windows start every chip / 4 VIIRS pixels
PRODUCT_METHOD = "ifcn"  # the published mask is the paper's method; the others are its baselines
COLOURS = {0: (240, 240, 240, 255), 1: (227, 26, 28, 255)}  # mask colour table: other land, construction land


@dataclass
class Samples:
    """Training and test chips of one region (section 3.2.1), with the town held out of training."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    held: HeldOutTown
    input_size: int
    chip: int


def load(aligned_dir: str | Path, tiles: str | Path, preset: str, *, train: bool = True) -> tuple[Region, Samples]:
    """The region and its chips; ``train=False`` skips cutting the training chips (prediction needs none)."""
    region = load_region(aligned_dir)
    index = read_index(tiles)
    size = fcn.PRESETS[preset]["input_size"]
    held = held_out_town(region, index)
    train_index = index[(index["split"] == "train") & ~index["tile_id"].isin(held.dropped)]
    if train and len(train_index) == 0:
        raise InputError(tiles, "no training chip (every sub-region was drawn for testing)")
    x_tr, y_tr = chips(region, train_index if train else train_index.iloc[:0], size)
    x_te, y_te = chips(region, index[index["split"] == "test"], size)
    return region, Samples(x_tr, y_tr, x_te, y_te, held, size, TILES["urban"][preset]["size"])


# ------------------------------------------------------------------------------------------ training

def hyperparameters(method: str, preset: str, max_epochs: int | None = None) -> dict:
    """What a method is trained with (recorded in its model file, metrics and STAC item)."""
    if method not in METHODS:
        raise InputError("method", f"unknown urban method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "svm":
        return {"kernel": "linear", "C": 1.0, "class_weight": "balanced", "max_samples": 20_000, "features": 6}
    if method in ("otsu", "threshold"):
        return {"on": "normalised log radiance", "rule": "Otsu" if method == "otsu" else "max F1 on training chips"}
    hp = dict(URBAN_TRAIN[preset])
    if max_epochs is not None:
        hp["epochs"] = min(hp["epochs"], int(max_epochs))
    hp["low_lr_mult"] = hp["low_lr_mult"] if method == "ifcn" else 1.0
    hp.update(optimizer="Adam", loss="softmax cross-entropy", init="Xavier", width=fcn.PRESETS[preset]["width"],
              input_size=fcn.PRESETS[preset]["input_size"])
    return hp


def train(method: str, aligned_dir, tiles, out, *, preset: str, seed: int, max_epochs: int | None = None,
          vgg16: str | None = None, progress: bool = True) -> dict:
    """Fit one method on the region's training chips and save it to ``out`` (a torch file of tensors)."""
    from ..training import is_main_process, save, seed_everything

    hp = hyperparameters(method, preset, max_epochs)
    seed_everything(seed)
    _, s = load(aligned_dir, tiles, preset)
    zoom = s.input_size / s.chip
    history: dict = {}
    if method in DEEP:
        state, history = _train_net(method, s, preset, seed, hp, vgg16, Path(out), progress)
    elif method == "svm":
        state = {k: torch.from_numpy(v) for k, v in SvmBaseline(seed=seed).fit(s.x_train, s.y_train, zoom).state().items()}
    else:
        t = otsu_threshold(s.x_train) if method == "otsu" else best_threshold(s.x_train, s.y_train)
        state = {"threshold": torch.tensor(t, dtype=torch.float64)}
    data = {"format": MODEL_FORMAT, "method": method, "preset": preset, "seed": seed, "hyperparameters": hp,
            "input_size": s.input_size, "chip": s.chip, "train_chips": len(s.x_train),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),  # data-parallel: batch_size is per process
            "held_out_town": s.held.town, "dropped_chips": list(s.held.dropped), "state": state, "history": history}
    if is_main_process():  # the other ranks of a multi-GPU run hold the same weights
        save(data, out)
    return data


def _train_net(method, s: Samples, preset, seed, hp, vgg16, out: Path, progress) -> tuple[dict, dict]:
    from ..training import fit, is_main_process

    model = fcn.build(method, preset, dropout=hp["dropout"])
    if vgg16 and method != "unet":  # U-Net has no VGG backbone
        copied = fcn.load_pretrained_vgg16(model, vgg16)
        log.info("%s: %d tensors from %s", method, copied, vgg16)
    optimizer = torch.optim.Adam(fcn.param_groups(model, hp["lr"], hp["low_lr_mult"], hp["bias_mult"]))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(UrbanChips(s.x_train, s.y_train, augment=hp["augment"]), batch_size=hp["batch_size"], shuffle=True,
                        generator=generator)
    # A resumable checkpoint beside the output, named by everything that shapes the training, so an
    # interrupted job (a preempted cluster job) resumes and a changed config never resumes a stale one.
    key = hashlib.sha256(repr((method, preset, seed, sorted(hp.items()), str(vgg16))).encode()
                         + s.x_train.tobytes() + s.y_train.tobytes()).hexdigest()[:16]
    partial = out.with_name(f".{out.name}.{key}.partial")
    history = fit(model, loader, loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE), optimizer=optimizer,
                  epochs=hp["epochs"], seed=seed, checkpoint=partial, generator=generator, progress=progress)
    if is_main_process():
        partial.unlink(missing_ok=True)
    return model.state_dict(), history


# ---------------------------------------------------------------------------------------- prediction

def load_model(path) -> dict:
    """A model file of `train`, checked; add a ``probability(x)`` callable: (N, 1, S, S) -> (N, S, S)."""
    from ..training import read_model_file

    data = read_model_file(path, MODEL_FORMAT, "urban")
    method, zoom = data["method"], data["input_size"] / data["chip"]
    if method in DEEP:
        from ..training import device, predict

        net = fcn.build(method, data["preset"], dropout=data["hyperparameters"]["dropout"])
        net.load_state_dict(data["state"])

        def probability(x):
            loader = DataLoader(TensorDataset(torch.from_numpy(np.ascontiguousarray(x))), batch_size=16)
            return torch.softmax(predict(net, loader), dim=1)[:, 1].numpy()

        log.info("%s on %s", method, device())
    elif method == "svm":
        svm = SvmBaseline.from_state({k: v.numpy() for k, v in data["state"].items()})

        def probability(x):
            return svm.predict(x, zoom).astype(np.float32)
    else:
        t = float(data["state"]["threshold"])

        def probability(x):
            return (np.asarray(x)[:, 0] > t).astype(np.float32)

    data["probability"] = probability
    return data


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


def prediction_files(root, method: str) -> tuple[Path, Path]:
    """(region mask COG, test-chip masks .npy) of a method under ``root`` (resources/<run>/urban/<city>)."""
    return Path(root) / method / "mask.tif", Path(root) / method / "test_chips.npy"


def predict(models: dict, aligned_dir, tiles, root, *, progress: bool = True) -> list[dict]:
    """Each method's region mask (COG on the 30 m label grid) and test-chip masks (N, S, S) as .npy."""
    from ..artifacts.cog import write_cog

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
