"""What every stage's publish step shares: the files gathered into the product's folder, the loss
curves of its trained models, the STAC item and the item-id file the workflow tracks."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..artifacts import quicklook, stac
from ..atomic import atomic_path

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
LOSS_FIGURE = "loss.png"


def gather(out_dir: Path, sources: Mapping[str, tuple[str | Path, str]]) -> dict[str, Path]:
    """Copy each ``key: (source, name)`` into ``out_dir/name`` (atomically; skipped when the source is
    already there); the product's paths by key."""
    files = {}
    for key, (source, name) in sources.items():
        files[key] = Path(out_dir) / name
        if Path(source).resolve() != files[key].resolve():
            with atomic_path(files[key]) as tmp:
                shutil.copyfile(source, tmp)
    return files


def loss_figure(out_dir: Path, histories: Mapping[str, Mapping], title: str) -> Path:
    """``loss.png``: training and validation loss per epoch of each trained model (their ``fit`` histories)."""
    return quicklook.loss_curves(Path(out_dir) / LOSS_FIGURE, histories, title)


def publish_product(run_dir, product: str, city: str, *, grid, params: Mapping, period, inputs, assets) -> str:
    """The product's STAC item (lineage: its rule, ``<product>_publish``); its id."""
    return stac.publish(run_dir, product=product, city=city, grid=grid, params=params, lineage=f"{product}_publish",
                        period=period, inputs=list(inputs), assets=assets).id


def write_item_id(args: argparse.Namespace, item_id: str, product: str) -> int:
    """The item id into ``--out`` (the file the workflow tracks), one line on stdout; exit code 0."""
    with atomic_path(args.out) as tmp:
        tmp.write_text(item_id + "\n")
    print(f"{product} publish: {item_id} in {args.run_dir}/catalog.json")
    return 0
