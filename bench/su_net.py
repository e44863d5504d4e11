"""SU-Net training throughput (seed 002): images/s and MFU, against PSC-Net alone in the same process.

Two measurements, each for SU-Net's training step and for the named baseline, alternating:

* **SU-Net (PSC-Net + MSU-Net, GradNorm)**: the stage's step: ``model(pure, mixed)`` (one shared
  Swin-V2 pass over the batch's pure and mixed scenes, PSC-Net's head on the pure ones, MSU-Net's
  head and UperNet decoder on the mixed ones), ``su_net.gradnorm_loss`` (the three task losses and
  GradNorm's three ``torch.autograd.grad`` calls on the shared layer), backward, AdamW with the
  stage's two parameter groups.
* **PSC-Net alone (Swin-V2 classifier, CE)**, the baseline: the same model's ``classify`` on the
  same 2 x batch scenes with plain cross-entropy (mixed scenes labelled by their dominant class):
  the single-task Swin-V2 classifier, so the ratio is what MSU-Net's head and decoder and GradNorm
  cost on top of it.

A batch is ``batch`` pure scenes plus ``batch`` mixed ones: 2 x batch images a step, for both.

* ``synthetic``: random tensors already on the device: the model's own speed. bf16 autocast on
  CUDA, float32 on the CPU (``urbaneo.training.autocast``).
* ``loader`` (with ``--aligned resources/align/<city> --tiles resources/tiles/<city>/lcz.parquet``):
  the same steps fed by the stage's real DataLoader (the city's training scenes, standardised,
  ScenePairs with augmentation): what a training job gets.

MFU = achieved FLOP/s / the device's peak (``--peak-tflops``; known for a few GPUs, bf16 dense),
with the training FLOPs (forward, GradNorm's gradients, backward) counted by
torch.utils.flop_counter on one step. Each workload is warmed up by two steps, then timed
``--repeats`` times over ``--steps`` steps, alternating with the other; the best repeat counts (the
least disturbed, on a shared machine). Usage:

    bench/run su_net [--preset demo|paper] [--batch N] [--steps N] [--repeats N]
                     [--aligned DIR --tiles FILE] [--peak-tflops T] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package

from st_mae import _peak, seconds_per_step  # noqa: E402 - one peak table and one timer for every benchmark

from urbaneo.models import su_net  # noqa: E402
from urbaneo.presets import SU_NET  # noqa: E402
from urbaneo.stages.lcz.train import optimizer  # noqa: E402  (the stage's AdamW and its two groups)
from urbaneo.training import autocast, device  # noqa: E402

MODEL = "SU-Net (PSC-Net + MSU-Net, GradNorm)"
BASELINE = "PSC-Net alone (Swin-V2 classifier, CE)"


def _su_net_loss(model, loss_fn, pure, mixed, cls, fractions):
    return loss_fn(model(pure, mixed), (cls, fractions, mixed))


def _baseline_loss(model, loss_fn, pure, mixed, cls, fractions):
    logits = model.classify(torch.cat([pure, mixed]))
    return F.cross_entropy(logits.float(), torch.cat([cls, fractions.argmax(1)]))


STEPS = {MODEL: _su_net_loss, BASELINE: _baseline_loss}


def _step_flops(model, step, loss_fn, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(model, loss_fn, *batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _stepper(model, step, loss_fn, hp, batches, dev):
    """One training step a call, with its own AdamW, on the next batch of ``batches``."""
    opt = optimizer(model, hp)
    it = iter(batches)

    def one():
        tensors = [t.to(dev, non_blocking=True) for t in next(it)]
        with autocast(dev):
            loss = step(model, loss_fn, *tensors)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return one


def synthetic(batch: int, img: int, dev):
    """(pure, mixed, class index, fractions): random scenes, classes and sum-to-one fractions."""
    g = torch.Generator().manual_seed(0)
    pure, mixed = (torch.randn(batch, 4, img, img, generator=g).to(dev) for _ in range(2))
    cls = torch.randint(0, su_net.N_CLASSES, (batch,), generator=g).to(dev)
    fractions = torch.rand(batch, su_net.N_CLASSES, generator=g)
    fractions = (fractions / fractions.sum(1, keepdim=True)).to(dev)
    while True:
        yield pure, mixed, cls, fractions


def scene_pairs(aligned: str, tiles: str, batch: int):
    """The stage's training set: the city's training scenes, standardised, as augmented ScenePairs."""
    from urbaneo.models.scaling import Scaler
    from urbaneo.stages.lcz.data import ScenePairs, load_scenes, normalise

    scenes = load_scenes(aligned, tiles)
    train = scenes.subset(scenes.split == "train")
    scaler = Scaler.fit(train.x)
    pure = train.pure
    if not pure.any() or pure.all():
        raise SystemExit(f"{tiles}: {int(pure.sum())} pure and {int((~pure).sum())} mixed training scenes; "
                         "SU-Net needs both")
    data = ScenePairs(normalise(train.x[pure], scaler), train.dominant[pure],
                      normalise(train.x[~pure], scaler), train.fractions[~pure], augment=True)
    if len(data) < batch:
        raise SystemExit(f"{tiles}: {len(data)} scene pairs for training, fewer than one batch of {batch}")
    return data


def real(data, batch: int):
    """(pure, mixed, class index, fractions) from the stage's DataLoader over ``data``, epoch after epoch."""
    from torch.utils.data import DataLoader

    while True:
        for (p, m), (cls, fractions, _) in DataLoader(data, batch_size=batch, shuffle=True, drop_last=True):
            yield p, m, cls, fractions


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="demo", choices=sorted(SU_NET))
    p.add_argument("--batch", type=int, default=None, help="pure (= mixed) scenes a step; default: the preset's")
    p.add_argument("--steps", type=int, default=10, help="timed steps a repeat")
    p.add_argument("--repeats", type=int, default=3, help="timings of --steps steps, alternating; the best counts")
    p.add_argument("--aligned", default=None, help="resources/align/<city>: also time the real loader (with --tiles)")
    p.add_argument("--tiles", default=None, help="resources/tiles/<city>/lcz.parquet")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if bool(args.aligned) != bool(args.tiles):
        p.error("--aligned and --tiles go together")
    hp = SU_NET[args.preset]
    batch = args.batch or hp["batch_size"]
    dev = device()
    if dev.type == "cpu":
        torch.set_flush_denormal(True)  # as training.fit: late Adam steps crawl on CPU with denormal floats
    torch.manual_seed(0)
    model = su_net.build(args.preset).to(dev).train()
    loss_fn = su_net.gradnorm_loss(model, alpha=hp["gradnorm_alpha"])
    peak = _peak(dev, args.peak_tflops)
    rows, scene_px = {}, {}
    for source in ("synthetic", "loader") if args.aligned else ("synthetic",):
        data = scene_pairs(args.aligned, args.tiles, batch) if source == "loader" else None
        steppers, flops = {}, {}
        for name, step in STEPS.items():
            batches = synthetic(batch, hp["img"], dev) if data is None else real(data, batch)
            first = next(batches)
            scene_px[source] = int(first[0].shape[-1])
            flops[name] = _step_flops(model, step, loss_fn, tuple(t.to(dev) for t in first))
            steppers[name] = _stepper(model, step, loss_fn, hp, batches, dev)
            for _ in range(2):  # warm-up
                steppers[name]()
        seconds = {name: [] for name in STEPS}
        for _ in range(args.repeats):  # alternating, so that a busy spell of the machine hits both
            for name, one in steppers.items():
                seconds[name].append(seconds_per_step(one, dev, args.steps))
        for name in STEPS:
            best = min(seconds[name])
            rows[f"{source} {name}"] = {"images_per_s": 2 * batch / best, "step_s": best,
                                        "step_s_repeats": seconds[name], "flops_per_step": flops[name],
                                        "tflops": flops[name] / best / 1e12,
                                        "mfu": flops[name] / best / peak if peak else None}
    px = "/".join(sorted({f"{v}" for v in scene_px.values()}))  # the loader's scenes are the tiles' size
    print(f"SU-Net {args.preset} (img {px}, batch {batch} pure + {batch} mixed = {2 * batch} images a step) "
          f"on {dev} {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}")
    width = max(map(len, rows)) + 2
    print(f"{'run':<{width}}{'images/s':>10}{'TFLOP/s':>10}{'MFU':>8}{'ratio vs baseline':>20}")
    for key, r in rows.items():
        source = key.split()[0]
        base = rows[f"{source} {BASELINE}"]["images_per_s"]
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{key:<{width}}{r['images_per_s']:>10.1f}{r['tflops']:>10.3f}{mfu:>8}{r['images_per_s'] / base:>20.2f}")
    print(f"baseline: {BASELINE}, the same model's classify on the same {2 * batch} images")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": str(dev), "preset": args.preset, "batch": batch, "images_per_step": 2 * batch,
                       "scene_px": scene_px, "baseline": BASELINE, "peak_tflops": peak / 1e12 if peak else None,
                       "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
