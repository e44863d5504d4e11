"""``urbaneo urban train``: fit one urban method (IFCN, a baseline) on the region's training chips."""

from __future__ import annotations

import argparse
import logging
import os

import torch
from torch import nn
from torch.utils.data import DataLoader

from ...models import fcn
from ..options import add_runtime_args, set_threads
from .baselines import SvmBaseline, best_threshold, otsu_threshold
from .data import IGNORE, UrbanChips
from .model import DEEP, MODEL_FORMAT, Samples, add_input_args, add_training_args, hyperparameters, load

log = logging.getLogger(__name__)


def train(method: str, aligned_dir, tiles, out, *, preset: str, seed: int, max_epochs: int | None = None,
          vgg16: str | None = None, progress: bool = True) -> dict:
    """Fit one method on the region's training chips and save it to ``out`` (a torch file of tensors)."""
    from ...training import save_model, seed_everything, train_and_save

    hp = hyperparameters(method, preset, max_epochs)
    seed_everything(seed)
    _, s = load(aligned_dir, tiles, preset)
    zoom = s.input_size / s.chip

    def model_file(state, history):
        return {"format": MODEL_FORMAT, "method": method, "preset": preset, "seed": seed, "hyperparameters": hp,
                "input_size": s.input_size, "chip": s.chip, "train_chips": len(s.x_train),
                "processes": int(os.environ.get("WORLD_SIZE", "1")),  # data-parallel: batch_size is per process
                "held_out_town": s.held.town, "dropped_chips": list(s.held.dropped), "state": state,
                "history": history}

    if method in DEEP:
        model, loader, optimizer, generator = _network(method, preset, s, hp, seed, vgg16)
        return train_and_save(model, loader, out, model_file=lambda history: model_file(model.state_dict(), history),
                              shaping=(method, preset, seed, sorted(hp.items()), str(vgg16), s.x_train, s.y_train),
                              loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE), optimizer=optimizer,
                              epochs=hp["epochs"], seed=seed, generator=generator, progress=progress)
    if method == "svm":
        state = {k: torch.from_numpy(v) for k, v in SvmBaseline(seed=seed).fit(s.x_train, s.y_train, zoom).state().items()}
    else:
        t = otsu_threshold(s.x_train) if method == "otsu" else best_threshold(s.x_train, s.y_train)
        state = {"threshold": torch.tensor(t, dtype=torch.float64)}
    return save_model(model_file(state, {}), out)


def _network(method: str, preset: str, s: Samples, hp: dict, seed: int, vgg16: str | None):
    """One deep method's network, its shuffling loader, optimizer and the loader's seeded generator."""
    model = fcn.build(method, preset, dropout=hp["dropout"])
    if vgg16 and method != "unet":  # U-Net has no VGG backbone
        copied = fcn.load_pretrained_vgg16(model, vgg16)
        log.info("%s: %d tensors from %s", method, copied, vgg16)
    optimizer = torch.optim.Adam(fcn.param_groups(model, hp["lr"], hp["low_lr_mult"], hp["bias_mult"]))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(UrbanChips(s.x_train, s.y_train, augment=hp["augment"]), batch_size=hp["batch_size"], shuffle=True,
                        generator=generator)
    return model, loader, optimizer, generator


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True)
    add_input_args(p)
    add_training_args(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    data = train(args.method, args.aligned, args.tiles, args.out, preset=args.preset, seed=args.seed,
                 max_epochs=args.max_epochs, vgg16=args.vgg16, progress=args.progress)
    loss = data["history"].get("train_loss", [None])[-1] if data["history"] else None
    print(f"urban train {args.method}: {data['train_chips']} chips"
          + (f", {len(data['history']['epoch'])} epochs, final loss {loss:.4g}" if loss is not None else "")
          + f" -> {args.out}")
    return 0
