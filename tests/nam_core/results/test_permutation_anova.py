"""The permutation ANOVA of composition, with cluster labels relabelled within pools."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nam_core.errors import NAMInputError
from nam_core.results.composition.frequentist import propeller_test
from nam_core.results.composition.permutation import anova_f, permutation_anova


def _counts(rng, clusters, shares):
    counts = np.array([rng.multinomial(200, rng.dirichlet(60 * s)) for s in shares])
    table = pd.DataFrame(counts, columns=[f"C{i + 1}" for i in range(counts.shape[1])])
    table.insert(0, "cluster", [f"I{k + 1}" for k in clusters])
    table.insert(0, "individual", [f"D{j}" for j in range(len(clusters))])
    return table


def test_anova_f_matches_scipy_and_the_parametric_propeller_statistic():
    rng = np.random.default_rng(0)
    values, labels = rng.normal(size=(30, 4)), np.arange(30) % 3
    assert np.allclose(anova_f(values, labels), stats.f_oneway(
        *[values[labels == k] for k in range(3)], axis=0).statistic)
    table = _counts(rng, np.arange(40) % 2, np.tile([0.4, 0.3, 0.2, 0.1], (40, 1)))
    perm = permutation_anova(table, n_permutations=19)
    para = propeller_test(table).query("contrast == 'all'")
    assert np.allclose(perm["statistic"], para["statistic"])


def test_a_true_difference_is_found_and_a_pool_effect_is_not_taken_for_one():
    rng = np.random.default_rng(1)
    J = 120
    pool = np.arange(J) % 12
    # clusters follow the pools (the first six pools hold mostly cluster 1)
    clusters = np.where(rng.random(J) < 0.8, (pool < 6).astype(int), rng.integers(0, 2, J))
    base = np.array([0.4, 0.3, 0.2, 0.1])
    shift = rng.normal(0, 0.5, size=(12, 4))  # each pool's technical shift of the log shares
    pooled = base * np.exp(shift[pool])
    pooled /= pooled.sum(axis=1, keepdims=True)
    table = _counts(rng, clusters, pooled)
    strata = pd.Series(pool, index=table["individual"])
    free = permutation_anova(table, None, n_permutations=499, seed=0)
    within = permutation_anova(table, strata, n_permutations=499, seed=0)
    assert free["p_perm"].min() <= 0.01  # the pool effect looks like a cluster effect
    assert within["p_perm"].min() > 0.01  # not when labels stay in their pool
    assert (within["permuted_within"] == "stratum").all()
    true = pooled.copy()
    true[clusters == 1, 0] *= 2.0
    true /= true.sum(axis=1, keepdims=True)
    found = permutation_anova(_counts(rng, clusters, true), strata, n_permutations=499, seed=0)
    assert found.loc[found["cell_cluster"] == "C1", "p_perm"].item() <= 0.01


def test_p_has_the_plus_one_correction_and_missing_strata_are_named():
    rng = np.random.default_rng(2)
    table = _counts(rng, np.arange(20) % 2, np.tile([0.5, 0.5], (20, 1)))
    res = permutation_anova(table, n_permutations=9)
    assert (res["p_perm"] >= 0.1).all() and (res["p_perm"] <= 1).all()
    with pytest.raises(NAMInputError, match="D19"):
        permutation_anova(table, pd.Series(0, index=table["individual"][:19]), n_permutations=9)
