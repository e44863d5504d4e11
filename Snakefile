# urbaneo: EO + OSM data of any city -> NPP, LCZ, urban-land and vegetation-plan products.
# Usage: snakemake --cores N [--config cities=[NAME,...]] [ingested|aligned|npp|lcz|urban|vegplan|ablations|all]
# Local defaults: --workflow-profile workflow/profiles/default

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


envvars:
    "PATH",  # jobs find the urbaneo CLI through it (see common.smk)


include: "workflow/rules/common.smk"


# A bad config or city file stops here with one `urbaneo: <file>: <key>: <problem>` line.
CITIES = validated_cities(config)

wildcard_constraints:
    city=one_of(CITIES),


include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/publish.smk"
include: "workflow/rules/urban.smk"
include: "workflow/rules/npp.smk"
include: "workflow/rules/lcz.smk"
include: "workflow/rules/vegplan.smk"
include: "workflow/rules/targets.smk"


# Only the wired stages; the others join as they are implemented.
rule all:
    input:
        rules.ingested.input,
        rules.aligned.input,
        preview_outputs,
        expand("results/{run}/{city}/inputs/items.json", run=config["run"], city=CITIES),
        expand("results/{run}/config.yaml", run=config["run"]),
        product_outputs("urban", "results/{run}/{city}/urban/item.txt"),
        product_outputs("npp", "results/{run}/{city}/npp/item.txt"),
        product_outputs("lcz", "results/{run}/{city}/lcz/item.txt"),
        product_outputs("vegplan", "results/{run}/{city}/vegplan/item.txt"),
    default_target: True
