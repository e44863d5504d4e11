# Generated cities: write a city's raw inputs in the real formats (resources/raw/{city}/).


rule synth:
    output:
        directory("resources/raw/{city}"),
    wildcard_constraints:
        city=one_of(name for name, city in CITIES.items() if is_synthetic(city)),
    params:
        seed=synth_param("seed"),
        profile=synth_param("profile"),
        city_config=lambda wildcards: city_file(config, wildcards.city),
        # Not on the command line (the CLI reads them from the city file), but
        # listed so that a changed AOI, year list or buffer regenerates the city.
        aoi=lambda wildcards: list(aoi_bounds(CITIES[wildcards.city])),
        years=city_param("years"),
        region_buffer_km=city_param("region_buffer_km"),
    log:
        "logs/{city}/synth.log",
    benchmark:
        "benchmarks/{city}/synth.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=lambda wildcards: 5 if CITIES[wildcards.city]["synthetic"]["profile"] == "tiny" else 30,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo synth {output} --seed {params.seed} --profile {params.profile}"
        " --city-config {params.city_config} > {log} 2>&1"
