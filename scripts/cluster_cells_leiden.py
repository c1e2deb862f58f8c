import pandas as pd
from _common import logged, read_annotations, write_tsv

from nam_core.results.leiden import leiden_table


def cluster(path_cells, path_leiden, resolutions, n_neighbors: int = 15, seed: int = 0) -> pd.DataFrame:
    """Leiden clusters of the preprocessed cells on their expression PCs, as a TSV.

    Only the cell names and PCs are read (no X, no layer).
    """
    cells = read_annotations(path_cells)
    names, pcs = cells.obs_names, cells.obsm["X_pca"]
    table = leiden_table(names, pcs, resolutions, n_neighbors, seed)
    write_tsv(table, path_leiden)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        cluster(
            snakemake.input.cells,
            snakemake.output.leiden,
            snakemake.params.resolutions,
            snakemake.params.n_neighbors,
            snakemake.params.seed,
        )
