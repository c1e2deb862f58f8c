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
from ..labels import cluster_number
from .adjust import Covariates, covariate_columns
from .contrasts import contrasts, with_cell_types
from .counts import MIN_MEAN_CELLS, PSEUDO_COUNT, counts_with_cells, tested_cell_clusters
from .glm import bh, nested_f_test, ols_fit, squeeze_variances

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


def _groups_f_test(values: np.ndarray, indicators: np.ndarray, covariates: Covariates | None,
                   individuals: np.ndarray, moderate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """F-test of the group indicators (n, g) given the covariates, per column of ``values``.

    Least squares of each column of ``values`` (n, m) on an intercept, the indicators and the
    covariates (:func:`covariate_columns` over these donors); without covariates, the one-way
    ANOVA. ``moderate``: the residual variances are squeezed across the m cell clusters
    (:func:`~.glm.squeeze_variances`) and the statistics use them on df + d0 degrees of
    freedom (at most m df), as limma's moderated F. Returns F and p, (m,) each; NaN, with a
    warning, when the design is singular.
    """
    cov, _ = covariate_columns(covariates, individuals)
    X = np.column_stack([indicators, cov])
    m = values.shape[1]
    try:
        fit = ols_fit(values, X)
        tested = np.arange(X.shape[1]) < indicators.shape[1]
        f, _ = nested_f_test(values, X, tested)
    except NAMInputError as err:
        logger.warning("contrast all not tested: %s", err)
        return np.full(m, np.nan), np.full(m, np.nan)
    s2 = fit["rss"] / fit["df"]
    posterior, df = _residual_variances(s2, fit["df"], moderate)
    f = f * np.divide(s2, posterior, out=np.ones_like(s2), where=posterior > 0)
    return f, stats.f.sf(f, int(tested.sum()), df)


def _residual_variances(s2: np.ndarray, df: int, moderate: bool) -> tuple[np.ndarray, float]:
    """Residual variances (m,) and their degrees of freedom, squeezed across the m clusters.

    ``moderate`` (and m >= 2, every s^2 > 0): limma's empirical-Bayes posterior variances
    (:func:`~.glm.squeeze_variances`) on df + d0 degrees of freedom, capped at m df, the
    information of all m fits pooled. Otherwise s^2 on df, unchanged.
    """
    if moderate and len(s2) >= 2 and (s2 > 0).all():
        posterior, d0 = squeeze_variances(s2, df)
        return posterior, min(df + d0, len(s2) * df)
    return s2, df


def _propeller_contrasts(names: list, sizes: np.ndarray) -> list:
    """The contrasts of :func:`contrasts` that a transformed-scale test answers as users read them.

    With two groups, each against the other (``"I1 vs rest"``). With three or more, the pairs
    only: the mean transformed share of a "rest" that mixes groups is not the transform of the
    rest's share, so a test against it can call a share difference of 0.001 and miss one of
    0.13 (the demo, logit scale); the pairs and the ANOVA (``"all"``) say the same without it.
    """
    pairs = contrasts(names, sizes)
    if len(names) <= 2:
        return pairs
    return [c for c in pairs if not c[0].endswith(" vs rest")]


def _contrast_tests(values: np.ndarray, clusters: np.ndarray, names: list, contrast_list: list,
                    covariates: Covariates | None, individuals: np.ndarray,
                    moderate: bool) -> list[tuple[np.ndarray, ...]]:
    """Every contrast of group means from one linear model, as limma's contrasts.fit does.

    ``values`` (n, m) on an intercept, the indicators of groups ``names[1:]`` and the covariates,
    over every individual. A contrast (weights a, b (G,) over ``names``, each summing to one)
    estimates sum_g (a_g - b_g) mean_g given the covariates, with variance s^2 c'(X'X)^-1 c: s^2
    is the residual variance pooled within all groups, so a "rest" that mixes groups of
    different shares neither inflates the variance nor moves the estimate off the groups'
    means. ``moderate`` squeezes s^2 across the m cell clusters (:func:`~.glm.squeeze_variances`).
    Returns (estimate, se, t, p), each (m,), per contrast; NaN, with a warning, for a singular
    design.
    """
    m = values.shape[1]
    cov, _ = covariate_columns(covariates, individuals)
    indicators = (clusters[:, None] == np.asarray(names[1:])[None]).astype(np.float64)
    try:
        fit = ols_fit(values, np.column_stack([indicators, cov]))
    except NAMInputError as err:
        logger.warning("propeller-style contrasts not tested: %s", err)
        return [tuple(np.full(m, np.nan) for _ in range(4)) for _ in contrast_list]
    s2, df = _residual_variances(fit["rss"] / fit["df"], fit["df"], moderate)
    out = []
    for _, a, b in contrast_list:
        c = np.zeros(fit["coef"].shape[0])
        c[1:len(names)] = (a - b)[1:]  # the intercept's weights cancel: a and b each sum to one
        estimate = c @ fit["coef"]
        se = np.sqrt(s2 * (c @ fit["unscaled"] @ c))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = estimate / se
        out.append((estimate, se, t, 2 * stats.t.sf(np.abs(t), df)))
    return out


def propeller_test(
    counts: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
    covariates: Covariates | None = None,
    moderate: bool = False,
) -> pd.DataFrame:
    """Propeller-style tests of each cell cluster's proportion across individual clusters.

    As propeller does with limma (Phipson et al. 2022), a linear model per cell cluster of the
    transformed per-individual proportion on the group indicator(s) and the donor covariates
    (numeric centred, categorical one-hot with the first level dropped), fitted once over every
    individual: each pair of individual clusters (with two clusters, ``"I1 vs rest"`` and
    ``"I2 vs rest"``; :func:`_propeller_contrasts` says why there is no "vs rest" with more) is a
    t-test of the difference of their means, with the residual variance pooled within all
    groups (limma's contrasts.fit; :func:`_contrast_tests`), and across all individual clusters
    (contrast ``"all"``) the F-test of the K - 1 cluster indicators. Without covariates, a
    pair's test is Student's t-test with the variance pooled over every group, and ``"all"``
    the one-way ANOVA. p-values are Benjamini-Hochberg adjusted within
    each contrast over cell clusters. With ``moderate``, the residual variances are moderated
    across cell clusters as limma's eBayes does (propeller's default, there with robust=TRUE);
    by default they are not: with a handful of cell types the prior's degrees of freedom are
    poorly estimated, and with tens of individuals per cluster the change is small. Individuals
    without covariates (``covariates.missing: drop``) are left out.

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
    moderate : bool
        Empirical-Bayes moderated variances (limma's eBayes, not robust).

    Returns
    -------
    DataFrame with columns contrast, group_a, group_b, cell_cluster, [cell_type,] prop_a,
    prop_b (mean per-individual proportions; NaN for "all"), estimate and se (the contrast on the transformed scale, the quantity
    tested, given the covariates; NaN for "all"), statistic (t or F), p_value, fdr, called
    (fdr < 0.05), adjusted_for (the covariate columns, comma-separated; empty: none).
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
    k_names = sorted(set(clusters), key=cluster_number)
    sizes = np.array([(clusters == k).sum() for k in k_names])
    frames = []
    tested_contrasts = _propeller_contrasts(k_names, sizes)
    tests = _contrast_tests(values, clusters, k_names, tested_contrasts, covariates, individuals,
                            moderate)
    for (label, wa, wb), (estimate, se, t, p) in zip(tested_contrasts, tests, strict=True):
        in_a = np.isin(clusters, np.asarray(k_names)[wa > 0])
        in_b = np.isin(clusters, np.asarray(k_names)[wb > 0])
        if in_a.sum() < 2 or in_b.sum() < 2:
            estimate, se, t, p = (np.full(len(cell_cols), np.nan) for _ in range(4))
        group_a, group_b = label.split(" vs ")
        frames.append(pd.DataFrame({
            "contrast": label, "group_a": group_a, "group_b": group_b, "cell_cluster": cell_cols,
            "prop_a": shares[in_a].mean(0), "prop_b": shares[in_b].mean(0),
            "estimate": estimate, "se": se, "statistic": t, "p_value": p, "fdr": bh(p)}))
    present = [k for k in k_names if (clusters == k).sum() >= 2]
    if len(present) >= 2:
        rows = np.isin(clusters, present)
        indicators = (clusters[rows, None] == np.asarray(present[1:])[None]).astype(np.float64)
        f, p = _groups_f_test(values[rows], indicators, covariates, individuals[rows], moderate)
        frames.append(pd.DataFrame({
            "contrast": "all", "group_a": "all", "group_b": "", "cell_cluster": cell_cols,
            "prop_a": np.nan, "prop_b": np.nan, "estimate": np.nan, "se": np.nan,
            "statistic": f, "p_value": p, "fdr": bh(p)}))
    columns = ["contrast", "group_a", "group_b", "cell_cluster", "prop_a", "prop_b",
               "estimate", "se", "statistic", "p_value", "fdr"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table["called"] = table["fdr"].astype(float) < 0.05
    table["adjusted_for"] = ",".join(covariates.names) if covariates is not None else ""
    return with_cell_types(table, names)
