"""Ordinary least squares of many traits on one design, reported as PLINK2 --glm does.

One code path for every covariate-adjusted composition test: per cell type, the transformed
share (trait) on an intercept and a design (group indicators, genotype PCs, donor covariates).
:func:`ols_fit` is the fit, :func:`ols_glm` its PLINK2-like table, :func:`nested_f_test` the
joint test of several terms and :func:`cauchy_combination` the omnibus over traits;
:func:`squeeze_variances` moderates the traits' residual variances as limma's eBayes does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from ...errors import NAMInputError

__all__ = ["bh", "cauchy_combination", "nested_f_test", "ols_fit", "ols_glm",
           "squeeze_variances", "trigamma_inverse"]


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan, dtype=np.float64)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def ols_fit(Y: np.ndarray, X: np.ndarray, terms=None) -> dict:
    """OLS of each column of Y on an intercept and X.

    Parameters
    ----------
    Y : array (n, m) float64, one column per trait (no missing values)
    X : array (n, p) float64, the design without intercept
    terms : names of the p columns, used in errors only

    Returns
    -------
    dict with ``coef``, ``se``, ``t``, ``p`` (p + 1, m; row 0 the intercept), ``rss`` (m,),
    ``r2`` (m,), ``df`` (n - p - 1), ``n`` and ``unscaled`` ((X'X)^-1 of the design with its
    intercept, (p + 1, p + 1)). Standard errors from sigma^2 (X'X)^-1.

    Raises NAMInputError when n <= p + 1 or the design is singular (collinear columns).
    """
    Y, X = np.asarray(Y, dtype=np.float64), np.asarray(X, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n, p = X.shape
    if n <= p + 1:
        raise NAMInputError(f"{n} donors cannot fit {p} terms and an intercept")
    design = np.column_stack([np.ones(n), X])
    if np.linalg.matrix_rank(design) < p + 1:
        raise NAMInputError(f"the design of terms {list(terms or range(p))} is singular "
                            "(collinear covariates, or a covariate that one group holds alone)")
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    resid = Y - design @ coef
    df = n - p - 1
    rss = (resid**2).sum(0)
    unscaled = np.linalg.inv(design.T @ design)
    se = np.sqrt(np.outer(np.diag(unscaled), rss / df))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
    return {"coef": coef, "se": se, "t": t, "p": 2 * stats.t.sf(np.abs(t), df), "rss": rss,
            "r2": 1 - rss / ((Y - Y.mean(0)) ** 2).sum(0), "df": df, "n": n,
            "unscaled": unscaled}


def ols_glm(Y: np.ndarray, X: np.ndarray, terms: list[str], traits: list[str]) -> pd.DataFrame:
    """Per trait, OLS of y on an intercept and X; one row per (trait, term).

    Parameters
    ----------
    Y : array (n, m) float64, one column per trait (no missing values)
    X : array (n, p) float64, the design without intercept
    terms, traits : names of the p columns of X and the m columns of Y

    Returns
    -------
    DataFrame with PLINK2-glm-like columns trait, term, beta, se, t, p, fdr (Benjamini-Hochberg
    within each term over traits), n, r2 (of the trait's full model). Standard errors from
    sigma^2 (X'X)^-1 with n - p - 1 degrees of freedom; the intercept is not reported.
    """
    fit = ols_fit(Y, X, terms)
    frames = [pd.DataFrame({"trait": traits, "term": term, "beta": fit["coef"][i + 1],
                            "se": fit["se"][i + 1], "t": fit["t"][i + 1], "p": fit["p"][i + 1],
                            "fdr": bh(fit["p"][i + 1]), "n": fit["n"], "r2": fit["r2"]})
              for i, term in enumerate(terms)]
    return pd.concat(frames, ignore_index=True)


def trigamma_inverse(x) -> np.ndarray:
    """The y with trigamma(y) = x (x > 0), by limma's Newton iteration (Smyth 2004)."""
    x = np.asarray(x, dtype=np.float64)
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1 - tri / x) / special.polygamma(2, y)
        y = y + step
        if np.all(-step / y < 1e-8):
            break
    return np.where(x > 1e7, 1 / np.sqrt(x), np.where(x < 1e-6, 1 / x, y))


def squeeze_variances(s2: np.ndarray, df: float) -> tuple[np.ndarray, float]:
    """Empirical-Bayes moderated variances, as limma's eBayes (Smyth 2004; not robust, no trend).

    The traits' residual variances s2_i on ``df`` degrees of freedom are taken as scaled F
    draws around a prior s0^2 on d0 degrees of freedom, fitted by moments of log s2 (limma's
    fitFDist): e_i = log s2_i - digamma(df/2) + log(df/2); d0 = 2 trigamma^-1(var(e) -
    trigamma(df/2)) and s0^2 = exp(mean(e) + digamma(d0/2) - log(d0/2)); d0 is infinite when
    that variance is not positive. Posterior variances (d0 s0^2 + df s2_i) / (d0 + df).

    Parameters
    ----------
    s2 : array (m,) residual variances, m >= 2 and all positive
    df : residual degrees of freedom of each

    Returns
    -------
    moderated variances (m,) and d0 (np.inf when the variances agree beyond sampling noise).
    """
    s2 = np.asarray(s2, dtype=np.float64)
    e = np.log(s2) - special.digamma(df / 2) + np.log(df / 2)
    excess = e.var(ddof=1) - special.polygamma(1, df / 2)
    if not excess > 0:
        return np.full_like(s2, np.exp(e.mean())), np.inf
    d0 = float(2 * trigamma_inverse(excess))
    prior = np.exp(e.mean() + special.digamma(d0 / 2) - np.log(d0 / 2))
    return (d0 * prior + df * s2) / (d0 + df), d0


def nested_f_test(Y: np.ndarray, X: np.ndarray, tested: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F-test of the columns ``tested`` of X together, the other columns (and intercept) kept.

    F = ((RSS_reduced - RSS_full) / k) / (RSS_full / (n - p - 1)), k = tested columns. With no
    other columns it is the overall regression F-test (one-way ANOVA for group indicators).

    Parameters
    ----------
    Y : array (n, m); X : array (n, p); tested : bool array (p,)

    Returns
    -------
    F statistics (m,) and their p-values (m,) on (k, n - p - 1) degrees of freedom.
    """
    tested = np.asarray(tested, dtype=bool)
    full = ols_fit(Y, X)
    reduced = ols_fit(Y, X[:, ~tested])
    k = int(tested.sum())
    f = ((reduced["rss"] - full["rss"]) / k) / (full["rss"] / full["df"])
    return f, stats.f.sf(f, k, full["df"])


def cauchy_combination(p) -> float:
    """Cauchy combination (ACAT, Liu and Xie 2020) of p-values with equal weights.

    T = mean_i tan((0.5 - p_i) pi); p = 0.5 - arctan(T) / pi. The null distribution of T is
    standard Cauchy whatever the correlation between the tests (asymptotically, in the tail),
    which is why it is used across cell types: the shares of one donor sum to one, so the types'
    tests are correlated and Fisher's method (which assumes independence) would be
    anti-conservative. Terms of p < 1e-15 use tan((0.5 - p) pi) ~ 1 / (p pi). NaNs are ignored;
    NaN when none is left.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return np.nan
    p = np.clip(p, 1e-300, 1.0)
    small = p < 1e-15
    terms = np.where(small, 1.0 / (p * np.pi), np.tan((0.5 - np.where(small, 0.5, p)) * np.pi))
    statistic = terms.mean()
    if statistic > 1e15:
        return float(1.0 / (statistic * np.pi))
    return float(stats.cauchy.sf(statistic))
