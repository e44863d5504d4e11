"""`urbaneo snapshot-config`: the run's resolved config (defaults filled) and its city files, saved with the run."""

from __future__ import annotations

import argparse



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config/config.yaml", metavar="PATH")
    p.add_argument("--cities", nargs="*", help="the cities of this run (as --config cities=[...] gives them)")
    p.add_argument("--out", required=True, metavar="YAML")


def main(args: argparse.Namespace) -> int:
    import yaml

    from urbaneo.atomic import atomic_path
    from urbaneo.config import load_cities, load_config

    config = load_config(args.config)
    if args.cities:
        config["cities"] = args.cities
    cities = {name: dict(city) for name, city in load_cities(config).items()}
    with atomic_path(args.out) as tmp:  # the run's resolved config (defaults filled) and its cities
        tmp.write_text(yaml.safe_dump({"config": dict(config), "cities": cities}, sort_keys=True))
    print(f"snapshot-config: {args.out}")
    return 0
