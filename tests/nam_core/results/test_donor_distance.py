"""Donor composition distance against genetic distance: the Mantel test and its pieces."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from nam_core.errors import NAMInputError
from nam_core.results.composition.donor_distance import (
    aitchison_distances,
    clr,
    composition_vs_genetics,
    mantel,
    permute_within,
    same_stratum_distances,
)


def _brute_aitchison(counts, a):
    """Aitchison distance by its log-ratio definition: sqrt(1/(2L) sum_ij (log x_i/x_j - log y_i/y_j)^2)."""
    x = np.asarray(counts, float) + a
    J, L = x.shape
    out = np.zeros((J, J))
    for p, q in itertools.combinations(range(J), 2):
        s = sum((np.log(x[p, i] / x[p, k]) - np.log(x[q, i] / x[q, k])) ** 2
                for i in range(L) for k in range(L))
        out[p, q] = out[q, p] = np.sqrt(s / (2 * L))
    return out


def test_clr_rows_sum_to_zero_and_aitchison_matches_log_ratio_definition():
    rng = np.random.default_rng(0)
    counts = rng.poisson(5, size=(6, 4))
    counts[0, 1] = 0
    assert np.allclose(clr(counts, 0.5).sum(axis=1), 0)
    assert np.allclose(aitchison_distances(counts, 0.5), _brute_aitchison(counts, 0.5))
    # the Euclidean distance of scipy on the CLR rows is the same thing
    assert np.allclose(aitchison_distances(counts, 1.0), squareform(pdist(clr(counts, 1.0))))


def test_mantel_r_is_the_correlation_of_the_condensed_matrices_and_p_is_exact_on_a_tiny_case():
    rng = np.random.default_rng(1)
    n = 6
    x = squareform(pdist(rng.normal(size=(n, 2))))
    y = squareform(pdist(rng.normal(size=(n, 2)) + 0.5 * x[:, :2]))
    res = mantel(x, y, "pearson", n_permutations=20000, seed=3)
    assert res["r"] == pytest.approx(stats.pearsonr(squareform(x), squareform(y))[0])
    spear = mantel(x, y, "spearman", n_permutations=10, seed=3)
    assert spear["r"] == pytest.approx(stats.spearmanr(squareform(x), squareform(y))[0])
    # exact permutation p over all 720 relabellings
    r_all = [stats.pearsonr(squareform(x[np.ix_(p, p)]), squareform(y))[0]
             for p in map(list, itertools.permutations(range(n)))]
    exact = np.mean(np.asarray(r_all) >= res["r"] - 1e-12)
    assert res["p"] == pytest.approx(exact, abs=0.01)
    assert res["n_donors"] == n and res["n_permutations"] == 20000


def test_partial_mantel_matches_the_partial_correlation_formula():
    rng = np.random.default_rng(2)
    x, y, z = (squareform(pdist(rng.normal(size=(10, 2)))) for _ in range(3))
    res = mantel(x, y, "pearson", n_permutations=9, seed=0, z=z)
    vx, vy, vz = squareform(x), squareform(y), squareform(z)
    rxy, rxz, ryz = (np.corrcoef(a, b)[0, 1] for a, b in ((vx, vy), (vx, vz), (vy, vz)))
    assert res["r"] == pytest.approx((rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2)))
    assert res["method"] == "partial_pearson"


def test_permute_within_keeps_every_item_in_its_stratum():
    strata = np.array(list("aabbbcccc"))
    rng = np.random.default_rng(0)
    for _ in range(20):
        perm = permute_within(strata, rng)
        assert sorted(perm) == list(range(strata.size))
        assert (strata[perm] == strata).all()
    assert same_stratum_distances(strata)[0, 1] == 0 and same_stratum_distances(strata)[0, 2] == 1


def _cohort(rng, J, follows_genotype):
    groups = rng.integers(0, 3, J)
    pcs = rng.normal(size=(J, 3))
    pcs[:, 0] += 3 * groups
    base = np.array([[.4, .3, .2, .1], [.2, .3, .3, .2], [.1, .2, .3, .4]])
    shares = base[groups] if follows_genotype else np.tile(base[0], (J, 1))
    counts = np.array([rng.multinomial(100, rng.dirichlet(50 * s)) for s in shares])
    names = [f"D{j}" for j in range(J)]
    counts = pd.DataFrame(counts, columns=["T1", "T2", "T3", "T4"]).assign(individual=names)
    pcs = pd.DataFrame(pcs, columns=["PC1", "PC2", "PC3"]).assign(individual=names)
    return counts, pcs


def test_mantel_p_is_small_when_composition_follows_genotype():
    counts, pcs = _cohort(np.random.default_rng(4), 60, follows_genotype=True)
    pools = pd.Series(np.arange(60) % 5, index=counts["individual"])
    table, pairs = composition_vs_genetics(counts, pcs, pools, n_permutations=999, seed=0)
    assert list(table["method"]) == ["pearson", "spearman", "partial_pearson", "partial_spearman"]
    assert (table["p"] <= 0.002).all() and (table["r"] > 0.2).all()
    assert len(pairs) == 60 * 59 // 2


def test_mantel_p_is_uniform_under_the_null():
    rng = np.random.default_rng(5)
    pvalues = []
    for _ in range(100):
        counts, pcs = _cohort(rng, 20, follows_genotype=False)
        table, _ = composition_vs_genetics(counts, pcs, n_permutations=199, seed=int(rng.integers(1e6)))
        pvalues.append(table.loc[table["method"] == "pearson", "p"].item())
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01
    assert np.mean(np.asarray(pvalues) <= 0.05) <= 0.12


def test_donors_without_pcs_or_pool_are_named():
    counts, pcs = _cohort(np.random.default_rng(6), 10, follows_genotype=False)
    with pytest.raises(NAMInputError, match="D9"):
        composition_vs_genetics(counts, pcs.iloc[:9], n_permutations=9)
    with pytest.raises(NAMInputError, match="no pool"):
        composition_vs_genetics(counts, pcs, pd.Series(0, index=counts["individual"][:5]),
                                n_permutations=9)


def test_relabelled_correlation_equals_the_correlation_of_the_relabelled_triangle():
    from nam_core.results.composition.donor_distance import _corr, _PermutedCorrelation

    rng = np.random.default_rng(4)
    n = 30
    points, others = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    x = np.linalg.norm(points[:, None] - points[None], axis=-1)
    w = np.linalg.norm(others[:, None] - others[None], axis=-1)
    iu = np.triu_indices(n, k=1)
    correlate = _PermutedCorrelation(x[iu], w[iu], n)
    for _ in range(5):
        perm = rng.permutation(n)
        relabelled = x[np.ix_(perm, perm)]
        assert correlate(relabelled) == pytest.approx(_corr(relabelled[iu], w[iu]), abs=1e-14)
