import anndata as ad
from _common import logged, write_tsv

from nam_core.results.naming import name_cell_clusters, read_marker_table


def name(path_cells, path_markers, path_names, path_scores, min_score: float, min_markers: int):
    """Name each NAM cell cluster from the marker table; names and all type scores as TSVs."""
    names, scores, _ = name_cell_clusters(ad.read_h5ad(path_cells), read_marker_table(path_markers),
                                          min_score=min_score, min_markers=min_markers)
    write_tsv(names, path_names)
    write_tsv(scores, path_scores)
    return names


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        name(snakemake.input.cells, snakemake.input.markers, snakemake.output.names,
             snakemake.output.scores, snakemake.params.min_score, snakemake.params.min_markers)
