"""Frequentist tests of composition: propeller's t-tests and ANOVA, and a regression on genotype PCs.

Both transform each individual's proportions (:func:`transform_proportions`), test the cell
clusters of :func:`~.counts.tested_cell_clusters` and adjust p-values by Benjamini-Hochberg.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import NAMInputError
from .contrasts import contrasts, with_cell_types
from .counts import MIN_MEAN_CELLS, PSEUDO_COUNT, counts_with_cells, tested_cell_clusters

__all__ = ["genotype_regression", "inverse_normal", "propeller_test", "transform_proportions"]


def transform_proportions(counts: np.ndarray, transform: str = "logit") -> np.ndarray:
    """Per-individual proportions on propeller's scales.

    Parameters
    ----------
    counts : array (J, L)
        Cells of each individual in each cell cluster (individuals without cells are dropped
        by the caller).
    transform : {"logit", "asin", "inverse_normal"}
        ``logit``: log((n + 0.5) / (N + 0.5 L - n - 0.5)), propeller's pseudo-count of 0.5;
        ``asin``: arcsin(sqrt(n / N)); ``inverse_normal``: per cell cluster, the rank of n / N
        over individuals (ties averaged) mapped to Phi^-1((rank - 3/8) / (J + 1/4)) (Blom).

    Returns
    -------
    ndarray (J, L) float64
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise NAMInputError("transform_proportions got an individual without cells")
    if transform == "logit":
        p = (counts + PSEUDO_COUNT) / (totals + PSEUDO_COUNT * counts.shape[1])
        return np.log(p) - np.log1p(-p)
    if transform == "asin":
        return np.arcsin(np.sqrt(counts / totals))
    if transform == "inverse_normal":
        return inverse_normal(counts / totals)
    raise NAMInputError(f"transform must be 'logit', 'asin' or 'inverse_normal', got {transform!r}")


def inverse_normal(values: np.ndarray) -> np.ndarray:
    """Rank-based inverse normal transform of each column: Phi^-1((rank - 3/8) / (n + 1/4)).

    Ranks over rows, ties averaged (Blom 1958). Shape (n, m) in, (n, m) float64 out.
    """
    values = np.asarray(values, dtype=np.float64)
    ranks = stats.rankdata(values, axis=0, method="average")
    return stats.norm.ppf((ranks - 0.375) / (values.shape[0] + 0.25))


