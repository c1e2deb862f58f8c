"""Covariate-adjusted composition tests against statsmodels, and a confounder they remove."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nam_core.errors import NAMInputError
from nam_core.results import composition as comp
from nam_core.results.composition.glm import cauchy_combination

CELLS = ["C1", "C2", "C3"]


def confounded_cohort(n=120, seed=0, age_effect=0.04, cells=600):
    """Two groups whose donors differ in age; C1's share follows age only, not the group."""
    rng = np.random.default_rng(seed)
    cluster = np.where(np.arange(n) < n // 2, "I1", "I2")
    age = np.where(cluster == "I1", 35.0, 60.0) + rng.normal(0, 8, n)
    sex = rng.choice(["F", "M"], n)
    rows = []
    for j in range(n):
        logit = -1.0 + age_effect * (age[j] - 47.5) + rng.normal(0, 0.25)
        p1 = 1 / (1 + np.exp(-logit))
        w = np.array([p1, (1 - p1) * 0.6, (1 - p1) * 0.4])
        rows.append([f"D{j}", cluster[j], *rng.multinomial(cells, w)])
    counts = pd.DataFrame(rows, columns=["individual", "cluster", *CELLS])
    covariates = pd.DataFrame({"individual": counts["individual"], "age": age, "sex": sex})
    return counts, covariates


def covs(table, types=None):
    return comp.Covariates(table, types or {"age": "numeric", "sex": "categorical"})


def test_adjusted_propeller_removes_a_confounded_covariate_and_matches_statsmodels():
    import statsmodels.api as sm

    counts, table = confounded_cohort()
    plain = comp.propeller_test(counts).set_index(["contrast", "cell_cluster"])
    assert plain.loc[("I1 vs rest", "C1"), "called"]  # age, seen as a group difference
    adjusted = comp.propeller_test(counts, covariates=covs(table)).set_index(
        ["contrast", "cell_cluster"])
    assert not adjusted.loc[("I1 vs rest", "C1"), "called"]
    assert adjusted.loc[("I1 vs rest", "C1"), "p_value"] > 0.05
    assert (adjusted["adjusted_for"] == "age,sex").all()
    y = comp.transform_proportions(counts[CELLS].to_numpy())[:, 0]
    X = np.column_stack([(counts["cluster"] == "I1").astype(float), table["age"],
                         (table["sex"] == "M").astype(float)])
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    assert adjusted.loc[("I1 vs rest", "C1"), "statistic"] == pytest.approx(ols.tvalues[1], rel=1e-8)
    assert adjusted.loc[("I1 vs rest", "C1"), "p_value"] == pytest.approx(ols.pvalues[1], rel=1e-8)
    # the F-test of the groups given the covariates: a nested-model comparison
    reduced = sm.OLS(y, sm.add_constant(X[:, 1:])).fit()
    f, p, _ = ols.compare_f_test(reduced)
    assert adjusted.loc[("all", "C1"), "statistic"] == pytest.approx(f, rel=1e-8)
    assert adjusted.loc[("all", "C1"), "p_value"] == pytest.approx(p, rel=1e-8)


def test_unadjusted_propeller_is_the_pooled_t_test_and_anova():
    """Three groups: pairs by one model with the variance pooled over every group, as limma."""
    import statsmodels.api as sm

    counts, _ = confounded_cohort(n=90)
    counts["cluster"] = np.repeat(["I1", "I2", "I3"], 30)
    table = comp.propeller_test(counts).set_index(["contrast", "cell_cluster"])
    assert set(table.index.get_level_values(0)) == {"I1 vs I2", "I1 vs I3", "I2 vs I3", "all"}
    y = comp.transform_proportions(counts[CELLS].to_numpy())
    groups = [y[counts["cluster"] == k] for k in ("I1", "I2", "I3")]
    f, p = stats.f_oneway(*groups, axis=0)
    np.testing.assert_allclose(table.loc["all", "statistic"], f, rtol=1e-8)
    np.testing.assert_allclose(table.loc["all", "p_value"], p, rtol=1e-8)
    dummies = np.column_stack([(counts["cluster"] == k).astype(float) for k in ("I2", "I3")])
    for c, cell in enumerate(CELLS):
        ols = sm.OLS(y[:, c], sm.add_constant(dummies)).fit()
        test = ols.t_test(np.array([[0.0, 0.0, -1.0]]))  # mean I1 - mean I3
        row = table.loc[("I1 vs I3", cell)]
        assert row["estimate"] == pytest.approx(groups[0][:, c].mean() - groups[2][:, c].mean(), rel=1e-10)
        assert row["statistic"] == pytest.approx(float(test.tvalue.item()), rel=1e-8)
        assert row["p_value"] == pytest.approx(float(test.pvalue), rel=1e-8)
        assert row["se"] == pytest.approx(float(test.sd.item()), rel=1e-8)
    assert (table["adjusted_for"] == "").all()


def test_propeller_calls_no_tiny_share_difference_against_a_mixed_rest():
    """A share equal in I1 and in the other groups' mix: the transformed-scale 'rest' would differ."""
    rng = np.random.default_rng(0)
    shares = {"I1": [0.2, 0.4, 0.4], "I2": [0.05, 0.5, 0.45], "I3": [0.35, 0.3, 0.35]}
    rows = []
    for k, props in shares.items():
        for j in range(40):
            rows.append([f"{k}_{j}", k, *rng.multinomial(500, rng.dirichlet(300 * np.asarray(props)))])
    counts = pd.DataFrame(rows, columns=["individual", "cluster", *CELLS])
    y = comp.transform_proportions(counts[CELLS].to_numpy())[:, 0]
    rest = np.isin(counts["cluster"], ["I2", "I3"])
    assert stats.ttest_ind(y[~rest], y[rest]).pvalue < 0.05  # what a logit "I1 vs rest" would call
    table = comp.propeller_test(counts)
    assert not table["contrast"].str.endswith("vs rest").any()
    pairs = table.set_index(["contrast", "cell_cluster"])
    assert pairs.loc[("I1 vs I2", "C1"), "called"] and pairs.loc[("I1 vs I3", "C1"), "called"]


def test_adjusted_bootstrap_removes_a_confounded_covariate():
    counts, table = confounded_cohort()
    plain = comp.bootstrap_compositions(counts, n_draws=1000, seed=0)
    empty = comp.bootstrap_compositions(counts, n_draws=1000, seed=0,
                                        covariates=comp.Covariates(table[["individual"]]))
    np.testing.assert_array_equal(plain["draws"], empty["draws"])  # no covariate: unchanged
    diff = comp.posterior_differences(plain, plain["sizes"]).set_index(["contrast", "cell_cluster"])
    assert diff.loc[("I1 vs rest", "C1"), "called"]
    adjusted = comp.bootstrap_compositions(counts, n_draws=1000, seed=0,
                                           covariates=comp.Covariates(table[["individual", "age"]]))
    adiff = comp.posterior_differences(adjusted, adjusted["sizes"]).set_index(
        ["contrast", "cell_cluster"])
    assert not adiff.loc[("I1 vs rest", "C1"), "called"]
    assert adiff.loc[("I1 vs rest", "C1"), "lower"] < 0 < adiff.loc[("I1 vs rest", "C1"), "upper"]


def test_one_adjusted_bootstrap_draw_is_weighted_least_squares():
    counts, table = confounded_cohort(n=40)
    adjusted = comp.bootstrap_compositions(counts, n_draws=3, seed=5,
                                           covariates=comp.Covariates(table[["individual", "age"]]))
    rng = np.random.default_rng(5)
    w = np.concatenate([rng.dirichlet(np.ones(20), size=3), rng.dirichlet(np.ones(20), size=3)],
                       axis=1)[0] * 20  # draw 0: each cluster's weights scaled to its size
    shares = counts[CELLS].to_numpy() / counts[CELLS].to_numpy().sum(1, keepdims=True)
    X = np.column_stack([counts["cluster"] == "I1", counts["cluster"] == "I2",
                         table["age"] - table["age"].mean()]).astype(float)
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(X * sw, shares * sw, rcond=None)
    np.testing.assert_allclose(adjusted["draws"][0], np.clip(coef[:2], 0, None), rtol=1e-8)


def test_genotype_association_with_covariates_matches_statsmodels():
    import statsmodels.api as sm

    counts, table = confounded_cohort(n=80, seed=2)
    rng = np.random.default_rng(3)
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": rng.normal(size=80),
                        "PC2": rng.normal(size=80)})
    out = comp.genotype_association(counts, pcs, "inverse_normal", covariates=covs(table))
    assert list(out.columns) == ["trait", "cell_cluster", "share_of", "term", "beta", "se", "t",
                                 "p", "fdr", "n", "r2", "called"]
    assert set(out["term"]) == {"all", "PC1", "PC2", "age", "sex[M]"}
    out = out.set_index(["trait", "term"])
    y = comp.transform_proportions(counts[CELLS].to_numpy(), "inverse_normal")[:, 1]
    X = np.column_stack([pcs[["PC1", "PC2"]], table["age"], table["sex"] == "M"]).astype(float)
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    for i, term in enumerate(["PC1", "PC2", "age", "sex[M]"], start=1):
        assert out.loc[("C2", term), "beta"] == pytest.approx(ols.params[i], rel=1e-8)
        assert out.loc[("C2", term), "se"] == pytest.approx(ols.bse[i], rel=1e-8)
        assert out.loc[("C2", term), "p"] == pytest.approx(ols.pvalues[i], rel=1e-8)
    f, p, _ = ols.compare_f_test(sm.OLS(y, sm.add_constant(X[:, 2:])).fit())
    assert out.loc[("C2", "all"), "p"] == pytest.approx(p, rel=1e-8)
    assert out.loc[("C2", "age"), "n"] == 80
    assert out.loc[("C1", "age"), "called"]  # C1 follows age
    omnibus = comp.association_omnibus(out.reset_index()).set_index("term")
    assert omnibus.loc["age", "called"] and omnibus.loc["age", "top_trait"] == "C1"
    assert omnibus.loc["age", "n_traits"] == 3


