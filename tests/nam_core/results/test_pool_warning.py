"""The log warns when the NAM individual clusters follow the pools."""

import logging

import numpy as np

from nam_core.results.pools import majority_batch, warn_if_clusters_follow_batches


def _cells(pool_of_individual, n_cells=5):
    group = np.repeat(np.arange(len(pool_of_individual)), n_cells)
    return group, np.asarray(pool_of_individual)[group]


def test_majority_batch():
    group = np.array([0, 0, 0, 2, 2])
    assert majority_batch(group, ["a", "b", "b", "c", "c"], 3).tolist() == ["b", "", "c"]


def test_warns_when_clusters_are_the_pools(caplog):
    pools = np.repeat(["P1", "P2", "P3"], 4)
    group, batch = _cells(pools)
    with caplog.at_level(logging.WARNING, logger="nam_core.results.pools"):
        ari = warn_if_clusters_follow_batches(np.repeat([0, 1, 2], 4), group, batch, "pool")
    assert ari == 1.0 and "follow the 'pool' column" in caplog.text


def test_silent_when_clusters_cross_the_pools(caplog):
    pools = np.tile(["P1", "P2", "P3"], 4)
    group, batch = _cells(pools)
    with caplog.at_level(logging.WARNING, logger="nam_core.results.pools"):
        ari = warn_if_clusters_follow_batches(np.repeat([0, 1, 2], 4), group, batch, "pool")
    assert ari < 0.5 and caplog.text == ""
