from _common import logged, read_tsv

from nam_core.results.plots import plot_composition_heatmap, save_figure


def plot(path_by_cluster, path_png, path_pdf):
    """Heatmap of the cell-cluster proportions of each individual cluster."""
    fig = plot_composition_heatmap(read_tsv(path_by_cluster))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(snakemake.input.by_cluster, snakemake.output.png, snakemake.output.pdf)
