# Urban construction land (seed 003, IFCN): train every method, predict the region, evaluate, publish.
# Each method is its own train and predict job, so a cluster runs them side by side on GPUs.


rule urban_train:
    input:
        tiles="resources/tiles/{city}/urban.parquet",
        viirs="resources/align/{city}/viirs.zarr",
        labels="resources/align/{city}/urban_labels.zarr",
        weights=pretrained_inputs,
    output:
        "resources/{run}/urban/{city}/{method}/model.pt",
    wildcard_constraints:
        method=one_of(URBAN_METHODS),
    params:
        hyperparameters=lambda wildcards: preset_of("URBAN_TRAIN") if wildcards.method in URBAN_DEEP else {},
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        vgg16=vgg16_arg,
        launcher=train_launcher,
    log:
        "logs/{city}/urban_train_{method}_{run}.log",
    benchmark:
        "benchmarks/{city}/urban_train_{method}_{run}.tsv"
    threads: train_threads
    resources:
        mem_mb=urban_mem_mb,
        runtime=urban_runtime,
        gpu=urban_gpu,
    conda:
        URBANEO_ENV
    shell:
        "{params.launcher} urban train --method {wildcards.method} --aligned resources/align/{wildcards.city}"
        " --tiles {input.tiles} --preset {params.preset} --seed {params.seed}{params.max_epochs}{params.vgg16}"
        " --threads {threads} --no-progress --out {output} > {log} 2>&1"


# One job predicts every method: loading the region once costs more than predicting it here.
rule urban_predict:
    input:
        models=expand("resources/{{run}}/urban/{{city}}/{method}/model.pt", method=URBAN_METHODS),
        tiles="resources/tiles/{city}/urban.parquet",
        viirs="resources/align/{city}/viirs.zarr",
        labels="resources/align/{city}/urban_labels.zarr",
    output:
        masks=expand("resources/{{run}}/urban/{{city}}/{method}/mask.tif", method=URBAN_METHODS),
        chips=expand("resources/{{run}}/urban/{{city}}/{method}/test_chips.npy", method=URBAN_METHODS),
    log:
        "logs/{city}/urban_predict_{run}.log",
    benchmark:
        "benchmarks/{city}/urban_predict_{run}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=urban_mem_mb,
        runtime=60,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo urban predict --predictions resources/{wildcards.run}/urban/{wildcards.city}"
        " --aligned resources/align/{wildcards.city}"
        " --tiles {input.tiles} --threads {threads} --no-progress > {log} 2>&1"


rule urban_evaluate:
    input:
        urban_predictions,
        tiles="resources/tiles/{city}/urban.parquet",
    output:
        metrics="results/{run}/{city}/urban/metrics.json",
        table=report(
            "results/{run}/{city}/urban/metrics.png",
            caption="../report/urban.rst",
            category="Urban construction land",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Tables 2-4"},
        ),
        figure=report(
            "results/{run}/{city}/urban/methods.png",
            caption="../report/urban.rst",
            category="Urban construction land",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 6: every method"},
        ),
    params:
        preset=config["preset"],
    log:
        "logs/{city}/urban_evaluate_{run}.log",
    benchmark:
        "benchmarks/{city}/urban_evaluate_{run}.tsv"
    threads: 1
    resources:
        mem_mb=urban_mem_mb,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo urban evaluate --aligned resources/align/{wildcards.city} --tiles {input.tiles}"
        " --preset {params.preset} --predictions resources/{wildcards.run}/urban/{wildcards.city}"
        " --metrics {output.metrics} --table {output.table} --figure {output.figure} > {log} 2>&1"


rule urban_publish:
    input:
        urban_predictions,
        "results/{run}/{city}/urban/metrics.json",
        "results/{run}/{city}/urban/metrics.png",
        "results/{run}/{city}/urban/methods.png",
        "results/{run}/{city}/inputs/items.json",
    output:
        item="results/{run}/{city}/urban/item.txt",
        mask="results/{run}/{city}/urban/urban_mask.tif",
        polygons="results/{run}/{city}/urban/urban_polygons.gpkg",
        overlay=report(
            "results/{run}/{city}/urban/urban_overlay.png",
            caption="../report/urban.rst",
            category="Urban construction land",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 8: mask on night lights"},
        ),
        loss=report(
            "results/{run}/{city}/urban/loss.png",
            caption="../report/urban.rst",
            category="Urban construction land",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "training loss per epoch"},
        ),
    params:
        hyperparameters=preset_of("URBAN_TRAIN"),
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        vgg16=vgg16_arg,
        period=lambda wildcards: [min(CITIES[wildcards.city]["years"]), max(CITIES[wildcards.city]["years"])],
    log:
        "logs/{city}/urban_publish_{run}.log",
    benchmark:
        "benchmarks/{city}/urban_publish_{run}.tsv"
    threads: 1
    resources:
        mem_mb=urban_mem_mb,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo urban publish --city {wildcards.city} --run-dir results/{wildcards.run}"
        " --aligned resources/align/{wildcards.city} --preset {params.preset} --seed {params.seed}"
        "{params.max_epochs}{params.vgg16} --predictions resources/{wildcards.run}/urban/{wildcards.city}"
        " --period {params.period} --out {output.item} > {log} 2>&1"
