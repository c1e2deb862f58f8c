"""Permutation p-values of the propeller-style ANOVA, relabelling individuals within pools.

The parametric F-test of :func:`~.frequentist.propeller_test` assumes individuals are
independent given their cluster. Individuals sequenced in one pool share a technical shift of
their compositions; when the individual clusters are unevenly spread over pools, a pool effect
then looks like a cluster effect. Permuting the cluster labels only among the individuals of the
same pool (or any other donor stratum) keeps each pool's mix of clusters, so the permutation
null is 'composition depends on the pool, not on the cluster', and the p-value is exact under it
(up to the Monte Carlo error of the permutations):

    p = (1 + #{b : F_b >= F}) / (1 + B),

with F the one-way ANOVA statistic of the transformed per-individual shares across individual
clusters (contrast ``all``), computed for every tested cell cluster at once. With strata, the
shares are first centred within each stratum (its mean removed): the centring does not change
under the relabellings, so the test stays exact, and a pool's shift neither adds to nor masks a
difference between clusters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from .counts import MIN_MEAN_CELLS, counts_with_cells, tested_cell_clusters
from .donor_distance import permute_within
from .frequentist import transform_proportions

__all__ = ["anova_f", "permutation_anova"]


def anova_f(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One-way ANOVA F of each column of ``values`` across the groups of ``labels``.

    Parameters
    ----------
    values : array (J, L) float
        Transformed share of each individual (rows) in each cell cluster (columns).
    labels : array (J,) of int
        Group code of each individual, 0..G-1 (every code present).

    Returns
    -------
    ndarray (L,): between-group mean square over within-group mean square (as
    ``scipy.stats.f_oneway``); NaN where the within-group variance is 0.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    n, G = values.shape[0], int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=G).astype(np.float64)
    sums = np.zeros((G, values.shape[1]))
    np.add.at(sums, labels, values)
    means = sums / sizes[:, None]
    grand = values.mean(axis=0)
    between = (sizes[:, None] * (means - grand) ** 2).sum(axis=0) / (G - 1)
    within = ((values - means[labels]) ** 2).sum(axis=0) / (n - G)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > 0, between / within, np.nan)


def _centred_within(values: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``values`` (J, L) minus the mean of its stratum's rows, per column."""
    _, codes = np.unique(strata, return_inverse=True)
    sums = np.zeros((codes.max() + 1, values.shape[1]))
    np.add.at(sums, codes, values)
    return values - (sums / np.bincount(codes)[:, None])[codes]


def permutation_anova(
    counts: pd.DataFrame,
    strata=None,
    n_permutations: int = 999,
    seed: int = 0,
    transform: str = "logit",
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> pd.DataFrame:
    """Per cell cluster, the ANOVA F across individual clusters and its permutation p-value.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster (``I<k>``), then cells per cell cluster (as
        ``composition/cells_per_individual.tsv``); individuals without cells are left out.
    strata : Series, array (J,) or None
        Pool (or other stratum) of each individual: a Series indexed by individual, or an array
        in the rows' order. Labels are permuted only within a stratum; None permutes freely.
    n_permutations : int
        Relabellings (>= 1).
    seed : int
        Seed of the relabellings.
    transform : {"logit", "asin", "inverse_normal"}
        As :func:`~.frequentist.transform_proportions`.
    min_mean_cells : float
        Only the cell clusters of :func:`~.counts.tested_cell_clusters` are tested.

    Returns
    -------
    DataFrame cell_cluster, statistic (F; of the shares centred within strata when given), p_perm, n_permutations, permuted_within
    (``"stratum"`` or ``"all"``).
    """
    if n_permutations < 1:
        raise NAMInputError(f"n_permutations must be >= 1, got {n_permutations}")
    tested = tested_cell_clusters(counts, min_mean_cells)
    kept = counts[[c for c in counts.columns if c not in ("individual", "cluster")]].sum(axis=1) > 0
    if strata is not None:
        if isinstance(strata, pd.Series):
            index = strata.index.astype(str)
            lacking = pd.Index(counts["individual"].astype(str)).difference(index)
            if len(lacking):
                raise NAMInputError(f"{len(lacking)} individuals have no stratum (pool): "
                                    f"{list(lacking[:5])}")
            strata = pd.Series(strata.to_numpy(), index=index).loc[
                counts["individual"].astype(str)].to_numpy()
        strata = np.asarray(strata)
        if strata.shape[0] != len(counts):
            raise NAMInputError(f"strata has {strata.shape[0]} values for {len(counts)} individuals")
        strata = strata[kept.to_numpy()]
    counts, all_cols = counts_with_cells(counts)
    keep = [all_cols.index(c) for c in tested]
    values = transform_proportions(counts[all_cols].to_numpy(), transform)[:, keep]
    _, labels = np.unique(counts["cluster"].astype(str).to_numpy(), return_inverse=True)
    if labels.max() < 1:
        raise NAMInputError("a permutation ANOVA needs at least two individual clusters")
    if strata is not None:
        values = _centred_within(values, strata)
    observed = anova_f(values, labels)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(len(tested), dtype=np.int64)
    for _ in range(n_permutations):
        perm = rng.permutation(labels.size) if strata is None else permute_within(strata, rng)
        exceed += anova_f(values, labels[perm]) >= observed - 1e-12
    p = np.where(np.isfinite(observed), (1 + exceed) / (1 + n_permutations), np.nan)
    return pd.DataFrame({"cell_cluster": tested, "statistic": observed, "p_perm": p,
                         "n_permutations": n_permutations,
                         "permuted_within": "all" if strata is None else "stratum"})
