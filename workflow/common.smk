import re
import sys
from pathlib import Path

from snakemake.utils import validate

ROOT = Path(workflow.basedir)
# nam_core from this checkout, installed or not (its dependencies must be importable here)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from nam_core import __version__ as NAM_VERSION  # a param of every rule: upgrades rerun
from nam_core.engine.settings import FitSettings

validate(config, schema="schemas/config.schema.yaml")


report: "report/workflow.rst"


wildcard_constraints:
    seed=r"\d+",


def out(path):
    """Path of an output of the configured cohort: results/<cohort>/<path>."""
    return f"results/{config['cohort']}/{path}"


def choose_data():
    """'demo' or 'inputs': what this run analyses, from demo.enabled and the inputs.

    null chooses by the inputs (both unset: the demo; both set: the cohort); true and false
    insist, and contradicting inputs are an error before any job runs.
    """
    enabled = config["demo"]["enabled"]
    given = [key for key in ("bfile", "counts") if config["inputs"][key]]
    unset = [key for key in ("bfile", "counts") if key not in given]
    if enabled is True and given:
        raise ValueError(
            f"config: demo.enabled is true but inputs.{' and inputs.'.join(given)} is set "
            "too; set demo.enabled to false (or null) to analyse your files, or unset the "
            "inputs to run the demo"
        )
    if (enabled is False and unset) or (enabled is None and len(given) == 1):
        raise ValueError(
            f"config: demo.enabled is {str(enabled).lower() if enabled is not None else 'null'}"
            f" but inputs.{' and inputs.'.join(unset)} is not set; give the PLINK prefix "
            "(inputs.bfile) and the .h5ad (inputs.counts)"
        )
    if given and re.search(r"\.(bed|bim|fam)$", config["inputs"]["bfile"] or ""):
        raise ValueError(
            f"config: inputs.bfile {config['inputs']['bfile']!r} must be the PLINK prefix "
            f"without extension, e.g. {config['inputs']['bfile'][:-4]!r}"
        )
    return "demo" if enabled or not given else "inputs"


DATA = choose_data()


def is_demo():
    """Whether the workflow generates and analyses the built-in demo cohort."""
    return DATA == "demo"


def announce_data():
    """Say on the console which data this run analyses (once, in the main process)."""
    if not workflow.is_main_process:
        return
    if is_demo():
        text = (
            f"analysing the built-in DEMO cohort (simulated data) into results/"
            f"{config['cohort']}/; set inputs.bfile and inputs.counts to analyse your own"
        )
    else:
        text = (
            f"analysing cohort {config['cohort']!r}: genotypes {config['inputs']['bfile']}"
            f".bed/.bim/.fam and counts {config['inputs']['counts']} into results/"
            f"{config['cohort']}/"
        )
    print(f"NAM: {text}", file=sys.stderr)


announce_data()


def check_config_consistency():
    """Checks between keys that the schema cannot express, before any job runs."""
    expression, demo = config["expression"], config["demo"]
    if expression["n_pcs"] > expression["n_top_genes"]:
        raise ValueError(
            f"config: expression.n_pcs ({expression['n_pcs']}) exceeds expression.n_top_genes "
            f"({expression['n_top_genes']}): the PCA runs on the highly variable genes"
        )
    if is_demo() and demo["n_individuals"] < config["genotypes"]["n_pcs"] + 1:
        raise ValueError(
            f"config: genotypes.n_pcs = {config['genotypes']['n_pcs']} needs at least "
            f"{config['genotypes']['n_pcs'] + 1} individuals; demo.n_individuals is "
            f"{demo['n_individuals']}"
        )


check_config_consistency()


def check_device():
    """fit.device against the CUDA devices visible here, when jobs run on this machine."""
    device = config["fit"]["device"]
    if not device.startswith("cuda") or not workflow.local_exec:
        return  # on a cluster the fit job's node is checked when the job starts
    # nam_core.validation imports torch: only when a CUDA device is asked for
    from nam_core.validation import check_device_available

    check_device_available(device, key="fit.device")


check_device()


def check_results_writable():
    """results/<cohort>/ writable (or creatable), before any job runs (nam_core.folders)."""
    if workflow.is_main_process:
        from nam_core.folders import check_writable

        check_writable(out(""))


check_results_writable()


def get_producers(wildcards, input):
    """{input path: rule that writes it} for the inputs made by this workflow (a param, so a
    script can name the rule and the fix when an input is damaged)."""
    producers = {}
    for _, paths in input.items():
        for path in [paths] if isinstance(paths, str) else paths:
            for candidate in workflow.rules:
                if candidate.is_producer(path):
                    producers[str(path)] = candidate.name
    return producers


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


def get_counts_layer():
    """Where the .h5ad holds raw counts: None (X), raw.X, or a layer (the demo's are in X)."""
    if is_demo():
        return None
    return config["inputs"]["counts_layer"]


def get_individual_column():
    """obs column naming each cell's individual (the demo writes 'individual')."""
    return "individual" if is_demo() else config["inputs"]["individual_column"]


def get_demo_settings():
    """Fields of the demo cohort's nam_core.synthetic.base.CohortSpec."""
    keys = (
        "n_individuals",
        "n_ancestries",
        "mean_cells",
        "n_snps",
        "fst",
        "seed",
        "library_sdlog",
        "gene_dispersion",
        "n_pools",
        "pool_shift_sd",
        "pool_confounding",
    )
    return {key: config["demo"][key] for key in keys}


def get_restart_fits():
    """One saved fit per configured seed."""
    return [out(f"fit/restarts/seed{seed}.npz") for seed in config["fit"]["seeds"]]


