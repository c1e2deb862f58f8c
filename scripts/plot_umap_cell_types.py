from _common import logged, read_annotations, read_tsv

from nam_core.results.composition_plots import plot_named_umap
from nam_core.results.plots import save_figure


def plot(path_cells, path_names, path_png, path_pdf):
    """UMAP of the cells, each cluster labelled with its cell-type name."""
    adata = read_annotations(path_cells)
    names = read_tsv(path_names)
    fig = plot_named_umap(adata.obsm["X_umap"], adata.obs["nam_cell_cluster"].astype(str),
                          dict(zip(names["cluster"], names["cell_type"], strict=True)))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        plot(snakemake.input.cells, snakemake.input.names, snakemake.output.png,
             snakemake.output.pdf)
