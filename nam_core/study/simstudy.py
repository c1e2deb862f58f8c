"""The simulation study of ``docs/model.md`` section 10: scenarios, one job, aggregation, checks.

A study is a plain dict (the ``simulation`` block of a workflow config, already validated and
given its defaults by ``workflow/schemas/simulation.schema.yaml``):

``seed``, ``replicates``
    Replicate ``r`` of every scenario draws its data and fits its methods with seed ``seed + r``
    (common random numbers: scenarios differ only by their parameters).
``methods``
    Names from :data:`nam_core.study.methods.METHODS`.
``fit``
    ``K``, ``L``, ``n_init``, ``max_iter``, ``dtype``, ``device``: the same for every method.
``generator``
    Keyword arguments of :func:`nam_core.study.simulate.simulate` shared by every scenario.
``scenarios``
    ``name -> {description, params, replicates}``; ``params`` override ``generator``.
``sweeps``
    ``name -> {base, parameter, values, description, replicates}``: one scenario per value, the
    base scenario with ``parameter`` set to the value. A point whose full parameter set equals a
    named scenario's (``delta_x = 0`` from A is scenario C) reuses that scenario's runs.
``checks``
    Scenario names and tolerances of the three checks of :func:`run_checks`.

Nothing here knows of Snakemake: the workflow calls :func:`jobs`, :func:`job_spec`,
:func:`run_job`, :func:`aggregate` and :mod:`nam_core.study.simplots`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import resource
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..io import atomic_path
from .simulate import simulate

__all__ = [
    "GENERATOR_KEYS",
    "LEVELS",
    "USES_GENOTYPE",
    "aggregate",
    "describe_settings",
    "expand_scenarios",
    "job_spec",
    "jobs",
    "label_metrics",
    "named_scenarios",
    "read_run",
    "run_checks",
    "run_job",
    "summarise",
    "sweeps",
    "tidy_metrics",
    "write_run",
]

logger = logging.getLogger(__name__)

#: Parameters of :func:`nam_core.study.simulate.simulate` a scenario may set (the seed comes from the
#: replicate).
GENERATOR_KEYS = tuple(k for k in inspect.signature(simulate).parameters if k != "seed")

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

_SYMBOLS = {
    "J": "J", "n_clusters": "K*", "q": "q", "p": "p", "n_cell_types": "L*",
    "mean_cells": "mean cells", "delta_x": "delta_x", "sigma_x": "sigma_x", "delta_y": "delta_y",
    "sigma_y": "sigma_y", "eta": "eta", "kappa": "kappa", "weights": "weights",
    "alpha_true": "alpha*", "genotype_model": "genotype model", "n_snps": "SNPs", "fst": "F_ST",
    "conflicting": "conflicting", "min_cells": "min cells", "dispersion": "dispersion",
    "expression_model": "y model", "library_sdlog": "library sdlog",
    "gene_dispersion": "gene dispersion",
}


# ---------------------------------------------------------------------------- scenarios
def _value_name(value) -> str:
    """Short text of a swept value for a scenario name: 0.25 -> '0.25', 3.0 -> '3', inf -> 'inf'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | int):
        return f"{value:g}"
    return str(value)


def _resolved(study: dict, overrides: dict, where: str) -> dict:
    unknown = sorted(set(overrides) - set(GENERATOR_KEYS))
    if unknown:
        raise NAMInputError(
            f"{where}: unknown generator parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(GENERATOR_KEYS)}"
        )
    shared = study.get("generator", {})
    unknown_shared = sorted(set(shared) - set(GENERATOR_KEYS))
    if unknown_shared:
        raise NAMInputError(f"generator: unknown parameter(s) {', '.join(unknown_shared)}")
    sig = inspect.signature(simulate).parameters
    params = {k: sig[k].default for k in GENERATOR_KEYS}
    params.update(shared)
    params.update(overrides)
    return params


def named_scenarios(study: dict) -> list[str]:
    """Names of the scenarios listed under ``scenarios`` (not the sweep points), in order."""
    return list(study.get("scenarios", {}))


