"""Cell clusters named by known markers.

Each cluster's score for each cell type of a marker table is the mean AUROC
(:mod:`nam_core.results.auroc`) of that type's markers, cluster against the rest
(:func:`score_cell_types`); :func:`name_clusters` gives each cluster its best type, or
``"unassigned"`` when the best score is below ``min_score``. The permutation test of marker
strength is :mod:`nam_core.results.marker_permutation`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NAMInputError
from .auroc import cluster_auroc, rank_matrix, rows_of_x
from .labels import cluster_number
from .markers import subsample_groups

__all__ = [
    "DEFAULT_MIN_SCORE",
    "DEFAULT_MIN_MARKERS",
    "UNASSIGNED",
    "read_marker_table",
    "score_cell_types",
    "name_clusters",
    "apply_name_overrides",
    "display_labels",
    "name_cell_clusters",
    "add_cell_type_names",
    "add_cell_groups",
]

logger = logging.getLogger(__name__)

#: Markers of a type that must be among the data's genes for the type to be scored. Three: on
#: cells of known type (``benchmarks/naming.py``: pbmc68k's 700 FACS-labelled cells, the demo,
#: the ten-type generator, all on pbmc68k's 765 genes) two markers named fewer cells right on
#: every data set (a type whose weaker markers are missing from the panel outscores a type
#: measured on all of its markers), with or without counting the missing ones as chance. Two
#: remain possible (``naming.min_markers``); each name carries the number of markers behind it
#: (``n_markers`` in the names tables).
DEFAULT_MIN_MARKERS = 3
#: Best mean AUROC below which a cluster stays unassigned: 0.7, the lower bound of "acceptable
#: discrimination" in Hosmer & Lemeshow's convention for the area under the ROC curve.
DEFAULT_MIN_SCORE = 0.7
UNASSIGNED = "unassigned"


def read_marker_table(path) -> pd.DataFrame:
    """A marker table: TSV with columns cell_type and gene (further columns are kept).

    Lines starting with ``#`` are comments (sources). Raises :class:`NAMInputError` naming the
    file for a missing column, an empty table or a duplicated (cell_type, gene) row.
    """
    path = Path(path)
    if not path.is_file():
        raise NAMInputError(f"marker table {path} does not exist")
    table = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    missing = {"cell_type", "gene"} - set(table.columns)
    if missing:
        raise NAMInputError(f"marker table {path} lacks columns {sorted(missing)}; has {list(table.columns)}")
    table = table.assign(cell_type=table["cell_type"].str.strip(), gene=table["gene"].str.strip())
    table = table[(table["cell_type"] != "") & (table["gene"] != "")]
    if table.empty:
        raise NAMInputError(f"marker table {path} has no (cell_type, gene) rows")
    dup = table.duplicated(["cell_type", "gene"])
    if dup.any():
        row = table[dup].iloc[0]
        raise NAMInputError(f"marker table {path} repeats {row['gene']} for {row['cell_type']}")
    return table.reset_index(drop=True)


def score_cell_types(
    auroc: pd.DataFrame, markers: pd.DataFrame, min_markers: int = DEFAULT_MIN_MARKERS,
    absent_as_chance: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean AUROC of each cell type's markers in each cluster.

    Parameters
    ----------
    auroc : DataFrame (clusters, genes)
        AUROC of each gene (columns) for each cluster (index).
    markers : DataFrame
        Columns cell_type, gene (:func:`read_marker_table`).
    min_markers : int
        A type with fewer of its markers among the genes gets no score (NaN; logged), or all
        its markers when the table lists fewer.
    absent_as_chance : bool
        Average over every marker of the type, those absent from the genes counting as chance
        (AUROC 0.5), so a type is not favoured because the data lack its weaker markers; False:
        the mean over the markers found.

    Returns
    -------
    scores : DataFrame (clusters, cell types)
        NaN for a type with too few of its markers among the genes.
    used : DataFrame
        Columns cell_type, n_markers (in the table), n_found (among the genes), genes_found.
    """
    genes = set(map(str, auroc.columns))
    scores, used = {}, []
    for cell_type, df in markers.groupby("cell_type", sort=False):
        found = [g for g in df["gene"] if g in genes]
        scored = len(found) >= min(min_markers, len(df)) and len(found) > 0
        used.append((cell_type, len(df), len(found), ",".join(found), scored))
        absent = len(df) - len(found) if absent_as_chance else 0
        scores[cell_type] = ((auroc[found].sum(axis=1) + 0.5 * absent) / (len(found) + absent)
                             if scored else pd.Series(np.nan, index=auroc.index))
    used = pd.DataFrame(used, columns=["cell_type", "n_markers", "n_found", "genes_found", "scored"])
    for row in used[~used["scored"]].itertuples():
        logger.warning("cell type %s: %d of its %d markers in the data (fewer than %d); not scored",
                       row.cell_type, row.n_found, row.n_markers, min_markers)
    return pd.DataFrame(scores, index=auroc.index), used


