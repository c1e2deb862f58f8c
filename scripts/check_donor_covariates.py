from _common import logged, write_tsv

from nam_core.inputs.cohort import normalise_ids
from nam_core.inputs.covariates import (
    donor_covariates,
    obs_covariates,
    read_donor_covariates,
    read_obs_columns,
)
from nam_core.inputs.genotypes.plink import read_fam


def check(path_bfile, path_counts, path_covariates, path_out, individual_column: str,
          settings: dict):
    """The cohort's donor covariates (TSV and .h5ad obs columns), checked, one row per donor.

    The donors are the .fam IIDs with cells in the .h5ad; ``settings`` is the config's
    covariates block (id_column, columns, obs_columns, missing).
    """
    fam = normalise_ids(read_fam(path_bfile)["iid"], "IIDs", f"{path_bfile}.fam")
    obs = read_obs_columns(path_counts, [individual_column, *settings.get("obs_columns", {})])
    cells = set(normalise_ids(obs[individual_column], "individuals", str(path_counts)))
    donors = [iid for iid in fam if iid in cells]
    tsv = None
    if path_covariates:
        tsv = read_donor_covariates(path_covariates, settings["id_column"], settings["columns"])
    elif settings.get("columns"):
        raise ValueError("config: covariates.columns is set but inputs.donor_covariates is not")
    from_obs = None
    if settings.get("obs_columns"):
        from_obs = obs_covariates(obs, individual_column, settings["obs_columns"], str(path_counts))
    table = donor_covariates(donors, tsv, str(path_covariates), from_obs, str(path_counts),
                             settings.get("missing", "error"))
    write_tsv(table, path_out, missing={"*": "a covariate missing from the donor file "
                                           "(kept empty; covariates.missing: drop)"})
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        check(snakemake.params.bfile, snakemake.input.counts, snakemake.params.covariates,
              snakemake.output.table, snakemake.params.individual_column,
              snakemake.params.settings)
