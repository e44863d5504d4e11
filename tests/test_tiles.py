import numpy as np
import pytest

from urbaneo.errors import InputError
from urbaneo.grid import Grid
from urbaneo.tiles import (blend_weights, checkerboard, held_out_years, mosaic, random_split, read_index,
                           tile_index, write_index)

GRID = Grid(32650, 660000.0, 3550000.0, 30.0, 70, 50)


def test_tiles_cover_the_grid_without_padding():
    idx = tile_index(GRID, 16, 12)
    covered = np.zeros(GRID.shape, bool)
    for r, c in zip(idx["row"], idx["col"]):
        assert r + 16 <= GRID.height and c + 16 <= GRID.width
        covered[r : r + 16, c : c + 16] = True
    assert covered.all()
    first = idx.iloc[0]
    assert first.geometry.bounds == (660000.0, 3550000.0 - 16 * 30, 660000.0 + 16 * 30, 3550000.0)


def test_tiles_drop_mostly_invalid_windows():
    valid = np.zeros(GRID.shape, bool)
    valid[:, :30] = True
    idx = tile_index(GRID, 16, 16, valid=valid, min_valid=0.5)
    assert (idx["col"] + 8 <= 30).all() and len(idx) > 0


def test_too_small_grid_is_one_clear_error():
    with pytest.raises(InputError, match="smaller than one 64x64 tile"):
        tile_index(GRID, 64)


def test_random_split_ratios_and_seed():
    idx = tile_index(GRID, 8, 4)
    a, b = random_split(idx, seed=3), random_split(idx, seed=3)
    assert (a["split"] == b["split"]).all()
    counts = a["split"].value_counts()
    assert counts["train"] == pytest.approx(4 * counts["test"], rel=0.25)
    assert set(a["split"]) == {"train", "val", "test"}


def test_checkerboard_and_years():
    regions, ny, nx = checkerboard(GRID, 12)
    assert ny * nx == len(np.unique(regions)) and abs(ny * nx - 12) <= 2
    assert held_out_years([2021, 2019, 2020]) == {2019: "train", 2020: "train", 2021: "test"}


def test_mosaic_reassembles_a_field_exactly(tmp_path):
    field = np.random.default_rng(0).normal(size=(2, *GRID.shape)).astype(np.float32)
    idx = tile_index(GRID, 16, 10)
    tiles = np.stack([field[:, r : r + 16, c : c + 16] for r, c in zip(idx["row"], idx["col"])])
    path = write_index(idx, tmp_path / "index.parquet")
    back = mosaic(tiles, read_index(path), GRID)
    np.testing.assert_allclose(back, field, atol=1e-5)
    assert blend_weights(4).min() > 0


def test_unreadable_index(tmp_path):
    bad = tmp_path / "index.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match="index.parquet"):
        read_index(bad)


def test_checkerboard_chips_split_by_sub_region():
    from urbaneo.tiles import checkerboard_chips

    grid = Grid(32650, 600000.0, 3600000.0, 500.0, 120, 110)
    valid = np.ones(grid.shape, bool)
    valid[:40, :40] = False  # one sub-region without data is skipped
    chips = checkerboard_chips(grid, 9, 36, valid=valid, seed=2)
    per_region = chips.groupby("region").size()
    assert per_region.between(2, 8).all() and 0 not in per_region.index
    assert set(chips["split"]) == {"train", "test"}
    for _, chip in chips.iterrows():  # a chip never leaves its sub-region
        assert chip.row + 36 <= grid.height and chip.col + 36 <= grid.width
    train = chips[chips.split == "train"].union_all()
    assert chips[chips.split == "test"].geometry.intersection(train).area.max() == 0


def test_checkerboard_too_small_says_how_large():
    from urbaneo.tiles import checkerboard_chips

    grid = Grid(32650, 600000.0, 3600000.0, 500.0, 60, 60)
    with pytest.raises(InputError, match="at least 108x108 pixels"):
        checkerboard_chips(grid, 9, 36, valid=np.ones(grid.shape, bool))
