"""Marker genes of cell clusters, and a check that they recover known cell-type markers."""

from __future__ import annotations

import logging
import time

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NAMInputError
from .rank_sums import rank_sum_test

__all__ = [
    "rank_markers", "marker_recovery", "subsample_groups", "MARKER_COLUMNS", "RECOVERY_COLUMNS",
]

logger = logging.getLogger(__name__)

MARKER_COLUMNS = ["cluster", "rank", "gene", "score", "logfoldchange", "pval_adj"]
RECOVERY_COLUMNS = ["cluster", "cell_type", "n_known_found", "found_genes"]
_MIN_CELLS = 2
_METHODS = ("wilcoxon", "t-test", "t-test_overestim_var", "logreg")


def _expression(adata: ad.AnnData, layer: str | None):
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise NAMInputError(
            f"layer {layer!r} not found; available layers: {list(adata.layers.keys()) or 'none'}"
        )
    return adata.layers[layer]


def _warn_if_counts(X, where: str) -> None:
    """Log a warning when ``X`` looks like raw counts (integers with large values)."""
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    sample = values[: 100_000]
    if sample.size and sample.max() > 30 and np.all(sample == np.round(sample)):
        logger.warning(
            "%s looks like raw counts (whole numbers up to %g); marker genes expect "
            "log-normalised expression", where, float(sample.max()),
        )


def _groups_to_test(labels: pd.Series) -> list[str]:
    """Clusters with at least 2 cells; smaller ones are logged and skipped."""
    sizes = labels.value_counts(sort=False)
    small = sizes[sizes < _MIN_CELLS]
    for name, n in small.items():
        logger.info("cluster %s has %d cell(s); skipped for marker genes", name, n)
    return [str(g) for g in labels.cat.categories if sizes.get(g, 0) >= _MIN_CELLS]


def rank_markers(
    adata: ad.AnnData,
    groupby: str,
    n_genes: int = 10,
    method: str = "wilcoxon",
    layer: str | None = None,
) -> pd.DataFrame:
    """Top marker genes of each cluster, one cluster against all other cells.

    The Wilcoxon test is scanpy's (``rank_genes_groups``, no tie correction), computed by
    :func:`~nam_core.results.rank_sums.rank_sum_test`, which ranks the stored values of a
    sparse matrix only; the other methods call ``scanpy.tl.rank_genes_groups`` on a light copy.
    ``adata`` is not modified.

    Parameters
    ----------
    adata : AnnData (N, G)
        Log-normalised expression in ``X`` (or ``layers[layer]``).
    groupby : str
        ``obs`` column with the cluster of each cell.
    n_genes : int
        Markers reported per cluster.
    method : {"wilcoxon", "t-test", "t-test_overestim_var", "logreg"}
        Test of ``rank_genes_groups``.
    layer : str or None
        Layer to test instead of ``X``.

    Returns
    -------
    DataFrame with columns cluster (str), rank (1..n_genes), gene, score, logfoldchange (log2)
    and pval_adj (Benjamini-Hochberg; NaN for "logreg"), best markers first within a cluster.
    Clusters with fewer than 2 cells are skipped (logged).

    Raises
    ------
    NAMInputError
        Missing ``groupby`` column or layer, unknown method, or fewer than two clusters with
        at least 2 cells.
    """
    if groupby not in adata.obs.columns:
        raise NAMInputError(
            f"obs has no column {groupby!r}; available: {list(adata.obs.columns)}"
        )
    if method not in _METHODS:
        raise NAMInputError(f"method must be one of {_METHODS}, got {method!r}")
    X = _expression(adata, layer)
    _warn_if_counts(X, f"layer {layer!r}" if layer else "X")
    labels = adata.obs[groupby].astype(str).astype("category")
    groups = _groups_to_test(labels)
    if len(groups) < 2:
        raise NAMInputError(
            f"marker genes need at least two clusters in {groupby!r} with >= {_MIN_CELLS} "
            f"cells; found {len(groups)}"
        )
    t0 = time.perf_counter()
    if method == "wilcoxon":
        frames = _wilcoxon_markers(X, labels, groups, adata.var_names, n_genes)
    else:
        frames = _scanpy_markers(X, labels, groups, adata, groupby, n_genes, method)
    logger.info(
        "%s markers of %d clusters (%s) in %.1f s", method, len(groups), groupby,
        time.perf_counter() - t0,
    )
    return pd.concat(frames, ignore_index=True)[MARKER_COLUMNS]


