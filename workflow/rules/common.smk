# Shared helpers of the workflow: config validation, per-city lookups, input functions.
# Functions live here only (rules in the other .smk files), as `snakemake --lint` wants.

import os
import re
import sys

from urbaneo.config import (
    PRODUCT_INPUTS,
    aoi_bounds,
    check_inputs,
    city_file,
    is_synthetic,
    load_cities,
    load_config,
)
from urbaneo.errors import InputError
from urbaneo.inventory import input_files

# Jobs call the `urbaneo` CLI installed beside the Python running Snakemake, so
# `.venv/bin/snakemake` works without activating the venv (a conda env, with
# --sdm conda, still comes first on PATH when it is activated for a job).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# Software of every rule: the urbaneo package (used with --sdm conda).
URBANEO_ENV = "../../envs/urbaneo.yaml"


def fail(message):
    # One clean line and a non-zero exit: Snakemake prints nothing more for a
    # SystemExit raised while parsing or while evaluating input functions.
    print(f"urbaneo: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def validated_cities(config):
    """Validate the run config (defaults filled in place) and load every requested city."""
    try:
        config.update(load_config(config, where=", ".join(map(str, workflow.configfiles)) or "config"))
        return load_cities(config)
    except InputError as err:
        fail(err)


def one_of(names):
    # Wildcard constraint matching exactly these names (none: match nothing).
    return "|".join(map(re.escape, names)) or "(?!)"


def city_param(key):
    """params: function returning a city's config value, so an edit reruns its jobs."""
    return lambda wildcards: CITIES[wildcards.city][key]


def synth_param(key):
    """params: function returning a value of a city's synthetic block."""
    return lambda wildcards: CITIES[wildcards.city]["synthetic"][key]


def raw_inputs(wildcards):
    """Raw inputs of a city: its generated folder, or every file its globs match now.

    Files rather than matched folders, so a replaced file inside a scene folder counts.
    """
    city = CITIES[wildcards.city]
    if is_synthetic(city):
        return f"resources/raw/{wildcards.city}"
    try:
        return sorted({path for key in sorted(city["inputs"]) for path in input_files(city, key)})
    except InputError as err:
        fail(err)


def not_implemented(target):
    """Input function of a target whose stage is not wired yet.

    It still checks at DAG time that every requested city could make the product
    (align only needs the AOI, validated when the city was loaded), then stops.
    """

    def check(wildcards):
        try:
            for city in CITIES.values():
                if target in PRODUCT_INPUTS:
                    check_inputs(city, target)
        except InputError as err:
            fail(err)
        fail(f"target '{target}' is not implemented yet")

    return check
