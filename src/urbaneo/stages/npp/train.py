"""st-MAE for the NPP stage: train one composite's model on a city's clear chips, fill cloud gaps.

Training goes through the one training loop (``training.fit``: seeded, resumable checkpoint,
data-parallel under torchrun). Each chip draws its own mask when it is loaded (OSM vegetation
first, eq. 4, or random), from torch's random state, which the checkpoint saves, so a resumed run
draws the same masks. Pixels are standardised per band with the training chips' mean and std
(``st_mae.Scaler``), saved with the model so reconstructions go back to reflectance.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ...errors import InputError
from ...models import st_mae
from ...presets import ST_MAE
from ..options import add_runtime_args, set_threads
from .data import KINDS, Acquisitions, add_common_args, chips, load, split

log = logging.getLogger(__name__)

MODEL_FORMAT = "urbaneo-npp-mae/1"


class MaskedChips(Dataset):
    """(standardised chip, season, its mask) -> the chip: the mask drawn per item (see module doc)."""

    def __init__(self, images: np.ndarray, season: np.ndarray, green: np.ndarray, model: st_mae.StMAE):
        self.images = torch.from_numpy(np.ascontiguousarray(images, np.float32))
        self.season = torch.from_numpy(np.asarray(season, np.int64))
        self.vegetation = model.vegetation_tokens(torch.from_numpy(np.asarray(green, np.float32)))
        self.model = model

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        mask = self.model.choose_mask(1, self.vegetation[i:i + 1])[0]
        return (self.images[i], self.season[i], mask), self.images[i]


class _WithMask(nn.Module):
    """The model as ``training.fit`` calls it: the output carries the mask for the loss."""

    def __init__(self, model: st_mae.StMAE):
        super().__init__()
        self.model = model

    def forward(self, imgs, season, mask):
        return self.model(imgs, season, mask), mask


def hyperparameters(preset: str, max_epochs: int | None, mask_mode: str, freeze: int | None, **overrides) -> dict:
    """The preset's settings with the run's cap, mask mode and frozen blocks; ``overrides`` (the
    ablation's season_layers, mask_ratio) replace preset keys."""
    hp = dict(ST_MAE[preset])
    unknown = set(overrides) - set(hp)
    if unknown:
        raise ValueError(f"not st-MAE settings: {sorted(unknown)}")
    hp.update(overrides)
    if max_epochs is not None:
        hp["epochs"] = min(hp["epochs"], int(max_epochs))
    if freeze is not None:
        hp["freeze"] = freeze
    hp.update(mask_mode=mask_mode, optimizer="AdamW", loss="MSE on standardised pixels of masked patches")
    return hp


def train(acq: Acquisitions, kind: str, out: str | Path, *, preset: str = "demo", seed: int = 0,
          max_epochs: int | None = None, mask_mode: str = "osm", pretrained: str | None = None,
          freeze: int | None = None, progress: bool = True, last_train_year: int | None = None,
          **overrides) -> dict:
    """Train the ``kind`` composite's st-MAE on the clear chips before the last year; save it to ``out``.

    Returns the saved dict, with the held-out year's reconstruction MSE (standardised pixels).
    """
    from ...training import seed_everything, train_and_save

    hp = hyperparameters(preset, max_epochs, mask_mode, freeze, **overrides)
    seed_everything(seed)
    model = st_mae.build(hp, mask_mode=mask_mode)
    if pretrained:
        log.info("st-MAE %s: %d tensors from %s", kind, st_mae.load_pretrained(model, pretrained), pretrained)
    elif hp["freeze"]:
        hp["freeze"] = 0  # nothing learned yet to keep: freezing random blocks only weakens the model
    model.freeze(hp["freeze"])
    c = chips(acq, kind, hp["img"], hp["patch"], stride=hp["img"] // 2)
    train_idx, held_idx = split(c, last_train_year)
    scaler = st_mae.Scaler.fit(c.images[train_idx])
    data = MaskedChips(scaler.forward(c.images[train_idx]), c.season[train_idx], c.green[train_idx], model)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=hp["batch_size"], shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=hp["lr"])

    def model_file(history):
        held = (model, scaler, c.images[held_idx], c.season[held_idx], c.green[held_idx], seed)
        return {"format": MODEL_FORMAT, "kind": kind, "preset": preset, "seed": seed, "hyperparameters": hp,
                "scaler": {"mean": torch.from_numpy(scaler.mean), "std": torch.from_numpy(scaler.std)},
                "state": {k: v.cpu() for k, v in model.state_dict().items()}, "history": history,
                "train_chips": len(train_idx), "heldout_chips": len(held_idx), "heldout_mse": heldout_mse(*held),
                "heldout_mse_random_masks": heldout_mse(*held, vegetation_first=False)}

    return train_and_save(_WithMask(model), loader, out, model_file=model_file,
                          shaping=(kind, preset, seed, sorted(hp.items()), str(pretrained), c.images[train_idx]),
                          optimizer=optimizer, epochs=hp["epochs"], seed=seed,
                          loss_fn=lambda output, target: model.loss(target, *output), generator=generator,
                          progress=progress)


@torch.no_grad()
def heldout_mse(model: st_mae.StMAE, scaler: st_mae.Scaler, images, season, green, seed: int,
                vegetation_first: bool = True) -> float | None:
    """Mean reconstruction MSE over held-out chips, each masked as in training (seeded), or with
    plain random masks (``vegetation_first=False``: the same masks for every model, to compare
    an OSM-masked model with a randomly masked one on equal terms)."""
    from ...training import autocast

    if len(images) == 0:
        return None
    model.eval()
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(scaler.forward(images).astype(np.float32))
    vegetation = model.vegetation_tokens(torch.from_numpy(green.astype(np.float32))) if vegetation_first else None
    mask = model.choose_mask(len(x), vegetation, gen)
    season = torch.from_numpy(np.asarray(season, np.int64))
    total = 0.0
    for i in range(0, len(x), 32):
        xb, sb, mb = x[i:i + 32].to(dev), season[i:i + 32].to(dev), mask[i:i + 32].to(dev)
        with autocast(dev):
            total += float(model.loss(xb, model(xb, sb, mb).float(), mb)) * len(xb)
    return total / len(x)


def load_model(path: str | Path) -> tuple[st_mae.StMAE, st_mae.Scaler, dict]:
    """A model file of ``train``: the network (eval mode), its scaler and the saved facts."""
    from ...training import read_model_file

    data = read_model_file(path, MODEL_FORMAT, "st-MAE")
    model = st_mae.build(data["hyperparameters"], mask_mode=data["hyperparameters"]["mask_mode"])
    model.load_state_dict(data["state"])
    scaler = st_mae.Scaler(data["scaler"]["mean"].numpy(), data["scaler"]["std"].numpy())
    return model.eval(), scaler, data


def fill_gaps(model: st_mae.StMAE, scaler: st_mae.Scaler, images: np.ndarray, usable: np.ndarray,
              season: np.ndarray) -> np.ndarray:
    """Gap-filled composites: (T, 3, H, W) reflectance with NaN where unusable -> the same, every
    patch with an unusable pixel reconstructed by st-MAE from the rest of its chip.

    The grid is covered by chips of the model's size (the last row and column of chips shifted to
    end at the edge); pixels no chip of an acquisition can fill (a chip with no usable pixel at all)
    stay NaN.
    """
    from ...training import autocast

    t, _, h, w = images.shape
    size, patch = model.grid * model.patch, model.patch
    dev = next(model.parameters()).device
    if h < size or w < size:
        raise InputError("fill_gaps", f"the grid ({h} x {w} px) is smaller than one chip ({size} px)")
    starts_r = sorted({*range(0, h - size + 1, size), h - size})
    starts_c = sorted({*range(0, w - size + 1, size), w - size})
    out = images.copy()
    g = model.grid
    for i in range(t):
        for r in starts_r:
            for c in starts_c:
                ok = usable[i, r:r + size, c:c + size]
                if ok.all() or not ok.any():
                    continue
                cloudy = ~ok.reshape(g, patch, g, patch).all(axis=(1, 3)).reshape(1, -1)
                x = np.nan_to_num(scaler.forward(images[i, :, r:r + size, c:c + size]))[None]
                with autocast(dev):
                    filled = model.reconstruct(torch.from_numpy(x.astype(np.float32)).to(dev),
                                               torch.tensor([int(season[i])], device=dev),
                                               torch.from_numpy(cloudy).to(dev))[0].float().cpu().numpy()
                back = scaler.inverse(filled)
                block = out[i, :, r:r + size, c:c + size]
                out[i, :, r:r + size, c:c + size] = np.where(np.isnan(block), back, block)
    return out


# --- the command: urbaneo npp train --------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", required=True, choices=KINDS)
    add_common_args(p, models=False)
    p.add_argument("--mae", metavar="PATH", default=None, help="official MAE checkpoint to start from")
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    mask = "osm" if args.osm else "random"
    if not args.osm:
        log.warning("the city has no OSM: st-MAE masks at random (recorded in the model and the product)")
    acq = load(args.aligned, osm=mask == "osm")
    data = train(acq, args.kind, args.out, preset=args.preset, seed=args.seed, max_epochs=args.max_epochs,
                 mask_mode=mask, pretrained=args.mae, progress=args.progress)
    mse = data["heldout_mse"]
    print(f"npp train {args.kind}: {data['train_chips']} clear chips, {len(data['history']['epoch'])} epochs, "
          f"held-out MSE {'-' if mse is None else f'{mse:.4f}'} ({mask} mask) -> {args.out}")
    return 0
