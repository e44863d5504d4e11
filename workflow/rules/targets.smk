# User-facing targets (`snakemake <target>`), each over every city in config["cities"].


rule ingest:
    input:
        expand("resources/ingest/{city}/inventory.json", city=CITIES),
        ingest_outputs,


rule align:
    input:
        align_outputs,
        tiles_outputs,


# Stages not wired yet: they check that each city has what the product needs,
# then stop with one line instead of pretending to have made anything.
rule npp:
    input:
        checked_outputs("npp", "results/{run}/{city}/npp/item.txt"),


rule lcz:
    input:
        checked_outputs("lcz", "results/{run}/{city}/lcz/item.txt"),


rule urban:
    input:
        checked_outputs("urban", "results/{run}/{city}/urban/item.txt"),


rule vegplan:
    input:
        not_implemented("vegplan"),


rule npp_ablation:
    input:
        checked_outputs("npp", "results/{run}/{city}/npp/ablation.json"),
