"""Vectors as GeoPackage, GeoParquet or GeoJSON, byte for byte reproducible.

GeoPackage records a write time in ``gpkg_contents.last_change``; GDAL takes it from the
OGR_CURRENT_DATE config option when set, so it is pinned to a fixed date while writing. GeoParquet
(pyarrow + geopandas metadata) and GeoJSON (RFC 7946: WGS84, written by GDAL) hold no timestamp. Rows are sorted, so the order in which a
producer happened to emit features does not reach the file.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from ..atomic import atomic_path

FIXED_DATE = "1970-01-01T00:00:00.000Z"  # gpkg_contents.last_change of every GeoPackage written here
SUFFIXES = (".gpkg", ".parquet", ".geojson")


@contextmanager
def _fixed_ogr_date() -> Iterator[None]:
    # pyogrio bundles its own GDAL, so the option is set through pyogrio, not rasterio.Env
    import pyogrio

    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


def sort_rows(gdf, sort_by: Sequence[str] | None = None):
    """Rows in a canonical order: by ``sort_by`` (default: every attribute column), then geometry WKB."""
    columns = list(sort_by) if sort_by is not None else [c for c in gdf.columns if c != gdf.geometry.name]
    keys = pd.DataFrame({f"k{i}": gdf[c].to_numpy() for i, c in enumerate(columns)})
    keys = keys.apply(lambda col: col.astype(str) if col.dtype == object else col)  # mixed types do not compare
    keys["wkb"] = gdf.geometry.to_wkb(hex=True).to_numpy()
    order = keys.sort_values(list(keys.columns), kind="mergesort", na_position="last").index
    return gdf.iloc[order.to_numpy()].reset_index(drop=True)


def write_vector(path: str | os.PathLike, gdf, *, layer: str | None = None,
                 sort_by: Sequence[str] | None = None) -> Path:
    """Write a GeoDataFrame as GeoPackage (``.gpkg``), GeoParquet (``.parquet``) or GeoJSON (``.geojson``,
    reprojected to WGS84 as RFC 7946 requires); returns the path.

    The layer name (GeoPackage) defaults to the file stem; rows are sorted with ``sort_rows``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: vector outputs are {' or '.join(SUFFIXES)}, not {suffix or 'no suffix'}")
    if gdf.crs is None:
        raise ValueError(f"{path}: the GeoDataFrame has no CRS")
    rows = sort_rows(gdf, sort_by)
    with atomic_path(path) as tmp:
        if suffix == ".gpkg":
            tmp.unlink()  # GDAL creates the GeoPackage itself; an empty placeholder is not one
            with _fixed_ogr_date():
                rows.to_file(tmp, driver="GPKG", layer=layer or path.stem, engine="pyogrio")
        elif suffix == ".geojson":
            tmp.unlink()
            rows.to_crs("EPSG:4326").to_file(tmp, driver="GeoJSON", layer=layer or path.stem, engine="pyogrio",
                                             RFC7946="YES")
        else:
            rows.to_parquet(tmp, index=False)
    return path
