"""st-MAE training throughput (seed 000): images/s and MFU, against plain MAE in the same process.

Two measurements, each for st-MAE (OSM mask, season embedding) and for the named baseline, plain
MAE (random mask, no season embedding) of the same size, alternating:

* ``synthetic``: training steps (forward, masked MSE, backward, AdamW) on random tensors already on
  the device: the model's own speed. bf16 autocast on CUDA, float32 on the CPU.
* ``loader`` (with ``--aligned resources/align/<city>``): the same steps fed by the stage's real
  DataLoader (the city's clear chips, standardised, a mask drawn per chip): what a training job gets.

MFU = achieved FLOP/s / the device's peak (``--peak-tflops``; known for a few GPUs, bf16 dense),
with the training FLOPs counted by torch.utils.flop_counter on one step. Usage:

    bench/run st_mae [--preset demo|paper] [--batch N] [--steps N] [--aligned DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from urbaneo.models import st_mae
from urbaneo.presets import ST_MAE
from urbaneo.training import autocast, device

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "V100": 125.0}


def _peak(dev: torch.device, given: float | None) -> float | None:
    if given:
        return given * 1e12
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)
    return None


def _step_flops(model, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.loss(batch[0], model(*batch), batch[2]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _time(model, batches, dev, steps: int) -> float:
    """Seconds per step over ``steps`` steps after two warm-up steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    it = iter(batches)

    def one():
        imgs, season, mask = (t.to(dev, non_blocking=True) for t in next(it))
        with autocast(dev):
            loss = model.loss(imgs, model(imgs, season, mask), mask)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        one()
    return seconds_per_step(one, dev, steps)


def seconds_per_step(one, dev, steps: int) -> float:
    """Mean wall time of ``steps`` calls of ``one`` (the device synchronised before and after)."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def synthetic(model, batch: int, img: int, dev):
    imgs = torch.randn(batch, 3, img, img, device=dev)
    season = torch.randint(0, 4, (batch,), device=dev)
    veg = torch.rand(batch, model.grid ** 2) < 0.3
    mask = model.choose_mask(batch, veg, torch.Generator().manual_seed(0)).to(dev)
    while True:
        yield imgs, season, mask


def real(model, aligned: str, batch: int):
    from torch.utils.data import DataLoader

    from urbaneo.stages.npp.data import chips, load, split
    from urbaneo.stages.npp.train import MaskedChips

    acq = load(aligned)
    c = chips(acq, "rgb", model.grid * model.patch, model.patch, stride=model.grid * model.patch // 2)
    idx, _ = split(c)
    scaler = st_mae.Scaler.fit(c.images[idx])
    data = MaskedChips(scaler.forward(c.images[idx]), c.season[idx], c.green[idx], model)
    if len(data) < batch:
        raise SystemExit(f"{aligned}: {len(data)} clear chips, fewer than one batch of {batch}")
    while True:
        for (imgs, season, mask), _ in DataLoader(data, batch_size=batch, shuffle=True, drop_last=True):
            yield imgs, season, mask


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="demo", choices=sorted(ST_MAE))
    p.add_argument("--batch", type=int, default=None, help="default: the preset's")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--aligned", default=None, help="resources/align/<city>: also time the real loader")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    hp = ST_MAE[args.preset]
    batch = args.batch or hp["batch_size"]
    dev = device()
    torch.manual_seed(0)
    models = {"st-MAE": st_mae.build(hp, mask_mode="osm").to(dev),
              "plain MAE (baseline)": st_mae.build({**hp, "season_layers": 0}, mask_mode="random").to(dev)}
    peak = _peak(dev, args.peak_tflops)
    rows = {}
    for source in ("synthetic", "loader") if args.aligned else ("synthetic",):
        for name, model in models.items():
            batches = synthetic(model, batch, hp["img"], dev) if source == "synthetic" else real(model, args.aligned, batch)
            first = next(batches)
            flops = _step_flops(model, tuple(t.to(dev) for t in first))
            seconds = _time(model, batches, dev, args.steps)
            rows[f"{source} {name}"] = {"images_per_s": batch / seconds, "step_s": seconds,
                                        "tflops": flops / seconds / 1e12,
                                        "mfu": flops / seconds / peak if peak else None}
    print(f"st-MAE {args.preset} (img {hp['img']}, batch {batch}) on {dev} "
          f"{torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}")
    print(f"{'run':<36}{'images/s':>10}{'TFLOP/s':>10}{'MFU':>8}{'ratio vs baseline':>20}")
    for key, r in rows.items():
        source = key.split()[0]
        base = rows[f"{source} plain MAE (baseline)"]["images_per_s"]
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{key:<36}{r['images_per_s']:>10.1f}{r['tflops']:>10.3f}{mfu:>8}{r['images_per_s'] / base:>20.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": str(dev), "preset": args.preset, "batch": batch, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
