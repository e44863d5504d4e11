# Ingest, step 1: the register of every raw input file (size + sha256) that later
# artifacts cite. The per-source readers come after it.


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
