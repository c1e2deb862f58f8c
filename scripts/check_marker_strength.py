import anndata as ad
from _common import logged, write_tsv

from nam_core.results.naming import permutation_test_cells


def check(path_cells, path_out, individual_column: str, settings: dict):
    """Permutation test of each cell cluster's top-marker strength (labels permuted within individuals)."""
    table = permutation_test_cells(ad.read_h5ad(path_cells), "nam_cell_cluster",
                                   individual_column, **settings)
    write_tsv(table, path_out)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        check(snakemake.input.cells, snakemake.output.permutation,
             snakemake.params.individual_column, snakemake.params.settings)