def expand_scenarios(study: dict) -> dict[str, dict]:
    """Every scenario of a study, named ones first, then the new points of the sweeps.

    Returns
    -------
    dict
        ``name -> {"description", "params" (all generator parameters), "replicates",
        "sweeps" (list of (sweep, value) pairs the scenario is a point of)}``.
    """
    out: dict[str, dict] = {}
    for name, entry in study.get("scenarios", {}).items():
        entry = entry or {}
        out[name] = {
            "description": entry.get("description", ""),
            "params": _resolved(study, entry.get("params", {}), f"scenario {name}"),
            "replicates": entry.get("replicates") or study["replicates"],
            "sweeps": [],
        }
    for sweep, entry in study.get("sweeps", {}).items():
        base = entry["base"]
        if base not in out or base not in study.get("scenarios", {}):
            raise NAMInputError(
                f"sweep {sweep}: base scenario {base!r} is not one of the named scenarios "
                f"({', '.join(named_scenarios(study))})"
            )
        param = entry["parameter"]
        for value in entry["values"]:
            base_params = (study["scenarios"][base] or {}).get("params", {})
            params = _resolved(study, {**base_params, param: value}, f"sweep {sweep}")
            same = [n for n, s in out.items() if s["params"] == params]
            if same:
                out[same[0]]["sweeps"].append((sweep, value))
                continue
            name = f"{sweep}_{_value_name(value)}"
            if name in out:
                raise NAMInputError(f"sweep {sweep}: scenario name {name} is already taken")
            desc = entry.get("description") or f"sweep of {param} around scenario {base}"
            out[name] = {
                "description": f"{desc}: {param} = {_value_name(value)}",
                "params": params,
                "replicates": entry.get("replicates") or study["replicates"],
                "sweeps": [(sweep, value)],
            }
    return out


def sweeps(study: dict) -> dict[str, dict]:
    """Each sweep's parameter, base scenario and points.

    Returns
    -------
    dict
        ``name -> {"parameter", "base", "description", "points": [(value, scenario), ...]}``,
        points sorted by value.
    """
    scen = expand_scenarios(study)
    out = {}
    for sweep, entry in study.get("sweeps", {}).items():
        points = [(v, n) for n, s in scen.items() for sw, v in s["sweeps"] if sw == sweep]
        out[sweep] = {
            "parameter": entry["parameter"],
            "base": entry["base"],
            "description": entry.get("description", ""),
            "points": sorted(points, key=lambda t: t[0]),
        }
    return out


def jobs(study: dict) -> list[tuple[str, int, str]]:
    """Every (scenario, replicate, method) of the study: one fit each."""
    return [
        (name, r, method)
        for name, s in expand_scenarios(study).items()
        for r in range(s["replicates"])
        for method in study["methods"]
    ]


def job_spec(study: dict, scenario: str, replicate: int, method: str) -> dict:
    """Everything one job needs, and records: scenario, replicate, seed, method, parameters."""
    scen = expand_scenarios(study)
    if scenario not in scen:
        raise NAMInputError(f"unknown scenario {scenario!r}; known: {', '.join(scen)}")
    if method not in study["methods"]:
        raise NAMInputError(f"method {method!r} is not in the study's methods")
    replicate = int(replicate)
    return {
        "scenario": scenario,
        "replicate": replicate,
        "seed": int(study["seed"]) + replicate,
        "method": method,
        "generator": dict(scen[scenario]["params"]),
        "fit": dict(study["fit"]) if FitSettings.from_config(study["fit"]) else None,
    }


def describe_settings(params: dict, fit: dict | None = None, skip: Iterable[str] = ()) -> str:
    """One line of generative (and fit) settings for a figure caption."""
    parts = []
    for k in GENERATOR_KEYS:
        if k in skip or k not in params:
            continue
        counts = params.get("expression_model", "gaussian") == "counts"
        if k in ("n_snps", "fst") and params.get("genotype_model") != "snp" and not counts:
            continue
        if k in ("expression_model", "library_sdlog", "gene_dispersion") and not counts:
            continue
        if k == "alpha_true" and params.get("weights") != "stick":
            continue
        v = params[k]
        parts.append(f"{_SYMBOLS[k]} = {'inf' if v == math.inf else _value_name(v)}")
    text = ", ".join(parts)
    if fit:
        text += (f"; every method with truncations K = {fit['K']}, L = {fit['L']}, "
                 f"{fit['n_init']} restarts, at most {fit['max_iter']} sweeps, {fit['dtype']}")
    return text


