"""Atom merges in every coarse restart, or only in the chosen one: same result? how much faster?

Coarse restarts only choose a starting point (``fit.coarse_fraction``). Their atom-merge
searches cost several full sweeps per candidate. Two ways to run the restarts, with the
workflow's fit settings (``--config``) and the same seeds:

* all: every restart with atom merges; the largest ELBO is chosen;
* best: every restart without atom merges; the largest ELBO is chosen, then continued on
  the same cells with atom merges (:func:`nam_core.models.coarse_to_fine.merge_atoms_of_best`).

Prints one JSON line per (case, strategy) on the coarse cells (chosen seed, ELBO, ARI of the
atoms to the true cell types, atoms holding >= 1 % of the cells, ARI of the individual clusters
to the true ones where known, seconds) and, with ``--refine``, the same after the refinement
on all cells. Cases: the generators of ``benchmarks/cell_types.py`` (``demo``, ``realistic``,
``many_types``), the simulation generator (``simulated``), and a workflow run's fit inputs
(``fit_inputs``). Example::

    OMP_NUM_THREADS=1 python benchmarks/coarse_merges.py --cases realistic many_types simulated
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score as ari

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cell_types import fit_settings, load  # noqa: E402

from nam_core.models.coarse_to_fine import best_coarse_restart, refine_on_all_cells  # noqa: E402
from nam_core.models.registry import build_estimator  # noqa: E402
from nam_core.results.leiden import n_large_clusters  # noqa: E402
from nam_core.synthetic.simulate import simulate  # noqa: E402

CASES = ["demo", "realistic", "many_types", "simulated", "fit_inputs"]
SIMULATED = dict(J=200, n_clusters=4, q=5, p=10, n_cell_types=8, mean_cells=200, delta_x=3.0,
                 delta_y=4.0, eta=0.8)


def case_data(case: str, n_pcs: int, seed: int, paths=None):
    """(X (J, q), Y (N, p), group (N,), true cell types (N,), true individual clusters (J,) or None)."""
    if case == "simulated":
        data = simulate(**SIMULATED, seed=seed)
        return data.X, data.Y, data.group, data.cell_labels, data.individual_labels
    if case == "fit_inputs":
        import pandas as pd

        pcs, types, X, group = load(case, n_pcs, seed, None, paths[:2])
        truth = pd.read_csv(paths[2], sep="\t", dtype=str).set_index("individual")["ancestry"]
        from nam_core.inputs.fit_inputs import read_fit_inputs

        individuals = read_fit_inputs(paths[0]).individuals
        return X, pcs, group, types, truth.reindex(np.asarray(individuals).astype(str)).to_numpy()
    pcs, types, X, group = load(case, n_pcs, seed, 20_000)
    return X, pcs, group, types, None


def scores(model, types, individuals) -> dict:
    out = {"elbo": round(float(model.elbo_), 1),
           "ari_atoms": round(float(ari(types, model.cell_labels_)), 4),
           "atoms_1pct": n_large_clusters(model.cell_labels_)}
    if individuals is not None:
        out["ari_individuals"] = round(float(ari(individuals, model.individual_labels_)), 4)
    return out


def run_case(case, strategy, settings, restarts, data, refine: bool) -> dict:
    X, Y, group, types, individuals = data
    params = build_estimator("nam", settings).get_params()
    params = {k: v for k, v in params.items() if k not in ("n_init", "seed")}
    best, info = best_coarse_restart(X, Y, group, restarts, settings.coarse_fraction,
                                     settings.coarse_min_cells, atom_merges=strategy, **params)
    rows = info["rows"]
    out = {"case": case, "strategy": strategy, "cells": len(Y), "coarse_cells": int(rows.size),
           "seed": info["best_seed"], "restart_elbos": [round(r["elbo"], 1) for r in info["restarts"]],
           "restart_seconds": round(sum(r["seconds"] for r in info["restarts"]), 1),
           "coarse_seconds": round(info["coarse_seconds"], 1),
           **{f"coarse_{k}": v for k, v in scores(best, types[rows], individuals).items()}}
    if refine:
        t = time.perf_counter()
        final = refine_on_all_cells(best, X, Y, group, **params)
        out.update({"refine_seconds": round(time.perf_counter() - t, 1),
                    **{f"final_{k}": v for k, v in scores(final, types, individuals).items()}})
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["realistic", "many_types", "simulated"],
                        choices=CASES)
    parser.add_argument("--config", default="config/onek1k.yaml",
                        help="fit settings (its coarse_fraction, atoms, merges)")
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--pcs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="data-set seeds")
    parser.add_argument("--refine", action="store_true", help="also refine on all cells")
    parser.add_argument("--fit-inputs", help="fit/inputs.npz of a workflow run (case fit_inputs)")
    parser.add_argument("--truth-cells", help="that cohort's truth_cells.tsv")
    parser.add_argument("--truth-individuals", help="that cohort's truth_individuals.tsv")
    args = parser.parse_args()
    settings = fit_settings(args.config)
    paths = (args.fit_inputs, args.truth_cells, args.truth_individuals)
    for case in args.cases:
        for seed in args.seeds:
            data = case_data(case, args.pcs, seed, paths)
            for strategy in ("all", "best"):
                run_case(case, strategy, settings, args.restarts, data, args.refine)


if __name__ == "__main__":
    main()
