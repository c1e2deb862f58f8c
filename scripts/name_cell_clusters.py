from _common import logged, read_annotations, write_tsv

from nam_core.inputs.h5ad import read_rows
from nam_core.results.naming import name_cell_clusters, read_marker_table


def name(path_cells, path_markers, path_names, path_scores, min_score: float, min_markers: int,
         max_cells_per_cluster=None):
    """Name each NAM cell cluster from the marker table; names and all type scores as TSVs.

    Only the sampled cells' rows of X are loaded (a block at a time), no layer.
    """
    cells = read_annotations(path_cells)
    names, scores, _ = name_cell_clusters(cells, read_marker_table(path_markers),
                                          min_score=min_score, min_markers=min_markers,
                                          max_cells_per_cluster=max_cells_per_cluster,
                                          x_rows=lambda rows: read_rows(path_cells, rows))
    write_tsv(names, path_names)
    write_tsv(scores, path_scores)
    return names


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        name(snakemake.input.cells, snakemake.input.markers, snakemake.output.names,
             snakemake.output.scores, snakemake.params.min_score, snakemake.params.min_markers,
             snakemake.params.max_cells_per_cluster)
