from _common import logged, read_atom_to_group, read_cell_type_names, read_tsv, write_tsv

from nam_core import NAM
from nam_core.inputs.cohort import normalise_ids
from nam_core.inputs.fit_inputs import read_fit_inputs
from nam_core.inputs.genotypes.plink import read_fam
from nam_core.results.composition import composition_tables
from nam_core.results.composition.donors import donor_shares_long, donor_table, plink_traits

NOT_APPLICABLE = {
    "prop_a": "the omnibus row (contrast all) compares every group at once",
    "prop_b": "the omnibus row (contrast all) compares every group at once",
    "estimate": "the omnibus row (term all) has no single coefficient",
    "statistic": "a contrast with fewer than two individuals on a side is not tested",
    "p_value": "a contrast with fewer than two individuals on a side is not tested",
    "fdr": "a contrast with fewer than two individuals on a side is not tested",
    "beta": "the joint test of the genotype PCs (term all) has no single coefficient",
    "se": "the joint test of the genotype PCs (term all) has no single coefficient",
    "t": "the joint test of the genotype PCs (term all) is an F-test",
    "p": "a trait with too few donors for its model is not tested",
    "r2": "a trait with too few donors for its model is not tested",
}
#: Donor tables: a donor without cells, or without a value of a covariate, has no value there.
DONOR_MISSING = {"*": "a donor without cells (or without that covariate) has no value"}
DONOR_TABLES = ("traits", "donors", "donor_shares_long")


def summarise(path_fit, path_counts, path_individuals, path_inputs, path_names, paths_out: dict,
              settings: dict, path_groups=None, path_type_names=None, path_covariates=None,
              path_fam=None, path_individual_groups=None):
    """Posterior composition; differences and tests between genotype-only groups.

    Given cell_types/groups.tsv and the types' names, the tables keyed without suffix are per
    cell type (a type's share is the sum of its atoms') and those keyed ``<key>_atoms`` per atom.
    The tests adjust for the covariates of ``path_covariates`` (covariates/donors.tsv). Given
    ``path_fam`` (the cohort's .fam, for the FIDs), the donor tables (keys traits, donors,
    donor_shares_long) are written too, per cell type when the types are given. Given
    ``path_individual_groups`` (individual_groups/groups.tsv), the tests compare the individual
    groups rather than the clusters.
    """
    model, counts = NAM.load(path_fit), read_tsv(path_counts)
    individuals, inputs = read_tsv(path_individuals), read_fit_inputs(path_inputs)
    if path_covariates is not None:
        settings = {**settings, "covariates": read_tsv(path_covariates)}
    if path_individual_groups is not None:
        joined = read_tsv(path_individual_groups)
        settings = {**settings, "cluster_groups": dict(zip(joined["cluster"], joined["group"],
                                                           strict=True))}
    names = read_cell_type_names(path_names)
    atoms = composition_tables(model, counts, individuals, names, inputs=inputs, **settings)
    if path_groups is None:
        tables = atoms
    else:
        names = read_cell_type_names(path_type_names)
        tables = composition_tables(model, counts, individuals, names, inputs=inputs,
                                    atom_to_group=read_atom_to_group(path_groups), **settings)
        tables.update({f"{k}_atoms": v for k, v in atoms.items() if k != "groups"})
    if path_fam is not None:
        fam = read_fam(str(path_fam).removesuffix(".fam"))
        fam["iid"] = normalise_ids(fam["iid"], "IIDs", str(path_fam))
        counts = tables["test_counts"]
        tables["traits"] = plink_traits(counts, fam, settings.get("transform", "logit"), names,
                                        settings.get("lineages"))
        tables["donors"] = donor_table(individuals, counts, tables["groups"],
                                       settings.get("covariates"))
        tables["donor_shares_long"] = donor_shares_long(counts, names)
    for key, table in tables.items():
        if key in paths_out:
            write_tsv(table, paths_out[key],
                      missing=DONOR_MISSING if key in DONOR_TABLES else NOT_APPLICABLE)
    return tables


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        summarise(snakemake.input.fit, snakemake.input.counts, snakemake.input.individuals,
                  snakemake.input.inputs, snakemake.input.names, dict(snakemake.output.items()),
                  snakemake.params.settings, snakemake.input.groups, snakemake.input.type_names,
                  snakemake.input.covariates, snakemake.input.fam,
                  snakemake.input.individual_groups)
