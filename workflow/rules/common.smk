# Shared helpers of the workflow: config validation, per-city lookups, input functions.
# Functions live here only (rules in the other .smk files), as `snakemake --lint` wants.

import math
import os
import re
import sys

from urbaneo.config import (
    PRODUCT_INPUTS,
    missing_inputs,
    aoi_bounds,
    check_inputs,
    city_file,
    is_synthetic,
    load_cities,
    load_config,
)
from urbaneo.errors import InputError
from urbaneo.inventory import input_files
from urbaneo import presets
from urbaneo.presets import TILES, URBAN_DEEP, URBAN_METHODS, VEGPLAN_AGENTS
from urbaneo.registry import ALIGNED, BLOCKWISE, INGESTED, PREVIEWED

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
    """Raw inputs of a city (or of one source, with a {source} wildcard): its generated folder,
    or every file its globs match now.

    Files rather than matched folders, so a replaced file inside a scene folder counts.
    """
    city = CITIES[wildcards.city]
    if is_synthetic(city):
        return f"resources/raw/{wildcards.city}"
    keys = [wildcards.source] if "source" in wildcards.keys() else sorted(city["inputs"])
    try:
        return sorted({path for key in keys for path in input_files(city, key)})
    except InputError as err:
        fail(err)


def city_sources(name, among):
    """The configured inputs of a city that are among ``among`` (sorted)."""
    return sorted(set(CITIES[name]["inputs"]) & set(among))


def ingest_outputs(wildcards=None):
    return [f"resources/ingest/{name}/{source}.json" for name in CITIES for source in city_sources(name, INGESTED)]


def align_outputs(wildcards=None):
    return [f"resources/align/{name}/{source}.zarr" for name in CITIES for source in city_sources(name, ALIGNED)]


def tiles_outputs(wildcards=None):
    """One tile index per city and model whose product the city has every input for."""
    return [f"resources/tiles/{name}/{model}.parquet" for name in CITIES for model in TILES
            if not missing_inputs(CITIES[name], model)]


def preview_outputs(wildcards=None):
    return [f"results/{config['run']}/{name}/inputs/{source}.png" for name in CITIES
            for source in city_sources(name, PREVIEWED)]


def city_megapixels(name):
    """Size of a city's 30 m base grid, for memory requests that grow with the city."""
    lon0, lat0, lon1, lat1 = aoi_bounds(CITIES[name])
    km2 = (lon1 - lon0) * 111.32 * math.cos(math.radians((lat0 + lat1) / 2)) * (lat1 - lat0) * 110.57
    return km2 / 0.0009 / 1e6


def align_mem_mb_tiles(wildcards):
    # the valid-data mask of the model's grid; VHR (lcz) is the big one
    return int(1000 + (1500 if wildcards.model == "lcz" else 100) * city_megapixels(wildcards.city))


def dask_blockwise(wildcards):
    return bool(config["dask"]["scheduler"]) and wildcards.source in BLOCKWISE


def align_mem_mb(wildcards):
    # MB per base-grid megapixel: VHR is 100 pixels per base pixel x 4 float bands (plus the
    # warp buffers); Landsat holds every date; LCZ labels are also kept at VHR resolution.
    # Blockwise on dask, a worker holds a few blocks of 4 bands (float32) whatever the city's size.
    if dask_blockwise(wildcards):
        block_mb = config["dask"]["block"] ** 2 * 4 * 4 / 1e6
        local = config["dask"]["scheduler"] == "local"
        return int(1500 + 3 * block_mb * (config["dask"]["workers"] if local else 1))
    per_mp = {"gf2": 3000, "landsat": 600, "lcz_labels": 300}.get(wildcards.source, 100)
    return int(1500 + per_mp * city_megapixels(wildcards.city))


def align_threads(wildcards):
    # a local dask cluster's workers run inside this job
    return config["dask"]["workers"] if dask_blockwise(wildcards) and config["dask"]["scheduler"] == "local" else 1


def dask_args(wildcards):
    d = config["dask"]
    if not dask_blockwise(wildcards):
        return ""
    return f" --dask-scheduler {d['scheduler']} --dask-block {d['block']} --dask-workers {d['workers']}"


def product_outputs(product, pattern):
    """``pattern`` ({run}, {city}) for every city that has the inputs ``product`` needs (rule all)."""
    return [pattern.format(run=config["run"], city=name) for name in CITIES
            if not missing_inputs(CITIES[name], product)]


def checked_outputs(product, pattern):
    """Input function of a product target: every requested city must be able to make it."""

    def outputs(wildcards):
        try:
            for city in CITIES.values():
                check_inputs(city, product)
        except InputError as err:
            fail(err)
        return [pattern.format(run=config["run"], city=name) for name in CITIES]

    return outputs


def max_epochs_arg(wildcards):
    return f" --max-epochs {config['max_epochs']}" if config["max_epochs"] else ""


def vgg16_arg(wildcards):
    path = config["weights"]["vgg16"]
    return f" --vgg16 {path}" if path else ""


def pretrained_inputs(wildcards):
    """Configured weight files are inputs, so replacing one retrains (only the VGG16 FCNs use it)."""
    path = config["weights"]["vgg16"]
    return [path] if path and wildcards.method in URBAN_DEEP and wildcards.method != "unet" else []


def urban_predictions(wildcards):
    root = f"resources/{wildcards.run}/urban/{wildcards.city}"
    return [f"{root}/{m}/{name}" for m in URBAN_METHODS for name in ("model.pt", "mask.tif", "test_chips.npy")]


NPP_KINDS = ("rgb", "false_colour")  # seed 000's two st-MAE composites


