import anndata as ad
import pandas as pd
from _common import logged, read_annotations, write_tsv

from nam_core.results.umap import add_umap


def compute(path_cells, path_umap, n_neighbors: int = 15, seed: int = 0, max_cells=None,
            placement: str = "neighbours"):
    """UMAP of the preprocessed cells (from their expression PCs), as a TSV: cell, UMAP1, UMAP2.

    Only the cell names and PCs are read (no X, no layer).
    """
    cells = read_annotations(path_cells)
    adata = ad.AnnData(obs=pd.DataFrame(index=cells.obs_names), obsm={"X_pca": cells.obsm["X_pca"]})
    add_umap(adata, use_rep="X_pca", n_neighbors=n_neighbors, seed=seed, max_cells=max_cells,
             placement=placement)
    umap = pd.DataFrame(adata.obsm["X_umap"], columns=["UMAP1", "UMAP2"], index=adata.obs_names)
    write_tsv(umap.rename_axis("cell"), path_umap, index=True)
    return umap


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        compute(
            snakemake.input.cells,
            snakemake.output.umap,
            snakemake.params.n_neighbors,
            snakemake.params.seed,
            snakemake.params.max_cells,
            snakemake.params.placement,
        )
