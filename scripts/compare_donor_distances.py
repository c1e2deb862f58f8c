from _common import logged, read_atom_to_group, read_tsv, write_tsv

from nam_core import NAM
from nam_core.inputs.fit_inputs import read_fit_inputs
from nam_core.results.composition.donor_distance import (
    composition_vs_genetics,
    plot_composition_vs_genetics,
)
from nam_core.results.composition.permutation import genotype_group_counts
from nam_core.results.figure_style import save_figure


def compare(path_fit, path_inputs, path_groups, path_cell_types, path_pcs, path_donors,
            path_mantel, path_pairs, path_png, path_pdf, pool_column: str, settings: dict):
    """Mantel tests of the donors' cell-type composition distance against their PC distance.

    Cells are counted as the composition tests count them (cohort cell labels, which do not
    depend on the donor's cluster, so on its genotype) and summed per cell type
    (cell_types/groups.tsv); a ``pool_column`` of the donor table adds the partial tests
    controlling for 'same pool or not'.
    """
    atom_to_group = read_atom_to_group(path_cell_types)
    counts = genotype_group_counts(NAM.load(path_fit), read_fit_inputs(path_inputs),
                                   read_tsv(path_groups), atom_to_group)
    pcs, donors = read_tsv(path_pcs), read_tsv(path_donors)
    pools = None
    if pool_column in donors.columns:
        pools = donors.set_index(donors["individual"].astype(str))[pool_column]
    table, pairs = composition_vs_genetics(counts, pcs, pools, **settings)
    write_tsv(table, path_mantel)
    write_tsv(pairs, path_pairs)
    save_figure(plot_composition_vs_genetics(pairs, table), path_png, path_pdf)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        i, o = snakemake.input, snakemake.output
        compare(i.fit, i.inputs, i.groups, i.cell_types, i.pcs, i.donors, o.mantel, o.pairs,
                o.png, o.pdf, snakemake.params.pool_column, snakemake.params.settings)
