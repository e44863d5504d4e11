"""Seed 002's LCZ stage: train SU-Net on a city's scenes, then map the city (classes and abundances).

City-wide mapping (the paper maps districts but does not say how): windows of one scene slide over
the VHR image every half scene; each window's MSU-Net abundances are spread over the map cells it
covers (a cell is a quarter of a scene side: 48 m in `demo`, 192 m in `paper`) with weights
falling off towards the window's edges (``tiles.Mosaic``), and a cell's class is the largest of its
blended abundances. Windows less than half covered by the image are skipped; cells without image
data are nodata. Unmixing, not PSC-Net's classification, makes the map because a map cell is
rarely a pure scene; PSC-Net's accuracy on pure scenes is in the evaluation.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import InputError
from ..grid import Grid
from ..lcz import CLASSES, colormap
from ..models import su_net
from ..models.scaling import Scaler
from ..presets import PURE_SHARE, SU_NET
from ..tiles import Mosaic
from .lcz_data import ScenePairs, Scenes, load_scenes, normalise

log = logging.getLogger(__name__)

MODEL_FORMAT = "urbaneo-lcz-model/1"
CELLS_PER_SCENE = 4  # map cells along a scene side; windows start every half scene
NODATA = 0


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
    from ..training import fit, is_main_process, save, seed_everything

    hp = hyperparameters(preset, max_epochs, pure_share, **overrides)
    seed_everything(seed)
    scenes = load_scenes(aligned_dir, tiles, pure_share)
    train_set, val_set = (scenes.subset(scenes.split == s) for s in ("train", "val"))
    missing = check_training_scenes(scenes, tiles)
    scaler = Scaler.fit(train_set.x)
    generator = torch.Generator().manual_seed(seed)
    loader = _loader(train_set, scaler, hp, augment=hp["augment"], generator=generator)
    val_loader = _loader(val_set, scaler, hp, augment=False)

    model = _build(preset, hp)
    if weights:
        log.info("SU-Net backbone: %d tensors from %s", su_net.load_pretrained(model, weights), weights)
    adamw = optimizer(model, hp)
    # a resumable checkpoint beside the output, named by everything that shapes the training
    key = hashlib.sha256(repr((preset, seed, sorted(hp.items()), str(weights))).encode()
                         + train_set.x.tobytes() + train_set.fractions.tobytes()).hexdigest()[:16]
    partial = Path(out).with_name(f".{Path(out).name}.{key}.partial")
    history = fit(model, loader, loss_fn=su_net.gradnorm_loss(model, hp["gradnorm_alpha"]), optimizer=adamw,
                  epochs=hp["epochs"], seed=seed, val_loader=val_loader, checkpoint=partial, generator=generator,
                  scheduler=_schedule(adamw, hp, len(loader)), scheduler_interval="batch", progress=progress)
    data = {"format": MODEL_FORMAT, "preset": preset, "seed": seed, "hyperparameters": hp,
            "img": int(scenes.x.shape[-1]), "mean": torch.from_numpy(scaler.mean),
            "std": torch.from_numpy(scaler.std),
            "label_year": scenes.year, "scenes": scenes.counts(), "classes_without_pure_scenes": missing,
            "task_weights": [float(w) for w in model.task_weights.detach()],
            "processes": int(os.environ.get("WORLD_SIZE", "1")),  # data-parallel: batch_size is per process
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "history": history,
            "pretrained": bool(weights)}
    if is_main_process():  # the other ranks of a multi-GPU run hold the same weights
        save(data, out)
        Path(partial).unlink(missing_ok=True)
    return data


# ---------------------------------------------------------------------------------------- prediction

def _build(preset: str, hp: dict) -> su_net.SUNet:
    """SU-Net of ``preset`` with the architecture keys of ``hp`` (the preset's, or a study's overrides)."""
    return su_net.build(preset, **{k: v for k, v in hp.items() if k in SU_NET[preset]})


def read_model(path) -> dict:
    """An LCZ model file's contents, checked (one InputError line for anything else)."""
    from ..training import read_model_file

    return read_model_file(path, MODEL_FORMAT, "LCZ")


def load_model(path) -> tuple[su_net.SUNet, dict]:
    """SU-Net (eval mode) and its model file."""
    data = read_model(path)
    model = _build(data["preset"], data["hyperparameters"])
    model.load_state_dict(data["state"])
    return model.eval(), data


def _scaler(data: dict) -> Scaler:
    return Scaler(data["mean"].numpy(), data["std"].numpy())


