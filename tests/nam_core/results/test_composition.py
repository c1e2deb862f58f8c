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


def test_genotype_association_agrees_with_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    counts = counts_table([[0.4, 0.3, 0.3]], n_ind=40)
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": rng.normal(size=40),
                        "PC2": rng.normal(size=40)})
    counts["C1"] += (60 * (pcs["PC1"] - pcs["PC1"].min())).round().astype(int)
    table = comp.genotype_association(counts, pcs).set_index(["trait", "term"])
    y = comp.transform_proportions(counts[["C1", "C2", "C3"]].to_numpy())[:, 0]
    ols = sm.OLS(y, sm.add_constant(pcs[["PC1", "PC2"]].to_numpy())).fit()
    assert table.loc[("C1", "all"), "p"] == pytest.approx(ols.f_pvalue, rel=1e-8)
    assert table.loc[("C1", "PC1"), "p"] == pytest.approx(ols.pvalues[1], rel=1e-8)
    assert table.loc[("C1", "PC1"), "se"] == pytest.approx(ols.bse[1], rel=1e-8)
    assert table.loc[("C1", "all"), "r2"] == pytest.approx(ols.rsquared)
    assert table.loc[("C1", "PC1"), "called"]


def test_genotype_association_names_missing_individuals():
    counts = counts_table([[0.4, 0.6]], n_ind=5)
    pcs = pd.DataFrame({"individual": counts["individual"][:4], "PC1": np.arange(4.0)})
    with pytest.raises(NAMInputError, match="I1_4"):
        comp.genotype_association(counts, pcs)


# ---------------------------------------------------------------- tests that do not double dip
def null_cohort(n_ind=60, n_cells=2000, concentration=50.0, seed=3):
    """Identical proportions for everyone; individuals scatter around them (Dirichlet)."""
    rng = np.random.default_rng(seed)
    omega = np.array([0.45, 0.3, 0.15, 0.1])
    counts = np.stack([rng.multinomial(n_cells, rng.dirichlet(concentration * omega))
                       for _ in range(n_ind)])
    table = pd.DataFrame(counts, columns=[f"C{l + 1}" for l in range(4)])
    table.insert(0, "cluster", np.where(np.arange(n_ind) % 2 == 0, "I1", "I2"))
    table.insert(0, "individual", [f"IND{j}" for j in range(n_ind)])
    return table


def pooled_model(table):
    """q(u) as the fit gives it: each cluster's cells pooled as one multinomial."""
    pooled = table.groupby("cluster")[["C1", "C2", "C3", "C4"]].sum()
    return hand_model(pooled.to_numpy() / pooled.to_numpy().sum(1, keepdims=True),
                      counts_per_cluster=float(pooled.to_numpy().sum(1).mean()))


def test_bootstrap_over_individuals_does_not_call_a_null_that_pooled_cells_call():
    """Two halves of one population, 2000 cells each: q(u)'s pooled-cell intervals call
    differences that are only between-individual scatter; the bootstrap over individuals does not."""
    table = null_cohort()
    old = comp.posterior_differences(comp.draw_compositions(pooled_model(table), 2000, 0),
                                     sizes=[30, 30])
    assert old["called"].sum() >= 2  # the failure the null check measured
    boot = comp.bootstrap_compositions(table, n_draws=2000, seed=0)
    assert boot["draws"].shape == (2000, 2, 4) and list(boot["sizes"]) == [30, 30]
    np.testing.assert_allclose(boot["draws"].sum(-1), 1.0)
    new = comp.posterior_differences(boot, boot["sizes"])
    assert not new["called"].any(), new
    # the bootstrap mean is the mean of the individuals' shares
    shares = table[["C1", "C2", "C3", "C4"]].to_numpy() / 2000.0
    np.testing.assert_allclose(boot["draws"].mean(0)[0], shares[::2].mean(0), atol=2e-3)


