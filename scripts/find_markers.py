from _common import logged, read_h5ad, write_tsv

from nam_core.results.markers import rank_markers


def find(path_cells, path_markers, n_genes: int = 10, method: str = "wilcoxon"):
    """Top marker genes of each NAM cell cluster, on the log-normalised counts in X."""
    adata = read_h5ad(path_cells)
    markers = rank_markers(adata, "nam_cell_cluster", n_genes=n_genes, method=method)
    write_tsv(markers, path_markers)
    return markers


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        find(
            snakemake.input.cells,
            snakemake.output.markers,
            snakemake.params.n_genes,
            snakemake.params.method,
        )
