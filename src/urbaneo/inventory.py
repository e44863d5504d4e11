"""Raw-input register: every file a city's inputs resolve to, with size and sha256.

It is the first step of ingest and what later artifacts cite as their raw inputs, so it
is deterministic: sorted keys and paths, no timestamps, no machine-specific paths for
inputs under the repository root.
"""

from __future__ import annotations

import argparse

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

from urbaneo.atomic import atomic_path
from urbaneo.config import city_root, city_where, resolve_input
from urbaneo.errors import InputError

FORMAT = "urbaneo.inventory/1"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_under(match: str, root: Path) -> list[str]:
    """A matched file, or every non-hidden file below a matched folder (scene folders, stations/)."""
    full = root / match
    if not full.is_dir():
        return [match]
    found = []
    for dirpath, dirnames, filenames in os.walk(full):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(match) / Path(dirpath).relative_to(full)
        found += [(rel / f).as_posix() for f in filenames if not f.startswith(".")]
    return found


def input_files(city: Mapping, key: str) -> list[str]:
    """Every file of ``inputs.<key>``, matched folders expanded; sorted, relative to the city root.

    A pattern that matches nothing raises InputError naming the city file and the pattern.
    """
    root = city_root(city)
    files = sorted({f for match in resolve_input(city, key) for f in _files_under(match, root)})
    if not files:  # it matched only empty folders
        raise InputError(city_where(city), f"inputs.{key}: matches no file: {city['inputs'][key]}")
    return files


def build_inventory(city: Mapping, *, workers: int = 1) -> dict:
    """Checksum every file of every configured input of ``city`` (``workers`` files hashed in parallel)."""
    root = city_root(city)
    files = {key: input_files(city, key) for key in sorted(city["inputs"])}
    every = sorted({f for paths in files.values() for f in paths})
    # hashlib releases the GIL on large buffers, so threads do speed up big scenes.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = dict(zip(every, pool.map(lambda p: sha256_file(root / p), every)))
    return {
        "format": FORMAT,
        "city": city["name"],
        "inputs": {
            key: {
                "pattern": city["inputs"][key],
                "files": [{"path": Path(p).as_posix(), "size": (root / p).stat().st_size,
                           "sha256": digests[p]} for p in paths],
            }
            for key, paths in files.items()
        },
    }


def write_inventory(inventory: dict, out: str | os.PathLike) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(inventory, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--out", required=True, metavar="PATH", help="inventory JSON to write")
    p.add_argument("--threads", type=int, default=1, help="files hashed in parallel")


def main(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city

    inventory = build_inventory(load_city(args.city), workers=args.threads)
    write_inventory(inventory, args.out)
    n_files = sum(len(entry["files"]) for entry in inventory["inputs"].values())
    print(f"inventory: {n_files} files in {len(inventory['inputs'])} inputs -> {args.out}")
    return 0