def _bh(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def propeller_test(
    counts: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> pd.DataFrame:
    """Propeller-style tests of each cell cluster's proportion across individual clusters.

    Per cell cluster, the transformed per-individual proportions are compared with Student's
    t-test for each contrast of :func:`contrasts` (each cluster against the pooled rest, each
    pair) and with a one-way ANOVA across all individual clusters (contrast ``"all"``);
    p-values are Benjamini-Hochberg adjusted within each contrast over cell clusters. Unlike
    propeller, variances are not moderated (no limma); with tens of individuals per cluster
    this changes little.

    Parameters
    ----------
    counts : DataFrame
        ``composition/cells_per_individual.tsv``: individual, cluster (``I<k>``), then cells per
        cell cluster. Individuals without cells are left out.
    transform : {"logit", "asin", "inverse_normal"}
    names : dict or None
        Cell-type name of each cell cluster.
    min_mean_cells : float
        Only the cell clusters of :func:`tested_cell_clusters` are tested (transforms use all).

    Returns
    -------
    DataFrame with columns contrast, group_a, group_b, cell_cluster, [cell_type,] prop_a,
    prop_b (mean per-individual proportions; NaN for "all"), statistic (t or F), p_value, fdr,
    called (fdr < 0.05).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = counts_with_cells(counts)
    keep = [all_cols.index(c) for c in tested]
    values = transform_proportions(counts[all_cols].to_numpy(), transform)[:, keep]
    shares = counts[all_cols].to_numpy(dtype=np.float64)
    shares = (shares / shares.sum(axis=1, keepdims=True))[:, keep]
    cell_cols = tested
    clusters = counts["cluster"].astype(str).to_numpy()
    k_names = sorted(set(clusters), key=lambda n: int(n[1:]))
    sizes = np.array([(clusters == k).sum() for k in k_names])
    frames = []
    for label, wa, wb in contrasts(k_names, sizes):
        in_a = np.isin(clusters, np.asarray(k_names)[wa > 0])
        in_b = np.isin(clusters, np.asarray(k_names)[wb > 0])
        if in_a.sum() < 2 or in_b.sum() < 2:
            t, p = np.full(len(cell_cols), np.nan), np.full(len(cell_cols), np.nan)
        else:
            t, p = stats.ttest_ind(values[in_a], values[in_b], axis=0)
        group_a, group_b = label.split(" vs ")
        frames.append(pd.DataFrame({
            "contrast": label, "group_a": group_a, "group_b": group_b, "cell_cluster": cell_cols,
            "prop_a": shares[in_a].mean(0), "prop_b": shares[in_b].mean(0),
            "statistic": t, "p_value": p, "fdr": _bh(p)}))
    groups = [values[clusters == k] for k in k_names if (clusters == k).sum() >= 2]
    if len(groups) >= 2:
        f, p = stats.f_oneway(*groups, axis=0)
        frames.append(pd.DataFrame({
            "contrast": "all", "group_a": "all", "group_b": "", "cell_cluster": cell_cols,
            "prop_a": np.nan, "prop_b": np.nan, "statistic": f, "p_value": p, "fdr": _bh(p)}))
    columns = ["contrast", "group_a", "group_b", "cell_cluster", "prop_a", "prop_b",
               "statistic", "p_value", "fdr"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table["called"] = table["fdr"].astype(float) < 0.05
    return with_cell_types(table, names)


def genotype_regression(
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> pd.DataFrame:
    """Per cell cluster, least squares of the transformed proportion on the genotype PCs.

    Model: t(p_jl) = b0 + sum_q b_q PC_jq + e_j over individuals j with cells. Term ``all`` is
    the F-test of every PC together (R^2 in its own column), ``PC<q>`` the t-test of one.
    p-values are Benjamini-Hochberg adjusted within each term over cell clusters.

    Parameters
    ----------
    counts : DataFrame
        ``composition/cells_per_individual.tsv`` (individual, cluster, cells per cell cluster).
    pcs : DataFrame
        Genotype PCs: column individual, then PC columns (``individuals.tsv`` or
        ``genotypes/pcs.tsv``); columns starting with ``PC`` are used.
    transform : {"logit", "asin", "inverse_normal"}
    names : dict or None
    min_mean_cells : float
        Only the cell clusters of :func:`tested_cell_clusters` are tested (transforms use all).

    Returns
    -------
    DataFrame with columns cell_cluster, [cell_type,] term, estimate (NaN for "all"),
    statistic (t or F), p_value, fdr, r2, n_individuals, called (fdr < 0.05).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = counts_with_cells(counts)
    pc_cols = [c for c in pcs.columns if str(c).startswith("PC")]
    if "individual" not in pcs.columns or not pc_cols:
        raise NAMInputError(f"genotype PC table needs columns individual and PC1..; has {list(pcs.columns)}")
    pcs = pcs.set_index(pcs["individual"].astype(str))
    missing = pd.Index(counts["individual"].astype(str)).difference(pcs.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {list(missing[:5])}")
    Y = transform_proportions(counts[all_cols].to_numpy(), transform)
    Y, cell_cols = Y[:, [all_cols.index(c) for c in tested]], tested
    X = pcs.loc[counts["individual"].astype(str), pc_cols].to_numpy(dtype=np.float64)
    n, q = X.shape
    if n <= q + 1:
        raise NAMInputError(f"{n} individuals with cells cannot fit {q} genotype PCs and an intercept")
    design = np.column_stack([np.ones(n), X])
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    resid = Y - design @ coef
    df_resid = n - q - 1
    sigma2 = (resid**2).sum(0) / df_resid
    se = np.sqrt(np.outer(np.diag(np.linalg.pinv(design.T @ design)), sigma2))
    t = coef / se
    p_t = 2 * stats.t.sf(np.abs(t), df_resid)
    tss = ((Y - Y.mean(0)) ** 2).sum(0)
    r2 = 1 - (resid**2).sum(0) / tss
    f = (r2 / q) / ((1 - r2) / df_resid)
    p_f = stats.f.sf(f, q, df_resid)
    frames = [pd.DataFrame({"cell_cluster": cell_cols, "term": "all", "estimate": np.nan,
                            "statistic": f, "p_value": p_f, "fdr": _bh(p_f), "r2": r2})]
    for i, pc in enumerate(pc_cols, start=1):
        frames.append(pd.DataFrame({"cell_cluster": cell_cols, "term": pc, "estimate": coef[i],
                                    "statistic": t[i], "p_value": p_t[i], "fdr": _bh(p_t[i]),
                                    "r2": r2}))
    table = pd.concat(frames, ignore_index=True)
    table["n_individuals"] = n
    table["called"] = table["fdr"] < 0.05
    return with_cell_types(table, names)
