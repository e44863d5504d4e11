"""``urbaneo vegplan train`` (rule vegplan_train): the CNN-GNN hybrid on the proxy task (seed 001,
EcoDeep-Green), predicting each species' suitability of every cell from the normalised planning-grid
stack (eq. 9). The cells of the training blocks (the tile index, 4:1:1) stand for the paper's field
survey: only there is the suitability seen. As the paper trains: the CNN and the GNN alone first
(``pretrain_epochs``), then the fused model from those weights (``joint_epochs``, composite loss
eqs. 21-23). The CNN-only and GNN-only models of the comparison are the pretrained ones. Saved: the
weights, each model's predicted suitability (its *belief*) and its per-cell features (the agents' state).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import InputError
from ...models import ecodeep
from ...training import device, save, seed_everything
from ..options import add_runtime_args, set_threads
from .dqn import StatePlanes
from .shared import (
    FEATURES_FORMAT,
    SITE_HELP,
    SPLITS,
    add_training_args,
    build_models,
    hyperparameters,
    node_mask,
    normalised,
    write_timings,
)
from .site import read_site

log = logging.getLogger(__name__)


def cell_split(tiles_path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int8: 1 train, 2 validation, 3 test, 0 in no block. Where blocks overlap (the last row and
    column are shifted inwards) test wins over validation over training, so no test cell is trained on."""
    from ...tiles import read_index

    index = read_index(tiles_path)
    split = np.zeros(shape, np.int8)
    for name in ("train", "val", "test"):
        for row in index[index["split"] == name].itertuples():
            split[row.row:row.row + row.size, row.col:row.col + row.size] = SPLITS[name]
    if not (split == SPLITS["train"]).any():
        raise InputError(tiles_path, "no training block in the tile index")
    return split


