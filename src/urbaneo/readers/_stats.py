"""Statistics over whole rasters, read strip by strip so `describe` stays memory-bounded on full scenes."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
from rasterio.windows import Window

STRIP_ROWS = 512


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
