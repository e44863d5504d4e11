"""The ``urbaneo`` command line: one subcommand per workflow step, runnable outside Snakemake.

Bad input anywhere ends with one line ``urbaneo: <where>: <problem>`` on stderr and exit
code 2 (no traceback); argparse usage errors use the same code.
"""

from __future__ import annotations

import argparse
import logging
import sys

from urbaneo.errors import InputError


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


# The workflow's shared steps: rule ``X`` runs ``urbaneo X`` (``_`` as ``-``), whose code is the
# module ``urbaneo.X`` (its ``add_arguments`` and ``main``), imported only when that command runs.
SHARED_STEPS = {
    "synth": "generate a procedural city's raw inputs in the real formats",
    "inventory": "list and checksum every raw input file of a city",
    "ingest": "read every input of one source and record its facts",
    "align": "put one source of a city on the city's grids (Zarr)",
    "tiles": "cut one model's tile index (GeoParquet) from its aligned cube",
    "preview": "quicklook PNG of one aligned source, for the report",
    "publish_inputs": "register a city's raw inputs (its inventory) in the run's STAC catalog",
    "snapshot_config": "save the run's resolved config and city files",
}


def _add_shared_steps(sub, argv: list[str] | None) -> None:
    import importlib

    for name, text in SHARED_STEPS.items():
        command = name.replace("_", "-")
        p = sub.add_parser(command, help=text, description=text)
        if argv is None or argv[:1] == [command]:
            module = importlib.import_module(f"urbaneo.{name}")
            module.add_arguments(p)
            p.set_defaults(func=module.main)


def _add_stages(sub, argv: list[str] | None) -> None:
    """``urbaneo <stage> <step>``: every step is listed from its stage's ``STEPS``; only the step that
    ``argv`` names (every step when ``argv`` is None) imports its module for its options."""
    from urbaneo import stages

    wanted = tuple(argv[:2]) if argv is not None else None
    for name in stages.STAGES:
        package = stages.stage(name)
        p = sub.add_parser(name, help=package.__doc__.strip().splitlines()[0])
        steps = p.add_subparsers(dest="step", required=True, metavar="STEP")
        for step_name, text in package.STEPS.items():
            s = steps.add_parser(step_name, help=text, description=text)
            if wanted is None or wanted == (name, step_name):
                module = stages.step(name, step_name)
                module.add_arguments(s)
                s.set_defaults(func=module.main)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``argv``, only the stage step it names gets its options (imported)."""
    parser = argparse.ArgumentParser(
        prog="urbaneo", description="urbaneo: city EO products; each workflow step as a command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_shared_steps(sub, argv)

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

    _add_stages(sub, argv)

    p = sub.add_parser("check-config", help="validate the run config and its cities; show what each can make")
    p.add_argument("--config", default="config/config.yaml", metavar="PATH")
    p.set_defaults(func=_check_config)
    return parser


def configure_logging() -> None:
    """Every module's ``log.info`` to stderr, which the workflow sends to the job's log."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("rasterio", "fiona", "pyogrio", "matplotlib", "PIL", "distributed", "numba", "h5py", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    configure_logging()
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except InputError as err:
        print(f"urbaneo: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