def name_clusters(scores: pd.DataFrame, min_score: float = DEFAULT_MIN_SCORE) -> pd.DataFrame:
    """The best cell type of each cluster, or ``"unassigned"`` below ``min_score``.

    Returns
    -------
    DataFrame with columns cluster, cell_type, score (best mean AUROC), second_type,
    second_score, margin (score - second_score), assigned (bool).
    """
    if scores.empty or scores.isna().all().all():
        raise NAMInputError("no cell type of the marker table has a marker among the genes")
    values = scores.to_numpy(dtype=np.float64)
    filled = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-filled, axis=1, kind="stable")
    rows = np.arange(len(scores))
    best, second = order[:, 0], order[:, 1] if scores.shape[1] > 1 else order[:, 0]
    types = scores.columns.to_numpy(dtype=object)
    out = pd.DataFrame({
        "cluster": scores.index.astype(str),
        "cell_type": types[best],
        "score": values[rows, best],
        "second_type": types[second] if scores.shape[1] > 1 else "",
        "second_score": values[rows, second] if scores.shape[1] > 1 else np.nan,
    })
    out["margin"] = out["score"] - out["second_score"]
    out["assigned"] = out["score"] >= min_score
    out.loc[~out["assigned"], "cell_type"] = UNASSIGNED
    return out


def _with_markers_behind(named: pd.DataFrame, used: pd.DataFrame) -> pd.DataFrame:
    """``named`` with the evidence behind each name, scores to 3 decimals, shares to 4.

    n_markers and markers: the named type's markers found among the genes, on which its score is
    the mean AUROC (empty when unassigned).
    """
    found = used.set_index("cell_type")
    named = named.copy()
    named["n_markers"] = named["cell_type"].map(found["n_found"]).fillna(0).astype(np.int64)
    named["markers"] = named["cell_type"].map(found["genes_found"]).fillna("")
    named[["score", "second_score", "margin"]] = named[["score", "second_score", "margin"]].round(3)
    named["share"] = named["share"].round(4)
    return named


def apply_name_overrides(named: pd.DataFrame, overrides: dict | None, key: str = "cluster",
                         prefix: str = "C") -> pd.DataFrame:
    """``named`` renamed by hand: ``overrides`` ({cluster: name}) keys starting with ``prefix``.

    Column overridden marks the renamed rows (assigned set true). A key of that prefix that is not in ``named[key]`` raises NAMInputError naming the clusters.
    """
    named = named.copy()
    named["overridden"] = False
    chosen = {str(k): str(v) for k, v in (overrides or {}).items() if str(k).startswith(prefix)}
    unknown = sorted(set(chosen) - set(named[key].astype(str)))
    if unknown:
        raise NAMInputError(f"naming.overrides: {', '.join(unknown)} not among this run's "
                            f"{key}s ({', '.join(named[key].astype(str))})")
    rows = named[key].astype(str).isin(list(chosen))
    named.loc[rows, "cell_type"] = named.loc[rows, key].astype(str).map(chosen)
    named.loc[rows, ["assigned", "overridden"]] = True
    for cluster, name in chosen.items():
        logger.info("naming.overrides: %s named %s by hand", cluster, name)
    return named


def display_labels(clusters, names: dict | None) -> np.ndarray:
    """``"C3 B"``-style labels: cluster and its cell-type name (the cluster alone without one)."""
    clusters = np.asarray(clusters, dtype=str)
    if not names:
        return clusters
    return np.array([f"{c} {names[c]}" if c in names else c for c in clusters], dtype=object).astype(str)


