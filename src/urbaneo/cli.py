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


def _ingest(args: argparse.Namespace) -> int:
    from urbaneo.align import ingest
    from urbaneo.config import load_city

    facts = ingest(load_city(args.city), args.source, args.out)
    print(f"ingest {args.source}: {len(facts['files'])} inputs read -> {args.out}")
    return 0


def _align(args: argparse.Namespace) -> int:
    import warnings

    from urbaneo.align import align
    from urbaneo.config import load_city

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's own affine "*" notices
        summary = align(load_city(args.city), args.source, args.out, dask_scheduler=args.dask_scheduler,
                        block=args.dask_block, workers=args.dask_workers)
    for group, variables in summary.items():
        print(f"align {args.source} [{group}]: " + ", ".join(f"{k}{tuple(v)}" for k, v in variables.items()))
    return 0


def _tiles(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city
    from urbaneo.tiles import make_tiles

    index = make_tiles(load_city(args.city), args.model, args.preset, args.seed, args.aligned, args.out)
    counts = index["split"].value_counts().sort_index()
    print(f"tiles {args.model}: {len(index)} tiles ({', '.join(f'{k} {v}' for k, v in counts.items())}) -> {args.out}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city
    from urbaneo.previews import preview

    print(f"preview {args.source}: {preview(load_city(args.city), args.source, args.aligned, args.out)}")
    return 0


def _publish_inputs(args: argparse.Namespace) -> int:
    import json

    from urbaneo.artifacts.stac import register_inputs
    from urbaneo.atomic import atomic_path

    items = register_inputs(args.run_dir, args.city, args.inventory, period=tuple(args.period))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(sorted(item.id for item in items), indent=1) + "\n")
    print(f"publish-inputs: {len(items)} input items of {args.city} in {args.run_dir}/catalog.json")
    return 0


def _snapshot_config(args: argparse.Namespace) -> int:
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


def _inspect(args: argparse.Namespace) -> int:
    import json

    from urbaneo.inspect import describe

    facts = describe(args.path)
    if args.json:
        print(json.dumps(facts, sort_keys=True, default=str, allow_nan=False))
    else:
        for key, value in facts.items():
            print(f"{key:>16}: {value}")
    return 0


def _new_city(args: argparse.Namespace) -> int:
    from urbaneo.inspect import new_city

    try:
        aoi = tuple(float(v) for v in args.aoi.split(","))
        assert len(aoi) == 4
    except (ValueError, AssertionError):
        raise InputError("--aoi", f"expected lon_min,lat_min,lon_max,lat_max, got {args.aoi!r}") from None
    years = [int(y) for y in args.years.split(",")] if args.years else None
    report = new_city(args.name, aoi, args.inputs, years=years, out=args.out)
    print(f"wrote {report['path']} with inputs: {', '.join(sorted(report['inputs']))}")
    for line in report["skipped"]:
        print(f"  not recognised: {line}")
    for product, missing in report["products"].items():
        print(f"  {product:<8} " + ("can be made" if not missing else "lacks " + "; ".join(missing)))
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

    for name, func, text in (("ingest", _ingest, "read every input of one source and record its facts"),
                             ("align", _align, "put one source of a city on the city's grids (Zarr)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
        p.add_argument("--source", required=True, help="input key, e.g. landsat, gf2, viirs, osm")
        p.add_argument("--out", required=True, metavar="PATH")
        p.set_defaults(func=func)
    p.add_argument("--dask-scheduler", metavar="local|ADDRESS",
                   help="read big grids (VHR) block by block on a dask cluster: 'local' or tcp://host:8786")
    p.add_argument("--dask-block", type=int, default=2048, metavar="PX", help="block side in pixels (default 2048)")
    p.add_argument("--dask-workers", type=int, default=2, metavar="N", help="workers of a local cluster (default 2)")

    p = sub.add_parser("tiles", help="cut one model's tile index (GeoParquet) from its aligned cube")
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--model", required=True, choices=("npp", "lcz", "urban", "vegplan"))
    p.add_argument("--preset", default="demo", choices=("demo", "paper"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aligned", required=True, metavar="ZARR", help="the aligned source the model is cut from")
    p.add_argument("--out", required=True, metavar="PATH")
    p.set_defaults(func=_tiles)

    p = sub.add_parser("preview", help="quicklook PNG of one aligned source, for the report")
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--source", required=True)
    p.add_argument("--aligned", required=True, metavar="ZARR")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=_preview)

    p = sub.add_parser("publish-inputs", help="register a city's raw inputs (its inventory) in the run's STAC catalog")
    p.add_argument("--city", required=True, metavar="NAME")
    p.add_argument("--inventory", required=True, metavar="JSON")
    p.add_argument("--run-dir", required=True, metavar="DIR", help="results/<run>")
    p.add_argument("--period", nargs=2, type=int, required=True, metavar=("FIRST_YEAR", "LAST_YEAR"))
    p.add_argument("--out", required=True, metavar="JSON", help="list of the item ids written")
    p.set_defaults(func=_publish_inputs)

    p = sub.add_parser("snapshot-config", help="save the run's resolved config and city files")
    p.add_argument("--config", default="config/config.yaml", metavar="PATH")
    p.add_argument("--cities", nargs="*", help="the cities of this run (as --config cities=[...] gives them)")
    p.add_argument("--out", required=True, metavar="YAML")
    p.set_defaults(func=_snapshot_config)

    p = sub.add_parser("inspect", help="say what a raw file or scene folder is, or why it cannot be read")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("new-city", help="write config/cities/NAME.yaml from the files under a folder")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--aoi", required=True, help="lon_min,lat_min,lon_max,lat_max (EPSG:4326)")
    p.add_argument("--inputs", required=True, metavar="DIR", help="folder holding the city's raw files")
    p.add_argument("--years", help="comma-separated years (default: the years of the Landsat scenes)")
    p.add_argument("--out", metavar="PATH", help="city file to write (default config/cities/NAME.yaml)")
    p.set_defaults(func=_new_city)

    from urbaneo.artifacts.catalog_cli import add_parser as add_catalog_parser

    add_catalog_parser(sub)

    from urbaneo.products.urban_cli import add_parser as add_urban_parser

    add_urban_parser(sub)

    from urbaneo.products.npp_cli import add_parser as add_npp_parser

    add_npp_parser(sub)

    from urbaneo.products.lcz_cli import add_parser as add_lcz_parser

    add_lcz_parser(sub)

    from urbaneo.products.vegplan_cli import add_parser as add_vegplan_parser

    add_vegplan_parser(sub)

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
