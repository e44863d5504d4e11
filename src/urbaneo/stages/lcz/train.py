"""Seed 002's LCZ training: SU-Net (PSC-Net on pure scenes, MSU-Net on mixed ones, GradNorm) fitted
on a city's training scenes and saved as the LCZ model file (``model``)."""

from __future__ import annotations

import argparse
import logging
import math
import os

import torch
from torch.utils.data import DataLoader

from ...errors import InputError
from ...models import su_net
from ...models.scaling import Scaler
from ...presets import PURE_SHARE
from ..options import add_runtime_args, set_threads
from .data import ScenePairs, Scenes, load_scenes, normalise
from .model import MODEL_FORMAT, add_training_args, build, hyperparameters

log = logging.getLogger(__name__)


def optimizer(model: su_net.SUNet, hp: dict) -> torch.optim.AdamW:
    """AdamW over the network; GradNorm's task weights in a group of their own (their rate, no decay)."""
    net = [p for name, p in model.named_parameters() if name != "task_weights"]
    return torch.optim.AdamW([{"params": net, "lr": hp["lr"], "weight_decay": hp["weight_decay"]},
                              {"params": [model.task_weights], "lr": hp["gradnorm_lr"], "weight_decay": 0.0}])


def _schedule(adamw, hp: dict, steps_per_epoch: int):
    """Linear warm-up over ``warmup_epochs``, then cosine decay to 0 (Swin's usual recipe; the paper
    names no schedule), stepped every batch; ``schedule: constant`` keeps the rate."""
    if hp["schedule"] == "constant":
        return None
    warmup, total = hp["warmup_epochs"] * steps_per_epoch, hp["epochs"] * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(adamw, factor)


def check_training_scenes(scenes: Scenes, tiles) -> list[int]:
    """Both tasks need scenes: one InputError line if the training split lacks pure or mixed ones.
    Returns (and logs) the classes present but without a pure training scene; training proceeds."""
    pure = scenes.pure[scenes.split == "train"]
    if not pure.any():
        raise InputError(tiles, f"no pure training scene: no class covers {scenes.pure_share:.0%} of any scene "
                                "(lower lcz_pure_share or use larger scenes)")
    if pure.all():
        raise InputError(tiles, "no mixed training scene, so MSU-Net has nothing to unmix")
    missing = scenes.classes_without_pure_scenes("train")
    if missing:
        log.warning("LCZ classes %s have no pure training scene: PSC-Net cannot predict them, MSU-Net learns "
                    "them from mixed scenes only", missing)
    return missing


def _loader(scenes: Scenes, scaler: Scaler, hp: dict, *, augment: bool, generator=None) -> DataLoader | None:
    pure = scenes.pure
    if not pure.any() or pure.all():
        return None
    pairs = ScenePairs(normalise(scenes.x[pure], scaler), scenes.dominant[pure],
                       normalise(scenes.x[~pure], scaler), scenes.fractions[~pure], augment=augment)
    return DataLoader(pairs, batch_size=hp["batch_size"], shuffle=generator is not None, generator=generator)


def train(aligned_dir, tiles, out, *, preset: str, seed: int, max_epochs: int | None = None,
          pure_share: float = PURE_SHARE, weights: str | None = None, progress: bool = True, **overrides) -> dict:
    """Fit SU-Net on the city's training scenes and save it to ``out`` (a torch file of tensors).

    ``overrides`` replace preset hyper-parameters (a study; the stage uses the preset's)."""
    from ...training import seed_everything, train_and_save

    hp = hyperparameters(preset, max_epochs, pure_share, **overrides)
    seed_everything(seed)
    scenes = load_scenes(aligned_dir, tiles, pure_share)
    train_set, val_set = (scenes.subset(scenes.split == s) for s in ("train", "val"))
    missing = check_training_scenes(scenes, tiles)
    scaler = Scaler.fit(train_set.x)
    generator = torch.Generator().manual_seed(seed)
    loader = _loader(train_set, scaler, hp, augment=hp["augment"], generator=generator)
    val_loader = _loader(val_set, scaler, hp, augment=False)

    model = build(preset, hp)
    if weights:
        log.info("SU-Net backbone: %d tensors from %s", su_net.load_pretrained(model, weights), weights)
    adamw = optimizer(model, hp)

    def model_file(history):
        return {"format": MODEL_FORMAT, "preset": preset, "seed": seed, "hyperparameters": hp,
                "img": int(scenes.x.shape[-1]), "mean": torch.from_numpy(scaler.mean),
                "std": torch.from_numpy(scaler.std),
                "label_year": scenes.year, "scenes": scenes.counts(), "classes_without_pure_scenes": missing,
                "task_weights": [float(w) for w in model.task_weights.detach()],
                "processes": int(os.environ.get("WORLD_SIZE", "1")),  # data-parallel: batch_size is per process
                "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "history": history,
                "pretrained": bool(weights)}

    return train_and_save(model, loader, out, shaping=(preset, seed, sorted(hp.items()), str(weights), train_set.x,
                                                       train_set.fractions),
                          model_file=model_file, loss_fn=su_net.gradnorm_loss(model, hp["gradnorm_alpha"]),
                          optimizer=adamw, epochs=hp["epochs"], seed=seed, val_loader=val_loader, generator=generator,
                          scheduler=_schedule(adamw, hp, len(loader)), scheduler_interval="batch", progress=progress)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2, lcz_labels)")
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/lcz.parquet")
    add_training_args(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    data = train(args.aligned, args.tiles, args.out, preset=args.preset, seed=args.seed, max_epochs=args.max_epochs,
                 pure_share=args.pure_share, weights=args.weights, progress=args.progress)
    n = data["scenes"]["train"]
    print(f"lcz train: {n['pure']} pure + {n['mixed']} mixed training scenes, {len(data['history']['epoch'])} epochs, "
          f"final loss {data['history']['train_loss'][-1]:.4g} -> {args.out}")
    if data["classes_without_pure_scenes"]:
        print(f"lcz train: LCZ classes {data['classes_without_pure_scenes']} have no pure training scene")
    return 0
