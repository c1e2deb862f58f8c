"""The result tables of a fitted NAM: annotated cells, individuals and cluster composition.

:func:`write_results` writes every result file of the workflow's ``write_results`` rule from
the best fit, the fit inputs, the preprocessed cells, the UMAP and the genotype PCs. The column
lists are in the README ("Outputs").

Cluster names: individual clusters are ``I1, I2, ...`` and cell clusters ``C1, C2, ...``, numbered
in the model's label order (1 = largest expected size). Only occupied clusters (those that are
the most probable cluster of at least one individual or cell) appear in the tables.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from ..errors import NAMInputError
from ..inputs.fit_inputs import read_fit_inputs
from ..inputs.h5ad import read_annotations, write_annotations
from ..intermediates import read_intermediate
from ..io import ANY_COLUMN, atomic_path, check_finite, read_tsv, write_tsv
from ..models.nam import NAM
from .composition.groups import fit_input_pcs, genotype_groups
from .labels import cell_cluster_names, individual_cluster_names
from .pools import warn_if_clusters_follow_batches

__all__ = [
    "individual_table",
    "composition_counts",
    "cell_annotations",
    "write_results",
]

logger = logging.getLogger(__name__)

NO_CELLS = {ANY_COLUMN: "an individual without cells (matching.individuals_without_cells: keep), "
                        "or a cluster of such individuals, has no shares"}
"""Where the composition tables hold NaN."""

def _ordered_names(prefix: str, names) -> list[str]:
    """Distinct cluster names sorted by their number (C2 before C10)."""
    return sorted(set(map(str, names)), key=lambda n: int(n.removeprefix(prefix)))


def individual_table(
    individuals, labels, proba: np.ndarray, pcs: pd.DataFrame, n_cells
) -> pd.DataFrame:
    """One row per individual: its NAM cluster, posterior probabilities and genotype PCs.

    Parameters
    ----------
    individuals : sequence of str (J,)
        IIDs, in the order of the model's individuals.
    labels : array (J,) of int
        0-based individual-cluster labels (``NAM.individual_labels_``).
    proba : array (J, K)
        q(S_j = k), columns in label order (``NAM.rho_``).
    pcs : DataFrame
        Genotype PCs indexed by IID (every individual of ``individuals`` must be present).
    n_cells : array (J,) of int
        Cells of each individual in the fit.

    Returns
    -------
    DataFrame with columns individual, cluster (``I<k>``), probability (of that cluster),
    n_cells, ``prob_I<k>`` for each occupied cluster (the most probable cluster of at least one
    individual; K is a truncation, most of its clusters hold nobody), ``prob_other`` (the
    posterior mass on the unoccupied clusters, so that each row's probabilities sum to 1) and
    the PC columns.
    """
    individuals = pd.Index(np.asarray(individuals, dtype=str), name="individual")
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if proba.shape[0] != len(individuals) or labels.shape[0] != len(individuals):
        raise NAMInputError(
            f"{len(individuals)} individuals but {labels.shape[0]} labels and {proba.shape[0]} "
            "rows of posterior probabilities"
        )
    missing = individuals.difference(pcs.index.astype(str))
    if len(missing):
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {list(missing[:5])}")
    table = pd.DataFrame(
        {
            "individual": individuals,
            "cluster": individual_cluster_names(labels),
            "probability": proba[np.arange(len(labels)), labels],
            "n_cells": np.asarray(n_cells, dtype=np.int64),
        }
    )
    occupied = np.unique(labels)
    prob_cols = pd.DataFrame(
        proba[:, occupied], columns=[f"prob_{n}" for n in individual_cluster_names(occupied)]
    )
    prob_cols["prob_other"] = np.clip(1.0 - prob_cols.sum(axis=1), 0.0, None)
    pc_cols = pcs.set_axis(pcs.index.astype(str)).loc[individuals].reset_index(drop=True)
    return pd.concat([table, prob_cols, pc_cols], axis=1)


def composition_counts(
    cell_individuals, cell_clusters, individual_clusters: pd.Series
) -> dict[str, pd.DataFrame]:
    """Cell-cluster composition of each individual and each individual cluster.

    Parameters
    ----------
    cell_individuals : sequence of str (N,)
        Individual of each cell.
    cell_clusters : sequence of str (N,)
        Cell cluster of each cell (``C<l>``).
    individual_clusters : Series
        Cluster (``I<k>``) of each individual, indexed by IID; individuals without cells get
        zero counts and no proportions.

    Returns
    -------
    dict of DataFrames:

    * ``counts``: individual, cluster, then cells per cell cluster (one row per individual).
    * ``proportions``: the same as shares of the individual's cells (NaN without cells).
    * ``by_individual_cluster``: cluster, n_individuals, n_cells, then the mean over its
      individuals (with cells) of their share of each cell cluster; each row sums to 1.
    """
    individuals = individual_clusters.index.astype(str)
    columns = _ordered_names("C", cell_clusters)
    counts = (
        pd.crosstab(
            pd.Series(np.asarray(cell_individuals, dtype=str), name="individual"),
            pd.Series(np.asarray(cell_clusters, dtype=str), name="cell_cluster"),
        )
        .reindex(index=individuals, columns=columns, fill_value=0)
        .astype(np.int64)
    )
    totals = counts.sum(axis=1)
    shares = counts.div(totals.where(totals > 0), axis=0)
    cluster = pd.Series(individual_clusters.to_numpy(dtype=str), index=individuals, name="cluster")

    def with_cluster(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out.insert(0, "cluster", cluster)
        out.columns.name = None
        return out.rename_axis("individual").reset_index()

    order = _ordered_names("I", cluster)
    grouped = shares.groupby(cluster)
    by_cluster = grouped.mean().reindex(order)
    by_cluster.insert(0, "n_cells", totals.groupby(cluster).sum().reindex(order))
    by_cluster.insert(0, "n_individuals", cluster.value_counts().reindex(order))
    by_cluster.columns.name = None
    return {
        "counts": with_cluster(counts),
        "proportions": with_cluster(shares),
        "by_individual_cluster": by_cluster.rename_axis("cluster").reset_index(),
    }


def cell_annotations(obs_names, model, group: np.ndarray, umap: pd.DataFrame) -> tuple[dict, dict, dict]:
    """NAM's clusters, the UMAP and the fit's summary for the preprocessed cells.

    Parameters
    ----------
    obs_names : Index (N,)
        Cell barcodes, in the order of the fit.
    model : NAM
        The fitted model (``cell_labels_`` (N,), ``cell_label_proba_`` (N,),
        ``individual_labels_`` (J,)).
    group : array (N,) of int
        Index of each cell's individual in the fit.
    umap : DataFrame
        UMAP1, UMAP2 indexed by cell barcode (every cell).

    Returns
    -------
    obs : dict
        ``nam_cell_cluster``, ``nam_cell_cluster_probability``, ``nam_individual_cluster``.
    obsm : dict
        ``X_umap`` (N, 2).
    uns : dict
        ``nam``: ELBO, seed, sweeps and parameters of the fit.
    """
    cell_clusters = cell_cluster_names(model.cell_labels_)
    ind_clusters = individual_cluster_names(model.individual_labels_)
    missing = pd.Index(obs_names).difference(umap.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} cells have no UMAP coordinates: {list(missing[:5])}")
    obs = {
        "nam_cell_cluster": pd.Categorical(cell_clusters, categories=_ordered_names("C", cell_clusters)),
        "nam_cell_cluster_probability": model.cell_label_proba_.astype(np.float32),
        "nam_individual_cluster": pd.Categorical(ind_clusters[group]),
    }
    obsm = {"X_umap": umap.loc[obs_names, ["UMAP1", "UMAP2"]].to_numpy(np.float32)}
    uns = {"nam": {"elbo": model.elbo_, "seed": model.seed_, "n_iter": model.n_iter_,
                   "params": {k: str(v) for k, v in model.get_params().items()}}}
    return obs, obsm, uns


def write_results(
    *,
    path_to_fit: str | os.PathLike,
    path_to_inputs: str | os.PathLike,
    path_to_cells: str | os.PathLike,
    path_to_umap: str | os.PathLike,
    path_to_pcs: str | os.PathLike,
    path_to_cells_out: str | os.PathLike,
    path_to_individuals: str | os.PathLike,
    path_to_counts: str | os.PathLike,
    path_to_proportions: str | os.PathLike,
    path_to_by_cluster: str | os.PathLike,
    made_by: dict | None = None,
    batch_key: str | None = None,
) -> None:
    """Write the cells' annotations, ``individuals.tsv`` and the three composition tables, atomically.

    The annotations (``path_to_cells_out``, ``fit/cell_annotations.h5ad``) are the preprocessed
    cells' obs, var, obsm and uns with the fit's labels, UMAP and settings added, without X
    (:func:`nam_core.inputs.h5ad.write_annotations`); ``cells.h5ad`` adds them to a copy of the
    matrix once the cell types are named.

    With ``batch_key`` (an obs column of the cells, e.g. ``pool``), the log warns when the
    individual clusters follow it (:func:`nam_core.results.pools.warn_if_clusters_follow_batches`).

    The inputs are the best fit (``fit/best.npz``), the fit inputs (``fit/inputs.npz``), the
    preprocessed cells (``.h5ad``), the UMAP (``umap.tsv``) and the genotype PCs (``pcs.tsv``);
    the cells must be those of the fit, in its order. ``made_by`` ({path: rule}) names the rule
    to rerun in the error for a damaged input (:func:`nam_core.intermediates.read_intermediate`).
    """
    made_by = made_by or {}

    def read(path, reader, **kwargs):
        return read_intermediate(path, reader, made_by.get(str(path)), **kwargs)

    model = read(path_to_fit, NAM.load)
    inputs = read(path_to_inputs, read_fit_inputs)
    annotations = read(path_to_cells, read_annotations)  # no X, no layer
    obs_names = annotations.obs_names
    if not np.array_equal(obs_names.to_numpy(dtype=str), inputs.cells):
        raise NAMInputError(
            f"{path_to_cells} and {path_to_inputs} list different cells; rerun the fit")
    obs, obsm, uns = cell_annotations(obs_names, model, inputs.group,
                                      read(path_to_umap, read_tsv, index_col="cell"))
    check_finite({**obs, **obsm}, path_to_cells_out, row_labels=obs_names)
    with atomic_path(path_to_cells_out) as tmp:  # no X: O(cells) memory and disk
        write_annotations(path_to_cells, tmp, obs, obsm, uns)
    logger.info("wrote %s: %d cells in %d NAM cell clusters, %d individuals",
                path_to_cells_out, len(obs_names),
                len(obs["nam_cell_cluster"].categories), len(inputs.individuals))

    if batch_key and batch_key in annotations.obs:
        genotype_only = (genotype_groups(model, fit_input_pcs(inputs))["cluster"].to_numpy()
                         if hasattr(model, "m_x_") else None)
        warn_if_clusters_follow_batches(model.individual_labels_, inputs.group,
                                        annotations.obs[batch_key].to_numpy(), batch_key,
                                        genotype_groups=genotype_only)
    n_cells = np.bincount(inputs.group, minlength=len(inputs.individuals))
    pcs = read(path_to_pcs, read_tsv, index_col="individual")
    write_tsv(individual_table(inputs.individuals, model.individual_labels_, model.rho_, pcs,
                               n_cells), path_to_individuals)
    ind_clusters = individual_cluster_names(model.individual_labels_)
    tables = composition_counts(inputs.individuals[inputs.group],
                                np.asarray(obs["nam_cell_cluster"]).astype(str),
                                pd.Series(ind_clusters, index=inputs.individuals))
    for key, path in (("counts", path_to_counts), ("proportions", path_to_proportions),
                      ("by_individual_cluster", path_to_by_cluster)):
        write_tsv(tables[key], path, missing=NO_CELLS if key != "counts" else None)
