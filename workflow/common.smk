import re
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="schemas/config.schema.yaml")


report: "report/workflow.rst"


wildcard_constraints:
    seed=r"\d+",


def get_nam_version():
    """nam_core version, read without importing it; a param of every rule, so upgrades rerun."""
    init = Path(workflow.basedir) / "nam_core" / "__init__.py"
    match = re.search(
        r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", init.read_text(), flags=re.M
    )
    if match is None:
        raise ValueError(f"no __version__ = '...' line in {init}")
    return match.group(1)


NAM_VERSION = get_nam_version()


def out(path):
    """Path of an output of the configured cohort: results/<cohort>/<path>."""
    return f"results/{config['cohort']}/{path}"


def is_demo():
    """Whether the workflow generates and analyses the built-in demo cohort."""
    return config["demo"]["enabled"]


def check_inputs_configured():
    """Without the demo, inputs.bfile and inputs.counts must be set (checked before any job)."""
    if is_demo():
        return
    missing = [key for key in ("bfile", "counts") if not config["inputs"][key]]
    if missing:
        raise ValueError(
            f"config: demo.enabled is false but inputs.{' and inputs.'.join(missing)} "
            "is not set; give the PLINK prefix (inputs.bfile) and the .h5ad (inputs.counts)"
        )
    if re.search(r"\.(bed|bim|fam)$", config["inputs"]["bfile"]):
        raise ValueError(
            f"config: inputs.bfile {config['inputs']['bfile']!r} must be the PLINK prefix "
            f"without extension, e.g. {config['inputs']['bfile'][:-4]!r}"
        )


check_inputs_configured()


def get_bfile():
    """PLINK 1 fileset prefix of the cohort (the demo's, or inputs.bfile)."""
    if is_demo():
        return out("demo_cohort/genotypes")
    return config["inputs"]["bfile"]


def get_plink_files(wildcards=None):
    """The .bed, .bim and .fam of the cohort, as named inputs."""
    prefix = get_bfile()
    return {ext: f"{prefix}.{ext}" for ext in ("bed", "bim", "fam")}


def get_counts():
    """The .h5ad of raw counts of the cohort (the demo's, or inputs.counts)."""
    if is_demo():
        return out("demo_cohort/counts.h5ad")
    return config["inputs"]["counts"]


def get_individual_column():
    """obs column naming each cell's individual (the demo writes 'individual')."""
    return "individual" if is_demo() else config["inputs"]["individual_column"]


def get_demo_settings():
    """Arguments of nam_core.inputs.demo.make_demo_cohort."""
    keys = (
        "n_individuals",
        "n_ancestries",
        "mean_cells",
        "n_snps",
        "fst",
        "seed",
        "library_sdlog",
        "gene_dispersion",
    )
    return {key: config["demo"][key] for key in keys}


def get_restart_fits():
    """One saved fit per configured seed."""
    return [out(f"fit/restarts/seed{seed}.npz") for seed in config["fit"]["seeds"]]


def get_fit_settings():
    """The fit block as nam_core.engine.settings.FitSettings reads it (checked at parse time)."""
    from nam_core.engine.settings import FitSettings

    return FitSettings.from_config(config["fit"], ignore=("seeds",)).as_dict()


def get_figures():
    """Every figure, as PNG and PDF."""
    names = (
        "genotype_scree",
        "genotype_pcs",
        "umap_cell_clusters",
        "composition_heatmap",
        "marker_dotplot",
        "elbo_traces",
    )
    return [out(f"figures/{name}.{ext}") for name in names for ext in ("png", "pdf")]


def get_final_outputs():
    """Inputs of the all target: results, figures and, for the demo, its evaluation."""
    targets = [
        out("cells.h5ad"),
        out("individuals.tsv"),
        out("markers.tsv"),
        out("composition/by_individual_cluster.tsv"),
        out("fit/restarts.tsv"),
        *get_figures(),
    ]
    if is_demo():
        targets.append(out("evaluation.tsv"))
    return targets


def get_preprocess_settings():
    """Arguments of nam_core.inputs.expression.preprocess."""
    keys = (
        "min_genes",
        "min_cells",
        "min_counts",
        "max_pct_mt",
        "n_top_genes",
        "n_pcs",
        "target_sum",
    )
    return {key: config["expression"][key] for key in keys}
