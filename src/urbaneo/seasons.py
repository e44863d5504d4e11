"""Meteorological seasons, hemisphere-aware (st-MAE's season embedding uses these indices)."""

from __future__ import annotations

import datetime as dt

SEASONS = ("spring", "summer", "autumn", "winter")  # index = the season token of seed 000 (eq. 2)
_NORTH = {3: 0, 4: 0, 5: 0, 6: 1, 7: 1, 8: 1, 9: 2, 10: 2, 11: 2, 12: 3, 1: 3, 2: 3}


def season_index(date: dt.date, southern: bool = False) -> int:
    """0 spring, 1 summer, 2 autumn, 3 winter; the southern hemisphere is shifted by six months."""
    month = (date.month + 5) % 12 + 1 if southern else date.month
    return _NORTH[month]


def season_of(date: dt.date, southern: bool = False) -> str:
    return SEASONS[season_index(date, southern)]
