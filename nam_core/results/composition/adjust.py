"""The donor covariates of the adjusted composition tests, as columns of a linear model."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...inputs.covariates import covariate_design

__all__ = ["Covariates", "covariate_columns"]

logger = logging.getLogger(__name__)


class Covariates:
    """Checked donor covariates (``covariates/donors.tsv``) and their types.

    Parameters
    ----------
    table : DataFrame or None
        Column individual, then one column per covariate (None or no covariate column: the
        tests are unadjusted).
    types : dict or None
        ``{column: "numeric" | "categorical"}`` (the config's covariates.columns and
        obs_columns). A column without a type is numeric when the table reads it as a number.
    """

    def __init__(self, table: pd.DataFrame | None = None, types: dict | None = None):
        if table is None:
            table = pd.DataFrame({"individual": pd.Series([], dtype=str)})
        self.table = table.assign(individual=table["individual"].astype(str)).set_index(
            "individual")
        types = dict(types or {})
        self.types = {c: types.get(c, "numeric" if pd.api.types.is_numeric_dtype(self.table[c])
                                   else "categorical") for c in self.table.columns}

    @property
    def names(self) -> list[str]:
        """The covariate columns (empty: no adjustment)."""
        return list(self.types)

    def __bool__(self) -> bool:
        return bool(self.types)

    def kept(self, individuals) -> np.ndarray:
        """Which of ``individuals`` (n,) have covariates: all of them when there are none."""
        individuals = pd.Index(np.asarray(individuals, dtype=str))
        if not self:
            return np.ones(len(individuals), dtype=bool)
        return individuals.isin(self.table.index)

    def values(self, individuals) -> pd.DataFrame:
        """The covariate values of ``individuals`` (all must be :meth:`kept`)."""
        return self.table.loc[np.asarray(individuals, dtype=str)]


def covariate_columns(covariates: Covariates | None, individuals) -> tuple[np.ndarray, list[str]]:
    """Design columns of the covariates for these donors: numeric centred, categorical dummies.

    Built on the donors given (levels and means of this subset). A column without spread over
    them (a categorical level held by all, a numeric constant) is dropped and logged: it is
    collinear with the intercept.

    Parameters
    ----------
    covariates : Covariates or None
    individuals : sequence of str (n,), every one :meth:`Covariates.kept`

    Returns
    -------
    design (n, c) float64 without intercept, and its c column names (``age``,
    ``pool[P2]``, ...); (n, 0) and [] without covariates.
    """
    n = len(individuals)
    if covariates is None or not covariates:
        return np.empty((n, 0)), []
    design, names = covariate_design(covariates.values(individuals), covariates.types)
    spread = design.std(axis=0) > 0 if n else np.zeros(len(names), dtype=bool)
    if not spread.all():
        logger.info("covariate columns without spread over these %d donors, left out: %s", n,
                    [c for c, s in zip(names, spread, strict=True) if not s])
    return design[:, spread], [c for c, s in zip(names, spread, strict=True) if s]
