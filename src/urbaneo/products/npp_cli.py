"""``urbaneo npp-train | npp-predict | npp-evaluate | npp-publish``: the NPP stage's steps (seed 000)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from urbaneo.presets import ST_MAE
from urbaneo.products.stage_cli import add_publish_args, add_runtime_args, set_threads

KINDS = ("rgb", "false_colour")
log = logging.getLogger("urbaneo.npp")


def _has_osm(aligned: str) -> bool:
    return (Path(aligned) / "osm.zarr").exists()


def _models(root: str) -> dict[str, Path]:
    return {kind: Path(root) / f"mae_{kind}.pt" for kind in KINDS}


def _train(args: argparse.Namespace) -> int:
    from urbaneo.products import npp_data, npp_mae

    set_threads(args.threads)
    mask = "osm"
    if not _has_osm(args.aligned):
        log.warning("%s has no osm.zarr: st-MAE masks at random (recorded in the model and the product)", args.aligned)
        mask = "random"
    acq = npp_data.load(args.aligned, osm=mask == "osm")
    data = npp_mae.train(acq, args.kind, args.out, preset=args.preset, seed=args.seed, max_epochs=args.max_epochs,
                         mask_mode=mask, pretrained=args.mae, progress=args.progress)
    mse = data["heldout_mse"]
    print(f"npp-train {args.kind}: {data['train_chips']} clear chips, {len(data['history']['epoch'])} epochs, "
          f"held-out MSE {'-' if mse is None else f'{mse:.4f}'} ({mask} mask) -> {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from urbaneo.products.npp import make_maps

    set_threads(args.threads)
    info = make_maps(args.aligned, _models(args.models), args.out, preset=args.preset, seed=args.seed,
                     max_epochs=args.max_epochs)
    print(f"npp-predict: {len(info['years'])} years, missing seasons: {', '.join(info['missing_seasons']) or 'none'}"
          f" -> {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from urbaneo.products.npp_evaluate import evaluate

    bench = dict(zip(KINDS, args.benchmarks)) if args.benchmarks else None
    metrics = evaluate(args.maps, args.aligned, _models(args.models), args.metrics, args.table, args.figure,
                       preset=args.preset, seed=args.seed, max_epochs=args.max_epochs, price=args.price,
                       benchmarks=bench, timings_out=args.timings)
    held = metrics["heldout"]
    if held:
        for method, m in held["methods"].items():
            s = m["season_cells"]
            print(f"npp-evaluate {held['year']} {method:<26} MAE {s['mae']:8.2f}  RMSE {s['rmse']:8.2f}  "
                  f"bias {s['bias']:8.2f}  (g C m-2 per season, {s['n']} cells x seasons)")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from urbaneo.atomic import atomic_path
    from urbaneo.products.npp_publish import product_params, publish

    out_dir = Path(args.out).parent
    has_osm = _has_osm(args.aligned)
    item = publish(args.run_dir, args.city, args.maps, _models(args.models), out_dir / "metrics.json",
                   out_dir / "metrics.png", out_dir / "methods.png", out_dir,
                   params=product_params(args.preset, args.seed, args.max_epochs, args.mae, args.price, has_osm),
                   period=tuple(args.period), has_osm=has_osm)
    with atomic_path(args.out) as tmp:
        tmp.write_text(item + "\n")
    print(f"npp-publish: {item} in {args.run_dir}/catalog.json")
    return 0


def _longterm(args: argparse.Namespace) -> int:
    from urbaneo.products.npp_longterm import longterm

    set_threads(args.threads)
    metrics = longterm(args.aligned, _models(args.models), args.metrics, args.figure, preset=args.preset,
                       seed=args.seed, max_epochs=args.max_epochs, pretrained=args.mae)
    for name, per_year in metrics["models"].items():
        print(f"npp-longterm {name}: " + ", ".join(f"{y} MAE {s['mae']:.2f}" for y, s in per_year.items()))
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from urbaneo.products.npp_ablation import ablate

    set_threads(args.threads)
    metrics = ablate(args.aligned, args.metrics, args.table, preset=args.preset, seed=args.seed,
                     max_epochs=args.max_epochs, pretrained=args.mae, progress=args.progress)
    for name, row in metrics["variants"].items():
        print(f"npp-ablation {name:<22} held-out MSE {row['heldout_mse']}")
    print(f"npp-ablation: OSM mask effect {metrics['osm_mask_effect']} (on the same random masks "
          f"{metrics['osm_mask_effect_same_masks']}), season embedding effect {metrics['season_effect']} (> 0: helps)")
    return 0


def add_parser(sub) -> None:
    def common(p, *, maps=False, models=True):
        p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (landsat, par, osm, ...)")
        p.add_argument("--preset", default="demo", choices=sorted(ST_MAE))
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
        if models:
            p.add_argument("--models", required=True, metavar="DIR", help="resources/<run>/npp/<city> (mae_<kind>.pt)")
        if maps:
            p.add_argument("--maps", required=True, metavar="NC", help="the NetCDF of npp-predict")

    p = sub.add_parser("npp-train", help="train one composite's st-MAE on the city's clear Landsat chips")
    p.add_argument("--kind", required=True, choices=KINDS)
    common(p, models=False)
    p.add_argument("--mae", metavar="PATH", default=None, help="official MAE checkpoint to start from")
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")
    p.set_defaults(func=_train)

    p = sub.add_parser("npp-predict", help="gap-filled composites, seasonal PAR (RNN forecast) and NPP maps")
    common(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="NC")
    p.set_defaults(func=_predict)

    p = sub.add_parser("npp-evaluate", help="NPP vs the reference, baselines, Tables 3 and 4")
    common(p, maps=True)
    p.add_argument("--price", type=float, default=1.58, help="price of a GPU hour (Table 4)")
    p.add_argument("--benchmarks", nargs=len(KINDS), metavar="TSV",
                   help="Snakemake benchmark files of the two training jobs (rgb, false_colour): their wall time")
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--timings", metavar="JSON", help="the training wall times and their price (not reproducible)")
    p.add_argument("--table", required=True, metavar="PNG")
    p.add_argument("--figure", required=True, metavar="PNG")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("npp-longterm", help="long-term protocol: models trained up to each year estimate the later ones")
    common(p)
    p.add_argument("--mae", metavar="PATH", default=None)
    add_runtime_args(p)
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--figure", required=True, metavar="PNG")
    p.set_defaults(func=_longterm)

    p = sub.add_parser("npp-ablation", help="st-MAE ablation: frozen blocks, projection layers, mask ratio, "
                                             "OSM vs random mask, season embedding (Table 2)")
    common(p, models=False)
    p.add_argument("--mae", metavar="PATH", default=None, help="official MAE checkpoint for the frozen-block rows")
    add_runtime_args(p)
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--table", required=True, metavar="PNG")
    p.set_defaults(func=_ablation)

    p = sub.add_parser("npp-publish", help="NPP COGs, quicklooks and STAC items")
    add_publish_args(p)
    common(p, maps=True)
    p.add_argument("--mae", metavar="PATH", default=None)
    p.add_argument("--price", type=float, default=1.58)
    p.set_defaults(func=_publish)
