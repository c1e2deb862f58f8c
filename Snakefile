from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/common.smk"
include: "workflow/demo.smk"
include: "workflow/genotypes.smk"
include: "workflow/expression.smk"
include: "workflow/fit.smk"
include: "workflow/figures.smk"
include: "workflow/covariates.smk"
include: "workflow/composition.smk"
include: "workflow/simulation.smk"
include: "workflow/checks.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
        out("covariates/donors.tsv"),
