"""The ``urbaneo`` command line: one subcommand per workflow step, runnable outside Snakemake.

Bad input anywhere ends with one line ``urbaneo: <where>: <problem>`` on stderr and exit
code 2 (no traceback); argparse usage errors use the same code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from urbaneo.errors import InputError


def _synth_city(args: argparse.Namespace) -> int:
    from urbaneo.config import aoi_bounds, load_city

    seed, profile, city_args = args.seed, args.profile, {}
    if args.city_config:
        city = load_city(args.city_config)
        city_args = {"aoi": list(aoi_bounds(city)), "years": list(city["years"]),
                     "region_buffer_km": city["region_buffer_km"], "name": city["name"]}
        synthetic = city.get("synthetic", {})
        # Explicit flags win over the city's synthetic block.
        seed = synthetic.get("seed") if seed is None else seed
        profile = synthetic.get("profile") if profile is None else profile
    seed = 0 if seed is None else seed
    profile = profile or "demo"

    from urbaneo.synth import synth_city  # heavy (raster/OSM writers): import only when used

    # The generator writes atomically itself (temporary folder, then rename).
    manifest = synth_city(args.out_dir, seed=seed, profile=profile, **city_args)
    written = manifest.get("inputs", {})
    n_files = sum(len(paths) for paths in written.values())
    print(f"synth-city: wrote {n_files} paths for {len(written)} inputs ({', '.join(sorted(written))}) "
          f"to {args.out_dir} (seed {seed}, profile {profile})")
    return 0


def _inventory(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city
    from urbaneo.inventory import build_inventory, write_inventory

    inventory = build_inventory(load_city(args.city), workers=args.threads)
    write_inventory(inventory, args.out)
    n_files = sum(len(entry["files"]) for entry in inventory["inputs"].values())
    print(f"inventory: {n_files} files in {len(inventory['inputs'])} inputs -> {args.out}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from urbaneo.config import PRODUCTS, city_file, is_synthetic, load_cities, load_config, missing_inputs

    config = load_config(args.config)
    cities = load_cities(config)
    print(f"{args.config}: ok (run '{config['run']}', preset '{config['preset']}', seed {config['seed']}, "
          f"{len(cities)} {'city' if len(cities) == 1 else 'cities'})")
    for name, city in cities.items():
        origin = ("synthetic: seed {seed}, profile {profile}".format(**city["synthetic"])
                  if is_synthetic(city) else "real inputs")
        print(f"{name} ({city_file(config, name)}, {origin})")
        for product in PRODUCTS:
            problems = missing_inputs(city, product)
            print(f"  {product:<8} " + ("ok" if not problems else "cannot make: " + "; ".join(problems)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="urbaneo", description="urbaneo: city EO products; each workflow step as a command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth-city", help="generate a procedural city's raw inputs in the real formats")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: the city's, else 0)")
    p.add_argument("--profile", choices=("demo", "tiny"), default=None,
                   help="generator size (default: the city's, else demo)")
    p.add_argument("--city-config", metavar="PATH", help="city file to take the name, AOI, years, region buffer and synthetic block from")
    p.set_defaults(func=_synth_city)

    p = sub.add_parser("inventory", help="list and checksum every raw input file of a city")
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--out", required=True, metavar="PATH", help="inventory JSON to write")
    p.add_argument("--threads", type=int, default=1, help="files hashed in parallel")
    p.set_defaults(func=_inventory)

    p = sub.add_parser("check-config", help="validate the run config and its cities; show what each can make")
    p.add_argument("--config", default="config/config.yaml", metavar="PATH")
    p.set_defaults(func=_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as err:
        print(f"urbaneo: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