def test_lineage_shares_are_shares_within_the_lineage():
    counts, _ = confounded_cohort(n=30)
    names = {"C1": "CD14 Monocyte", "C2": "CD4 T", "C3": "CD8 T"}
    lineages = {"CD4 T": "T cells", "CD8 T": "T cells", "CD14 Monocyte": "myeloid"}
    values, traits = comp.share_traits(counts, "asin", names, lineages)
    assert list(traits["trait"]) == ["C1", "C2", "C3", "C2_in_T_cells", "C3_in_T_cells"]
    n = counts[CELLS].to_numpy(dtype=float)
    np.testing.assert_allclose(values["C2_in_T_cells"], np.arcsin(np.sqrt(n[:, 1] / n[:, 1:].sum(1))))
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": np.arange(30.0)})
    out = comp.genotype_association(counts, pcs, names=names, lineages=lineages)
    assert set(out.loc[out["share_of"] == "T cells", "trait"]) == {"C2_in_T_cells", "C3_in_T_cells"}
    assert (out.loc[out["trait"] == "C2_in_T_cells", "cell_type"] == "CD4 T").all()


def test_missing_covariates_leave_donors_out_and_collinear_ones_fail_clearly():
    counts, table = confounded_cohort(n=60)
    short = table.iloc[5:]
    out = comp.propeller_test(counts, covariates=comp.Covariates(short[["individual", "age"]]))
    assert out["p_value"].notna().all()
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": np.arange(60.0)})
    assoc = comp.genotype_association(counts, pcs, covariates=comp.Covariates(short[["individual",
                                                                                      "age"]]))
    assert (assoc["n"] == 55).all()
    same = table.assign(batch=counts["cluster"].map({"I1": "a", "I2": "b"}))
    with pytest.raises(NAMInputError, match="collinear"):
        comp.bootstrap_compositions(counts, 10, covariates=comp.Covariates(
            same[["individual", "batch"]], {"batch": "categorical"}))


