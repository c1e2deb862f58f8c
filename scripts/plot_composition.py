from _common import logged, read_tsv

from nam_core.results.naming import display_labels
from nam_core.results.plots import plot_composition_heatmap, save_figure


def plot(path_by_cluster, path_png, path_pdf, path_names=None):
    """Heatmap of the cell-cluster proportions of each individual cluster.

    With ``path_names`` (cell_types/names.tsv) the columns are labelled with their cell type.
    """
    by_cluster = read_tsv(path_by_cluster)
    names = None
    if path_names is not None:
        table = read_tsv(path_names)
        names = dict(zip(table["cluster"], table["cell_type"], strict=True))
    fixed = ["cluster", "n_individuals", "n_cells"]
    cell_cols = [c for c in by_cluster.columns if c not in fixed]
    by_cluster.columns = fixed + list(display_labels(cell_cols, names))
    save_figure(plot_composition_heatmap(by_cluster), path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(snakemake.input.by_cluster, snakemake.output.png, snakemake.output.pdf,
             snakemake.input.names)
