"""The LCZ model file and what every step reads from it: SU-Net's hyper-parameters, the model's
checks and loading, PSC-Net and MSU-Net outputs of scenes, and the options that shape training."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ...errors import InputError
from ...models import su_net
from ...models.scaling import Scaler
from ...presets import PURE_SHARE, SU_NET
from .data import normalise

MODEL_FORMAT = "urbaneo-lcz-model/1"
CELLS_PER_SCENE = 4  # map cells along a scene side; windows start every half scene
NODATA = 0
MODEL_HELP = "resources/<run>/lcz/<city>/model.pt (the maps are written beside it)"


def hyperparameters(preset: str, max_epochs: int | None = None, pure_share: float = PURE_SHARE, **overrides) -> dict:
    """What SU-Net is trained with (recorded in the model file, metrics and STAC items)."""
    if preset not in SU_NET:
        raise InputError("preset", f"unknown SU-Net preset {preset!r}; choose one of {', '.join(SU_NET)}")
    hp = {**SU_NET[preset], **overrides}
    if max_epochs is not None:
        hp["epochs"] = min(hp["epochs"], int(max_epochs))
    hp.update(optimizer="AdamW", pure_share=float(pure_share), backbone="Swin-V2 (torchvision blocks)",
              losses=list(su_net.TASKS), loss_weighting="GradNorm")
    return hp


def add_training_args(p) -> None:
    """The options that shape the model (``train``; ``publish`` records them in the product's id)."""
    p.add_argument("--preset", default="demo", choices=sorted(SU_NET))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
    p.add_argument("--pure-share", type=float, default=PURE_SHARE,
                   help=f"a scene is pure when one class covers this share of it (default {PURE_SHARE})")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="torchvision Swin-V2-T state dict to start the backbone from")


def build(preset: str, hp: dict) -> su_net.SUNet:
    """SU-Net of ``preset`` with the architecture keys of ``hp`` (the preset's, or a study's overrides)."""
    return su_net.build(preset, **{k: v for k, v in hp.items() if k in SU_NET[preset]})


def read_model(path) -> dict:
    """An LCZ model file's contents, checked (one InputError line for anything else)."""
    from ...training import read_model_file

    return read_model_file(path, MODEL_FORMAT, "LCZ")


def load_model(path) -> tuple[su_net.SUNet, dict]:
    """SU-Net (eval mode) and its model file."""
    data = read_model(path)
    model = build(data["preset"], data["hyperparameters"])
    model.load_state_dict(data["state"])
    return model.eval(), data


def scaler(data: dict) -> Scaler:
    """The band standardisation saved in a model file."""
    return Scaler(data["mean"].numpy(), data["std"].numpy())


def scene_outputs(model: su_net.SUNet, data: dict, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """PSC-Net class probabilities and MSU-Net abundances (N, 17) of raw reflectance scenes."""
    from ...training import predict

    if not len(x):
        return np.zeros((0, su_net.N_CLASSES), np.float32), np.zeros((0, su_net.N_CLASSES), np.float32)
    z = normalise(x, scaler(data))
    probs, abundances = predict(su_net.SceneHeads(model), DataLoader(TensorDataset(torch.from_numpy(z)), batch_size=batch))
    return probs.numpy(), abundances.numpy()
