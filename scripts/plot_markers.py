from _common import logged, read_h5ad, read_tsv

from nam_core.results.plots import dotplot_stats, plot_marker_dotplot, save_figure


def plot(path_cells, path_markers, path_png, path_pdf, n_per_cluster: int = 3):
    """Dot plot of the top ``n_per_cluster`` markers of each NAM cell cluster (each gene once)."""
    markers = read_tsv(path_markers).sort_values(["cluster", "rank"])
    markers = markers.iloc[markers["cluster"].str[1:].astype(int).argsort(kind="stable")]
    top = markers.drop_duplicates("gene").groupby("cluster", sort=False).head(n_per_cluster)
    adata = read_h5ad(path_cells, backed="r")
    genes = top["gene"].tolist()
    sub = adata[:, genes].to_memory()
    fraction, mean = dotplot_stats(sub.X, adata.obs["nam_cell_cluster"].astype(str), genes, genes)
    fig = plot_marker_dotplot(fraction, mean, list(zip(top["cluster"], genes, strict=True)))
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
        )