def subsample_groups(labels, max_cells: int | None, seed: int = 0) -> np.ndarray:
    """Rows of at most ``max_cells`` cells of each group, drawn without replacement with ``seed``.

    Markers at scale: ranking on a fixed-size sample of each cluster keeps the test's time and
    memory independent of the cohort's size (groups smaller than ``max_cells`` are kept whole).

    Parameters
    ----------
    labels : array-like (N,)
        Group of each cell.
    max_cells : int or None
        Cells kept per group (None: all).
    seed : int

    Returns
    -------
    ndarray (n,) of int, sorted row numbers.
    """
    labels = pd.Series(np.asarray(labels).astype(str))
    if max_cells is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    rows = []
    for _, members in sorted(labels.groupby(labels).indices.items()):
        rows.append(members if members.size <= max_cells
                    else rng.choice(members, size=max_cells, replace=False))
    return np.sort(np.concatenate(rows))


def _marker_frame(cluster: str, genes, scores, logfoldchanges, pvals_adj) -> pd.DataFrame:
    """One cluster's rows of :func:`rank_markers`' table, best marker first."""
    return pd.DataFrame({
        "cluster": cluster,
        "rank": np.arange(1, len(genes) + 1),
        "gene": np.asarray(genes).astype(str),
        "score": np.asarray(scores, dtype=float),
        "logfoldchange": logfoldchanges,
        "pval_adj": pvals_adj,
    })


def _wilcoxon_markers(X, labels: pd.Series, groups: list[str], genes: pd.Index,
                      n_genes: int) -> list[pd.DataFrame]:
    """Top markers by the rank-sum test of :mod:`nam_core.results.rank_sums`."""
    codes = labels.cat.codes.to_numpy()
    categories = [str(c) for c in labels.cat.categories]
    result = rank_sum_test(X, codes, [categories.index(g) for g in groups])
    frames = []
    for row, group in enumerate(groups):
        best = np.argsort(-result.scores[row], kind="stable")[:n_genes]
        frames.append(_marker_frame(group, genes[best], result.scores[row, best],
                                    result.logfoldchanges[row, best], result.pvals_adj[row, best]))
    return frames


def _scanpy_markers(X, labels: pd.Series, groups: list[str], adata: ad.AnnData, groupby: str,
                    n_genes: int, method: str) -> list[pd.DataFrame]:
    """Top markers by ``scanpy.tl.rank_genes_groups`` on a light copy of ``adata``."""
    import scanpy as sc

    light = ad.AnnData(X=X, obs=pd.DataFrame({groupby: labels}, index=adata.obs_names),
                       var=pd.DataFrame(index=adata.var_names))
    sc.tl.rank_genes_groups(
        light, groupby, groups=groups, reference="rest", method=method,
        n_genes=min(n_genes, adata.n_vars), use_raw=False,
    )
    frames = []
    for g in groups:
        df = sc.get.rank_genes_groups_df(light, group=g).head(n_genes)
        frames.append(_marker_frame(g, df["names"], df["scores"], _column(df, "logfoldchanges"),
                                    _column(df, "pvals_adj")))
    return frames


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype=float) if name in df else np.full(len(df), np.nan)


def marker_recovery(
    markers_df: pd.DataFrame,
    cluster_to_type: dict,
    known_markers_df: pd.DataFrame,
    top_n: int = 10,
) -> pd.DataFrame:
    """How many of its cell type's known markers each cluster's top markers include.

    Parameters
    ----------
    markers_df : DataFrame
        Output of :func:`rank_markers` (columns cluster, rank, gene).
    cluster_to_type : dict
        Cell type of each cluster (keys compared as strings, so 0 and "0" are the same).
        Clusters not in it get cell_type NaN and 0 found.
    known_markers_df : DataFrame
        Columns cell_type, gene (e.g. the demo cohort's ``known_markers.tsv``).
    top_n : int
        Markers of each cluster considered (by rank).

    Returns
    -------
    DataFrame with columns cluster, cell_type, n_known_found (int) and found_genes
    (comma-separated, in marker rank order), one row per cluster of ``markers_df``.
    """
    _require(markers_df, ["cluster", "rank", "gene"], "markers table")
    _require(known_markers_df, ["cell_type", "gene"], "known markers table")
    mapping = {str(k): v for k, v in cluster_to_type.items()}
    known = known_markers_df.groupby(known_markers_df["cell_type"].astype(str))["gene"].apply(
        lambda s: set(s.astype(str))
    )
    rows = []
    for cluster, df in markers_df.groupby(markers_df["cluster"].astype(str), sort=False):
        top = df.sort_values("rank").head(top_n)["gene"].astype(str)
        cell_type = mapping.get(cluster, np.nan)
        found = [g for g in top if pd.notna(cell_type) and g in known.get(str(cell_type), set())]
        if pd.notna(cell_type) and str(cell_type) not in known.index:
            logger.warning("cell type %r of cluster %s has no known markers", cell_type, cluster)
        rows.append((cluster, cell_type, len(found), ",".join(found)))
    out = pd.DataFrame(rows, columns=RECOVERY_COLUMNS)
    out["n_known_found"] = out["n_known_found"].astype(np.int64)
    return out


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NAMInputError(f"{what} lacks columns {missing}; has {list(df.columns)}")
