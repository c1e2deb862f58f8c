"""Composition posterior, differences, propeller-style tests and genotype regression."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from nam_core.components.sticks import expected_weights
from nam_core.errors import NAMInputError
from nam_core.results import composition as comp


def hand_model(omega, counts_per_cluster=2000.0, beta=1.0, seed=0):
    """A fitted-model stand-in: q(u) sticks whose mean weights are ``omega`` (K, L).

    Stick order is scrambled (individual_order_, cell_order_) to check the label mapping.
    """
    omega = np.asarray(omega, dtype=np.float64)
    K, L = omega.shape
    rng = np.random.default_rng(seed)
    ind_order, cell_order = rng.permutation(K), rng.permutation(L)
    Q = np.zeros((L, K))  # expected cells of atom (stick position) per cluster (stick column)
    Q[np.ix_(cell_order, ind_order)] = counts_per_cluster * omega.T
    tail = Q[::-1].cumsum(0)[::-1] - Q
    a_u, b_u = 1.0 + Q[: L - 1], beta + tail[: L - 1]
    return SimpleNamespace(
        a_u_=a_u, b_u_=b_u, individual_order_=ind_order, cell_order_=cell_order,
        individual_labels_=np.repeat(np.arange(K), 10), cell_labels_=np.arange(L),
    )


OMEGA = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])


def test_draws_follow_q_u_in_label_order_and_repeat():
    model = hand_model(OMEGA)
    draws = comp.draw_compositions(model, n_draws=4000, seed=1)
    assert draws["draws"].shape == (4000, 3, 3)
    np.testing.assert_allclose(draws["draws"].sum(-1), 1.0)
    exact = expected_weights(torch.as_tensor(model.a_u_), torch.as_tensor(model.b_u_), 3).numpy()
    exact = exact[np.ix_(model.cell_order_, model.individual_order_)].T  # (K, L) label order
    np.testing.assert_allclose(draws["draws"].mean(0), exact, atol=3e-3)
    np.testing.assert_allclose(exact, OMEGA, atol=2e-3)
    again = comp.draw_compositions(model, n_draws=4000, seed=1)
    assert np.array_equal(draws["draws"], again["draws"])
    assert list(draws["individual_clusters"]) == ["I1", "I2", "I3"]


def test_posterior_summary_intervals_cover_the_mean():
    summary = comp.posterior_summary(comp.draw_compositions(hand_model(OMEGA), 2000, 0),
                                     names={"C1": "B"})
    assert len(summary) == 9 and (summary["lower"] < summary["mean"]).all()
    assert (summary["mean"] < summary["upper"]).all()
    assert summary.loc[0, "cell_type"] == "B" and summary.loc[1, "cell_type"] == "unassigned"


def test_bayesian_fdr_is_the_running_mean_of_sorted_pH0():
    fdr = comp.bayesian_fdr([0.5, 0.0, 0.1, 0.9])
    np.testing.assert_allclose(fdr, [0.6 / 3, 0.0, 0.05, 1.5 / 4])


def test_differences_call_planted_effects_and_not_identical_clusters():
    draws = comp.draw_compositions(hand_model(OMEGA, counts_per_cluster=5000), 2000, 0)
    diff = comp.posterior_differences(draws, sizes=[10, 10, 10]).set_index(["contrast", "cell_cluster"])
    assert set(diff.index.get_level_values(0)) == {"I1 vs rest", "I2 vs rest", "I3 vs rest",
                                                   "I1 vs I2", "I1 vs I3", "I2 vs I3"}
    # I1 and I2 are identical: nothing called; I1 vs I3 differ by 0.3 in C1 and C3
    assert not diff.loc["I1 vs I2", "called"].any()
    assert (diff.loc["I1 vs I2", "prob_null"] > 0.9).all()
    assert diff.loc[("I1 vs I3", "C1"), "called"] and diff.loc[("I1 vs I3", "C3"), "called"]
    assert not diff.loc[("I1 vs I3", "C2"), "called"]
    np.testing.assert_allclose(diff.loc[("I1 vs I3", "C1"), "effect"], 0.3, atol=0.02)
    np.testing.assert_allclose(diff.loc[("I1 vs I3", "C1"), "log_ratio"], np.log(2.5), atol=0.05)


def test_a_diffuse_rare_cluster_is_not_called():
    omega = np.array([[0.6, 0.3999, 0.0001], [0.6, 0.3998, 0.0002]])
    draws = comp.draw_compositions(hand_model(omega, counts_per_cluster=3000), 2000, 0)
    diff = comp.posterior_differences(draws, sizes=[10, 10])
    assert list(diff["contrast"].unique()) == ["I1 vs rest", "I2 vs rest"]
    assert not diff["called"].any(), diff


def counts_table(props_by_cluster, n_ind=15, n_cells=400, seed=0, concentration=200.0):
    rng = np.random.default_rng(seed)
    rows = []
    for k, props in enumerate(props_by_cluster, start=1):
        for j in range(n_ind):
            w = rng.dirichlet(concentration * np.asarray(props))
            rows.append([f"I{k}_{j}", f"I{k}", *rng.multinomial(n_cells, w)])
    return pd.DataFrame(rows, columns=["individual", "cluster",
                                       *[f"C{l + 1}" for l in range(len(props_by_cluster[0]))]])


def test_propeller_finds_planted_difference_and_matches_scipy():
    from scipy import stats

    counts = counts_table([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
    table = comp.propeller_test(counts, transform="asin").set_index(["contrast", "cell_cluster"])
    assert table.loc[("I1 vs rest", "C1"), "called"] and table.loc[("I1 vs rest", "C3"), "called"]
    assert not table.loc[("I1 vs rest", "C2"), "called"]
    x = np.arcsin(np.sqrt(counts[["C1", "C2", "C3"]].to_numpy() / 400.0))
    t, p = stats.ttest_ind(x[:15, 0], x[15:, 0])
    assert table.loc[("I1 vs rest", "C1"), "p_value"] == pytest.approx(p)
    assert ("all", "C1") in table.index


def test_transform_logit_uses_the_pseudo_count():
    out = comp.transform_proportions(np.array([[0, 10]]), "logit")
    p0 = 0.5 / 11.0
    np.testing.assert_allclose(out[0, 0], np.log(p0 / (1 - p0)))
    with pytest.raises(NAMInputError, match="without cells"):
        comp.transform_proportions(np.array([[0, 0]]))


def test_genotype_regression_agrees_with_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    counts = counts_table([[0.4, 0.3, 0.3]], n_ind=40)
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": rng.normal(size=40),
                        "PC2": rng.normal(size=40)})
    counts["C1"] += (60 * (pcs["PC1"] - pcs["PC1"].min())).round().astype(int)
    table = comp.genotype_regression(counts, pcs).set_index(["cell_cluster", "term"])
    y = comp.transform_proportions(counts[["C1", "C2", "C3"]].to_numpy())[:, 0]
    ols = sm.OLS(y, sm.add_constant(pcs[["PC1", "PC2"]].to_numpy())).fit()
    assert table.loc[("C1", "all"), "p_value"] == pytest.approx(ols.f_pvalue, rel=1e-8)
    assert table.loc[("C1", "PC1"), "p_value"] == pytest.approx(ols.pvalues[1], rel=1e-8)
    assert table.loc[("C1", "all"), "r2"] == pytest.approx(ols.rsquared)
    assert table.loc[("C1", "PC1"), "called"]


def test_genotype_regression_names_missing_individuals():
    counts = counts_table([[0.4, 0.6]], n_ind=5)
    pcs = pd.DataFrame({"individual": counts["individual"][:4], "PC1": np.arange(4.0)})
    with pytest.raises(NAMInputError, match="I1_4"):
        comp.genotype_regression(counts, pcs)
