"""``urbaneo urban-train | urban-predict | urban-evaluate | urban-publish``: the urban stage's steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from urbaneo.presets import URBAN_TRAIN
from urbaneo.products.stage_cli import add_publish_args, add_runtime_args, set_threads


def _train(args: argparse.Namespace) -> int:
    from urbaneo.products.urban import train

    set_threads(args.threads)
    data = train(args.method, args.aligned, args.tiles, args.out, preset=args.preset, seed=args.seed,
                 max_epochs=args.max_epochs, vgg16=args.vgg16, progress=args.progress)
    loss = data["history"].get("train_loss", [None])[-1] if data["history"] else None
    print(f"urban-train {args.method}: {data['train_chips']} chips"
          + (f", {len(data['history']['epoch'])} epochs, final loss {loss:.4g}" if loss is not None else "")
          + f" -> {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from urbaneo.products.urban import METHODS, predict

    set_threads(args.threads)
    root = Path(args.predictions)
    for info in predict({m: root / m / "model.pt" for m in args.methods or METHODS}, args.aligned, args.tiles,
                        root, progress=args.progress):
        print(f"urban-predict {info['method']}: {info['urban_share']:.1%} of the region urban, "
              f"{info['test_chips']} test chips -> {root / info['method']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from urbaneo.products.urban import METHODS, prediction_files
    from urbaneo.products.urban_evaluate import evaluate

    root = Path(args.predictions)
    files = {m: (root / m / "model.pt", *prediction_files(root, m)) for m in METHODS}
    metrics = evaluate(args.aligned, args.tiles, files, args.metrics, args.table, args.figure, preset=args.preset)
    for method, m in metrics["methods"].items():
        test = m["test_chips"] or {}
        print(f"urban-evaluate {method:<10} test F1 {test.get('f1', float('nan')):.3f} "
              f"kappa {test.get('kappa', float('nan')):.3f}  mean SID {m['mean_sid'] or float('nan'):.1f} %")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from urbaneo.products.urban import METHODS
    from urbaneo.products.urban_publish import product_params, publish

    root = Path(args.predictions)
    out_dir = Path(args.out).parent
    item = publish(args.run_dir, args.city, args.aligned, {m: root / m / "model.pt" for m in METHODS},
                   root / "ifcn" / "mask.tif", out_dir / "metrics.json", out_dir / "metrics.png",
                   out_dir / "methods.png", out_dir,
                   params=product_params(args.preset, args.seed, args.max_epochs, args.vgg16),
                   period=tuple(args.period))
    from urbaneo.atomic import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text(item + "\n")
    print(f"urban-publish: {item} in {args.run_dir}/catalog.json")
    return 0


def add_parser(sub) -> None:
    def common(p, *, preset=True, tiles=True):
        p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city> (viirs, urban_labels)")
        if tiles:
            p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/urban.parquet")
        if preset:
            p.add_argument("--preset", default="demo", choices=sorted(URBAN_TRAIN))

    def training(p):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs")
        p.add_argument("--vgg16", metavar="PATH", default=None, help="torchvision VGG16 state dict to start from")

    p = sub.add_parser("urban-train", help="train one urban method (IFCN, a baseline) on the city's chips")
    p.add_argument("--method", required=True)
    common(p)
    training(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")
    p.set_defaults(func=_train)

    p = sub.add_parser("urban-predict", help="region masks (COG) and test-chip masks of the trained urban methods")
    p.add_argument("--predictions", required=True, metavar="DIR",
                   help="resources/<run>/urban/<city>: reads <method>/model.pt, writes <method>/mask.tif, test_chips.npy")
    p.add_argument("--methods", nargs="*", help="only these (default: every method)")
    common(p, preset=False)
    add_runtime_args(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("urban-evaluate", help="Tables 2-4 and Fig. 6 for every urban method")
    common(p)
    p.add_argument("--predictions", required=True, metavar="DIR", help="resources/<run>/urban/<city> (<method>/*)")
    p.add_argument("--metrics", required=True, metavar="JSON")
    p.add_argument("--table", required=True, metavar="PNG")
    p.add_argument("--figure", required=True, metavar="PNG")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("urban-publish", help="mask COG, polygons, overlay and STAC items of the urban product")
    add_publish_args(p)
    common(p, tiles=False)
    training(p)
    p.add_argument("--predictions", required=True, metavar="DIR", help="resources/<run>/urban/<city>")
    p.set_defaults(func=_publish)
