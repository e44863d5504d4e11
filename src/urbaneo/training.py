"""The one training loop of every product: device choice, seeding, fit with checkpoint/resume, predict.

Reproducibility contract (same inputs + same config => same weights on CPU):

* call ``seed_everything(seed)`` before building the model and the data, then ``fit(..., seed=seed)``;
* a shuffling DataLoader must get a seeded ``torch.Generator`` (``DataLoader(..., shuffle=True,
  generator=g)``) and ``fit`` must get the same one (``generator=g``): its state goes into the
  checkpoint, so a resumed run draws the same batch order as an uninterrupted one;
* random augmentation must use torch / numpy / ``random`` (all checkpointed) or the generator.

``fit`` writes a checkpoint atomically after every epoch; started again on the same path it resumes
after the last finished epoch, and ends with exactly the weights of a run that was never interrupted
(bit-exact on CPU; on CUDA as far as torch's deterministic kernels go).

Several GPUs (or CPU processes): started by ``torchrun`` (one process per device, WORLD_SIZE > 1
and the rendezvous in the environment), ``fit`` joins the process group (NCCL on CUDA, Gloo on the
CPU), wraps the model in DistributedDataParallel and gives each process its share of every epoch
(DistributedSampler, seeded, reshuffled per epoch). Gradients are averaged, so every process holds
the same weights; only rank 0 writes the checkpoint (``is_main_process``). A resumed multi-process
run restores rank 0's random state on every rank, so it is not bit-exact with an uninterrupted one.

Batches are ``(inputs, target)``: ``inputs`` is a tensor (``model(x)``), a tuple/list (``model(*x)``)
or a dict (``model(**x)``); the loss is ``loss_fn(model_output, target)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_path
from .errors import InputError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "urbaneo-checkpoint/1"


def device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def distributed() -> bool:
    """Started as one of several processes (torchrun sets WORLD_SIZE)?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed run (only rank 0 writes files)."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _join_process_group(dev: torch.device) -> torch.device:
    """Join the group torchrun describes in the environment; this process's device."""
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return dev


def _shard(loader, seed: int):
    """``loader`` over this rank's share of the data: same batch size, a seeded distributed sampler."""
    from torch.utils.data import DataLoader, DistributedSampler

    sampler = DistributedSampler(loader.dataset, shuffle=True, seed=seed)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def autocast(dev: torch.device | str):
    """bf16 autocast on CUDA; a no-op elsewhere (CPU runs stay in float32, hence bit-reproducible)."""
    dev = torch.device(dev)
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        # cuBLAS is only deterministic with a fixed workspace; must be set before its first use
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)  # warn, not fail, where none exists
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _to(value: Any, dev: torch.device) -> Any:
    """``value`` with every tensor in it moved to ``dev``."""
    if isinstance(value, torch.Tensor):
        return value.to(dev, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: _to(v, dev) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, dev) for v in value)
    return value


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


# --- RNG states as types torch.load(weights_only=True) accepts (tensors, lists, tuples, scalars) ---

def _rng_state(generator: torch.Generator | None) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state() if generator is not None else None,
    }
    return state


