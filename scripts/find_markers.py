import anndata as ad
from _common import logged, read_h5ad, write_tsv

from nam_core.results.markers import rank_markers, subsample_groups


def find(path_cells, path_markers, n_genes: int = 10, method: str = "wilcoxon",
         max_cells_per_cluster=None):
    """Top marker genes of each NAM cell cluster, on the log-normalised counts in X.

    Only the sampled cells (at most ``max_cells_per_cluster`` per cluster) are read into memory.
    """
    backed = read_h5ad(path_cells, backed="r")
    rows = subsample_groups(backed.obs["nam_cell_cluster"], max_cells_per_cluster, seed=0)
    adata = ad.AnnData(X=backed.X[rows], obs=backed.obs.iloc[rows], var=backed.var)  # no layers
    backed.file.close()
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
            snakemake.params.max_cells_per_cluster,
        )