def scene_outputs(model: su_net.SUNet, data: dict, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """PSC-Net class probabilities and MSU-Net abundances (N, 17) of raw reflectance scenes."""
    from ..training import predict

    if not len(x):
        return np.zeros((0, su_net.N_CLASSES), np.float32), np.zeros((0, su_net.N_CLASSES), np.float32)
    z = normalise(x, _scaler(data))
    probs, abundances = predict(su_net.SceneHeads(model), DataLoader(TensorDataset(torch.from_numpy(z)), batch_size=batch))
    return probs.numpy(), abundances.numpy()


def cell_grid(grid: Grid, size: int) -> Grid:
    """The map's grid: cells of size / CELLS_PER_SCENE VHR pixels over the VHR grid's extent."""
    cell = size // CELLS_PER_SCENE
    return Grid(grid.epsg, grid.xmin, grid.ymax, grid.res * cell, math.ceil(grid.width / cell),
                math.ceil(grid.height / cell), grid.wkt)


def map_city(model: su_net.SUNet, data: dict, pixels: np.ndarray, grid: Grid, *, batch: int = 64,
             progress: bool = True) -> tuple[np.ndarray, Grid]:
    """(17, Hc, Wc) blended abundances (NaN without image data) and the cell grid they lie on."""
    from tqdm.auto import tqdm

    from ..training import predict

    size = data["img"]
    if size % (2 * CELLS_PER_SCENE):
        raise ValueError(f"a {size} px scene does not split into {CELLS_PER_SCENE} cells and half-scene steps")
    cell, step = size // CELLS_PER_SCENE, size // 2
    cells = cell_grid(grid, size)
    hp, wp = (max(n * cell, size) for n in (cells.height, cells.width))
    padded = np.full((pixels.shape[0], hp, wp), np.nan, np.float32)
    padded[:, : grid.height, : grid.width] = pixels
    valid = np.isfinite(padded).all(0)
    z = normalise(padded, _scaler(data))

    def starts(n: int) -> list[int]:
        s = list(range(0, n - size + 1, step))
        return s if s[-1] == n - size else s + [n - size]

    windows = [(r, c) for r in starts(hp) for c in starts(wp) if valid[r : r + size, c : c + size].mean() >= 0.5]
    acc = Mosaic(Grid(cells.epsg, cells.xmin, cells.ymax, cells.res, wp // cell, hp // cell, cells.wkt),
                 su_net.N_CLASSES, CELLS_PER_SCENE)
    heads = su_net.SceneHeads(model)
    for i in tqdm(range(0, len(windows), batch), desc="LCZ windows", disable=not progress, leave=False):
        rc = np.array(windows[i : i + batch])
        x = torch.from_numpy(np.stack([z[:, r : r + size, c : c + size] for r, c in rc]))
        _, abundances = predict(heads, DataLoader(TensorDataset(x), batch_size=batch))
        tiles = np.broadcast_to(abundances.numpy()[:, :, None, None], (len(rc), su_net.N_CLASSES, CELLS_PER_SCENE,
                                                                       CELLS_PER_SCENE))
        acc.add(tiles, rc[:, 0] // cell, rc[:, 1] // cell)
    out = acc.result()[:, : cells.height, : cells.width]
    covered = valid.reshape(hp // cell, cell, wp // cell, cell).any((1, 3))[: cells.height, : cells.width]
    out[:, ~covered] = np.nan
    return out, cells


def classes_of(abundances: np.ndarray) -> np.ndarray:
    """(Hc, Wc) uint8 LCZ codes 1-17 of the largest abundance, NODATA where there is none."""
    ok = np.isfinite(abundances).all(0)
    codes = np.where(ok, np.nan_to_num(abundances, nan=-1.0).argmax(0) + 1, NODATA)
    return codes.astype(np.uint8)


def map_files(root) -> tuple[Path, Path]:
    """(class map COG, abundance COG) under ``root`` (resources/<run>/lcz/<city>)."""
    return Path(root) / "lcz.tif", Path(root) / "abundance.tif"


def predict(model_path, aligned_dir, root, *, progress: bool = True) -> dict:
    """Map the city: the class COG (with the LCZ colour table) and the 17-band abundance COG."""
    from ..align import open_aligned
    from ..artifacts.cog import write_cog
    from ..grid import grid_of

    model, data = load_model(model_path)
    image = open_aligned(Path(aligned_dir) / "gf2.zarr", "vhr")["reflectance"]
    if image.sizes["band"] != 4:
        raise InputError(Path(aligned_dir) / "gf2.zarr", f"has {image.sizes['band']} bands; SU-Net takes 4")
    abundances, cells = map_city(model, data, image.values.astype(np.float32), grid_of(image), progress=progress)
    codes = classes_of(abundances)
    class_path, abundance_path = map_files(root)
    tags = {"urbaneo:classes": "; ".join(f"{c} {name}" for c, (name, _) in CLASSES.items()),
            "urbaneo:method": "SU-Net (MSU-Net abundances, argmax)", "urbaneo:image_date": image.attrs.get("date", ""),
            "urbaneo:label_year": data["label_year"]}
    write_cog(class_path, codes, cells, nodata=NODATA, band_names="lcz", colormap=colormap(), tags=tags)
    write_cog(abundance_path, np.nan_to_num(abundances, nan=-1.0).astype(np.float32), cells, nodata=-1.0,
              band_names=[f"lcz{c}" for c in CLASSES], units="1", tags=tags)
    mapped = codes != NODATA
    shares = np.bincount(codes[mapped], minlength=18)[1:] / max(int(mapped.sum()), 1)
    return {"cells": int(mapped.sum()), "cell_m": cells.res,
            "shares": {int(c): float(s) for c, s in zip(CLASSES, shares) if s > 0}}