def _set_rng_state(state: Mapping, generator: torch.Generator | None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise InputError(path, f"not a readable checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(data, Mapping) and data.get("format") == CHECKPOINT_FORMAT:
        return dict(data)
    if isinstance(data, Mapping) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": dict(data)}  # a bare state dict, e.g. weights exported elsewhere
    raise InputError(path, "not a urbaneo checkpoint nor a state dict of tensors")


def read_model_file(path: str | os.PathLike, fmt: str, what: str) -> dict:
    """A product's model file (a dict of tensors and plain values saved with its ``format``), read with
    ``weights_only``; one InputError line naming the file when it is unreadable or of another format."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(path, f"cannot read as an {what} model file ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(path, f"not an {what} model file (format {fmt})")
    return data


def _check_architecture(path: Path, model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """One clear line on key or shape mismatches, instead of torch's multi-line RuntimeError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [f"{k} {tuple(weights[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(expected) & set(weights)) if weights[k].shape != expected[k].shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise InputError(path, f"checkpoint does not fit {type(model).__name__}: " + "; ".join(problems))


def load_checkpoint(path: str | os.PathLike, model: nn.Module) -> dict:
    """Load the weights of ``path`` into ``model``; returns the whole checkpoint dict.

    InputError naming the file when it is missing, unreadable, not a checkpoint, or made for
    another architecture (differing parameter names or shapes).
    """
    path = Path(path)
    data = _read_checkpoint(path)
    _check_architecture(path, model, data["model"])
    model.load_state_dict(data["model"])
    return data


def _save_checkpoint(path: Path, model, optimizer, scheduler, epoch: int, history: dict, generator) -> None:
    data = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": _rng_state(generator),
        "history": history,
    }
    save(data, path)


def save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, the same bytes for the same object.

    Saved through a file object: given a path, torch names the archive's root folder after the
    file, and the atomic writer's temporary name is random.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def save_model(data: Mapping, out: str | os.PathLike, checkpoint: Path | None = None) -> Mapping:
    """Write a product's model file on rank 0 (the other ranks of a data-parallel run hold the same
    weights), then drop the training's resumable checkpoint; ``data`` back."""
    if is_main_process():
        save(data, out)
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
    return data


def train_and_save(model: nn.Module, loader, out: str | os.PathLike, *, shaping: tuple,
                   model_file: Callable[[dict], Mapping], **fit_kwargs) -> Mapping:
    """``fit`` with a resumable checkpoint beside ``out``, then the model file ``model_file(history)``
    saved to ``out`` (``save_model``).

    The checkpoint is named by ``shaping``, everything that shapes the training (settings, and the
    training arrays themselves), so an interrupted job resumes and a changed config never resumes a
    stale checkpoint."""
    out = Path(out)
    digest = hashlib.sha256()
    for part in shaping:
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    checkpoint = out.with_name(f".{out.name}.{digest.hexdigest()[:16]}.partial")
    history = fit(model, loader, checkpoint=checkpoint, **fit_kwargs)
    return save_model(model_file(history), out, checkpoint)


def _mean_loss(model, loader, loss_fn, dev) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(dev):
        for inputs, target in loader:
            inputs, target = _to(inputs, dev), _to(target, dev)
            total += float(loss_fn(_call(model, inputs), target))
            count += 1
    return total / max(count, 1)


def fit(
    model: nn.Module,
    train_loader,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    seed: int,
    scheduler=None,
    scheduler_interval: str = "epoch",
    val_loader=None,
    checkpoint: str | os.PathLike | None = None,
    generator: torch.Generator | None = None,
    log_every: int = 50,
    progress: bool = True,
) -> dict:
    """Train ``model`` for ``epochs`` epochs (resuming from ``checkpoint`` when it exists).

    ``scheduler`` steps once per epoch, or once per batch with ``scheduler_interval="batch"``.
    ``generator`` is the seeded torch.Generator given to the shuffling DataLoader (see module doc).
    Returns the history ``{"epoch": [...], "train_loss": [...], "val_loss": [...]}`` over all epochs,
    including those done before a resume; ``val_loss`` holds None without a ``val_loader``.
    """
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', not {scheduler_interval!r}")
    dev = device()
    seed_everything(seed)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)  # late Adam steps crawl on CPU with denormal floats
    net, sampler = model, None
    if distributed():
        from torch.nn.parallel import DistributedDataParallel

        dev = _join_process_group(dev)
        model.to(dev)
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        train_loader = _shard(train_loader, seed)
        sampler = train_loader.sampler
    model.to(dev)
    history: dict = {"epoch": [], "train_loss": [], "val_loss": []}
    start = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, model)
        if "optimizer" not in state:
            raise InputError(checkpoint, "holds weights only, no training state to resume from")
        optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], generator)
        history = {k: list(v) for k, v in state["history"].items()}
        start = int(state["epoch"])
        log.info("resumed from epoch %d of %s", start, checkpoint)
    log.info("training %s: %s samples in %d batches per epoch, epochs %d-%d", type(model).__name__,
             _count(train_loader), len(train_loader), start + 1, epochs)

    step = 0
    for epoch in range(start + 1, epochs + 1):
        began = time.perf_counter()
        model.train()
        if sampler is not None:
            sampler.set_epoch(epoch)
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", disable=not progress or not is_main_process(),
                   leave=False)
        for inputs, target in bar:
            inputs, target = _to(inputs, dev), _to(target, dev)
            optimizer.zero_grad(set_to_none=True)
            with autocast(dev):
                loss = loss_fn(_call(net, inputs), target)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_interval == "batch":
                scheduler.step()
            value = float(loss.detach())
            total, count, step = total + value, count + 1, step + 1
            bar.set_postfix(loss=f"{value:.4g}")
            if log_every and step % log_every == 0:
                log.info("epoch %d step %d loss %.6g", epoch, step, value)
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if sampler is not None:  # the mean over every rank's batches
            sums = torch.tensor([total, count], dtype=torch.float64, device=dev)
            torch.distributed.all_reduce(sums)
            total, count = float(sums[0]), int(sums[1])
        train_loss = total / max(count, 1)
        val_loss = _mean_loss(model, val_loader, loss_fn, dev) if val_loader is not None else None
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        log.info("epoch %d/%d train loss %.6g%s (%.1f s)", epoch, epochs, train_loss,
                 "" if val_loss is None else f" val loss {val_loss:.6g}", time.perf_counter() - began)
        if checkpoint is not None and is_main_process():
            _save_checkpoint(checkpoint, model, optimizer, scheduler, epoch, history, generator)
        if sampler is not None:
            torch.distributed.barrier()  # no rank starts the next epoch (or leaves) before the checkpoint is written
    return history


def _count(loader) -> int | str:
    try:
        return len(loader.dataset)
    except TypeError:  # an iterable dataset
        return "?"


def predict(model: nn.Module, loader) -> Any:
    """Model outputs over ``loader`` on the CPU in float32, concatenated along the batch axis.

    Batches are ``(inputs, ...)`` tuples/lists (anything after the inputs is ignored) or bare inputs.
    A model returning a tuple or dict of tensors gives a tuple or dict of concatenated tensors.
    """
    dev = device()
    model.to(dev).eval()
    parts: list = []
    with torch.no_grad(), autocast(dev):
        for batch in loader:
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            parts.append(_to(_call(model, _to(inputs, dev)), torch.device("cpu")))
    if not parts:
        raise ValueError("predict() got an empty loader")
    first = parts[0]
    if isinstance(first, Mapping):
        return {k: torch.cat([p[k] for p in parts]).float() for k in first}
    if isinstance(first, (list, tuple)):
        return tuple(torch.cat([p[i] for p in parts]).float() for i in range(len(first)))
    return torch.cat(parts).float()
