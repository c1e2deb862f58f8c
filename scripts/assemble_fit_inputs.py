import logging

import numpy as np
import pandas as pd
from _common import logged, read_h5ad, read_tsv

from nam_core.io import atomic_path

logger = logging.getLogger(__name__)


def assemble(
    path_pcs, path_cells, path_matching, path_out, individual_column: str, without_cells="drop"
) -> dict:
    """NAM's inputs in one file: x (J, q) genotype PCs, y (N, p) expression PCs, group (N,).

    Individuals are those kept by the matching step, in .fam order. Those left without cells
    by the expression QC are kept under the ``keep`` policy, else dropped; named in the log.
    """
    matching = read_tsv(path_matching)
    kept = matching.loc[matching["in_genotypes"] & (matching["action"] == "kept"), "individual"]
    cells = read_h5ad(path_cells, backed="r")
    cell_individuals = cells.obs[individual_column].astype(str).str.strip().to_numpy()
    with_cells = kept.isin(cell_individuals)
    lost = kept[~with_cells & (matching.loc[kept.index, "status"] == "matched")]
    if len(lost):
        action = "kept (genotype only)" if without_cells == "keep" else "dropped"
        logger.warning("QC removed every cell of %d individuals, %s: %s", len(lost), action,
                       ", ".join(lost))
    individuals = kept[with_cells | (without_cells == "keep")].to_numpy(dtype=str)
    pcs = read_tsv(path_pcs, index_col="individual")
    group = pd.Index(individuals).get_indexer(cell_individuals)
    arrays = {
        "x": pcs.loc[individuals].to_numpy(dtype=np.float64),
        "y": np.asarray(cells.obsm["X_pca"], dtype=np.float32),
        "group": group.astype(np.int64),
        "individuals": individuals,
        "cells": cells.obs_names.to_numpy(dtype=str),
    }
    assert (group >= 0).all(), "cells of individuals that were not kept"
    with atomic_path(path_out) as tmp:
        np.savez(tmp, **arrays)
    logger.info(
        "NAM inputs: %d individuals x %d genotype PCs, %d cells x %d expression PCs",
        *arrays["x"].shape, *arrays["y"].shape,
    )
    return arrays


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        assemble(
            snakemake.input.pcs,
            snakemake.input.cells,
            snakemake.input.matching,
            snakemake.output.inputs,
            snakemake.params.individual_column,
            snakemake.params.individuals_without_cells,
        )
