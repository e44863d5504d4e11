"""``urbaneo catalog list|show|diff``: browse and compare the versioned artifacts of a run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

from urbaneo.errors import InputError


def add_parser(subparsers) -> None:
    """Register ``catalog`` (with ``list``, ``show``, ``diff``) on the urbaneo subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", metavar="DIR",
                        help="the run's results folder (default: results/<run> of --config)")
    common.add_argument("--config", default="config/config.yaml", metavar="PATH",
                        help="run config naming the run when --run-dir is not given")

    p = subparsers.add_parser("catalog", help="list, show and compare the versioned artifacts of a run")
    actions = p.add_subparsers(dest="catalog_action", required=True, metavar="ACTION")
    q = actions.add_parser("list", parents=[common], help="products, cities and versions; which is latest")
    q.set_defaults(func=_list)
    q = actions.add_parser("show", parents=[common], help="one item: version, lineage, inputs, assets")
    q.add_argument("item", metavar="ITEM_ID")
    q.add_argument("--json", action="store_true", help="print the item's STAC JSON")
    q.set_defaults(func=_show)
    q = actions.add_parser("diff", parents=[common],
                           help="what differs between two items: inputs, params, code, outputs, metrics")
    q.add_argument("item_a", metavar="ITEM_A")
    q.add_argument("item_b", metavar="ITEM_B")
    q.set_defaults(func=_diff)


def _load(args: argparse.Namespace) -> tuple[Path, dict[str, dict]]:
    from urbaneo.artifacts.stac import load_items

    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        from urbaneo.config import load_config

        run_dir = Path("results") / load_config(args.config)["run"]
    catalog = run_dir / "catalog.json"
    if not catalog.is_file():
        raise InputError(catalog, "no catalog (nothing published in this run yet, or another --run-dir)")
    return run_dir, load_items(run_dir)


def _item(items: Mapping[str, dict], item_id: str, run_dir: Path) -> dict:
    if item_id not in items:
        raise InputError(run_dir / "catalog.json", f"no item '{item_id}' (see `urbaneo catalog list`)")
    return items[item_id]


