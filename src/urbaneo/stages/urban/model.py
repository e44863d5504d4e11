"""The urban stage's shared parts: its methods, their chips, hyperparameters and model files, options.

Methods (seed 003): IFCN and its deep baselines (FCN-32s/16s/8s, U-Net) trained with the shared loop, a
linear SVM on pixel features, and two night-light thresholds (Otsu's, and the best F1 on the training
chips). All of them see the same chips and go through the same window pipeline over the region
(`predict`), so the comparison (Tables 2-4) differs only by the method.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ...errors import InputError
from ...models import fcn
from ...presets import TILES, URBAN_DEEP, URBAN_METHODS, URBAN_TRAIN
from ...tiles import read_index
from .baselines import SvmBaseline
from .data import HeldOutTown, Region, chips, held_out_town, load_region

log = logging.getLogger(__name__)

DEEP, METHODS = URBAN_DEEP, URBAN_METHODS
assert DEEP == fcn.MODELS
LABELS = {"ifcn": "IFCN", "fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "unet": "U-Net",
          "svm": "SVM", "otsu": "Otsu threshold", "threshold": "best threshold"}
MODEL_FORMAT = "urbaneo-urban-model/1"
PRODUCT_METHOD = "ifcn"  # the published mask is the paper's method; the others are its baselines


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


def load_model(path) -> dict:
    """A model file of `train`, checked; add a ``probability(x)`` callable: (N, 1, S, S) -> (N, S, S)."""
    from ...training import read_model_file

    data = read_model_file(path, MODEL_FORMAT, "urban")
    method, zoom = data["method"], data["input_size"] / data["chip"]
    if method in DEEP:
        from ...training import device, predict

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


def prediction_files(root, method: str) -> tuple[Path, Path]:
    """(region mask COG, test-chip masks .npy) of a method under ``root`` (resources/<run>/urban/<city>)."""
    return Path(root) / method / "mask.tif", Path(root) / method / "test_chips.npy"


# ------------------------------------------------------------------------------------ command line

def add_input_args(p, *, preset: bool = True, tiles: bool = True) -> None:
    """The aligned region, its tile index and the preset: the inputs of every step."""
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (viirs, urban_labels)")
    if tiles:
        p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/urban.parquet")
    if preset:
        p.add_argument("--preset", default="demo", choices=sorted(URBAN_TRAIN))


def add_training_args(p) -> None:
    """What shapes the training (train and publish: the product's params record it)."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
    p.add_argument("--vgg16", metavar="PATH", default=None, help="torchvision VGG16 state dict to start from")
