from _common import logged, read_annotations, read_tsv, write_tsv

from nam_core.inputs.h5ad import read_rows
from nam_core.results.naming import (
    add_cell_groups,
    apply_name_overrides,
    name_cell_clusters,
    read_marker_table,
)

UNSCORED = {"*": "a cell type with fewer than naming.min_markers of its markers among the genes "
                 "(or a cluster holding no cell or every cell) has no score"}


def name(path_cells, path_matrix, path_markers, path_names, path_scores, min_score: float,
         min_markers: int, max_cells_per_cluster=None, path_groups=None, path_type_names=None,
         overrides=None):
    """Name each NAM cell atom and, given cell_types/groups.tsv, each cell type (group of atoms)
    from the marker table; names and all type scores as TSVs. ``overrides`` ({C<l> or T<g>:
    name}, naming.overrides) renames by hand.

    obs comes from ``path_cells`` (fit/cell_annotations.h5ad); only the sampled cells' rows of
    the preprocessed X (``path_matrix``) are loaded, a block at a time, no layer.
    """
    cells = read_annotations(path_cells)
    markers = read_marker_table(path_markers)
    settings = dict(min_score=min_score, min_markers=min_markers,
                    max_cells_per_cluster=max_cells_per_cluster,
                    x_rows=lambda rows: read_rows(path_matrix, rows))
    names, scores, _ = name_cell_clusters(cells, markers, **settings)
    names = apply_name_overrides(names, overrides, "cluster", "C")
    write_tsv(names, path_names, missing=UNSCORED)
    write_tsv(scores, path_scores, missing=UNSCORED)
    if path_groups is not None:
        cells.obs = add_cell_groups(cells.obs, read_tsv(path_groups))
        types, _, _ = name_cell_clusters(cells, markers, groupby="nam_cell_group", **settings)
        types = apply_name_overrides(types.rename(columns={"cluster": "group"}), overrides,
                                     "group", "T")
        write_tsv(types, path_type_names, missing=UNSCORED)
    return names


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        name(snakemake.input.cells, snakemake.input.matrix, snakemake.input.markers,
             snakemake.output.names,
             snakemake.output.scores, snakemake.params.min_score, snakemake.params.min_markers,
             snakemake.params.max_cells_per_cluster, snakemake.input.groups,
             snakemake.output.type_names, snakemake.params.overrides)
