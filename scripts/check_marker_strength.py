from _common import logged, read_annotations, write_tsv

from nam_core.inputs.h5ad import read_rows
from nam_core.results.marker_permutation import permutation_test_cells


def check(path_cells, path_out, individual_column: str, settings: dict,
          groupby: str = "nam_cell_cluster"):
    """Permutation test of each cell type's (obs ``groupby``: nam_cell_group) or atom's
    (nam_cell_cluster) top-marker strength, labels permuted within individuals.

    Only the sampled cells' rows of X are loaded (a block at a time), no layer.
    """
    table = permutation_test_cells(read_annotations(path_cells), groupby,
                                   individual_column, **settings,
                                   x_rows=lambda rows: read_rows(path_cells, rows))
    write_tsv(table, path_out)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        check(snakemake.input.cells, snakemake.output.permutation,
              snakemake.params.individual_column, snakemake.params.settings, "nam_cell_group")
