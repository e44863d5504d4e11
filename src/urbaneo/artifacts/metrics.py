"""Metrics as JSON that is stable across runs: sorted keys, rounded floats, NaN as null.

Floats keep SIGNIFICANT digits so that last-bit noise of CPU float arithmetic (summation order,
BLAS kernels) does not change the file's bytes, and with them its checksum.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError

SIGNIFICANT = 6


def _clean(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars/arrays to Python, floats rounded, non-finite floats to None."""
    if isinstance(value, Mapping):
        out = {str(k): _clean(v) for k, v in value.items()}
        if len(out) != len(value):
            raise ValueError(f"metric keys collide once written as strings: {sorted(map(str, value))}")
        return out
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return None  # JSON has no NaN/Infinity
        return float(f"{value:.{SIGNIFICANT}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write a {type(value).__name__} to metrics JSON")


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics`` as indented JSON with sorted keys; returns the path."""
    path = Path(path)
    text = json.dumps(_clean(metrics), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_metrics(path: str | os.PathLike) -> dict:
    """The metrics dict of a file written by write_metrics; InputError if it is missing or not a JSON object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "metrics file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"metrics must be a JSON object, not {type(data).__name__}")
    return data
