# User-facing targets (`snakemake <target>`), each over every city in config["cities"].


rule ingested:
    input:
        expand("resources/ingest/{city}/inventory.json", city=CITIES),
        ingest_outputs,


rule aligned:
    input:
        align_outputs,
        tiles_outputs,


# Product targets: each checks that every requested city has what the product needs (one line
# naming the missing input otherwise), then asks for the product's published item.
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
        checked_outputs("vegplan", "results/{run}/{city}/vegplan/item.txt"),


rule ablations:
    input:
        checked_outputs("npp", "results/{run}/{city}/npp/ablation.json"),
