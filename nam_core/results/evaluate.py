"""Scores of a fitted NAM on the demo cohort (the result tables are in :mod:`.tables`).

For the demo the workflow scores the clusters against the truth with :func:`evaluate_demo`:
adjusted Rand index (ARI) and normalised mutual information (NMI) of the individual clusters
against the ancestry groups and of the cell clusters against the cell types, and the known
markers of its cell type that each cell cluster's top markers include.

Cluster names: individual clusters are ``I1, I2, ...`` and cell clusters ``C1, C2, ...``, numbered
in the model's label order (1 = largest expected size).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ..errors import NAMInputError
from .labels import (  # re-exported: their home used to be here
    cell_cluster_names,
    individual_cluster_names,
)
from .leiden import n_large_clusters
from .markers import marker_recovery
from .tables import individual_table  # re-exported: its home used to be here

__all__ = [
    "individual_cluster_names",
    "cell_cluster_names",
    "individual_table",
    "majority_labels",
    "clustering_scores",
    "evaluate_demo",
    "EVALUATION_COLUMNS",
]

logger = logging.getLogger(__name__)

EVALUATION_COLUMNS = ["metric", "value", "threshold", "pass"]


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
        ``individuals.tsv``: columns individual, cluster; optional column group (the individual
        group, ``individual_groups/individuals.tsv``) adds rows ari_individual_groups
        (thresholded like ari_individuals), nmi_individual_groups and n_individual_groups.
    cells : DataFrame
        Columns cell, cluster: the NAM cell cluster (atom) of every cell kept; optional column
        type (the cell type, a group of atoms) adds rows ari_cell_types (thresholded like
        ari_cells), nmi_cell_types, n_nam_cell_types and n_nam_cell_types_1pct.
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
    if "group" in individuals.columns:
        grp = clustering_scores(individuals["group"], ancestry)
        rows += [
            ("ari_individual_groups", grp["ari"], min_ari_individuals),
            ("nmi_individual_groups", grp["nmi"], None),
            ("n_individual_groups", individuals["group"].nunique(), None),
        ]
    if "type" in cells.columns:
        typ = clustering_scores(cells["type"], cell_type)
        rows += [
            ("ari_cell_types", typ["ari"], min_ari_cells),
            ("nmi_cell_types", typ["nmi"], None),
            ("n_nam_cell_types", cells["type"].nunique(), None),
            ("n_nam_cell_types_1pct", n_large_clusters(cells["type"]), None),
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