def npp_aligned(wildcards):
    """The aligned stores of the NPP stage; OSM only when the city has it (else st-MAE masks at random)."""
    sources = ["landsat", "par", "npp_reference"] + (["osm"] if "osm" in CITIES[wildcards.city]["inputs"] else [])
    return [f"resources/align/{wildcards.city}/{s}.zarr" for s in sources]


def preset_of(*tables):
    """The run preset's entries of these presets.py tables, for params: not on the command line
    (the code reads the same table), but listed so that editing a hyperparameter reruns its jobs."""
    return {name: getattr(presets, name)[config["preset"]] for name in tables}


def npp_osm_arg(wildcards):
    """The city lists no OSM: the NPP jobs are told so (and read no OSM store)."""
    return "" if "osm" in CITIES[wildcards.city]["inputs"] else " --no-osm"


def mae_arg(wildcards):
    path = config["weights"]["mae"]
    return f" --mae {path}" if path else ""


def mae_weights_input(wildcards):
    return [config["weights"]["mae"]] if config["weights"]["mae"] else []


def region_megapixels(name):
    """Size of a city's 30 m region grid (AOI plus the region buffer), for the urban stage's memory."""
    lon0, lat0, lon1, lat1 = aoi_bounds(CITIES[name])
    km_x = (lon1 - lon0) * 111.32 * math.cos(math.radians((lat0 + lat1) / 2)) + 2 * CITIES[name]["region_buffer_km"]
    km_y = (lat1 - lat0) * 110.57 + 2 * CITIES[name]["region_buffer_km"]
    return km_x * km_y / 0.0009 / 1e6


def urban_mem_mb(wildcards):
    # a few float32 copies of the 30 m region grid, plus the network (the paper's VGG16 is ~0.5 GB)
    extra = 3000 if config["preset"] == "paper" else 500
    return int(1500 + extra + 40 * region_megapixels(wildcards.city))


def lcz_mem_mb(wildcards):
    # the VHR image (100 px per base-grid pixel) held as reflectance, scenes and their normalised copy
    return int(1500 + 6400 * city_megapixels(wildcards.city))


def lcz_args(wildcards):
    """The LCZ stage's training options, shared by its train and publish rules."""
    weights = config["weights"]["swin_v2"]
    return (f" --preset {config['preset']} --seed {config['seed']} --pure-share {config['lcz_pure_share']}"
            + max_epochs_arg(wildcards) + (f" --weights {weights}" if weights else ""))


def swin_weights_input(wildcards):
    return [config["weights"]["swin_v2"]] if config["weights"]["swin_v2"] else []


def train_threads(wildcards):
    # the demo's nets are too small for two threads to beat two jobs side by side
    return 1 if config["preset"] == "demo" else config["threads"]


def urban_gpu(wildcards):
    return config["gpus"] if wildcards.method in URBAN_DEEP else 0


def train_launcher(wildcards, resources):
    # gpu > 1: one process per GPU under torchrun, in the one task the SLURM plugin starts (leave
    # `tasks` unset: with tasks/tasks_per_gpu it adds --ntasks-per-gpu, plugin issue #459)
    if resources.gpu > 1:
        return f"torchrun --standalone --nproc_per_node={resources.gpu} -m urbaneo.cli"
    return "urbaneo"


def urban_runtime(wildcards):
    # minutes; the paper preset trains a full VGG16 FCN
    if wildcards.method not in URBAN_DEEP:
        return 20
    return 24 * 60 if config["preset"] == "paper" else 60


def vegplan_aligned(wildcards):
    """The aligned stores the planning-grid site is built from (the LCZ labels when there is no LCZ map)."""
    sources = ["landsat", "gf2", "osm", "stations", "soil", "population"]
    if "lcz_labels" in CITIES[wildcards.city]["inputs"]:
        sources.append("lcz_labels")
    return [f"resources/align/{wildcards.city}/{s}.zarr" for s in sources]


def _vegplan_products(wildcards):
    """The other products of the city that the plan uses, when the city can make them."""
    city = CITIES[wildcards.city]
    found = {}
    if not missing_inputs(city, "lcz"):
        found["lcz"] = f"resources/{wildcards.run}/lcz/{wildcards.city}/lcz.tif"
    if not missing_inputs(city, "npp"):
        found["npp"] = f"resources/{wildcards.run}/npp/{wildcards.city}/maps.nc"
    if not missing_inputs(city, "urban"):
        found["urban"] = f"results/{wildcards.run}/{wildcards.city}/urban/urban_mask.tif"
    return found


def vegplan_products(wildcards):
    return sorted(_vegplan_products(wildcards).values())


def vegplan_product_args(wildcards):
    return "".join(f" --{name} {path}" for name, path in sorted(_vegplan_products(wildcards).items()))


def vegplan_mem_mb(wildcards):
    # the planning grid is small (100 m cells); the site reads the VHR image block by block
    return int(2000 + 400 * city_megapixels(wildcards.city))


def vegplan_train_args(wildcards):
    return f" --preset {config['preset']} --seed {config['seed']}{max_epochs_arg(wildcards)}"


def vegplan_settings_args(wildcards):
    """The planning settings (budget, constraints, carbon price, objective weights) as CLI options."""
    v = config["vegplan"]
    options = {"budget-share": v["budget_share"], "budget-cny": v["budget_cny"],
               "maintenance-cny-yr": v["maintenance_cny_yr"], "max-species-share": v["max_species_share"],
               "min-shannon": v["min_shannon"], "carbon-price": v["carbon_price_cny_t"],
               "weights": ",".join(f"{k}={w}" for k, w in sorted(v["weights"].items()))}
    return "".join(f" --{name} {value}" for name, value in options.items() if value is not None)
