from _common import logged, read_h5ad, write_tsv

from nam_core.results.naming import permutation_test_cells


def check(path_cells, path_out, individual_column: str, settings: dict):
    """Permutation test of each cell cluster's top-marker strength (labels permuted within individuals).

    The file is read backed: only the sampled cells' rows of X are loaded.
    """
    cells = read_h5ad(path_cells, backed="r")
    table = permutation_test_cells(cells, "nam_cell_cluster", individual_column, **settings)
    cells.file.close()
    write_tsv(table, path_out)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        check(snakemake.input.cells, snakemake.output.permutation,
             snakemake.params.individual_column, snakemake.params.settings)