def name_cell_clusters(
    adata,
    markers: pd.DataFrame,
    groupby: str = "nam_cell_cluster",
    min_score: float = DEFAULT_MIN_SCORE,
    min_markers: int = DEFAULT_MIN_MARKERS,
    max_cells_per_cluster: int | None = None,
    seed: int = 0,
    x_rows=None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Name every cluster of ``adata.obs[groupby]`` from a marker table.

    Only the marker genes of at most ``max_cells_per_cluster`` cells of each cluster (a seeded
    subsample, :func:`~nam_core.results.markers.subsample_groups`; None: all cells) are ranked,
    so the cost is O(cells ranked x markers). ``x_rows`` (sorted rows -> X of those rows) reads
    them when ``adata`` holds no X (:func:`~nam_core.inputs.h5ad.read_annotations`).

    Returns
    -------
    names : DataFrame
        :func:`name_clusters` plus n_cells and share (of all cells), n_markers and markers (the
        named type's markers found among the genes: the evidence behind the name), clusters in
        number order.
    scores : DataFrame
        cluster, then the mean-AUROC score of every cell type.
    used : DataFrame
        Markers of each type found among the genes (:func:`score_cell_types`).
    """
    if groupby not in adata.obs.columns:
        raise NAMInputError(f"obs has no column {groupby!r}; available: {list(adata.obs.columns)}")
    genes = [g for g in dict.fromkeys(markers["gene"]) if g in set(adata.var_names)]
    clusters = adata.obs[groupby].astype(str).to_numpy()
    rows = subsample_groups(clusters, max_cells_per_cluster, seed)
    names, codes = np.unique(clusters[rows], return_inverse=True)
    if genes:
        columns = adata.var_names.get_indexer(genes)
        auroc = cluster_auroc(rank_matrix(rows_of_x(adata, rows, x_rows)[:, columns]), codes,
                              names.size)
    else:
        auroc = np.empty((names.size, 0))
    scores, used = score_cell_types(pd.DataFrame(auroc, index=names, columns=genes), markers,
                                    min_markers)
    named = name_clusters(scores, min_score)
    sizes = pd.Series(clusters).value_counts()
    named.insert(1, "n_cells", named["cluster"].map(sizes).to_numpy())
    named.insert(2, "share", named["n_cells"] / clusters.size)
    named = _with_markers_behind(named, used)
    order = np.argsort([cluster_number(c) for c in named["cluster"]], kind="stable")
    named = named.iloc[order].reset_index(drop=True)
    logger.info("named %d clusters: %s", len(named),
                ", ".join(f"{c}={t} ({s:.2f})" for c, t, s in
                          zip(named["cluster"], named["cell_type"], named["score"], strict=True)))
    return named, scores.iloc[order].rename_axis("cluster").reset_index(), used


def add_cell_type_names(obs: pd.DataFrame, names: pd.DataFrame,
                        groupby: str = "nam_cell_cluster") -> pd.DataFrame:
    """``obs`` with columns nam_cell_type (category) and nam_cell_type_score from ``names``.

    Raises :class:`NAMInputError` when a cluster of ``obs`` has no row in ``names``.
    """
    mapping = names.set_index(names["cluster"].astype(str))
    clusters = obs[groupby].astype(str)
    missing = sorted(set(clusters) - set(mapping.index))
    if missing:
        raise NAMInputError(f"the names table has no row for clusters {missing}; rerun naming")
    out = obs.copy()
    types = clusters.map(mapping["cell_type"])
    out["nam_cell_type"] = pd.Categorical(types, categories=list(dict.fromkeys(mapping["cell_type"])))
    out["nam_cell_type_score"] = clusters.map(mapping["score"]).astype(np.float32)
    return out


def add_cell_groups(obs: pd.DataFrame, groups: pd.DataFrame,
                    atoms: str = "nam_cell_cluster") -> pd.DataFrame:
    """``obs`` with column nam_cell_group (category T1, T2, ...), each cell's atom's type.

    ``groups`` is cell_types/groups.tsv (columns atom and group).

    Raises :class:`NAMInputError` when an atom of ``obs`` has no row in ``groups``.
    """
    mapping = pd.Series(groups["group"].astype(str).to_numpy(),
                        index=groups["atom"].astype(str).to_numpy())
    labels = obs[atoms].astype(str)
    missing = sorted(set(labels) - set(mapping.index))
    if missing:
        raise NAMInputError(f"cell_types/groups.tsv has no row for atoms {missing}; rerun "
                            "group_cell_atoms")
    out = obs.copy()
    order = sorted(set(mapping), key=cluster_number)
    out["nam_cell_group"] = pd.Categorical(labels.map(mapping), categories=order)
    return out

