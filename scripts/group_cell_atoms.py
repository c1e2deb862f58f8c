import numpy as np
from _common import logged, logger, read_annotations, write_tsv

from nam_core.results.cell_types import TABLE_MISSING, group_atoms


def group(path_to_cells, path_to_groups, criterion, max_cells, seed):
    """cell_types/groups.tsv: each NAM cell atom (obs nam_cell_cluster) and the cell type
    (T1, T2, ... largest first) it is grouped into, from the cells' PCs (obsm X_pca, (N, p))."""
    adata = read_annotations(path_to_cells)  # obs and obsm only, no X
    pcs = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    atoms = adata.obs["nam_cell_cluster"].astype(str).to_numpy()
    types = group_atoms(pcs, atoms, criterion=criterion, max_cells=max_cells, seed=seed)
    write_tsv(types.table, path_to_groups, missing=TABLE_MISSING)  # atomically
    logger.info("wrote %s: %d atoms in %d cell types (%s criterion)", path_to_groups,
                len(types.atom_to_group), len(set(types.atom_to_group.values())), criterion)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        group(
            path_to_cells=snakemake.input.cells,
            path_to_groups=snakemake.output.groups,
            criterion=snakemake.params.criterion,
            max_cells=snakemake.params.max_cells,
            seed=snakemake.params.seed,
        )