def _list(args: argparse.Namespace) -> int:
    from urbaneo.artifacts.stac import history, is_latest, series_of

    run_dir, items = _load(args)
    rows = [("COLLECTION", "KEY", "CITY", "VERSION", "STATUS", "ITEM")]
    for series in sorted({series_of(i) for i in items.values()}):
        for item in history(items, series):
            rows.append((*series, item["properties"]["version"],
                         "latest" if is_latest(item) else "superseded", item["id"]))
    print(f"{run_dir / 'catalog.json'}: {len(items)} items in "
          f"{len({i['collection'] for i in items.values()})} collections")
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    from urbaneo.artifacts.stac import is_latest, item_path, series_of

    run_dir, items = _load(args)
    item = _item(items, args.item, run_dir)
    if args.json:
        print(item_path(run_dir, item).read_text(encoding="utf-8"), end="")
        return 0
    props = item["properties"]
    collection, key, city = series_of(item)
    latest = next((link["href"] for link in item["links"] if link["rel"] == "latest-version"), None)
    print(f"{item['id']}  ({collection}/{key}, city {city})")
    lines = [
        ("version", props["version"] + ("  latest" if is_latest(item) else
                                        f"  superseded by {Path(latest).stem if latest else '?'}")),
        ("period", f"{props['start_datetime']} .. {props['end_datetime']}"),
        ("grid", f"{props['proj:code']}, {props['proj:shape'][0]} rows x {props['proj:shape'][1]} columns"
         if "proj:code" in props else None),
        ("lineage", props.get("processing:lineage")),
        ("software", ", ".join(f"{k} {v}" for k, v in sorted(props.get("processing:software", {}).items()))),
        ("code", _code_text(props.get("urbaneo:code"))),
        ("params", json.dumps(props["urbaneo:params"], sort_keys=True) if "urbaneo:params" in props else None),
    ]
    lines += [(link["rel"].replace("-version", ""), Path(link["href"]).stem)
              for link in item["links"] if link["rel"] in ("derived_from", "predecessor-version",
                                                          "successor-version")]
    for label, text in lines:
        if text:
            print(f"  {label:<12} {text}")
    print("  assets")
    for asset_key, asset in sorted(item["assets"].items()):
        print(f"    {asset_key}: {asset['href']}  {asset.get('type', '?')}  "
              f"{asset.get('file:size', '?')} bytes  {asset.get('file:checksum', '?')}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from urbaneo.artifacts.stac import series_of

    run_dir, items = _load(args)
    a, b = _item(items, args.item_a, run_dir), _item(items, args.item_b, run_dir)
    pa, pb = a["properties"], b["properties"]
    print(f"{a['id']} -> {b['id']}")
    if series_of(a) != series_of(b):
        print(f"  (different series: {'/'.join(series_of(a))} and {'/'.join(series_of(b))})")
    _section("inputs", _changes(pa.get("urbaneo:inputs", {}), pb.get("urbaneo:inputs", {})))
    _section("params", _changes(_flatten(pa.get("urbaneo:params", {})), _flatten(pb.get("urbaneo:params", {}))))
    print(f"code: {_code_change(pa.get('urbaneo:code'), pb.get('urbaneo:code'))}")
    _section("outputs", _changes({k: v.get("file:checksum") for k, v in a["assets"].items()},
                                 {k: v.get("file:checksum") for k, v in b["assets"].items()}))
    old, new = _metrics(run_dir, a), _metrics(run_dir, b)
    if not old and not new:
        print("metrics: none")
    else:
        print("metrics:")
        for name in sorted(old.keys() | new.keys()):
            x, y = old.get(name), new.get(name)
            delta = f" ({y - x:+.6g})" if x is not None and y is not None else ""
            print(f"  {name}: {_num(x)} -> {_num(y)}{delta}")
    return 0


def _section(title: str, lines: list[str]) -> None:
    print(f"{title}: same" if not lines else f"{title}:")
    for line in lines:
        print(f"  {line}")


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            lines.append(f"- {key}: {_text(old[key])}")
        elif key not in old:
            lines.append(f"+ {key}: {_text(new[key])}")
        elif old[key] != new[key]:
            lines.append(f"~ {key}: {_text(old[key])} -> {_text(new[key])}")
    return lines


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists and scalars stay leaves)."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    flat = {}
    for key, sub in value.items():
        flat.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _metrics(run_dir: Path, item: Mapping) -> dict[str, float]:
    """Numeric leaves of the item's metrics asset (key or role 'metrics'), by dotted name."""
    from urbaneo.artifacts.stac import item_path

    for key, asset in sorted(item["assets"].items()):
        if key == "metrics" or "metrics" in asset.get("roles", []):
            path = item_path(run_dir, item).parent / asset["href"]
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise InputError(path, f"unreadable metrics of {item['id']}: {err}") from None
            return {k: v for k, v in _flatten(values).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {}


def _code_text(code: Mapping | None) -> str | None:
    if not code:
        return None
    return f"source sha256 {code['source_sha256'][:12]}, commit {code.get('git_commit', 'unknown')[:12]}"


def _code_change(old: Mapping | None, new: Mapping | None) -> str:
    if not old or not new:
        return ("n/a (raw inputs)" if not old and not new
                else f"{_code_text(old) or 'n/a'} -> {_code_text(new) or 'n/a'}")
    commits = (old.get("git_commit", "unknown")[:12], new.get("git_commit", "unknown")[:12])
    if old["source_sha256"] == new["source_sha256"]:
        seen = f", commit {commits[0]}" if commits[0] == commits[1] else f", commits {commits[0]} and {commits[1]}"
        return f"same (source sha256 {old['source_sha256'][:12]}{seen})"
    return (f"changed: source sha256 {old['source_sha256'][:12]} -> {new['source_sha256'][:12]}, "
            f"commit {commits[0]} -> {commits[1]}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _num(value: float | None) -> str:
    return "(none)" if value is None else f"{value:.6g}"
