import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


sys.path.insert(0, workflow.basedir)  # nam_core from this checkout
from nam_core.io import read_yaml_config

# A missing or unparsable config/config.yaml is named, with the line and the fix
if not workflow.overwrite_configfiles or Path("config/config.yaml").exists():
    read_yaml_config("config/config.yaml", default_of="snakemake")


configfile: "config/config.yaml"


include: "workflow/common.smk"
include: "workflow/demo.smk"
include: "workflow/genotypes.smk"
include: "workflow/expression.smk"
include: "workflow/fit.smk"
include: "workflow/figures.smk"
include: "workflow/covariates.smk"
include: "workflow/composition.smk"
include: "workflow/donor_distance.smk"
include: "workflow/simulation.smk"
include: "workflow/checks.smk"
include: "workflow/summary.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
        out("covariates/donors.tsv"),
        out("summary.md"),
        out("manifest.json"),
