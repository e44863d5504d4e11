"""What every reader shares: opening a raster with one clear error, and strip-wise statistics for `describe`."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.windows import Window

from urbaneo.errors import InputError

STRIP_ROWS = 512


@contextmanager
def open_raster(path: Path, *, gdal_name: str | None = None):
    """Open a georeferenced raster; unreadable or CRS-less -> InputError naming ``path``.

    ``gdal_name`` is what GDAL opens when it differs from the file (e.g. /vsigzip/ for .tif.gz).
    """
    try:
        src = rasterio.open(gdal_name or path)
    except rasterio.errors.RasterioError as err:
        raise InputError(path, f"cannot be read as a raster ({err})") from None
    with src:
        if src.crs is None:
            raise InputError(path, "raster has no CRS (georeferencing is missing)")
        yield src


def strips(height: int, width: int, rows: int = STRIP_ROWS) -> Iterator[Window]:
    """Full-width windows of ``rows`` rows covering a raster from top to bottom."""
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


class RunningStats:
    """Minimum, maximum, mean and count of every value added (float64 sums)."""

    def __init__(self) -> None:
        self.low, self.high, self.total, self.count = math.inf, -math.inf, 0.0, 0

    def add(self, values: np.ndarray) -> None:
        if values.size:
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
            self.total += float(values.sum(dtype=np.float64))
            self.count += int(values.size)

    def as_dict(self) -> dict:
        if not self.count:
            return {"min": None, "mean": None, "max": None, "valid_pixels": 0}
        return {"min": self.low, "mean": self.total / self.count, "max": self.high, "valid_pixels": self.count}
