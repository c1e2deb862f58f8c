"""Do the cell clusters match the cell types? NAM against Leiden and the DP mixture on y.

The data sets of ``benchmarks/cell_clusters.py`` by name (:data:`CASES`, :func:`draw_case`) and
one scored row per method (:func:`score_cells`): cell ARI against the true types, the clusters
holding >= 1 % of the cells against the true number of types, the individual ARI where a method
clusters individuals, and seconds.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..results.leiden import n_large_clusters
from ..synthetic.base import SimulatedData
from ..synthetic.demo import DEMO_COHORT
from ..synthetic.realistic import REALISTIC_COHORT, simulate_realistic_counts
from ..synthetic.simulate import simulate
from .methods import fit_method

__all__ = ["CASES", "draw_case", "score_cells", "run_case"]

logger = logging.getLogger(__name__)

_REALISTIC_180 = dataclasses.replace(REALISTIC_COHORT, mean_cells=180)

#: Data sets by name -> (generator, its arguments). The demo cases use the demo config's cohort
#: (200 individuals, ~100 cells each, 20,000 SNPs); "realistic" is the README's cohort of "Cell
#: clusters against Leiden" (300 donors, ~180 cells each, > 50,000 cells after QC),
#: "realistic_regressed" the same cells with the log library size regressed out of the PCs,
#: "demo_pearson" and "realistic_pearson" with PCs of analytic Pearson residuals;
#: "gaussian" is data drawn from the model itself. A cohort's seed is set by :func:`draw_case`.
CASES: dict[str, tuple] = {
    "demo_pcs10": (simulate_realistic_counts, {"spec": DEMO_COHORT, "n_pcs": 10}),
    "demo_pcs20": (simulate_realistic_counts, {"spec": DEMO_COHORT, "n_pcs": 20}),
    "realistic": (simulate_realistic_counts, {"spec": _REALISTIC_180, "n_pcs": 10}),
    "realistic_regressed": (simulate_realistic_counts,
                            {"spec": _REALISTIC_180, "n_pcs": 10, "regress_library": True}),
    "demo_pearson": (simulate_realistic_counts,
                     {"spec": DEMO_COHORT, "n_pcs": 10, "normalisation": "pearson_residuals"}),
    "realistic_pearson": (simulate_realistic_counts,
                          {"spec": _REALISTIC_180, "n_pcs": 10,
                           "normalisation": "pearson_residuals"}),
    "gaussian": (simulate,
                 {"J": 500, "n_clusters": 4, "q": 10, "p": 10, "n_cell_types": 8,
                  "mean_cells": 200}),
}


def draw_case(name: str, seed: int = 0, **overrides) -> SimulatedData:
    """Draw data set ``name`` of :data:`CASES` with ``seed`` (``overrides`` replace its arguments)."""
    if name not in CASES:
        raise NAMInputError(f"unknown case {name!r}; known: {', '.join(CASES)}")
    generator, kwargs = CASES[name]
    kwargs = {**kwargs, **overrides}
    if "spec" in kwargs:  # a cohort: the seed is one of its parameters
        return generator(**{**kwargs, "spec": dataclasses.replace(kwargs["spec"], seed=seed)})
    return generator(**kwargs, seed=seed)


def score_cells(data: SimulatedData, cell_labels, individual_labels=None) -> dict:
    """Scores of one method's labels against the truth.

    Returns
    -------
    dict with ari_cells, n_clusters (>= 1 % of cells), n_types, ari_individuals (NaN when the
    method gives no individual labels).
    """
    out = {
        "ari_cells": float(adjusted_rand_score(data.cell_labels, cell_labels)),
        "n_clusters": n_large_clusters(cell_labels),
        "n_types": int(np.unique(data.cell_labels).size),
        "ari_individuals": float("nan"),
    }
    if individual_labels is not None:
        out["ari_individuals"] = float(adjusted_rand_score(data.individual_labels, individual_labels))
    return out


def run_case(
    data: SimulatedData, methods, settings: FitSettings, atoms=("gaussian",), seed: int = 0
) -> list[dict]:
    """Fit every method on one data set and score it.

    Parameters
    ----------
    data : SimulatedData
    methods : sequence of str
        Names of :data:`nam_core.study.methods.METHODS`; "nam" is fitted once per atom family.
    settings : FitSettings
    atoms : sequence of str
        Atom families of NAM ("gaussian", "student_t").
    seed : int

    Returns
    -------
    list of dict: method, N, p, the scores of :func:`score_cells`, seconds.
    """
    rows = []
    for method in methods:
        families = atoms if method in ("nam", "dpmix_y") else (None,)
        for family in families:
            fit = settings if family is None else settings.with_changes(atoms=family)
            res = fit_method(method, data.X, data.Y, data.group, settings=fit, seed=seed)
            label = method if family is None else f"{method}[{family}]"
            row = {"method": label, "N": int(data.Y.shape[0]), "p": int(data.Y.shape[1])}
            row.update(score_cells(data, res.cell_labels, res.individual_labels))
            row["seconds"] = res.seconds
            logger.info("%s", row)
            rows.append(row)
    return rows
