"""Aggregation of a simulation study: tidy metrics, their summary, and the study's checks.

Reads the runs written by :func:`nam_core.study.job.write_run`; writes the tables that
:mod:`nam_core.study.simplots` draws.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable

import pandas as pd

from ..errors import NAMInputError
from ..io import atomic_path
from .job import read_run

__all__ = ["LEVELS", "USES_GENOTYPE", "aggregate", "run_checks", "summarise", "tidy_metrics"]

logger = logging.getLogger(__name__)

#: Levels scored in every run: individuals (S_j) and cells (M_ji). In scenario D a third level,
#: ``composition``, scores the individuals against the partition that fixed their compositions.
LEVELS = ("individual", "cell")

#: Whether each method of the registry sees the individual-level vectors x (genotype).
USES_GENOTYPE = {
    "nam": True,
    "cam": False,
    "fisan": False,
    "ndp": False,
    "hdp": False,
    "dpmix_x": True,
    "dpmix_y": False,
    "two_stage": True,
    "kmeans_oracle": True,
}


def _number(v):
    if v is None:
        return math.nan
    if v in ("inf", "-inf"):
        return float(v)
    return v


def tidy_metrics(runs: Iterable[dict]) -> pd.DataFrame:
    """One row per (scenario, replicate, method, level) with every recorded setting.

    Columns: scenario, replicate, seed, method, level, ari, nmi, n_occupied, n_true, elbo,
    n_iter, converged, fit_seconds, wall_seconds, peak_rss_mib, peak_gpu_mib, n_individuals,
    n_cells, the generator parameters under their own names, and fit_K ... fit_device.
    """
    rows = []
    for run in runs:
        for level, m in run["metrics"].items():
            row = {
                "scenario": run["scenario"], "replicate": run["replicate"], "seed": run["seed"],
                "method": run["method"], "level": level,
                **{k: _number(m[k]) for k in ("ari", "nmi", "n_occupied", "n_true")},
                "elbo": _number(run["elbo"]), "n_iter": run["n_iter"],
                "converged": run.get("converged"),
                **{k: _number(run[k]) for k in
                   ("fit_seconds", "wall_seconds", "peak_rss_mib", "peak_gpu_mib")},
                "n_individuals": run["data"]["J"], "n_cells": run["data"]["N"],
                **{k: _number(v) for k, v in run["generator"].items()},
                **{f"fit_{k}": v for k, v in run["fit"].items()},
            }
            rows.append(row)
    if not rows:
        raise NAMInputError("no simulation runs to aggregate")
    df = pd.DataFrame(rows)
    return df.sort_values(["scenario", "method", "level", "replicate"], kind="stable",
                          ignore_index=True)


def _q(p):
    def f(s):
        return s.quantile(p) if s.notna().any() else math.nan

    f.__name__ = f"q{int(100 * p)}"
    return f


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range of ARI and NMI per scenario, method and level.

    Also the median occupied clusters, sweeps, fit seconds and peak RSS, and ``n`` (replicates
    with a finite ARI). Levels a method does not produce keep their rows, with NaN.
    """
    g = metrics.groupby(["scenario", "method", "level"], sort=False)
    out = g.agg(
        n=("ari", "count"),
        ari_median=("ari", "median"), ari_q25=("ari", _q(0.25)), ari_q75=("ari", _q(0.75)),
        nmi_median=("nmi", "median"), nmi_q25=("nmi", _q(0.25)), nmi_q75=("nmi", _q(0.75)),
        n_occupied_median=("n_occupied", "median"), n_true=("n_true", "median"),
        n_iter_median=("n_iter", "median"), fit_seconds_median=("fit_seconds", "median"),
        peak_rss_mib_median=("peak_rss_mib", "median"),
    ).reset_index()
    out.insert(6, "ari_iqr", out["ari_q75"] - out["ari_q25"])
    out.insert(10, "nmi_iqr", out["nmi_q75"] - out["nmi_q25"])
    return out


def _median(summary: pd.DataFrame, scenario: str, method: str, level: str) -> float:
    row = summary[(summary.scenario == scenario) & (summary.method == method)
                  & (summary.level == level)]
    return float(row["ari_median"].iloc[0]) if len(row) else math.nan


