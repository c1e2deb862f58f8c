import logging

import numpy as np
import pandas as pd
from _common import load_fit, logged, read_h5ad, read_npz, read_tsv, write_tsv

from nam_core.io import atomic_path
from nam_core.results.evaluate import (
    cell_cluster_names,
    composition_tables,
    individual_cluster_names,
    individual_table,
)


def write(path_fit, path_inputs, path_cells, path_umap, path_pcs, paths_out: dict, individual_column):
    """cells.h5ad (clusters in obs, PCs and UMAP in obsm), individuals.tsv, composition tables."""
    model = load_fit(path_fit)
    data = read_npz(path_inputs)
    individuals, cells, group = data["individuals"], data["cells"], data["group"]
    adata = read_h5ad(path_cells)
    if not np.array_equal(adata.obs_names.to_numpy(dtype=str), cells):
        raise ValueError(f"{path_cells} and {path_inputs} list different cells; rerun the fit")
    ind_clusters = individual_cluster_names(model.individual_labels_)
    cell_clusters = cell_cluster_names(model.cell_labels_)
    order = sorted(set(cell_clusters), key=lambda n: int(n[1:]))
    adata.obs["nam_cell_cluster"] = pd.Categorical(cell_clusters, categories=order)
    adata.obs["nam_cell_cluster_probability"] = model.cell_label_proba_.astype(np.float32)
    adata.obs["nam_individual_cluster"] = pd.Categorical(ind_clusters[group])
    umap = read_tsv(path_umap, index_col="cell").loc[adata.obs_names]
    adata.obsm["X_umap"] = umap[["UMAP1", "UMAP2"]].to_numpy(dtype=np.float32)
    adata.uns["nam"] = {"elbo": model.elbo_, "seed": model.seed_, "n_iter": model.n_iter_,
                        "params": {k: str(v) for k, v in model.get_params().items()}}
    with atomic_path(paths_out["cells"]) as tmp:
        adata.write_h5ad(tmp, compression="lzf")
    logging.getLogger(__name__).info(
        "wrote %s: %d cells in %d NAM cell clusters, %d individuals in %d individual clusters",
        paths_out["cells"], adata.n_obs, len(order), len(individuals), len(set(ind_clusters)),
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
    with logged(snakemake.log[0], snakemake.params.producers):
        write(
            snakemake.input.fit,
            snakemake.input.inputs,
            snakemake.input.cells,
            snakemake.input.umap,
            snakemake.input.pcs,
            dict(snakemake.output.items()),
            snakemake.params.individual_column,
        )
