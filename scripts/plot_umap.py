from _common import logged, read_annotations

from nam_core.results.figure_style import save_figure
from nam_core.results.plots import plot_umap


def plot(path_cells, path_png, path_pdf):
    """UMAP of the cells coloured by NAM cell cluster."""
    adata = read_annotations(path_cells)
    fig = plot_umap(adata.obsm["X_umap"], adata.obs["nam_cell_cluster"].astype(str))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(snakemake.input.cells, snakemake.output.png, snakemake.output.pdf)
