# Ingest: the register of every raw input file (size + sha256) that later artifacts cite, then
# every source opened by its reader, so a bad file stops the run before any long job.


rule inventory:
    input:
        raw_inputs,
    output:
        "resources/ingest/{city}/inventory.json",
    params:
        city_config=lambda wildcards: city_file(config, wildcards.city),
        inputs=city_param("inputs"),  # a changed glob reruns the inventory
    log:
        "logs/{city}/inventory.log",
    benchmark:
        "benchmarks/{city}/inventory.tsv"
    threads: config["threads"]
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo inventory --city {params.city_config} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule ingest:
    input:
        raw_inputs,
    output:
        "resources/ingest/{city}/{source}.json",
    wildcard_constraints:
        source=one_of(INGESTED),
    params:
        city_config=lambda wildcards: city_file(config, wildcards.city),
        pattern=lambda wildcards: CITIES[wildcards.city]["inputs"][wildcards.source],
    log:
        "logs/{city}/ingest_{source}.log",
    benchmark:
        "benchmarks/{city}/ingest_{source}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo ingest --city {params.city_config} --source {wildcards.source} --out {output} > {log} 2>&1"
