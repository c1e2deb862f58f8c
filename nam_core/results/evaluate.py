"""Tables of a fitted NAM (individuals, cluster composition) and its scores on the demo cohort.

The workflow writes :func:`individual_table` and :func:`composition_tables` for every cohort, and
for the demo scores the clusters against the truth with :func:`evaluate_demo`: adjusted Rand index
(ARI) and normalised mutual information (NMI) of the individual clusters against the ancestry
groups and of the cell clusters against the cell types, and the known markers of its cell type
that each cell cluster's top markers include.

Cluster names: individual clusters are ``I1, I2, ...`` and cell clusters ``C1, C2, ...``, numbered
in the model's label order (1 = largest expected size).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ..errors import NAMInputError
from .leiden import n_large_clusters
from .markers import marker_recovery

__all__ = [
    "individual_cluster_names",
    "cell_cluster_names",
    "individual_table",
    "composition_tables",
    "majority_labels",
    "clustering_scores",
    "evaluate_demo",
    "EVALUATION_COLUMNS",
]

logger = logging.getLogger(__name__)

EVALUATION_COLUMNS = ["metric", "value", "threshold", "pass"]


def individual_cluster_names(labels) -> np.ndarray:
    """``I1, I2, ...`` for 0-based individual-cluster labels (J,)."""
    return np.char.add("I", (np.asarray(labels, dtype=np.int64) + 1).astype(str))


def cell_cluster_names(labels) -> np.ndarray:
    """``C1, C2, ...`` for 0-based cell-cluster labels (N,)."""
    return np.char.add("C", (np.asarray(labels, dtype=np.int64) + 1).astype(str))


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
    n_cells, ``prob_I1 .. prob_I<K>`` and the PC columns.
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
    prob_cols = pd.DataFrame(
        proba, columns=[f"prob_{n}" for n in individual_cluster_names(np.arange(proba.shape[1]))]
    )
    pc_cols = pcs.set_axis(pcs.index.astype(str)).loc[individuals].reset_index(drop=True)
    return pd.concat([table, prob_cols, pc_cols], axis=1)


def composition_tables(
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


def majority_labels(clusters, truth) -> pd.DataFrame:
    """The true label most members of each cluster have, with the cluster's size and purity.

    Returns
    -------
    DataFrame with columns cluster, n, majority, purity (share of the cluster with that label).
    """
    df = pd.DataFrame({"cluster": np.asarray(clusters, dtype=str), "truth": np.asarray(truth)})
    table = pd.crosstab(df["cluster"], df["truth"])
    return pd.DataFrame(
        {
            "cluster": table.index.to_numpy(),
            "n": table.sum(axis=1).to_numpy(),
            "majority": table.idxmax(axis=1).to_numpy(),
            "purity": (table.max(axis=1) / table.sum(axis=1)).to_numpy(),
        }
    )


def clustering_scores(labels, truth) -> dict[str, float]:
    """ARI and NMI of ``labels`` against ``truth`` (same length)."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape:
        raise NAMInputError(f"{labels.shape[0]} labels but {truth.shape[0]} true labels")
    return {
        "ari": float(adjusted_rand_score(truth, labels)),
        "nmi": float(normalized_mutual_info_score(truth, labels)),
    }


def _aligned(ids, truth: pd.Series, what: str) -> np.ndarray:
    """Truth values for ``ids`` (all must be present)."""
    ids = pd.Index(np.asarray(ids, dtype=str))
    truth = truth.set_axis(truth.index.astype(str))
    missing = ids.difference(truth.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} {what} are not in the truth table: {list(missing[:5])}")
    return truth.loc[ids].to_numpy()


def _leiden_rows(leiden: pd.DataFrame, cells, cell_type) -> list[tuple]:
    """Cell ARI and clusters of >= 1 % of cells of each Leiden column, on NAM's cells."""
    table = leiden.set_index(leiden["cell"].astype(str))
    columns = [c for c in table.columns if c.startswith("leiden_")]
    if not columns:
        raise NAMInputError("the Leiden table has no leiden_<resolution> column")
    rows = []
    for column in columns:
        lab = _aligned(cells, table[column], "cells (Leiden table)")
        rows.append((f"ari_cells_{column}", clustering_scores(lab, cell_type)["ari"], None))
        rows.append((f"n_cell_clusters_1pct_{column}", n_large_clusters(lab), None))
    return rows


