"""Ordinary least squares of many traits on one design, reported as PLINK2 --glm does.

Used for the covariate-adjusted composition tests: per cell type, the transformed share
(trait) on an intercept, the genotype PCs and the donor covariates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import NAMInputError

__all__ = ["ols_glm"]


def _bh(p: np.ndarray) -> np.ndarray:
    out = np.full_like(p, np.nan, dtype=np.float64)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


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
    Y, X = np.asarray(Y, dtype=np.float64), np.asarray(X, dtype=np.float64)
    n, p = X.shape
    if n <= p + 1:
        raise NAMInputError(f"{n} donors cannot fit {p} terms and an intercept")
    design = np.column_stack([np.ones(n), X])
    if np.linalg.matrix_rank(design) < p + 1:
        raise NAMInputError(f"the design of terms {terms} is singular (collinear covariates)")
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    resid = Y - design @ coef
    df = n - p - 1
    sigma2 = (resid**2).sum(0) / df
    se = np.sqrt(np.outer(np.diag(np.linalg.inv(design.T @ design)), sigma2))
    t = coef / se
    pv = 2 * stats.t.sf(np.abs(t), df)
    r2 = 1 - (resid**2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    frames = [pd.DataFrame({"trait": traits, "term": term, "beta": coef[i + 1], "se": se[i + 1],
                            "t": t[i + 1], "p": pv[i + 1], "fdr": _bh(pv[i + 1]), "n": n,
                            "r2": r2})
              for i, term in enumerate(terms)]
    return pd.concat(frames, ignore_index=True)
