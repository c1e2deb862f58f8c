import anndata as ad
from _common import logged, read_annotations, write_tsv

from nam_core.inputs.h5ad import read_rows
from nam_core.results.markers import rank_markers, subsample_groups


def find(path_cells, path_matrix, path_markers, n_genes: int = 10, method: str = "wilcoxon",
         max_cells_per_cluster=None, groupby: str = "nam_cell_cluster"):
    """Top marker genes of each NAM cell atom (obs ``groupby`` nam_cell_cluster) or cell type
    (nam_cell_group), on the log-normalised counts in X.

    obs comes from ``path_cells``, X from ``path_matrix`` (the preprocessed cells, same order).
    Only the sampled cells (at most ``max_cells_per_cluster`` per cluster) are held in memory:
    X is read a block of rows at a time, the layers not at all.
    """
    cells = read_annotations(path_cells)
    rows = subsample_groups(cells.obs[groupby].astype(str), max_cells_per_cluster, seed=0)
    adata = ad.AnnData(X=read_rows(path_matrix, rows), obs=cells.obs.iloc[rows], var=cells.var)
    markers = rank_markers(adata, groupby, n_genes=n_genes, method=method)
    write_tsv(markers, path_markers, missing={
        "logfoldchange": "the test (markers.method logreg) gives no fold change",
        "pval_adj": "the test (markers.method logreg) gives no p-value"})
    return markers


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        find(
            snakemake.input.cells,
            snakemake.input.matrix,
            snakemake.output.markers,
            snakemake.params.n_genes,
            snakemake.params.method,
            snakemake.params.max_cells_per_cluster,
            snakemake.params.groupby,
        )