def evaluate_demo(
    individuals: pd.DataFrame,
    cells: pd.DataFrame,
    markers: pd.DataFrame,
    truth_individuals: pd.DataFrame,
    truth_cells: pd.DataFrame,
    known_markers: pd.DataFrame,
    min_ari_individuals: float = 0.9,
    min_ari_cells: float = 0.8,
    min_known_markers: int = 1,
    top_n: int | None = None,
    min_cluster_cells: int = 10,
    leiden: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score NAM's clusters on the demo cohort against the truth it was generated from.

    Parameters
    ----------
    individuals : DataFrame
        ``individuals.tsv``: columns individual, cluster.
    cells : DataFrame
        Columns cell, cluster: the NAM cell cluster of every cell kept.
    markers : DataFrame
        ``markers.tsv`` (columns cluster, rank, gene).
    truth_individuals, truth_cells, known_markers : DataFrame
        The demo's ``truth_individuals.tsv`` (individual, ancestry), ``truth_cells.tsv``
        (cell, cell_type) and ``known_markers.tsv`` (cell_type, gene).
    min_ari_individuals, min_ari_cells : float
        Pass thresholds of the two ARIs.
    min_known_markers : int
        Pass threshold of the smallest number of known markers found in a cluster's top markers.
    top_n : int or None
        Top markers per cluster considered (None: all in ``markers``).
    min_cluster_cells : int
        Clusters with fewer cells are listed but not checked for known markers: a rank test on
        a handful of cells finds no significant marker.
    leiden : DataFrame or None
        Leiden clusters of the same cells on the same expression PCs (``leiden/cells.tsv``:
        column cell and one ``leiden_<resolution>`` column per resolution); each gets
        informative rows ``ari_cells_<column>`` and ``n_cell_clusters_1pct_<column>``.

    Returns
    -------
    evaluation : DataFrame
        Columns metric, value, threshold, pass; thresholded rows: ari_individuals, ari_cells,
        min_known_markers_per_cluster; informative rows (threshold and pass empty): NMIs,
        cluster counts (``n_cell_clusters_1pct``: clusters holding >= 1 % of the cells), the share
        of cell clusters with at least one known marker, and Leiden's rows when given.
    recovery : DataFrame
        Per cell cluster: cluster, n_cells, cell_type (majority), purity, n_known_found,
        found_genes, tested (False for clusters of fewer than ``min_cluster_cells`` cells; they
        are left out of min_known_markers_per_cluster).
    """
    truth_ind = truth_individuals.set_index("individual")["ancestry"]
    truth_cell = truth_cells.set_index("cell")["cell_type"]
    ancestry = _aligned(individuals["individual"], truth_ind, "individuals")
    cell_type = _aligned(cells["cell"], truth_cell, "cells")
    ind = clustering_scores(individuals["cluster"], ancestry)
    cel = clustering_scores(cells["cluster"], cell_type)

    majority = majority_labels(cells["cluster"], cell_type)
    top_n = int(markers["rank"].max()) if top_n is None else top_n
    found = marker_recovery(
        markers, dict(zip(majority["cluster"], majority["majority"], strict=True)),
        known_markers, top_n=top_n,
    )
    recovery = majority.rename(columns={"n": "n_cells", "majority": "cell_type"}).merge(
        found[["cluster", "n_known_found", "found_genes"]], on="cluster", how="left"
    )
    recovery["tested"] = recovery["cluster"].isin(markers["cluster"].astype(str)) & (
        recovery["n_cells"] >= min_cluster_cells
    )
    recovery["n_known_found"] = recovery["n_known_found"].fillna(0).astype(np.int64)
    recovery["found_genes"] = recovery["found_genes"].fillna("")
    recovery = recovery.iloc[np.argsort([int(c[1:]) for c in recovery["cluster"]])]
    tested = recovery[recovery["tested"]]
    min_found = int(tested["n_known_found"].min()) if len(tested) else 0

    rows = [
        ("ari_individuals", ind["ari"], min_ari_individuals),
        ("ari_cells", cel["ari"], min_ari_cells),
        ("min_known_markers_per_cluster", min_found, min_known_markers),
        ("nmi_individuals", ind["nmi"], None),
        ("nmi_cells", cel["nmi"], None),
        ("n_individual_clusters", individuals["cluster"].nunique(), None),
        ("n_ancestries", len(np.unique(ancestry)), None),
        ("n_cell_clusters", cells["cluster"].nunique(), None),
        ("n_cell_types", len(np.unique(cell_type)), None),
        ("share_clusters_with_known_marker", float((tested["n_known_found"] > 0).mean()), None),
        ("n_cell_clusters_not_checked", int((~recovery["tested"]).sum()), None),
        ("n_cell_clusters_1pct", n_large_clusters(cells["cluster"]), None),
    ]
    if leiden is not None:
        rows += _leiden_rows(leiden, cells["cell"], cell_type)
    evaluation = pd.DataFrame(
        [
            (name, float(value), threshold, None if threshold is None else bool(value >= threshold))
            for name, value, threshold in rows
        ],
        columns=EVALUATION_COLUMNS,
    )
    for name, value, threshold, passed in evaluation.itertuples(index=False):
        logger.info(
            "%s = %.4g%s", name, value,
            "" if threshold is None or pd.isna(threshold)
            else f" (threshold {threshold:g}: {'pass' if passed else 'FAIL'})",
        )
    return evaluation, recovery.reset_index(drop=True)
