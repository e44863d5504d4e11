"""`urbaneo synth`: the synthetic demo city, generated in the real file formats (see `city.synth_city`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .city import synth_city

__all__ = ["synth_city"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: the city's, else 0)")
    p.add_argument("--profile", choices=("demo", "tiny"), default=None,
                   help="generator size (default: the city's, else demo)")
    p.add_argument("--city-config", metavar="PATH", help="city file to take the name, AOI, years, region buffer and synthetic block from")


def main(args: argparse.Namespace) -> int:
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

    # The generator writes atomically itself (temporary folder, then rename).
    manifest = synth_city(args.out_dir, seed=seed, profile=profile, **city_args)
    written = manifest.get("inputs", {})
    n_files = sum(len(paths) for paths in written.values())
    print(f"synth: wrote {n_files} paths for {len(written)} inputs ({', '.join(sorted(written))}) "
          f"to {args.out_dir} (seed {seed}, profile {profile})")
    return 0
