from _common import logged, read_annotations, read_tsv

from nam_core.inputs.h5ad import read_rows
from nam_core.results.figure_style import save_figure
from nam_core.results.markers import subsample_groups
from nam_core.results.naming import display_labels
from nam_core.results.plots import dotplot_stats, plot_marker_dotplot


def plot(path_cells, path_markers, path_png, path_pdf, n_per_cluster: int = 3, path_names=None,
         max_cells_per_cluster=None):
    """Dot plot of the top ``n_per_cluster`` markers of each cell type (markers of obs
    nam_cell_group, cell_types/markers.tsv) or NAM cell atom (markers.tsv), each gene once.

    With ``path_names`` (cell_types/type_names.tsv, or names.tsv for atoms) rows are labelled
    with their cell-type name. The shares and means come from at most ``max_cells_per_cluster``
    seeded cells of each cluster (the cells the markers were ranked on; None: all cells).
    """
    markers = read_tsv(path_markers).sort_values(["cluster", "rank"])
    markers = markers.iloc[markers["cluster"].str[1:].astype(int).argsort(kind="stable")]
    groupby = "nam_cell_group" if markers["cluster"].str.startswith("T").all() else \
        "nam_cell_cluster"
    top = markers.drop_duplicates("gene").groupby("cluster", sort=False).head(n_per_cluster)
    adata = read_annotations(path_cells)
    genes = top["gene"].tolist()
    rows = subsample_groups(adata.obs[groupby].astype(str), max_cells_per_cluster, seed=0)
    X = read_rows(path_cells, rows)[:, adata.var_names.get_indexer(genes)]
    adata = adata[rows]
    names = None
    if path_names is not None:
        table = read_tsv(path_names)
        key = "group" if "group" in table.columns else "cluster"
        names = dict(zip(table[key].astype(str), table["cell_type"], strict=True))
    clusters = display_labels(adata.obs[groupby].astype(str), names)
    fraction, mean = dotplot_stats(X, clusters, genes, genes)
    labels = top["cluster"].astype(str).tolist()  # short ids over the brackets; rows carry names
    level = "Cell type" if groupby == "nam_cell_group" else "NAM cell cluster"
    fig = plot_marker_dotplot(fraction, mean, list(zip(labels, genes, strict=True)), level)
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
            snakemake.params.max_cells_per_cluster,
        )
