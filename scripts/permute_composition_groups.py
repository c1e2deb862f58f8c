from _common import logged, read_atom_to_group, read_cell_type_names, read_tsv, write_tsv

from nam_core import NAM
from nam_core.inputs.fit_inputs import read_fit_inputs
from nam_core.results.composition.permutation import genotype_group_counts, permutation_table


def permute_groups(path_fit, path_inputs, path_groups, path_cell_types, path_type_names,
                      path_donors, path_out, pool_column: str, settings: dict):
    """Per cell type, the ANOVA across genotype-only groups with labels relabelled within pools.

    The donors' pools are the ``pool_column`` of the donor table; without it the labels are
    relabelled over all donors (the column ``permuted_within`` says which).
    """
    atom_to_group = read_atom_to_group(path_cell_types)
    names = read_cell_type_names(path_type_names)
    counts = genotype_group_counts(NAM.load(path_fit), read_fit_inputs(path_inputs),
                                   read_tsv(path_groups), atom_to_group)
    donors = read_tsv(path_donors)
    pools = None
    if pool_column in donors.columns:
        pools = donors.set_index(donors["individual"].astype(str))[pool_column]
    table = permutation_table(counts, pools, names, **settings)
    write_tsv(table, path_out)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        i = snakemake.input
        permute_groups(i.fit, i.inputs, i.groups, i.cell_types, i.type_names, i.donors,
                          snakemake.output.table, snakemake.params.pool_column,
                          snakemake.params.settings)
