from _common import logged, read_atom_to_group, read_cell_type_names, read_tsv

from nam_core.results.composition import group_counts
from nam_core.results.figure_style import save_figure
from nam_core.results.naming import display_labels
from nam_core.results.plots import plot_composition_heatmap

FIXED = ("cluster", "n_individuals", "n_cells")


def plot(path_by_cluster, path_png, path_pdf, path_names=None, path_groups=None):
    """Heatmap of the cell-type (or, without ``path_groups``, cell-atom) proportions of each
    individual cluster; a type's proportion is the sum of its atoms'.

    With ``path_names`` (cell_types/type_names.tsv, or names.tsv for atoms) the columns are
    labelled with their cell-type name.
    """
    by_cluster = read_tsv(path_by_cluster)
    if path_groups is not None:
        by_cluster = group_counts(by_cluster, read_atom_to_group(path_groups), fixed=FIXED)
    names = None if path_names is None else read_cell_type_names(path_names)
    cell_cols = [c for c in by_cluster.columns if c not in FIXED]
    by_cluster.columns = list(FIXED) + list(display_labels(cell_cols, names))
    level = "cell cluster" if path_groups is None else "cell type"
    save_figure(plot_composition_heatmap(by_cluster, level), path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(snakemake.input.by_cluster, snakemake.output.png, snakemake.output.pdf,
             snakemake.input.names, snakemake.input.groups)