def test_cauchy_combination():
    assert cauchy_combination([0.03]) == pytest.approx(0.03)
    expected = stats.cauchy.sf(np.mean(np.tan((0.5 - np.array([0.01, 0.5])) * np.pi)))
    assert cauchy_combination([0.01, 0.5, np.nan]) == pytest.approx(expected)
    assert cauchy_combination([1e-20, 0.9]) == pytest.approx(2e-20, rel=1e-3)
    assert np.isnan(cauchy_combination([np.nan]))


def test_donor_tables_and_plink_traits():
    from nam_core.results.composition.donors import donor_shares_long, donor_table, plink_traits

    counts = pd.DataFrame({"individual": ["a", "b", "c", "d"], "cluster": ["I1", "I2", "I1", "I2"],
                           "T1": [3, 0, 0, 0], "T2": [1, 4, 0, 0], "T3": [0, 2, 0, 5]})
    fam = pd.DataFrame({"fid": ["F1", "F2", "F3", "F4"], "iid": ["a", "b", "c", "d"]})
    names = {"T1": "CD4 T", "T2": "CD8 T", "T3": "B"}
    traits = plink_traits(counts, fam, "asin", names, {"CD4 T": "T", "CD8 T": "T"},
                          min_mean_cells=0)
    assert list(traits.columns) == ["FID", "IID", "T1", "T2", "T3", "T1_in_T", "T2_in_T"]
    assert list(traits["FID"]) == ["F1", "F2", "F4"]  # c has no cells
    np.testing.assert_allclose(traits["T2"].astype(float), np.arcsin(np.sqrt([0.25, 4 / 6, 0])))
    np.testing.assert_allclose(traits["T1_in_T"][:2].astype(float),
                               np.arcsin(np.sqrt([0.75, 0.0])))
    assert traits.loc[2, "T1_in_T"] == "NA"  # no T cell: missing for PLINK2
    with pytest.raises(NAMInputError, match="'b'"):
        plink_traits(counts, fam[fam["iid"] != "b"], min_mean_cells=0)
    individuals = pd.DataFrame({"individual": ["a", "b", "c"], "cluster": ["I1", "I1", "I2"],
                                "probability": [0.9, 0.8, 1.0], "prob_I1": [0.9, 0.8, 0.0],
                                "prob_I2": [0.1, 0.2, 1.0], "PC1": [0.1, 0.2, 0.3]})
    groups = pd.DataFrame({"individual": ["a", "b", "c"], "cluster": ["I1", "I2", "I1"]})
    cov = pd.DataFrame({"individual": ["a", "b"], "age": [30.0, 40.0]})
    donors = donor_table(individuals, counts.iloc[:3], groups, cov)
    assert list(donors.columns) == ["individual", "age", "PC1", "nam_cluster", "nam_probability",
                                    "prob_I1", "prob_I2", "genotype_cluster", "n_cells", "n_T1",
                                    "n_T2", "n_T3", "share_T1", "share_T2", "share_T3"]
    assert donors["n_cells"].tolist() == [4, 6, 0] and np.isnan(donors.loc[2, "age"])
    assert donors.loc[0, "share_T1"] == 0.75 and np.isnan(donors.loc[2, "share_T1"])
    long = donor_shares_long(counts, names)
    assert len(long) == 12 and list(long["individual"][:3]) == ["a", "a", "a"]
    assert long.loc[1, "cell_type"] == "CD8 T" and long.loc[1, "share"] == 0.25


