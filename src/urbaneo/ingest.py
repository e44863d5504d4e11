"""`urbaneo ingest`: check each source of a city before any long job starts.

Every file of a source is opened by its reader (`describe`), so a bad file stops the run with one
line; the facts go to resources/ingest/{city}/{source}.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Mapping

from .align import input_paths
from .atomic import atomic_path
from .inspect import describer


def ingest(city: Mapping, source: str, out: str | Path) -> dict:
    """Describe every input of ``source`` with its reader (a bad file is an InputError) and save the facts."""
    describe = describer(source)
    facts = {"city": city["name"], "source": source, "files": [describe(p) for p in input_paths(city, source)]}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(facts, indent=2, sort_keys=True, default=str) + "\n")
    return facts



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--source", required=True, help="input key, e.g. landsat, gf2, viirs, osm")
    p.add_argument("--out", required=True, metavar="PATH", help="the facts (JSON)")


def main(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city

    facts = ingest(load_city(args.city), args.source, args.out)
    print(f"ingest {args.source}: {len(facts['files'])} inputs read -> {args.out}")
    return 0
