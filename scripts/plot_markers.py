from _common import logged, read_annotations, read_tsv

from nam_core.inputs.h5ad import read_columns
from nam_core.results.naming import display_labels
from nam_core.results.plots import dotplot_stats, plot_marker_dotplot, save_figure


def plot(path_cells, path_markers, path_png, path_pdf, n_per_cluster: int = 3, path_names=None):
    """Dot plot of the top ``n_per_cluster`` markers of each NAM cell cluster (each gene once).

    With ``path_names`` (cell_types/names.tsv) clusters are labelled with their cell type.
    """
    markers = read_tsv(path_markers).sort_values(["cluster", "rank"])
    markers = markers.iloc[markers["cluster"].str[1:].astype(int).argsort(kind="stable")]
    top = markers.drop_duplicates("gene").groupby("cluster", sort=False).head(n_per_cluster)
    adata = read_annotations(path_cells)
    genes = top["gene"].tolist()
    X = read_columns(path_cells, adata.var_names.get_indexer(genes))
    names = None
    if path_names is not None:
        table = read_tsv(path_names)
        names = dict(zip(table["cluster"], table["cell_type"], strict=True))
    clusters = display_labels(adata.obs["nam_cell_cluster"].astype(str), names)
    fraction, mean = dotplot_stats(X, clusters, genes, genes)
    labels = display_labels(top["cluster"], names)
    fig = plot_marker_dotplot(fraction, mean, list(zip(labels, genes, strict=True)))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(
            snakemake.input.cells,
            snakemake.input.markers,
            snakemake.output.png,
            snakemake.output.pdf,
            snakemake.params.n_per_cluster,
            snakemake.input.names,
        )