def test_bootstrap_still_calls_a_planted_difference():
    table = counts_table([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], n_ind=15, concentration=50.0)
    boot = comp.bootstrap_compositions(table, n_draws=2000, seed=0)
    diff = comp.posterior_differences(boot, boot["sizes"]).set_index(["contrast", "cell_cluster"])
    assert diff.loc[("I1 vs rest", "C1"), "called"] and diff.loc[("I1 vs rest", "C3"), "called"]
    assert not diff.loc[("I1 vs rest", "C2"), "called"]


def test_grouping_by_composition_calls_a_null_and_grouping_by_genotype_does_not():
    """Double dipping: split individuals by their own C1 share and the split 'differs'."""
    table = null_cohort()
    c1 = table["C1"] / table[["C1", "C2", "C3", "C4"]].sum(1)
    by_composition = table.assign(cluster=np.where(c1 > c1.median(), "I1", "I2"))
    assert comp.propeller_test(by_composition)["called"].any()
    rng = np.random.default_rng(1)
    x = np.where((np.arange(60) % 2 == 0)[:, None], -3.0, 3.0) + rng.normal(size=(60, 2))
    model = x_model(labels=(c1 > c1.median()).to_numpy().astype(int) ^ 1)  # labels from C1
    pcs = pd.DataFrame({"individual": table["individual"], "PC1": x[:, 0], "PC2": x[:, 1]})
    groups = comp.genotype_groups(model, pcs)
    assert list(groups.columns) == ["individual", "cluster", "probability"]
    assert (groups["cluster"] == np.where(x[:, 0] < 0, "I1", "I2")).all()  # x decides
    by_genotype = table.assign(cluster=groups["cluster"].to_numpy())
    assert not comp.propeller_test(by_genotype)["called"].any()


def x_model(labels, means=((-3.0, -3.0), (3.0, 3.0))):
    """A stand-in with two Normal-Wishart x atoms (unit covariance) and equal weights."""
    m = np.asarray(means, dtype=np.float64)
    K, d = m.shape
    return SimpleNamespace(m_x_=m, t_x_=np.full(K, 30.0), c_x_=np.full(K, 30.0),
                           D_inv_x_=np.stack([30.0 * np.eye(d)] * K), weights_=np.full(K, 0.5),
                           individual_labels_=np.asarray(labels))


def test_genotype_groups_are_the_x_posterior_over_occupied_clusters():
    from scipy import special, stats

    model = x_model(labels=[0, 0, 1])
    pcs = pd.DataFrame({"individual": ["a", "b", "c"], "PC1": [-2.0, 0.1, 2.5],
                        "PC2": [-3.0, 0.0, 3.0]})
    groups = comp.genotype_groups(model, pcs)
    # E log N with c D = I: log N(x | m, I) - d / (2 t) + (E log|Lambda| - 0) / 2, same per k
    log_r = np.stack([stats.multivariate_normal(m, np.eye(2)).logpdf(pcs[["PC1", "PC2"]])
                      for m in model.m_x_], 1)
    r = np.exp(log_r - special.logsumexp(log_r, axis=1, keepdims=True))
    np.testing.assert_allclose(groups["probability"], r.max(1), rtol=1e-6)
    assert list(groups["cluster"]) == ["I1", "I2", "I2"]
    with pytest.raises(NAMInputError, match="genotype PCs"):
        comp.genotype_groups(model, pcs[["individual", "PC1"]])
    only_first = x_model(labels=[0, 0, 0])  # an empty cluster is never chosen
    assert set(comp.genotype_groups(only_first, pcs)["cluster"]) == {"I1"}


def test_genotype_groups_of_individual_groups_sum_the_clusters_posteriors():
    model = x_model(labels=[0, 1, 2], means=((-3.0, 0.0), (-2.0, 0.0), (3.0, 0.0)))
    model.weights_ = np.full(3, 1 / 3)
    pcs = pd.DataFrame({"individual": ["a", "b", "c"], "PC1": [-3.0, 0.2, 3.0], "PC2": [0.0] * 3})
    alone = comp.genotype_groups(model, pcs)
    joined = comp.genotype_groups(model, pcs, {"I1": "I1+I2", "I2": "I1+I2"})
    assert list(joined["cluster"]) == ["I1+I2", "I1+I2", "I3"]
    assert joined["probability"].iloc[0] > alone["probability"].iloc[0]
    assert joined["probability"].iloc[2] == pytest.approx(alone["probability"].iloc[2])
    # b sits nearer I2 than I3 but not by much: the two clusters' posteriors add up
    assert alone["cluster"].iloc[1] == "I2" and joined["probability"].iloc[1] > alone["probability"].iloc[1]


