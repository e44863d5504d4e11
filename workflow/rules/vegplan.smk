# Vegetation configuration plan (seed 001, EcoDeep-Green): the planning-grid site, the CNN-GNN
# features and their proxy task, one DQN per state representation, the plan, the comparison
# with the baselines (Tables 2-4, Pareto fronts, robustness), publication.


rule vegplan_site:
    input:
        aligned=vegplan_aligned,
        species="resources/ingest/{city}/species.json",
        products=vegplan_products,
    output:
        "resources/{run}/vegplan/{city}/site.nc",
    params:
        city_config=lambda wildcards: city_file(config, wildcards.city),
        products=vegplan_product_args,
    log:
        "logs/{city}/vegplan_site_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_site_{run}.tsv"
    threads: 1
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan site --city {params.city_config} --aligned resources/align/{wildcards.city}"
        "{params.products} --out {output} > {log} 2>&1"


rule vegplan_train:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        tiles="resources/tiles/{city}/vegplan.parquet",
    output:
        model="resources/{run}/vegplan/{city}/features.pt",
        timings="resources/{run}/vegplan/{city}/features_timings.json",
    params:
        hyperparameters=preset_of("ECODEEP"),
        args=vegplan_train_args,
    log:
        "logs/{city}/vegplan_train_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_train_{run}.tsv"
    threads: train_threads
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=lambda wildcards: 24 * 60 if config["preset"] != "demo" else 30,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan train --site {input.site} --tiles {input.tiles}{params.args} --threads {threads}"
        " --no-progress --out {output.model} > {log} 2>&1"


rule vegplan_agent:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        features="resources/{run}/vegplan/{city}/features.pt",
    output:
        model="resources/{run}/vegplan/{city}/agent_{agent}.pt",
        timings="resources/{run}/vegplan/{city}/agent_{agent}_timings.json",
    wildcard_constraints:
        agent=one_of(VEGPLAN_AGENTS),
    params:
        hyperparameters=preset_of("ECODEEP"),
        args=vegplan_train_args,
        settings=vegplan_settings_args,
    log:
        "logs/{city}/vegplan_agent_{agent}_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_agent_{agent}_{run}.tsv"
    threads: train_threads
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=lambda wildcards: 24 * 60 if config["preset"] != "demo" else 30,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan agent --site {input.site} --features {input.features} --agent {wildcards.agent}"
        "{params.args}{params.settings} --threads {threads} --no-progress --out {output.model} > {log} 2>&1"


rule vegplan_plan:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        features="resources/{run}/vegplan/{city}/features.pt",
        agent="resources/{run}/vegplan/{city}/agent_cnn_gnn_drl.pt",
    output:
        plan="resources/{run}/vegplan/{city}/plan.tif",
        vector="resources/{run}/vegplan/{city}/plan.geojson",
    params:
        settings=vegplan_settings_args,
    log:
        "logs/{city}/vegplan_plan_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_plan_{run}.tsv"
    threads: 1
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=20,
        gpu=1,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan plan --site {input.site} --features {input.features} --agent {input.agent}"
        "{params.settings} --out {output.plan} > {log} 2>&1"


rule vegplan_evaluate:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        features="resources/{run}/vegplan/{city}/features.pt",
        agents=expand("resources/{{run}}/vegplan/{{city}}/agent_{agent}{suffix}", agent=VEGPLAN_AGENTS,
                      suffix=(".pt", "_timings.json")),
        timings="resources/{run}/vegplan/{city}/features_timings.json",
    output:
        metrics="results/{run}/{city}/vegplan/metrics.json",
        timings="results/{run}/{city}/vegplan/timings.json",
        table=report(
            "results/{run}/{city}/vegplan/table.png",
            caption="../report/vegplan.rst",
            category="Vegetation plan",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Table 2: methods compared"},
        ),
        pareto=report(
            "results/{run}/{city}/vegplan/pareto.png",
            caption="../report/vegplan.rst",
            category="Vegetation plan",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 2: Pareto fronts"},
        ),
    params:
        seed=config["seed"],
        settings=vegplan_settings_args,
    log:
        "logs/{city}/vegplan_evaluate_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_evaluate_{run}.tsv"
    threads: 1
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=60,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan evaluate --site {input.site} --features {input.features}"
        " --agents resources/{wildcards.run}/vegplan/{wildcards.city} --seed {params.seed}{params.settings}"
        " --metrics {output.metrics} --threads {threads} --no-progress > {log} 2>&1"


rule vegplan_robustness:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        features="resources/{run}/vegplan/{city}/features.pt",
        agents=expand("resources/{{run}}/vegplan/{{city}}/agent_{agent}{suffix}", agent=VEGPLAN_AGENTS,
                      suffix=(".pt", "_timings.json")),
    output:
        robustness="results/{run}/{city}/vegplan/robustness.json",
        figure=report(
            "results/{run}/{city}/vegplan/robustness.png",
            caption="../report/vegplan.rst",
            category="Vegetation plan",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "Fig. 4: robustness"},
        ),
    params:
        seed=config["seed"],
        settings=vegplan_settings_args,
    log:
        "logs/{city}/vegplan_robustness_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_robustness_{run}.tsv"
    threads: 1
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=60,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan robustness --site {input.site} --features {input.features}"
        " --agents resources/{wildcards.run}/vegplan/{wildcards.city} --seed {params.seed}"
        "{params.settings} --out {output.robustness} --threads {threads} --no-progress > {log} 2>&1"


rule vegplan_publish:
    input:
        site="resources/{run}/vegplan/{city}/site.nc",
        features="resources/{run}/vegplan/{city}/features.pt",
        agent="resources/{run}/vegplan/{city}/agent_cnn_gnn_drl.pt",
        plan=multiext("resources/{run}/vegplan/{city}/plan", ".tif", ".geojson"),
        evaluation=multiext("results/{run}/{city}/vegplan/", "metrics.json", "table.png", "pareto.png",
                            "robustness.json", "robustness.png"),
        inputs="results/{run}/{city}/inputs/items.json",
    output:
        item="results/{run}/{city}/vegplan/item.txt",
        quicklook=report(
            "results/{run}/{city}/vegplan/plan.png",
            caption="../report/vegplan.rst",
            category="Vegetation plan",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "the plan"},
        ),
        loss=report(
            "results/{run}/{city}/vegplan/loss.png",
            caption="../report/vegplan.rst",
            category="Vegetation plan",
            subcategory="{city}",
            labels={"city": "{city}", "figure": "suitability models: loss per epoch"},
        ),
    params:
        hyperparameters=preset_of("ECODEEP"),
        args=vegplan_train_args,
        settings=vegplan_settings_args,
        period=lambda wildcards: [min(CITIES[wildcards.city]["years"]), max(CITIES[wildcards.city]["years"])],
    log:
        "logs/{city}/vegplan_publish_{run}.log",
    benchmark:
        "benchmarks/{city}/vegplan_publish_{run}.tsv"
    threads: 1
    resources:
        mem_mb=vegplan_mem_mb,
        runtime=20,
    conda:
        URBANEO_ENV
    shell:
        "urbaneo vegplan publish --city {wildcards.city} --run-dir results/{wildcards.run} --site {input.site}"
        " --features {input.features} --agent {input.agent}{params.args}{params.settings}"
        " --period {params.period} --out {output.item} > {log} 2>&1"
