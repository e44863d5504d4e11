# Local Climate Zones (seed 002, SU-Net): train on the city's VHR scenes, map the city, evaluate
# (Table 2 beside a random forest), publish.


rule lcz_train:
    input:
        tiles="resources/tiles/{city}/lcz.parquet",
        gf2="resources/align/{city}/gf2.zarr",
        labels="resources/align/{city}/lcz_labels.zarr",
        weights=swin_weights_input,
    output:
        "resources/{run}/lcz/{city}/model.pt",
    params:
        hyperparameters=preset_of("SU_NET"),
        args=lcz_args,
        launcher=train_launcher,
    log:
        "logs/{city}/lcz_train_{run}.log",
    benchmark:
        "benchmarks/{city}/lcz_train_{run}.tsv"
    threads: train_threads
    resources:
        mem_mb=lcz_mem_mb,
        runtime=lambda wildcards: 24 * 60 if config["preset"] != "demo" else 60,
        gpu=config["gpus"],
    conda:
        URBANEO_ENV
    shell:
        "{params.launcher} lcz train --aligned resources/align/{wildcards.city} --tiles {input.tiles}{params.args}"
        " --threads {threads} --no-progress --out {output} > {log} 2>&1"


rule lcz_predict:
    input:
        model="resources/{run}/lcz/{city}/model.pt",
        gf2="resources/align/{city}/gf2.zarr",
    output:
        "resources/{run}/lcz/{city}/lcz.tif",
        "resources/{run}/lcz/{city}/abundance.tif",
    log:
        "logs/{city}/lcz_predict_{run}.log",
    benchmark:
        "benchmarks/{city}/lcz_predict_{run}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=lcz_mem_mb,
        runtime=60,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo lcz predict --model {input.model} --aligned resources/align/{wildcards.city}"
        " --threads {threads} --no-progress > {log} 2>&1"


rule lcz_evaluate:
    input:
        model="resources/{run}/lcz/{city}/model.pt",
        map="resources/{run}/lcz/{city}/lcz.tif",
        tiles="resources/tiles/{city}/lcz.parquet",
        gf2="resources/align/{city}/gf2.zarr",
        labels="resources/align/{city}/lcz_labels.zarr",
    output:
        metrics="results/{run}/{city}/lcz/metrics.json",
        table=report(
            "results/{run}/{city}/lcz/table.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Table 2: SU-Net and a random forest"},
        ),
        confusion=report(
            "results/{run}/{city}/lcz/confusion.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 4: pure scenes, PSC-Net"},
        ),
        pseudo=report(
            "results/{run}/{city}/lcz/pseudo_confusion.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 5: pure scenes, MSU-Net"},
        ),
        baseline="results/{run}/{city}/lcz/baseline_confusion.png",
    params:
        seed=config["seed"],
    log:
        "logs/{city}/lcz_evaluate_{run}.log",
    benchmark:
        "benchmarks/{city}/lcz_evaluate_{run}.tsv"
    threads: 1
    resources:
        mem_mb=lcz_mem_mb,
        runtime=30,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo lcz evaluate --model {input.model} --aligned resources/align/{wildcards.city} --tiles {input.tiles}"
        " --seed {params.seed} --metrics {output.metrics} --threads {threads} --no-progress > {log} 2>&1"


rule lcz_publish:
    input:
        model="resources/{run}/lcz/{city}/model.pt",
        maps=multiext("resources/{run}/lcz/{city}/", "lcz.tif", "abundance.tif"),
        evaluation=multiext("results/{run}/{city}/lcz/", "metrics.json", "table.png", "confusion.png",
                            "pseudo_confusion.png", "baseline_confusion.png"),
        inputs="results/{run}/{city}/inputs/items.json",
    output:
        item="results/{run}/{city}/lcz/item.txt",
        quicklook=report(
            "results/{run}/{city}/lcz/lcz.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "LCZ map"},
        ),
        abundance=report(
            "results/{run}/{city}/lcz/abundance.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "abundances"},
        ),
        loss=report(
            "results/{run}/{city}/lcz/loss.png",
            caption="../report/lcz.rst",
            category="Local Climate Zones",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "SU-Net training and validation loss per epoch"},
        ),
    params:
        hyperparameters=preset_of("SU_NET"),
        args=lcz_args,
        period=lambda wildcards: [min(CITIES[wildcards.city]["years"]), max(CITIES[wildcards.city]["years"])],
    log:
        "logs/{city}/lcz_publish_{run}.log",
    benchmark:
        "benchmarks/{city}/lcz_publish_{run}.tsv"
    threads: 1
    resources:
        mem_mb=lcz_mem_mb,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo lcz publish --city {wildcards.city} --run-dir results/{wildcards.run} --model {input.model}"
        "{params.args} --period {params.period} --out {output.item} > {log} 2>&1"
