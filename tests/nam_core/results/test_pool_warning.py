"""The log warns when the NAM individual clusters follow the pools."""

import logging

import numpy as np

from nam_core.results.pools import (
    batch_predicts_clusters,
    batch_predicts_clusters_within,
    majority_batch,
    warn_if_clusters_follow_batches,
)


def _cells(pool_of_individual, n_cells=5):
    group = np.repeat(np.arange(len(pool_of_individual)), n_cells)
    return group, np.asarray(pool_of_individual)[group]


def _check(labels, pools, caplog, genotype_groups=None):
    group, batch = _cells(pools)
    with caplog.at_level(logging.INFO, logger="nam_core.results.pools"):
        return warn_if_clusters_follow_batches(np.asarray(labels), group, batch, "pool",
                                               genotype_groups=genotype_groups)


def test_majority_batch():
    group = np.array([0, 0, 0, 2, 2])
    assert majority_batch(group, ["a", "b", "b", "c", "c"], 3).tolist() == ["b", "", "c"]


def test_warns_when_clusters_are_the_pools(caplog):
    check = _check(np.repeat([0, 1, 2], 4), np.repeat(["P1", "P2", "P3"], 4), caplog)
    assert check.ari == 1.0 and check.homogeneity > 0.9 and check.warned
    assert "follow the 'pool' column" in caplog.text


def test_silent_when_clusters_cross_the_pools(caplog):
    check = _check(np.repeat([0, 1, 2], 4), np.tile(["P1", "P2", "P3"], 4), caplog)
    assert check.ari < 0.5 and check.homogeneity < 0.5 and not check.warned
    assert "follow" not in caplog.text


def test_warns_when_pools_are_confounded_with_few_clusters(caplog):
    """Three ancestries in 24 pools of ~12 donors, each pool reserved for one ancestry: the
    clusters (= ancestries) are far from the 24 pools by ARI, yet every pool predicts them."""
    rng = np.random.default_rng(0)
    ancestry = np.repeat([0, 1, 2], [150, 100, 50])
    pools = np.empty(ancestry.size, dtype=object)
    for a, n_pools in zip(range(3), (12, 8, 4), strict=True):
        members = np.flatnonzero(ancestry == a)
        pools[members] = [f"P{a}_{i}" for i in rng.integers(0, n_pools, members.size)]
    check = _check(ancestry, pools, caplog)
    assert check.ari < 0.5  # the ARI alone would not warn
    assert check.homogeneity > 0.9 and check.warned


def test_small_random_pools_are_not_mistaken_for_structure(caplog):
    """Donors in 75 pools of ~13 at random: raw homogeneity is well above 0 by chance alone;
    the chance-corrected value is near 0 and nothing is logged as a warning."""
    rng = np.random.default_rng(1)
    ancestry = rng.integers(0, 3, 982)
    pools = rng.integers(0, 75, 982).astype(str)
    check = _check(ancestry, pools, caplog)
    assert abs(check.homogeneity) < 0.1 and not check.warned


def test_warns_when_pools_split_individuals_of_one_genotype_group(caplog):
    """75 random pools of ~13 donors of three ancestries; NAM splits each ancestry in two by a
    set of pools (as on a 1.27M-cell cohort after Harmony). Over the whole cohort the pool
    predicts little; within each genotype group it decides."""
    rng = np.random.default_rng(3)
    ancestry = rng.integers(0, 3, 982)
    pools = rng.integers(0, 75, 982)
    labels = 2 * ancestry + (pools % 2)  # pools of even number make one half of each ancestry
    check = _check(labels, pools.astype(str), caplog, genotype_groups=ancestry)
    assert check.ari < 0.05 and check.homogeneity < 0.5  # neither would warn
    assert check.within_genotype > 0.9 and check.warned
    assert "splits individuals of the same genotype by 'pool'" in caplog.text


def test_silent_when_clusters_are_the_genotype_groups(caplog):
    rng = np.random.default_rng(4)
    ancestry = rng.integers(0, 3, 982)
    check = _check(ancestry, rng.integers(0, 75, 982).astype(str), caplog, genotype_groups=ancestry)
    assert check.within_genotype == 0.0 and not check.warned  # no group holds two clusters
    assert "splits" not in caplog.text


def test_within_groups_weighs_groups_by_size():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    batches = np.array(["a", "a", "b", "b", "a", "b", "a", "b", "c", "c"])
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])  # stratum 2 holds one cluster: left out
    one = batch_predicts_clusters(labels[:4], batches[:4])
    two = batch_predicts_clusters(labels[4:8], batches[4:8])
    assert batch_predicts_clusters_within(labels, batches, strata) == np.mean([one, two])


def test_single_cluster_or_batch_predicts_nothing():
    assert batch_predicts_clusters(np.zeros(10), np.arange(10)) == 0.0
    assert batch_predicts_clusters(np.arange(10) % 2, np.zeros(10)) == 0.0


def test_seeded():
    rng = np.random.default_rng(2)
    labels, batches = rng.integers(0, 3, 200), rng.integers(0, 20, 200)
    assert batch_predicts_clusters(labels, batches) == batch_predicts_clusters(labels, batches)
