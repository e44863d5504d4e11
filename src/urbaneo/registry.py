"""What the workflow needs to know when Snakemake parses it, without importing any numerics: the
input keys each step takes. The modules that do the work map the same keys to their functions
(``inspect.describer``, ``align.ALIGNERS``, ``preview.PREVIEWS``); tests/test_layout.py checks the
two agree."""

from __future__ import annotations

# input key of a city file -> (reader module, describe function, its `kind` argument if it takes one)
READERS = {
    "landsat": ("landsat", "describe", None),
    "gf2": ("gf2", "describe", None),
    "viirs": ("viirs", "describe", None),
    "par": ("par", "describe", None),
    "osm": ("osm", "describe", None),
    "npp_reference": ("labels", "describe_npp_reference", None),
    "lcz_labels": ("labels", "describe_lcz", None),
    "urban_labels": ("labels", "describe_urban", None),
    "stations": ("tables", "describe", "stations"),
    "soil": ("tables", "describe", "soil"),
    "species": ("tables", "describe", "species"),
    "population": ("population", "describe", None),
}
INGESTED = tuple(sorted(READERS))  # every input key has a reader
# the gridded ones, stored as resources/align/{city}/{source}.zarr (the species table is used as a table)
ALIGNED = ("gf2", "landsat", "lcz_labels", "npp_reference", "osm", "par", "population", "soil", "stations",
           "urban_labels", "viirs")
BLOCKWISE = ("gf2",)  # aligned block by block on dask when the config asks (big enough to need it)
PREVIEWED = ("gf2", "landsat", "lcz_labels", "osm", "urban_labels", "viirs")  # a quicklook in the report
