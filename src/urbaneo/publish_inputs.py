"""`urbaneo publish-inputs`: a city's raw inputs (its inventory) as items of the run's STAC catalog."""

from __future__ import annotations

import argparse



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="NAME")
    p.add_argument("--inventory", required=True, metavar="JSON")
    p.add_argument("--run-dir", required=True, metavar="DIR", help="results/<run>")
    p.add_argument("--period", nargs=2, type=int, required=True, metavar=("FIRST_YEAR", "LAST_YEAR"))
    p.add_argument("--out", required=True, metavar="JSON", help="list of the item ids written")


def main(args: argparse.Namespace) -> int:
    import json

    from urbaneo.artifacts.stac import register_inputs
    from urbaneo.atomic import atomic_path

    items = register_inputs(args.run_dir, args.city, args.inventory, period=tuple(args.period))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(sorted(item.id for item in items), indent=1) + "\n")
    print(f"publish-inputs: {len(items)} input items of {args.city} in {args.run_dir}/catalog.json")
    return 0
