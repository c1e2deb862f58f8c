"""Frequentist tests of composition: propeller's tests by a linear model, adjusted for covariates.

Transforms each individual's proportions (:func:`transform_proportions`), tests the cell
clusters of :func:`~.counts.tested_cell_clusters` and adjusts p-values by Benjamini-Hochberg.
The genotype association is in :mod:`.association`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import NAMInputError
from .adjust import Covariates, covariate_columns
from .contrasts import contrasts, with_cell_types
from .counts import MIN_MEAN_CELLS, PSEUDO_COUNT, counts_with_cells, tested_cell_clusters
from .glm import bh, nested_f_test, ols_fit

__all__ = ["inverse_normal", "propeller_test", "transform_proportions"]

logger = logging.getLogger(__name__)


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


def _group_test(values: np.ndarray, indicators: np.ndarray, covariates: Covariates | None,
                individuals: np.ndarray, label: str,
                joint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Test of the group indicators (n, g) given the covariates: t (one, not joint) or F, and p.

    Least squares of each column of ``values`` (n, m) on an intercept, the indicators and the
    covariates (:func:`covariate_columns` over these donors). One indicator: its t-test (Student's
    two-sample t-test when there are no covariates); ``joint``: the F-test of all of them (one-way
    ANOVA without covariates). NaN, with a warning, when the design is singular.
    """
    cov, _ = covariate_columns(covariates, individuals)
    X = np.column_stack([indicators, cov])
    m = values.shape[1]
    try:
        if not joint:
            fit = ols_fit(values, X)
            return fit["t"][1], fit["p"][1]
        tested = np.arange(X.shape[1]) < indicators.shape[1]
        return nested_f_test(values, X, tested)
    except NAMInputError as err:
        logger.warning("contrast %s not tested: %s", label, err)
        return np.full(m, np.nan), np.full(m, np.nan)


def propeller_test(
    counts: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
    covariates: Covariates | None = None,
) -> pd.DataFrame:
    """Propeller-style tests of each cell cluster's proportion across individual clusters.

    As propeller does with limma (Phipson et al. 2022), a linear model per cell cluster of the
    transformed per-individual proportion on the group indicator(s) and the donor covariates
    (numeric centred, categorical one-hot with the first level dropped): for each contrast of
    :func:`contrasts` (each cluster against the pooled rest, each pair) the t-test of the
    indicator of side A over the individuals of both sides, and across all individual clusters
    (contrast ``"all"``) the F-test of the K - 1 cluster indicators. Without covariates these
    are Student's t-test and the one-way ANOVA. p-values are Benjamini-Hochberg adjusted within
    each contrast over cell clusters. Unlike limma, variances are not moderated: with tens of
    individuals per cluster and a handful of cell types the prior's degrees of freedom are
    poorly estimated and change little. Individuals without covariates (``covariates.missing:
    drop``) are left out.

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
    covariates : Covariates or None
        Donor covariates adjusted for (None: none).

    Returns
    -------
    DataFrame with columns contrast, group_a, group_b, cell_cluster, [cell_type,] prop_a,
    prop_b (mean per-individual proportions; NaN for "all"), statistic (t or F), p_value, fdr,
    called (fdr < 0.05), adjusted_for (the covariate columns, comma-separated; empty: none).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = counts_with_cells(counts)
    keep = [all_cols.index(c) for c in tested]
    values = transform_proportions(counts[all_cols].to_numpy(), transform)[:, keep]
    shares = counts[all_cols].to_numpy(dtype=np.float64)
    shares = (shares / shares.sum(axis=1, keepdims=True))[:, keep]
    individuals = counts["individual"].astype(str).to_numpy()
    with_cov = covariates.kept(individuals) if covariates is not None else np.ones(len(counts), bool)
    if not with_cov.all():
        logger.info("propeller-style tests: %d individuals without covariates left out",
                    int((~with_cov).sum()))
    values, shares, individuals = values[with_cov], shares[with_cov], individuals[with_cov]
    clusters = counts["cluster"].astype(str).to_numpy()[with_cov]
    cell_cols = tested
    k_names = sorted(set(clusters), key=lambda n: int(n[1:]))
    sizes = np.array([(clusters == k).sum() for k in k_names])
    frames = []
    for label, wa, wb in contrasts(k_names, sizes):
        in_a = np.isin(clusters, np.asarray(k_names)[wa > 0])
        in_b = np.isin(clusters, np.asarray(k_names)[wb > 0])
        if in_a.sum() < 2 or in_b.sum() < 2:
            t, p = np.full(len(cell_cols), np.nan), np.full(len(cell_cols), np.nan)
        else:
            both = in_a | in_b
            t, p = _group_test(values[both], in_a[both, None].astype(np.float64), covariates,
                               individuals[both], label)
        group_a, group_b = label.split(" vs ")
        frames.append(pd.DataFrame({
            "contrast": label, "group_a": group_a, "group_b": group_b, "cell_cluster": cell_cols,
            "prop_a": shares[in_a].mean(0), "prop_b": shares[in_b].mean(0),
            "statistic": t, "p_value": p, "fdr": bh(p)}))
    present = [k for k in k_names if (clusters == k).sum() >= 2]
    if len(present) >= 2:
        rows = np.isin(clusters, present)
        indicators = (clusters[rows, None] == np.asarray(present[1:])[None]).astype(np.float64)
        f, p = _group_test(values[rows], indicators, covariates, individuals[rows], "all",
                           joint=True)
        frames.append(pd.DataFrame({
            "contrast": "all", "group_a": "all", "group_b": "", "cell_cluster": cell_cols,
            "prop_a": np.nan, "prop_b": np.nan, "statistic": f, "p_value": p, "fdr": bh(p)}))
    columns = ["contrast", "group_a", "group_b", "cell_cluster", "prop_a", "prop_b",
               "statistic", "p_value", "fdr"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table["called"] = table["fdr"].astype(float) < 0.05
    table["adjusted_for"] = ",".join(covariates.names) if covariates is not None else ""
    return with_cell_types(table, names)
