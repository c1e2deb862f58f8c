import logging

import anndata as ad
import numpy as np
import pandas as pd
from _common import logged, read_tsv, write_tsv

from nam_core import NAM
from nam_core.inputs.h5ad import annotate_h5ad
from nam_core.io import atomic_path
from nam_core.results.evaluate import (
    cell_cluster_names,
    composition_tables,
    individual_cluster_names,
    individual_table,
)


def write(path_fit, path_inputs, path_cells, path_umap, path_pcs, paths_out: dict, individual_column):
    """cells.h5ad (clusters in obs, PCs and UMAP in obsm), individuals.tsv, composition tables."""
    model = NAM.load(path_fit)
    with np.load(path_inputs, allow_pickle=False) as data:
        individuals, cells, group = data["individuals"], data["cells"], data["group"]
    backed = ad.read_h5ad(path_cells, backed="r")  # cell names only; X stays on disk
    obs_names = backed.obs_names.to_numpy(dtype=str)
    backed.file.close()
    if not np.array_equal(obs_names, cells):
        raise ValueError(f"{path_cells} and {path_inputs} list different cells; rerun the fit")
    ind_clusters = individual_cluster_names(model.individual_labels_)
    cell_clusters = cell_cluster_names(model.cell_labels_)
    order = sorted(set(cell_clusters), key=lambda n: int(n[1:]))
    umap = read_tsv(path_umap, index_col="cell").loc[obs_names]
    with atomic_path(paths_out["cells"]) as tmp:
        annotate_h5ad(
            path_cells, tmp,
            obs_columns={
                "nam_cell_cluster": pd.Categorical(cell_clusters, categories=order),
                "nam_cell_cluster_probability": model.cell_label_proba_.astype(np.float32),
                "nam_individual_cluster": pd.Categorical(ind_clusters[group]),
            },
            obsm={"X_umap": umap[["UMAP1", "UMAP2"]].to_numpy(dtype=np.float32)},
            uns={"nam": {"elbo": model.elbo_, "seed": model.seed_, "n_iter": model.n_iter_,
                         "params": {k: str(v) for k, v in model.get_params().items()}}},
        )
    logging.getLogger(__name__).info(
        "wrote %s: %d cells in %d NAM cell clusters, %d individuals in %d individual clusters",
        paths_out["cells"], obs_names.size, len(order), len(individuals), len(set(ind_clusters)),
    )

    pcs = read_tsv(path_pcs, index_col="individual")
    n_cells = np.bincount(group, minlength=len(individuals))
    write_tsv(individual_table(individuals, model.individual_labels_, model.rho_, pcs, n_cells),
              paths_out["individuals"])
    tables = composition_tables(individuals[group], cell_clusters,
                                pd.Series(ind_clusters, index=individuals))
    for key, name in (("counts", "counts"), ("proportions", "proportions"),
                      ("by_individual_cluster", "by_cluster")):
        write_tsv(tables[key], paths_out[name])


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        write(
            snakemake.input.fit,
            snakemake.input.inputs,
            snakemake.input.cells,
            snakemake.input.umap,
            snakemake.input.pcs,
            dict(snakemake.output.items()),
            snakemake.params.individual_column,
        )
