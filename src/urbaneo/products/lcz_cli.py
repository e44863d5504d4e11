"""``urbaneo lcz-train | lcz-predict | lcz-evaluate | lcz-publish``: the LCZ stage's steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from urbaneo.presets import PURE_SHARE, SU_NET
from urbaneo.products.stage_cli import add_publish_args, add_runtime_args, set_threads


def _train(args: argparse.Namespace) -> int:
    from urbaneo.products.lcz import train

    set_threads(args.threads)
    data = train(args.aligned, args.tiles, args.out, preset=args.preset, seed=args.seed, max_epochs=args.max_epochs,
                 pure_share=args.pure_share, weights=args.weights, progress=args.progress)
    n = data["scenes"]["train"]
    print(f"lcz-train: {n['pure']} pure + {n['mixed']} mixed training scenes, {len(data['history']['epoch'])} epochs, "
          f"final loss {data['history']['train_loss'][-1]:.4g} -> {args.out}")
    if data["classes_without_pure_scenes"]:
        print(f"lcz-train: LCZ classes {data['classes_without_pure_scenes']} have no pure training scene")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from urbaneo.products.lcz import predict

    set_threads(args.threads)
    info = predict(args.model, args.aligned, Path(args.model).parent, progress=args.progress)
    top = sorted(info["shares"].items(), key=lambda kv: -kv[1])[:5]
    print(f"lcz-predict: {info['cells']} cells of {info['cell_m']:g} m; largest classes "
          + ", ".join(f"LCZ {c} {s:.0%}" for c, s in top))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from urbaneo.products.lcz import map_files
    from urbaneo.products.lcz_evaluate import evaluate

    set_threads(args.threads)
    out = Path(args.metrics).parent
    m = evaluate(args.model, args.aligned, args.tiles, map_files(Path(args.model).parent)[0], args.metrics,
                 out / "table.png", out / "confusion.png", out / "pseudo_confusion.png", out / "baseline_confusion.png",
                 seed=args.seed)
    for name, t in m["table2"].items():
        print(f"lcz-evaluate {name:<18} OA {t['oa']:.3f}  OPA {t['opa']:.3f}  MAE {t['mae'] or float('nan'):.4f}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from urbaneo.atomic import atomic_path
    from urbaneo.products.lcz import map_files
    from urbaneo.products.lcz_publish import product_params, publish

    model = Path(args.model)
    out_dir = Path(args.out).parent
    params = product_params(args.preset, args.seed, args.max_epochs, args.pure_share, args.weights)
    item = publish(args.run_dir, args.city, model, *map_files(model.parent), out_dir, params=params,
                   period=tuple(args.period))
    with atomic_path(args.out) as tmp:
        tmp.write_text(item + "\n")
    print(f"lcz-publish: {item} in {args.run_dir}/catalog.json")
    return 0


def add_parser(sub) -> None:
    def training(p):
        p.add_argument("--preset", default="demo", choices=sorted(SU_NET))
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
        p.add_argument("--pure-share", type=float, default=PURE_SHARE,
                       help=f"a scene is pure when one class covers this share of it (default {PURE_SHARE})")
        p.add_argument("--weights", metavar="PATH", default=None,
                       help="torchvision Swin-V2-T state dict to start the backbone from")

    model_help = "resources/<run>/lcz/<city>/model.pt (the maps are written beside it)"
    p = sub.add_parser("lcz-train", help="train SU-Net on the city's VHR scenes and LCZ fractions")
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2, lcz_labels)")
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/lcz.parquet")
    training(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")
    p.set_defaults(func=_train)

    p = sub.add_parser("lcz-predict", help="LCZ class and abundance COGs of the whole city")
    p.add_argument("--model", required=True, metavar="PT", help=model_help)
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2)")
    add_runtime_args(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("lcz-evaluate", help="Table 2 and the confusion matrices, SU-Net beside a random forest")
    p.add_argument("--model", required=True, metavar="PT", help=model_help)
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (gf2, lcz_labels)")
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/lcz.parquet")
    p.add_argument("--seed", type=int, default=0, help="the random forest's seed")
    p.add_argument("--metrics", required=True, metavar="JSON", help="its folder also gets the PNGs")
    add_runtime_args(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("lcz-publish", help="LCZ COGs, quicklooks and STAC items (product and model)")
    add_publish_args(p)
    p.add_argument("--model", required=True, metavar="PT", help=model_help)
    training(p)
    p.set_defaults(func=_publish)