def test_squeezed_variances_recover_the_prior_of_scaled_f_draws():
    from scipy import special

    from nam_core.results.composition.glm import squeeze_variances, trigamma_inverse

    x = np.array([1e-3, 0.1, 1.0, 10.0])
    np.testing.assert_allclose(special.polygamma(1, trigamma_inverse(x)), x, rtol=1e-7)
    rng = np.random.default_rng(0)
    df, d0, s0 = 20, 8.0, 0.5
    sigma2 = s0 * d0 / rng.chisquare(d0, size=20000)  # scaled inverse chi-square prior
    s2 = sigma2 * rng.chisquare(df, size=sigma2.size) / df
    post, est = squeeze_variances(s2, df)
    assert est == pytest.approx(d0, rel=0.1)
    assert np.isfinite(post).all() and (post > 0).all()
    assert np.corrcoef(np.log(post), np.log(sigma2))[0, 1] > np.corrcoef(np.log(s2),
                                                                         np.log(sigma2))[0, 1]
    equal, inf = squeeze_variances(np.full(5, 2.0), df)  # no spread: every variance the prior
    assert inf == np.inf and np.allclose(equal, equal[0])


def test_moderated_propeller_uses_the_squeezed_variance():
    from nam_core.results.composition.glm import ols_fit, squeeze_variances

    counts, table = confounded_cohort(n=60, seed=4)
    plain = comp.propeller_test(counts).set_index(["contrast", "cell_cluster"])
    moderated = comp.propeller_test(counts, moderate=True).set_index(["contrast", "cell_cluster"])
    y = comp.transform_proportions(counts[CELLS].to_numpy())
    X = (counts["cluster"] == "I1").to_numpy(dtype=float)[:, None]
    fit = ols_fit(y, X)
    s2 = fit["rss"] / fit["df"]
    post, d0 = squeeze_variances(s2, fit["df"])
    t = fit["t"][1] * np.sqrt(s2 / post)
    np.testing.assert_allclose(moderated.loc["I1 vs rest", "statistic"], t, rtol=1e-10)
    df = min(fit["df"] + d0, 3 * fit["df"])
    np.testing.assert_allclose(moderated.loc["I1 vs rest", "p_value"],
                               2 * stats.t.sf(np.abs(t), df), rtol=1e-10)
    assert not np.allclose(plain["statistic"], moderated["statistic"])
