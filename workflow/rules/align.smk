# Align: each source of a city on the grids it is used on (urbaneo.grid.CityGrids), as Zarr.


rule align_source:
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
    log:
        "logs/{city}/align_{source}.log",
    benchmark:
        "benchmarks/{city}/align_{source}.tsv"
    threads: 1
    resources:
        mem_mb=align_mem_mb,
        runtime=60,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo align --city {params.city_config} --source {wildcards.source} --out {output} > {log} 2>&1"
