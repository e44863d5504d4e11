"""`urbaneo preview`: quicklooks of a city's aligned inputs, for the run report.

One picture per aligned source, so a user sees at a glance that every source landed on the city
grid where it should (and what the demo city looks like) before any model trains on it.
"""

from __future__ import annotations

import argparse

from pathlib import Path

import numpy as np

from . import lcz_classes as lcz
from .align import grids_of, open_aligned
from .artifacts.quicklook import quicklook
from .errors import InputError


def _ndvi(refl) -> np.ndarray:
    red, nir = refl.sel(band="red").values, refl.sel(band="nir").values
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


def _landsat(ds, grid, out, city):
    # the summer date with the most usable pixels
    usable = ds["usable"].sum(("y", "x")).values
    summer = np.flatnonzero(ds["season"].values == "summer")
    t = int(summer[np.argmax(usable[summer])] if summer.size else np.argmax(usable))
    ndvi = np.where(ds["usable"].values[t], _ndvi(ds["reflectance"].isel(time=t)), np.nan)
    date = str(ds["time"].values[t])[:10]
    return quicklook(out, ndvi, grid, title=f"{city}: Landsat NDVI {date} (clouds masked)", units="NDVI",
                     cmap="RdYlGn", vmin=-0.3, vmax=0.9)


def _gf2(ds, grid, out, city):
    return quicklook(out, _ndvi(ds["reflectance"]), grid, title=f"{city}: VHR NDVI", units="NDVI",
                     cmap="RdYlGn", vmin=-0.3, vmax=0.9)


def _viirs(ds, grid, out, city):
    year = int(ds["year"].values[-1])
    return quicklook(out, np.log10(1 + ds["radiance"].sel(year=year).values), grid,
                     title=f"{city}: night lights {year}", units="log10(1 + nW cm-2 sr-1)", cmap="magma")


def _lcz(ds, grid, out, city):
    year = int(ds["year"].values[-1])
    return quicklook(out, ds["lcz"].sel(year=year).values, grid, kind="classes", classes=lcz.CLASSES,
                     title=f"{city}: LCZ labels {year}")


def _urban(ds, grid, out, city):
    year = int(ds["year"].values[-1])
    return quicklook(out, ds["urban"].sel(year=year).values, grid, kind="classes",
                     classes={0: ("other", "#f0f0f0"), 1: ("construction land", "#e31a1c")},
                     title=f"{city}: urban-land labels {year}")


def _osm(ds, grid, out, city):
    return quicklook(out, ds["building_fraction"].values, grid, title=f"{city}: OSM building fraction",
                     units="share of the cell", cmap="Greys", vmin=0, vmax=1)


# source -> (grid group, drawing function)
PREVIEWS = {"landsat": ("base", _landsat), "gf2": ("vhr", _gf2), "viirs": ("region", _viirs),
            "lcz_labels": ("planning", _lcz), "urban_labels": ("region_fine", _urban), "osm": ("base", _osm)}


def preview(city, source: str, aligned: str | Path, out: str | Path) -> Path:
    if source not in PREVIEWS:
        raise InputError(source, f"no preview for this source; one of {sorted(PREVIEWS)}")
    group, draw = PREVIEWS[source]
    return draw(open_aligned(aligned, group).load(), grids_of(city).named(group), out, city["name"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, metavar="PATH", help="city file (config/cities/<name>.yaml)")
    p.add_argument("--source", required=True)
    p.add_argument("--aligned", required=True, metavar="ZARR")
    p.add_argument("--out", required=True, metavar="PNG")


def main(args: argparse.Namespace) -> int:
    from urbaneo.config import load_city

    print(f"preview {args.source}: {preview(load_city(args.city), args.source, args.aligned, args.out)}")
    return 0