def run_checks(summary: pd.DataFrame, checks: dict) -> pd.DataFrame:
    """The three checks of the simulation study, one row per comparison.

    * ``genotype_only`` (scenario B): NAM's median individual-level ARI exceeds that of every
      method that ignores genotype (:data:`USES_GENOTYPE`) by at least ``margin_genotype_only``.
    * ``genotype_uninformative`` (scenario C): NAM's median individual-level ARI is within
      ``tol_genotype_uninformative`` of CAM's (either side).
    * ``both_informative`` (scenario A): at both levels, NAM's median ARI is not below any other
      method's by more than ``tol_both_informative`` (methods listed in ``exclude`` are skipped).

    Methods without labels at a level (NaN median) are not compared. A scenario or method
    absent from the summary gives a row with status ``missing``.

    Parameters
    ----------
    summary : DataFrame
        From :func:`summarise`.
    checks : dict
        ``genotype_only``, ``genotype_uninformative``, ``both_informative`` (scenario names or
        None to skip), the three tolerances, and ``exclude`` (methods left out of every check).

    Returns
    -------
    DataFrame
        Columns check, scenario, level, method, nam_median, other_median, difference
        (NAM minus other), threshold, rule, status ("pass", "fail" or "missing").
    """
    exclude = set(checks.get("exclude", []))
    methods = [m for m in pd.unique(summary["method"]) if m != "nam" and m not in exclude]
    rows = []

    def add(check, scenario, level, method, rule, threshold, ok):
        nam = _median(summary, scenario, "nam", level)
        other = _median(summary, scenario, method, level)
        diff = nam - other
        if math.isnan(nam) or math.isnan(other):
            status = "missing"
        else:
            status = "pass" if ok(diff) else "fail"
        rows.append(dict(check=check, scenario=scenario, level=level, method=method,
                         nam_median=nam, other_median=other, difference=diff,
                         threshold=threshold, rule=rule, status=status))

    def present(scenario, method, level):
        return not math.isnan(_median(summary, scenario, method, level))

    b = checks.get("genotype_only")
    if b:
        margin = checks["margin_genotype_only"]
        blind = [m for m in methods if not USES_GENOTYPE.get(m, True)
                 and present(b, m, "individual")]
        for m in blind or ["(none)"]:
            add("genotype_only", b, "individual", m, f"NAM - other >= {margin}", margin,
                lambda d, margin=margin: d >= margin)
    c = checks.get("genotype_uninformative")
    if c:
        tol = checks["tol_genotype_uninformative"]
        add("genotype_uninformative", c, "individual", "cam", f"|NAM - CAM| <= {tol}", tol,
            lambda d, tol=tol: abs(d) <= tol)
    a = checks.get("both_informative")
    if a:
        tol = checks["tol_both_informative"]
        for level in LEVELS:
            others = [m for m in methods if present(a, m, level)]
            for m in others or ["(none)"]:
                add("both_informative", a, level, m, f"NAM - other >= -{tol}", tol,
                    lambda d, tol=tol: d >= -tol)
    return pd.DataFrame(rows, columns=["check", "scenario", "level", "method", "nam_median",
                                       "other_median", "difference", "threshold", "rule",
                                       "status"])


def aggregate(
    paths: Iterable[str | os.PathLike],
    path_to_metrics: str | os.PathLike,
    path_to_summary: str | os.PathLike,
    path_to_checks: str | os.PathLike,
    checks: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read every run's JSON, write the tidy metrics, the summary and the checks (TSV)."""
    paths = list(paths)
    metrics = tidy_metrics(read_run(p) for p in paths)
    summary = summarise(metrics)
    table = run_checks(summary, checks)
    for df, path in ((metrics, path_to_metrics), (summary, path_to_summary),
                     (table, path_to_checks)):
        with atomic_path(path) as tmp:
            df.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")
    logger.info("aggregated %d runs into %d rows; checks: %s", len(paths), len(metrics),
                table["status"].value_counts().to_dict())
    return metrics, summary, table