# --- the CNN-GNN hybrid on the proxy task ---------------------------------------------------------------
def _fit(model, x, graph, target, train, val, hp: dict, epochs: int, what: str, progress: bool) -> dict:
    """Full-city steps (a city is one image and one graph) on the training cells; the validation loss is logged.
    AdamW with the preset's weight decay, the rate annealed (cosine, our choice) from lr to lr_min."""
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs), eta_min=hp["lr_min"])
    history = {"epoch": [], "train_loss": [], "val_mse": []}
    for epoch in tqdm(range(epochs), desc=what, disable=not progress):
        began = time.perf_counter()
        model.train()
        out = model(x, graph)
        loss, _ = ecodeep.composite_loss(out, target, train, model, hp["lambda1"], hp["lambda2"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, graph)["suitability"]
            val_mse = float(((pred - target) ** 2).mean(1, keepdim=True)[val].mean()) if val.any() else float("nan")
        history["epoch"].append(epoch)
        history["train_loss"].append(float(loss.detach()))
        history["val_mse"].append(val_mse)
        log.info("%s epoch %d/%d train loss %.6g val MSE %.6g (%.1f s)", what, epoch + 1, epochs,
                 history["train_loss"][-1], val_mse, time.perf_counter() - began)
    log.info("%s: train loss %.5f, validation MSE %.5f after %d epochs", what, history["train_loss"][-1],
             history["val_mse"][-1], epochs)
    return history


def train_features(site_path, tiles_path, out, *, preset: str = "demo", seed: int = 0, max_epochs: int | None = None,
                   progress: bool = False) -> dict:
    """Train the CNN, the GNN, then the fused model; save weights, beliefs and state features to ``out``."""
    site = read_site(site_path)
    hp = hyperparameters(preset, max_epochs)
    x = normalised(site)
    shape = x.shape[1:]
    split = cell_split(tiles_path, shape)
    target_np = site["suitability"].values.astype(np.float32)
    seed_everything(seed)
    nodes = node_mask(site)
    graph = ecodeep.build_graph(x, nodes, tau=hp["graph_tau"], k_similar=hp["graph_k"], seed=seed)
    dev = device()
    xt, graph_t = torch.as_tensor(x, device=dev).unsqueeze(0), graph.to(dev)
    target = torch.as_tensor(target_np, device=dev).unsqueeze(0)
    train = torch.as_tensor(split == SPLITS["train"], device=dev).view(1, 1, *shape)
    val = torch.as_tensor(split == SPLITS["val"], device=dev).view(1, 1, *shape)

    models = {k: m.to(dev) for k, m in build_models(preset, x.shape[0], target_np.shape[0]).items()}
    history, seconds = {}, {}
    for kind in ("cnn", "gnn"):
        t0 = time.perf_counter()
        history[kind] = _fit(models[kind], xt, graph_t, target, train, val, hp, hp["pretrain_epochs"], kind, progress)
        seconds[kind] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the joint stage starts from the pretrained branches (its fusion block and head start afresh)
    models["fusion"].cnn.load_state_dict(models["cnn"].cnn.state_dict())
    models["fusion"].gat.load_state_dict(models["gnn"].gat.state_dict())
    history["fusion"] = _fit(models["fusion"], xt, graph_t, target, train, val, hp, hp["joint_epochs"], "fusion",
                             progress)
    seconds["fusion"] = time.perf_counter() - t0 + seconds["cnn"] + seconds["gnn"]

    beliefs, features = {}, {}
    with torch.no_grad():
        for kind, model in models.items():
            model.eval()
            o = model(xt, graph_t)
            beliefs[kind] = o["suitability"][0].float().cpu()
            features[kind] = o["features"][0].float().cpu()
    data = {
        "format": FEATURES_FORMAT, "preset": preset, "seed": seed, "hyperparameters": hp,
        "feature_names": [str(f) for f in site["feature"].values], "split": torch.as_tensor(split),
        "weights": {k: {n: t.cpu() for n, t in m.state_dict().items()} for k, m in models.items()},
        "beliefs": beliefs, "features": features, "history": history,
        "complexity": {**{k: ecodeep.complexity(m.cpu(), (xt.cpu(), graph_t.cpu())) for k, m in models.items()},
                       **paper_complexity(x, nodes, target_np.shape[0], seed)},
    }
    save(data, out)
    write_timings(out, seconds)
    return data


PAPER_CROP = 12  # cells a side of the crop the paper preset's models are counted on


def paper_complexity(x: np.ndarray, valid: np.ndarray, n_species: int, seed: int) -> dict:
    """Parameters and GFLOPs of the `paper` preset's models for this city, so the metrics show the paper's
    architecture even where it is not trained. Counted on a PAPER_CROP-cell square of the city (every
    model is per cell, so its work grows with the cells) and scaled to the whole city: ``gflops_per_sample``
    is one pass over the city, ``gflops_per_cell`` the crop's count per cell."""
    hp = hyperparameters("paper")
    crop = x[:, :PAPER_CROP, :PAPER_CROP]
    cells = crop.shape[1] * crop.shape[2]
    graph = ecodeep.build_graph(crop, valid[:PAPER_CROP, :PAPER_CROP], tau=hp["graph_tau"], k_similar=hp["graph_k"],
                                seed=seed)
    xt = torch.as_tensor(crop).unsqueeze(0)
    out = {}
    for kind, model in build_models("paper", x.shape[0], n_species).items():
        out[f"paper_{kind}"] = ecodeep.complexity(model, (xt, graph))
    static = model.feature_dim + 4 * n_species + 1  # the fused features and static_state's planes
    qnet = ecodeep.build_planner_q("paper", static, StatePlanes.local_channels, n_species)
    out["paper_qnet"] = ecodeep.complexity(qnet, (torch.zeros(1, static, *crop.shape[1:]),
                                                  torch.zeros(1, StatePlanes.local_channels, *crop.shape[1:]),
                                                  torch.zeros(1, n_species + 1)))
    for c in out.values():
        c["gflops_per_cell"] = c["gflops_per_sample"] / cells
        c["gflops_per_sample"] = c["gflops_per_cell"] * x.shape[1] * x.shape[2]
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="NC", help=SITE_HELP)
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/vegplan.parquet")
    add_training_args(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    data = train_features(args.site, args.tiles, args.out, preset=args.preset, seed=args.seed,
                          max_epochs=args.max_epochs, progress=args.progress)
    for kind, h in data["history"].items():
        print(f"vegplan train {kind:<7} training loss {h['train_loss'][-1]:.4f}, validation MSE {h['val_mse'][-1]:.4f} "
              f"after {len(h['epoch'])} epochs")
    return 0
