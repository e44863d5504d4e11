# NPP / carbon storage (seed 000, CiSL-NPP): two st-MAEs (RGB, false colour) per city, then the maps
# (cloud gaps filled, PAR forecast by the RNN, eqs. 5-8), their evaluation and the published product.


rule npp_train:
    input:
        npp_aligned,
        weights=mae_weights_input,
    output:
        "resources/{run}/npp/{city}/mae_{kind}.pt",
    wildcard_constraints:
        kind="rgb|false_colour",
    params:
        hyperparameters=preset_of("ST_MAE"),
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        mae=mae_arg,
        launcher=train_launcher,
    log:
        "logs/{city}/npp_train_{kind}_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_train_{kind}_{run}.tsv"
    threads: train_threads
    resources:
        mem_mb=2000,
        runtime=lambda wildcards: 24 * 60 if config["preset"] != "demo" else 60,
        gpu=config["gpus"],
    conda:
        URBANEO_ENV
    shell:
        "{params.launcher} npp train --kind {wildcards.kind} --aligned resources/align/{wildcards.city}{params.osm}"
        " --preset {params.preset} --seed {params.seed}{params.max_epochs}{params.mae}"
        " --threads {threads} --no-progress --out {output} > {log} 2>&1"


rule npp_predict:
    input:
        npp_aligned,
        models=expand("resources/{{run}}/npp/{{city}}/mae_{kind}.pt", kind=NPP_KINDS),
    output:
        "resources/{run}/npp/{city}/maps.nc",
    params:
        hyperparameters=preset_of("PAR_RNN"),
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
    log:
        "logs/{city}/npp_predict_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_predict_{run}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo npp predict --aligned resources/align/{wildcards.city}{params.osm} --models resources/{wildcards.run}/npp/{wildcards.city}"
        " --preset {params.preset} --seed {params.seed}{params.max_epochs} --threads {threads} --no-progress"
        " --out {output} > {log} 2>&1"


rule npp_evaluate:
    input:
        npp_aligned,
        maps="resources/{run}/npp/{city}/maps.nc",
        models=expand("resources/{{run}}/npp/{{city}}/mae_{kind}.pt", kind=NPP_KINDS),
        benchmarks=expand("benchmarks/{{city}}/npp_train_{kind}_{{run}}.tsv", kind=NPP_KINDS),
    output:
        metrics="results/{run}/{city}/npp/metrics.json",
        timings="results/{run}/{city}/npp/timings.json",
        table=report(
            "results/{run}/{city}/npp/metrics.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "held-out year vs baselines"},
        ),
        figure=report(
            "results/{run}/{city}/npp/methods.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "every method on the reference grid"},
        ),
    params:
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        price=config["gpu_hour_price"],
    log:
        "logs/{city}/npp_evaluate_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_evaluate_{run}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo npp evaluate --aligned resources/align/{wildcards.city}{params.osm} --maps {input.maps}"
        " --models resources/{wildcards.run}/npp/{wildcards.city} --preset {params.preset} --seed {params.seed}"
        "{params.max_epochs} --price {params.price} --benchmarks {input.benchmarks}"
        " --metrics {output.metrics} --timings {output.timings} --table {output.table} --figure {output.figure}"
        " > {log} 2>&1"


rule npp_publish:
    input:
        npp_aligned,
        maps="resources/{run}/npp/{city}/maps.nc",
        models=expand("resources/{{run}}/npp/{{city}}/mae_{kind}.pt", kind=NPP_KINDS),
        evaluation=multiext("results/{run}/{city}/npp/", "metrics.json", "metrics.png", "methods.png",
                            "longterm.json", "longterm.png"),
        inputs="results/{run}/{city}/inputs/items.json",
    output:
        item="results/{run}/{city}/npp/item.txt",
        quicklook=report(
            "results/{run}/{city}/npp/npp_annual.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "NPP of the last year"},
        ),
        trend=report(
            "results/{run}/{city}/npp/npp_trend.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "NPP trend"},
        ),
        loss=report(
            "results/{run}/{city}/npp/loss.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "st-MAE training loss per epoch"},
        ),
    params:
        hyperparameters=preset_of("ST_MAE", "PAR_RNN"),
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        mae=mae_arg,
        price=config["gpu_hour_price"],
        period=lambda wildcards: [min(CITIES[wildcards.city]["years"]), max(CITIES[wildcards.city]["years"])],
    log:
        "logs/{city}/npp_publish_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_publish_{run}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo npp publish --city {wildcards.city} --run-dir results/{wildcards.run}"
        " --aligned resources/align/{wildcards.city}{params.osm} --maps {input.maps}"
        " --models resources/{wildcards.run}/npp/{wildcards.city} --preset {params.preset} --seed {params.seed}"
        "{params.max_epochs}{params.mae} --price {params.price} --period {params.period} --out {output.item} > {log} 2>&1"


# Not in `all`: a study of st-MAE's settings (`snakemake ablations`), minutes in `demo`.
rule npp_ablation:
    input:
        npp_aligned,
        weights=mae_weights_input,
    output:
        metrics="results/{run}/{city}/npp/ablation.json",
        table=report(
            "results/{run}/{city}/npp/ablation.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "st-MAE ablation (Table 2)"},
        ),
    params:
        hyperparameters=preset_of("ST_MAE"),
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        mae=mae_arg,
    log:
        "logs/{city}/npp_ablation_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_ablation_{run}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=2000,
        runtime=lambda wildcards: 7 * 24 * 60 if config["preset"] != "demo" else 120,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo npp ablation --aligned resources/align/{wildcards.city}{params.osm} --preset {params.preset}"
        " --seed {params.seed}{params.max_epochs}{params.mae} --threads {threads} --no-progress"
        " --metrics {output.metrics} --table {output.table} > {log} 2>&1"


# Seed 000's long-term protocol: models trained up to each earlier year estimate the later years.
rule npp_longterm:
    input:
        npp_aligned,
        models=expand("resources/{{run}}/npp/{{city}}/mae_{kind}.pt", kind=NPP_KINDS),
        weights=mae_weights_input,
    output:
        metrics="results/{run}/{city}/npp/longterm.json",
        figure=report(
            "results/{run}/{city}/npp/longterm.png",
            caption="../report/npp.rst",
            category="NPP (carbon storage)",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "long-term protocol (Fig. 14)"},
        ),
    params:
        hyperparameters=preset_of("ST_MAE", "PAR_RNN"),
        osm=npp_osm_arg,
        preset=config["preset"],
        seed=config["seed"],
        max_epochs=max_epochs_arg,
        mae=mae_arg,
    log:
        "logs/{city}/npp_longterm_{run}.log",
    benchmark:
        "benchmarks/{city}/npp_longterm_{run}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=3000,
        runtime=lambda wildcards: 7 * 24 * 60 if config["preset"] != "demo" else 60,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo npp longterm --aligned resources/align/{wildcards.city}{params.osm}"
        " --models resources/{wildcards.run}/npp/{wildcards.city} --preset {params.preset} --seed {params.seed}"
        "{params.max_epochs}{params.mae} --threads {threads} --no-progress"
        " --metrics {output.metrics} --figure {output.figure} > {log} 2>&1"