def test_near_empty_clusters_are_not_tested():
    """A 1-3-cell cluster's logit is a function of the individual's total, not its composition."""
    table = null_cohort(n_cells=200)
    table.loc[table["cluster"] == "I1", "C1"] += 150  # more cells in I1, same shares elsewhere
    table["C5"] = 0
    table.loc[[0, 3], "C5"] = 1
    assert comp.tested_cell_clusters(table) == ["C1", "C2", "C3", "C4"]
    unfiltered = comp.propeller_test(table, min_mean_cells=0).set_index(["contrast", "cell_cluster"])
    assert unfiltered.loc[("I1 vs rest", "C5"), "p_value"] < 1e-6  # it tests the totals
    filtered = comp.propeller_test(table)
    assert "C5" not in set(filtered["cell_cluster"])
    assert "C5" not in set(comp.genotype_association(
        table, pd.DataFrame({"individual": table["individual"], "PC1": np.arange(60.0)}))["trait"])
    assert list(comp.bootstrap_compositions(table, 100)["cell_clusters"]) == ["C1", "C2", "C3", "C4"]


def test_cohort_cell_labels_ignore_the_individuals_cluster():
    from nam_core import NAM, simulate

    data = simulate(J=40, n_clusters=2, q=3, p=4, n_cell_types=3, mean_cells=30, eta=0.9,
                    seed=0)
    model = NAM(K=5, L=8, n_init=1, seed=0, device="cpu", verbose=False).fit(
        data.X, data.Y, data.group)
    rho = model.rho_.copy()
    labels = comp.cohort_cell_labels(model, data.Y, data.group)
    assert labels.shape == (len(data.Y),) and np.array_equal(model.rho_, rho)  # fit untouched
    a, b = (np.flatnonzero(model.individual_labels_ == k)[0] for k in (0, 1))
    as_a = comp.cohort_cell_labels(model, data.Y, np.full(len(data.Y), a))
    as_b = comp.cohort_cell_labels(model, data.Y, np.full(len(data.Y), b))
    assert np.array_equal(as_a, as_b) and np.array_equal(as_a, labels)
    counts = comp.cell_counts(labels, data.group, [f"IND{j}" for j in range(40)],
                              [f"I{k + 1}" for k in model.individual_labels_])
    assert counts.iloc[:, 2:].to_numpy().sum() == len(data.Y)


def test_a_cell_types_share_is_the_sum_of_its_atoms_in_every_draw():
    draws = comp.draw_compositions(hand_model(OMEGA), n_draws=200, seed=0)
    grouped = comp.group_draws(draws, {"C1": "T2", "C2": "T1", "C3": "T1"})
    assert list(grouped["cell_clusters"]) == ["T1", "T2"]
    assert grouped["draws"].shape == (200, 3, 2)
    np.testing.assert_allclose(grouped["draws"][..., 0], draws["draws"][..., 1:].sum(-1))
    np.testing.assert_allclose(grouped["draws"][..., 1], draws["draws"][..., 0])
    with pytest.raises(NAMInputError, match="C3"):
        comp.group_draws(draws, {"C1": "T1", "C2": "T1"})


def test_counts_per_cell_type_sum_the_atoms_columns():
    counts = pd.DataFrame({"individual": ["a", "b"], "cluster": ["I1", "I2"],
                           "C1": [1, 2], "C2": [3, 4], "C3": [5, 6]})
    grouped = comp.group_counts(counts, {"C1": "T2", "C2": "T1", "C3": "T1"})
    assert list(grouped.columns) == ["individual", "cluster", "T1", "T2"]
    assert grouped["T1"].tolist() == [8, 10] and grouped["T2"].tolist() == [1, 2]
    with pytest.raises(NAMInputError, match="C2"):
        comp.group_counts(counts, {"C1": "T1", "C3": "T1"})
