"""OLS of the adjusted tests against the closed form and scipy's simple regression."""

import numpy as np
from scipy import stats

from nam_core.results.composition.glm import ols_glm


def test_matches_closed_form():
    rng = np.random.default_rng(1)
    n = 80
    X = rng.normal(size=(n, 3))
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(n, 2))
    table = ols_glm(Y, X, ["PC1", "PC2", "age"], ["A", "B"])
    D = np.column_stack([np.ones(n), X])
    inv = np.linalg.inv(D.T @ D)
    for j, trait in enumerate("AB"):
        beta = inv @ D.T @ Y[:, j]
        resid = Y[:, j] - D @ beta
        se = np.sqrt(np.diag(inv) * (resid @ resid) / (n - 4))
        rows = table[table["trait"] == trait]
        np.testing.assert_allclose(rows["beta"], beta[1:], rtol=1e-10)
        np.testing.assert_allclose(rows["se"], se[1:], rtol=1e-10)
        assert (rows["n"] == n).all()


def test_one_term_matches_linregress():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50), rng.normal(size=50)
    row = ols_glm(y[:, None], x[:, None], ["PC1"], ["A"]).iloc[0]
    fit = stats.linregress(x, y)
    np.testing.assert_allclose([row["beta"], row["se"], row["p"], row["r2"]],
                               [fit.slope, fit.stderr, fit.pvalue, fit.rvalue**2], rtol=1e-10)