# ---------------------------------------------------------------------------- one job
def label_metrics(true: np.ndarray, pred: np.ndarray | None) -> dict:
    """ARI, NMI and occupied cluster counts of ``pred`` against ``true`` (NaN when pred is None)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    n_true = int(np.unique(true).size)
    if pred is None:
        return {"ari": math.nan, "nmi": math.nan, "n_occupied": math.nan, "n_true": n_true}
    pred = np.asarray(pred)
    if pred.shape != np.shape(true):
        raise NAMInputError(f"predicted labels have shape {pred.shape}, truth {np.shape(true)}")
    return {
        "ari": float(adjusted_rand_score(true, pred)),
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "n_occupied": int(np.unique(pred).size),
        "n_true": n_true,
    }


@contextlib.contextmanager
def _limited_threads(threads: int):
    """Torch, BLAS and OpenMP pools limited to ``threads`` inside; torch's count restored after.

    Several single-thread jobs share a machine's cores; torch's default (every core) makes them
    contend, which slowed the fits of this study tenfold on a loaded two-core machine.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (``getrusage`` maxrss), MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def run_job(spec: dict, threads: int = 1) -> dict:
    """Simulate one replicate, fit one method, score it.

    Parameters
    ----------
    spec : dict
        From :func:`job_spec`.
    threads : int
        CPU threads for torch and the BLAS/OpenMP pools.

    Returns
    -------
    dict
        The spec plus ``data`` (J, N, true counts), ``metrics`` (level -> ari, nmi, n_occupied,
        n_true), ``elbo``, ``n_iter``, ``converged``, ``fit_seconds``, ``wall_seconds`` (simulate +
        fit + score), ``peak_rss_mib`` (the job process's maxrss, imports included),
        ``peak_gpu_mib`` (NaN off CUDA), ``software`` and ``threads``.
    """
    import torch

    from .. import __version__
    from .methods import fit_method

    start = time.perf_counter()
    gen, fit = spec["generator"], spec["fit"]
    logger.info("scenario %s replicate %d (seed %d): simulating %s", spec["scenario"],
                spec["replicate"], spec["seed"], describe_settings(gen))
    data = simulate(**gen, seed=spec["seed"])
    logger.info("%d individuals, %d cells; fitting %s", data.X.shape[0], data.Y.shape[0],
                spec["method"])
    cuda = torch.cuda.is_available() and fit["device"] != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with _limited_threads(int(threads)):
        res = fit_method(
            spec["method"], data.X, data.Y, data.group, settings=FitSettings.from_config(fit),
            seed=spec["seed"], oracle_K=gen["n_clusters"], oracle_L=gen["n_cell_types"],
        )
    metrics = {
        "individual": label_metrics(data.individual_labels, res.individual_labels),
        "cell": label_metrics(data.cell_labels, res.cell_labels),
    }
    if gen.get("conflicting"):
        metrics["composition"] = label_metrics(data.composition_labels, res.individual_labels)
    out = dict(spec)
    out.update(
        data={"J": int(data.X.shape[0]), "N": int(data.Y.shape[0]),
              "K_true": int(np.unique(data.individual_labels).size),
              "L_true": int(np.unique(data.cell_labels).size)},
        metrics=metrics,
        elbo=float(res.elbo),
        n_iter=int(res.n_iter),
        converged=getattr(res.model, "converged_", None),
        fit_seconds=float(res.seconds),
        wall_seconds=time.perf_counter() - start,
        peak_rss_mib=_peak_rss_mib(),
        peak_gpu_mib=torch.cuda.max_memory_allocated() / 2**20 if cuda else math.nan,
        threads=int(threads),
        software={"nam_core": __version__, "torch": torch.__version__,
                  "python": sys.version.split()[0]},
    )
    if out["converged"] is not None:
        out["converged"] = bool(out["converged"])
    logger.info(
        "%s: individual ARI %.3f, cell ARI %.3f, %d sweeps, %.2f s fit, peak RSS %.0f MiB",
        spec["method"], metrics["individual"]["ari"], metrics["cell"]["ari"], out["n_iter"],
        out["fit_seconds"], out["peak_rss_mib"],
    )
    return out


def _jsonable(obj):
    """NaN -> None and +-inf -> "inf"/"-inf", recursively, so the JSON is standard."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
    return obj


def write_run(result: dict, path: str | os.PathLike) -> None:
    """Write one job's result as standard JSON (NaN as null, infinity as "inf"), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")


def read_run(path: str | os.PathLike) -> dict:
    """Read a result of :func:`write_run`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NAMInputError(f"cannot read simulation run {path}: {err}") from err


# ---------------------------------------------------------------------------- aggregation
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
