"""The design of a simulation study (``docs/model.md`` section 10): its scenarios, sweeps and jobs.

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
    Keyword arguments of :func:`nam_core.synthetic.simulate.simulate` shared by every scenario.
``scenarios``
    ``name -> {description, params, replicates}``; ``params`` override ``generator``.
``sweeps``
    ``name -> {base, parameter, values, description, replicates}``: one scenario per value, the
    base scenario with ``parameter`` set to the value. A point whose full parameter set equals a
    named scenario's (``delta_x = 0`` from A is scenario C) reuses that scenario's runs.
``checks``
    Scenario names and tolerances of the three checks of
    :func:`nam_core.study.aggregation.run_checks`.

Nothing in this package knows of Snakemake: the workflow calls :func:`jobs`, :func:`job_spec`,
:func:`nam_core.study.job.run_job`, :func:`nam_core.study.aggregation.aggregate` and
:mod:`nam_core.study.simplots`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..synthetic.simulate import simulate

__all__ = [
    "GENERATOR_KEYS",
    "describe_settings",
    "expand_scenarios",
    "job_spec",
    "jobs",
    "named_scenarios",
    "sweeps",
]

#: Parameters of :func:`nam_core.synthetic.simulate.simulate` a scenario may set (the seed comes
#: from the replicate).
GENERATOR_KEYS = tuple(k for k in inspect.signature(simulate).parameters if k != "seed")

_SYMBOLS = {
    "J": "J", "n_clusters": "K*", "q": "q", "p": "p", "n_cell_types": "L*",
    "mean_cells": "mean cells", "delta_x": "delta_x", "sigma_x": "sigma_x", "delta_y": "delta_y",
    "sigma_y": "sigma_y", "eta": "eta", "kappa": "kappa", "weights": "weights",
    "alpha_true": "alpha*", "genotype_model": "genotype model", "n_snps": "SNPs", "fst": "F_ST",
    "conflicting": "conflicting", "min_cells": "min cells", "dispersion": "dispersion",
    "expression_model": "y model", "library_sdlog": "library sdlog",
    "gene_dispersion": "gene dispersion",
}


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
