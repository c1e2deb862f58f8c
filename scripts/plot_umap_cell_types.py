from _common import logged, read_annotations, read_tsv

from nam_core.results.composition_plots import plot_named_umap, plot_typed_umap
from nam_core.results.figure_style import save_figure


def _names(path, key):
    table = read_tsv(path)
    return dict(zip(table[key].astype(str), table["cell_type"], strict=True))


def plot(path_cells, path_names, path_png, path_pdf, path_type_names=None):
    """UMAP of the cells by named cell type (obs nam_cell_group) beside the NAM cell atoms
    (nam_cell_cluster); without ``path_type_names``, by named atom alone."""
    adata = read_annotations(path_cells)
    atoms = adata.obs["nam_cell_cluster"].astype(str)
    if path_type_names is None:
        fig = plot_named_umap(adata.obsm["X_umap"], atoms, _names(path_names, "cluster"))
    else:
        fig = plot_typed_umap(adata.obsm["X_umap"], adata.obs["nam_cell_group"].astype(str),
                              _names(path_type_names, "group"), atoms,
                              _names(path_names, "cluster"))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        plot(snakemake.input.cells, snakemake.input.names, snakemake.output.png,
             snakemake.output.pdf, snakemake.input.type_names)
