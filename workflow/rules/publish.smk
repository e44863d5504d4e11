# Publish: what a run hands to users, in results/{run}/: the STAC catalog (raw inputs registered
# with their checksums, products as they are built) and the run's resolved configuration.


rule publish_inputs:
    input:
        "resources/ingest/{city}/inventory.json",
    output:
        "results/{run}/{city}/inputs/items.json",
    params:
        period=lambda wildcards: [min(CITIES[wildcards.city]["years"]), max(CITIES[wildcards.city]["years"])],
    log:
        "logs/{city}/publish_inputs_{run}.log",
    benchmark:
        "benchmarks/{city}/publish_inputs_{run}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo publish-inputs --city {wildcards.city} --inventory {input} --run-dir results/{wildcards.run}"
        " --period {params.period} --out {output} > {log} 2>&1"


rule snapshot_config:
    output:
        "results/{run}/config.yaml",
    params:
        config=lambda wildcards: {k: v for k, v in config.items()},  # any config change rewrites it
        cities=lambda wildcards: {name: dict(city) for name, city in CITIES.items()},
        names=lambda wildcards: " ".join(CITIES),
    log:
        "logs/snapshot_config_{run}.log",
    benchmark:
        "benchmarks/snapshot_config_{run}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo snapshot-config --cities {params.names} --out {output} > {log} 2>&1"
