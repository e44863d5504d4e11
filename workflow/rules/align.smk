# Align: each source of a city on the grids it is used on (urbaneo.grid.CityGrids), as Zarr.


rule align:
    input:
        raw_inputs,
        "resources/ingest/{city}/{source}.json",
    output:
        directory("resources/align/{city}/{source}.zarr"),
    wildcard_constraints:
        source=one_of(ALIGNED),
    params:
        city_config=lambda wildcards: city_file(config, wildcards.city),
        # the grids depend on these; a change re-aligns
        aoi=lambda wildcards: list(aoi_bounds(CITIES[wildcards.city])),
        years=city_param("years"),
        region_buffer_km=city_param("region_buffer_km"),
        dask=dask_args,  # the store is the same either way; switching re-aligns once
    log:
        "logs/{city}/align_{source}.log",
    benchmark:
        "benchmarks/{city}/align_{source}.tsv"
    threads: align_threads
    resources:
        mem_mb=align_mem_mb,
        runtime=60,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo align --city {params.city_config} --source {wildcards.source} --out {output}{params.dask}"
        " > {log} 2>&1"


rule tiles:
    input:
        lambda wildcards: f"resources/align/{wildcards.city}/{TILES[wildcards.model]['source']}.zarr",
    output:
        "resources/tiles/{city}/{model}.parquet",
    wildcard_constraints:
        model=one_of(TILES),
    params:
        tiling=lambda wildcards: TILES[wildcards.model][config["preset"]],
        city_config=lambda wildcards: city_file(config, wildcards.city),
        preset=config["preset"],
        seed=config["seed"],
    log:
        "logs/{city}/tiles_{model}.log",
    benchmark:
        "benchmarks/{city}/tiles_{model}.tsv"
    threads: 1
    resources:
        mem_mb=align_mem_mb_tiles,
        runtime=15,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo tiles --city {params.city_config} --model {wildcards.model} --preset {params.preset}"
        " --seed {params.seed} --aligned {input} --out {output} > {log} 2>&1"


rule preview:
    input:
        "resources/align/{city}/{source}.zarr",
    output:
        report(
            "results/{run}/{city}/inputs/{source}.png",
            caption="../report/preview.rst",
            category="Inputs",
            subcategory="{city}",
            labels={"city": "{city}", "source": "{source}"},
        ),
    wildcard_constraints:
        source=one_of(PREVIEWED),
    params:
        city_config=lambda wildcards: city_file(config, wildcards.city),
    log:
        "logs/{city}/preview_{source}_{run}.log",
    benchmark:
        "benchmarks/{city}/preview_{source}_{run}.tsv"
    threads: 1
    resources:
        mem_mb=align_mem_mb,
        runtime=10,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo preview --city {params.city_config} --source {wildcards.source} --aligned {input}"
        " --out {output} > {log} 2>&1"
