"""Leiden as a cell-level method (scanpy, igraph flavour), and the realistic-counts scenario."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.errors import NAMInputError
from nam_core.results.evaluate import _leiden_rows
from nam_core.results.leiden import leiden_labels, n_large_clusters
from nam_core.study.cell_clusters import run_case
from nam_core.study.methods import METHODS, fit_method
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.realistic import simulate_realistic_counts


def test_leiden_finds_separated_blobs_and_repeats():
    Y, truth = make_blobs(600, n_features=5, centers=4, cluster_std=0.5, random_state=0)
    first = leiden_labels(Y, resolutions=(0.5, 1.0), seed=1)
    again = leiden_labels(Y, resolutions=(0.5, 1.0), seed=1)
    assert set(first) == {0.5, 1.0}
    assert adjusted_rand_score(truth, first[0.5]) > 0.9
    for res in first:
        assert np.array_equal(first[res], again[res])
        sizes = np.bincount(first[res])
        assert (np.diff(sizes) <= 0).all()  # label 0 is the largest cluster
    # The registry runs the same function: cell labels only.
    res = fit_method("leiden_0.5", None, Y, np.zeros(len(Y), int), settings=FitSettings(), seed=1)
    assert "leiden_0.5" in METHODS and "leiden_1.0" in METHODS
    assert res.individual_labels is None and np.array_equal(res.cell_labels, first[0.5])


def test_leiden_rejects_bad_input():
    with pytest.raises(NAMInputError, match="NaN"):
        leiden_labels(np.full((50, 3), np.nan))
    with pytest.raises(NAMInputError, match="more than 15 cells"):
        leiden_labels(np.zeros((10, 3)))


def test_large_clusters_count_one_percent():
    labels = np.r_[np.zeros(990, int), np.ones(9, int), 2]
    assert n_large_clusters(labels) == 1
    assert n_large_clusters(labels, min_share=0.001) == 3


def test_evaluation_lists_leiden_beside_nam():
    cells = pd.Series([f"c{i}" for i in range(200)])
    truth = np.repeat(["T", "B"], 100)
    leiden = pd.DataFrame({"cell": cells[::-1], "leiden_0.5": np.repeat(["L1", "L2"], 100),
                           "leiden_1.0": np.tile(["L1", "L2"], 100)})
    rows = dict((name, value) for name, value, _ in _leiden_rows(leiden, cells, truth))
    # Reversed order: aligned by cell name, so leiden_0.5 still matches the truth exactly.
    assert rows["ari_cells_leiden_0.5"] == pytest.approx(1.0)
    assert rows["ari_cells_leiden_1.0"] < 0.05
    assert rows["n_cell_clusters_1pct_leiden_0.5"] == 2
    with pytest.raises(NAMInputError, match="not in the truth table"):
        _leiden_rows(leiden.iloc[1:], cells, truth)


def test_realistic_counts_scenario_tiny():
    data = simulate_realistic_counts(CohortSpec(n_individuals=12, mean_cells=40, n_snps=200, seed=2),
                                     n_pcs=5, n_top_genes=200)
    J, N = data.X.shape[0], data.Y.shape[0]
    assert data.X.shape == (12, 3) and data.Y.shape[1] == 5 and data.group.shape == (N,)
    assert set(np.unique(data.group)) == set(range(J))
    assert data.cell_labels.shape == (N,) and np.unique(data.cell_labels).size == 6
    rows = run_case(data, ["nam", "leiden_1.0"],
                    FitSettings(K=4, L=10, n_init=1, max_iter=50, device="cpu"), seed=0)
    assert [r["method"] for r in rows] == ["nam[gaussian]", "leiden_1.0"]
    assert all(r["n_types"] == 6 and r["N"] == N for r in rows)
    assert rows[0]["ari_cells"] > 0.5 and np.isnan(rows[1]["ari_individuals"])


def test_simulate_counts_model_is_the_realistic_scenario():
    from nam_core.synthetic.simulate import simulate

    kw = dict(J=8, n_clusters=2, q=2, p=4, mean_cells=30, n_snps=100, fst=0.05, seed=4)
    data = simulate(expression_model="counts", n_cell_types=6, **kw)
    assert data.Y.shape[1] == 4 and data.X.shape == (8, 2) and data.params["n_pcs"] == 4
    with pytest.raises(NAMInputError, match="n_cell_types: 6"):
        simulate(expression_model="counts", n_cell_types=8, **kw)
    with pytest.raises(NAMInputError, match="expression_model"):
        simulate(expression_model="poisson")
