"""What every product stage's CLI shares: torch threads, the runtime options, the publish options."""

from __future__ import annotations


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def add_runtime_args(p) -> None:
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def add_publish_args(p) -> None:
    """Where the product item goes: the city, the run's folder, the period and the item-id file."""
    p.add_argument("--city", required=True, metavar="NAME")
    p.add_argument("--run-dir", required=True, metavar="DIR", help="results/<run>")
    p.add_argument("--period", nargs=2, type=int, required=True, metavar=("FIRST_YEAR", "LAST_YEAR"))
    p.add_argument("--out", required=True, metavar="TXT", help="the product item id; its folder holds the evaluation")
