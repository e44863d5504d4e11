"""Data-parallel training (gpus > 1): torchrun processes, here on the CPU with Gloo, as on GPUs with NCCL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from snakemake_runs import copy_workflow, snakemake
from urbaneo.config import load_city
from urbaneo.stages.urban.model import load_model
from urbaneo.tiles import make_tiles

TORCHRUN = Path(sys.executable).parent / "torchrun"

FIT = textwrap.dedent("""
    import sys
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from urbaneo.training import fit, is_main_process, save, seed_everything

    out = sys.argv[1]
    seed_everything(0)
    x = torch.randn(96, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    history = fit(model, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=6, seed=0,
                  checkpoint=f"{out}/fit.partial", generator=g, progress=False)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    every = [torch.zeros_like(flat) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(every, flat)
    rank = torch.distributed.get_rank()
    with open(f"{out}/rank{rank}.txt", "w") as f:
        f.write(" ".join(map(str, [all(torch.equal(every[0], t) for t in every), history["train_loss"][0],
                                   history["train_loss"][-1]])))
    if is_main_process():
        save(model.state_dict(), f"{out}/model.pt")
    torch.distributed.destroy_process_group()
""")


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_fit_on_two_processes_keeps_one_model(tmp_path):
    (tmp_path / "fit.py").write_text(FIT)
    proc = torchrun(str(tmp_path / "fit.py"), str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert all(same == "True" for same, _, _ in ranks)  # averaged gradients: identical weights everywhere
    assert ranks[0][1:] == ranks[1][1:]  # the epoch loss is the mean over both ranks' batches
    first, last = float(ranks[0][1]), float(ranks[0][2])
    assert last < 0.6 * first
    checkpoint = torch.load(tmp_path / "fit.partial", weights_only=True)
    assert checkpoint["epoch"] == 6 and len(checkpoint["history"]["epoch"]) == 6
    weights = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(weights) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_urban_train_under_torchrun(tiny_urban, tmp_path):
    """The rule's command for gpus=2, on the tiny region: one model file, written by rank 0."""
    tiles = tmp_path / "urban.parquet"
    make_tiles(load_city(tiny_urban / "tiny.yaml"), "urban", "demo", 0, tiny_urban / "viirs.zarr", tiles)
    out = tmp_path / "unet" / "model.pt"
    proc = torchrun("-m", "urbaneo.cli", "urban", "train", "--method", "unet", "--aligned", str(tiny_urban),
                    "--tiles", str(tiles), "--preset", "demo", "--seed", "0", "--max-epochs", "1", "--threads", "1",
                    "--no-progress", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_model(out)
    assert model["processes"] == 2 and len(model["history"]["epoch"]) == 1
    assert not list(out.parent.glob(".*.partial"))  # the resumable checkpoint is gone after success


@pytest.mark.integration
def test_rule_launches_torchrun_for_several_gpus(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    proc = snakemake(wf, "-n", "-p", "--forceall", "resources/demo/urban/tiny/ifcn/model.pt",
                     "resources/demo/urban/tiny/svm/model.pt", "--config", "cities=[tiny]", "gpus=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "torchrun --standalone --nproc_per_node=2 -m urbaneo.cli urban train --method ifcn" in proc.stdout
    assert "Shell command: urbaneo urban train --method svm" in proc.stdout


def test_lcz_train_under_torchrun(tiny_aligned, tmp_path):
    """SU-Net with GradNorm (autograd.grad inside the loss) on two processes: the rule's command for
    gpus=2 writes one model file with GradNorm's weights (summing to 3) and initial losses."""
    out = tmp_path / "model.pt"
    proc = torchrun("-m", "urbaneo.cli", "lcz", "train", "--aligned", str(tiny_aligned / "resources/align/tiny"),
                    "--tiles", str(tiny_aligned / "resources/tiles/tiny/lcz.parquet"), "--preset", "demo", "--seed", "0",
                    "--max-epochs", "2", "--threads", "1", "--no-progress", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = torch.load(out, weights_only=True)
    assert data["processes"] == 2 and len(data["history"]["epoch"]) == 2
    assert abs(sum(data["task_weights"]) - 3) < 0.1 and data["state"]["initial_losses"].gt(0).all()
