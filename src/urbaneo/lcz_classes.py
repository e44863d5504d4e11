"""Local Climate Zones (Stewart & Oke 2012): the 17 classes, their standard colours and codings.

Two codings are in use: 1-17 (LCZ Generator, this package) and WUDAPT's legacy one where the
land-cover classes A-G are 101-107. Everything inside urbaneo uses 1-17.
"""

from __future__ import annotations

import numpy as np

# code -> (short name, standard WUDAPT colour)
CLASSES: dict[int, tuple[str, str]] = {
    1: ("Compact high-rise", "#8c0000"),
    2: ("Compact midrise", "#d10000"),
    3: ("Compact low-rise", "#ff0000"),
    4: ("Open high-rise", "#bf4d00"),
    5: ("Open midrise", "#ff6600"),
    6: ("Open low-rise", "#ff9955"),
    7: ("Lightweight low-rise", "#faee05"),
    8: ("Large low-rise", "#bcbcbc"),
    9: ("Sparsely built", "#ffccaa"),
    10: ("Heavy industry", "#555555"),
    11: ("A Dense trees", "#006a00"),
    12: ("B Scattered trees", "#00aa00"),
    13: ("C Bush, scrub", "#648525"),
    14: ("D Low plants", "#b9db79"),
    15: ("E Bare rock or paved", "#000000"),
    16: ("F Bare soil or sand", "#fbf7ae"),
    17: ("G Water", "#6a6aff"),
}
URBAN = tuple(range(1, 11))  # the built types; 11-17 are land-cover types
WATER = 17
LEGACY_OFFSET = 90  # WUDAPT legacy: A-G = 101-107 = 11-17 + 90


def from_legacy(codes: np.ndarray) -> np.ndarray:
    """Map WUDAPT legacy codes (1-10, 101-107) to 1-17; other values are left unchanged."""
    codes = np.asarray(codes)
    out = codes.copy()
    legacy = (codes >= 101) & (codes <= 107)
    out[legacy] = codes[legacy] - LEGACY_OFFSET
    return out


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table (code -> RGBA) with the standard LCZ colours."""
    return {code: (*(int(hexcol[i : i + 2], 16) for i in (1, 3, 5)), 255) for code, (_, hexcol) in CLASSES.items()}