def coarse_to_fine():
    """Whether restarts see a subsample of cells and the best is refined (fit.coarse_fraction)."""
    return config["fit"].get("coarse_fraction") is not None


def get_selected_fit():
    """Where select_best_fit writes the kept restart: fit/best.npz, or with coarse-to-fine
    restarts fit/best_coarse.npz, which refine_fit refines on all cells into fit/best.npz.
    """
    return out("fit/best_coarse.npz" if coarse_to_fine() else "fit/best.npz")


def get_fit_settings():
    """The fit block as nam_core.engine.settings.FitSettings reads it (checked at parse time)."""
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
        "umap_cell_types",
        "composition_posterior",
        "composition_differences",
        "coclustering",
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
        *get_composition_outputs(),
    ]
    if is_demo():
        targets += [out("evaluation.tsv"), out("composition/demo_check.tsv")]
    if config["ablation"]["enabled"]:
        targets.append(out("ablation/comparison.tsv"))
    return targets


def get_composition_outputs():
    """Tables of the composition analysis, the cell-type names and the partition's uncertainty."""
    return [
        out("composition/posterior.tsv"),
        out("composition/differences.tsv"),
        out("composition/propeller.tsv"),
        out("composition/genotype_association.tsv"),
        out("composition/mantel.tsv"),
        out("composition/propeller_permutation.tsv"),
        out("figures/composition_vs_genetic_distance.png"),
        out("cell_types/names.tsv"),
        out("cell_types/groups.tsv"),
        out("individual_groups/groups.tsv"),
        out("cell_types/atoms.tsv"),
        out("cell_types/marker_permutation.tsv"),
        out("fit/coclustering.tsv"),
        out("fit/alternatives.tsv"),
    ]


def get_marker_table():
    """naming.markers, or the table shipped with the workflow (config/cell_type_markers.tsv).

    A relative path that does not exist in the working directory is read from the workflow's
    folder, so the default works whatever the working directory is.
    """
    path = Path(config["naming"]["markers"] or "config/cell_type_markers.tsv")
    if not path.is_absolute() and not path.exists():
        path = Path(workflow.basedir) / path
    return str(path)


def get_composition_settings():
    """Arguments of nam_core.results.composition.composition_tables."""
    keys = (
        "n_draws",
        "seed",
        "null_log_ratio",
        "transform",
        "lineages",
        "moderate_variance",
    )
    settings = {key: config["composition"].get(key) for key in keys}
    covariates = config["covariates"]
    settings["covariate_types"] = {
        **(covariates.get("columns") or {}),
        **(covariates.get("obs_columns") or {}),
    }
    return settings


def get_composition_permutation_settings():
    """Arguments of nam_core.results.composition.permutation.permutation_table."""
    block = config["composition_permutation"]
    return {
        "n_permutations": block["n_permutations"],
        "seed": block["seed"],
        "transform": config["composition"]["transform"],
    }


def get_permutation_settings():
    """Arguments of nam_core.results.marker_permutation.permutation_test_cells."""
    naming = config["naming"]
    return {
        "n_top": config["markers"]["n_genes"],
        "n_permutations": naming["n_permutations"],
        "seed": naming["seed"],
        "max_cells": naming["max_cells"],
    }


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
        "normalisation",
        "regress_library",
        "keep_counts",
    )
    settings = {key: config["expression"][key] for key in keys}
    if config["expression"].get("batch_key"):
        settings["batch_key"] = config["expression"]["batch_key"]
        settings["harmony"] = config["expression"].get("harmony", {})
    return settings


def get_covariate_settings():
    """The covariates block (id_column, columns, obs_columns, missing)."""
    return dict(config["covariates"])


def get_covariate_file(wildcards=None):
    """inputs.donor_covariates as a named input ({} when unset)."""
    path = config["inputs"].get("donor_covariates")
    return {"covariates": path} if path else {}


def get_data_inputs(wildcards=None):
    """{role: path} of the files the run reads: genotypes, counts, covariates, marker table."""
    inputs = {f"genotypes_{ext}": path for ext, path in get_plink_files().items()}
    inputs["counts"] = get_counts()
    inputs.update(get_covariate_file())
    inputs["markers"] = get_marker_table()
    return inputs


def get_input_stamps(*names):
    """Size and modification time of your input files ``names`` (bed, bim, fam, counts,
    covariates; none for the demo): a param of the rule that reads them first, so a replaced
    input reruns everything made from it, even when the new file is older than the outputs
    (copied with its old date), which Snakemake's time check misses.
    """
    if is_demo():
        return {}
    paths = {**get_plink_files(), "counts": get_counts(), **get_covariate_file()}
    return {
        name: f"{Path(paths[name]).stat().st_size}:{Path(paths[name]).stat().st_mtime_ns}"
        for name in names
        if name in paths and Path(paths[name]).is_file()
    }


def check_inputs_readable():
    """Your input files readable, before any job runs (nam_core.folders); the demo writes its own."""
    if workflow.is_main_process and not is_demo():
        from nam_core.folders import check_readable

        keys = {
            "genotypes_bed": "inputs.bfile (.bed)",
            "genotypes_bim": "inputs.bfile (.bim)",
            "genotypes_fam": "inputs.bfile (.fam)",
            "counts": "inputs.counts",
            "covariates": "inputs.donor_covariates",
            "markers": "naming.markers",
        }
        check_readable(
            {keys.get(role, role): path for role, path in get_data_inputs().items()}
        )


check_inputs_readable()
