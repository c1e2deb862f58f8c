"""Coarse-to-fine restarts against full restarts: same partition? how much time saved?

For the demo cohort (its genotype and expression PCs, as the workflow computes them) and
simulation scenarios A-C (config/simulation.yaml's generator with the design's 200 cells per
individual), both strategies run ``--restarts`` NAM restarts with the same seeds:

* full: ``NAM(n_init=restarts)`` on all cells;
* coarse-to-fine: :func:`nam_core.models.coarse_to_fine.fit_coarse_to_fine` (restarts on
  ``--fraction`` of each individual's cells, the best refined on all cells).

Prints one JSON line per (data set, replicate): seconds of each, the ARI between their
individual partitions and between their cell partitions, each one's ARI to the truth and final
ELBO on all cells; then a summary (share of runs with the same individual partition, median
time ratio). Example (the README's numbers)::

    OMP_NUM_THREADS=2 python benchmarks/coarse_to_fine.py --replicates 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score as ari

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nam_core import NAM  # noqa: E402
from nam_core.models.coarse_to_fine import fit_coarse_to_fine  # noqa: E402
from nam_core.synthetic.simulate import simulate  # noqa: E402

FIT = dict(K=10, L=20, max_iter=1000, dtype="float32", device="cpu", verbose=False)
GENERATOR = dict(J=200, n_clusters=4, q=5, p=10, n_cell_types=8, mean_cells=200, delta_x=3.0,
                 delta_y=4.0, eta=0.8)
SCENARIOS = {"A": {}, "B": {"eta": 0.0}, "C": {"delta_x": 0.0}}


def demo_data(seed: int):
    """The demo cohort's genotype PCs (J, 5), expression PCs (N, 5), groups and truth."""
    from nam_core.inputs.expression import preprocess, read_counts
    from nam_core.inputs.genotypes import compute_genotype_pcs
    from nam_core.synthetic.base import CohortSpec
    from nam_core.synthetic.demo import make_demo_cohort

    folder = Path(tempfile.mkdtemp(prefix="nam_c2f_demo_"))
    paths = make_demo_cohort(folder, CohortSpec(seed=seed))
    pcs = compute_genotype_pcs(paths["bfile"], n_pcs=5).scores
    cells = preprocess(read_counts(paths["counts"], "individual"), min_genes=200, min_cells=3,
                       min_counts=500, max_pct_mt=20, n_top_genes=500, n_pcs=5, target_sum=1000)
    individuals = cells.obs["individual"].astype(str).to_numpy()
    order = [i for i in pcs.index.astype(str) if i in set(individuals)]
    code = {iid: j for j, iid in enumerate(order)}
    truth = dict(zip(*np.loadtxt(paths["truth_individuals"], dtype=str, skiprows=1,
                                 unpack=True), strict=True))
    return (pcs.loc[order].to_numpy(), cells.obsm["X_pca"],
            np.array([code[i] for i in individuals]), np.array([truth[i] for i in order]),
            cells.obs["cell_type"].astype(str).to_numpy())


def compare(name: str, rep: int, X, Y, group, truth_ind, truth_cells, restarts, fraction):
    t0 = time.perf_counter()
    full = NAM(n_init=restarts, seed=rep * 100, **FIT).fit(X, Y, group)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    c2f, info = fit_coarse_to_fine(X, Y, group, n_init=restarts, fraction=fraction,
                                   seed=rep * 100, **FIT)
    t_c2f = time.perf_counter() - t0
    row = {
        "data": name, "replicate": rep, "cells": int(Y.shape[0]),
        "subsample_cells": int(info["rows"].size),
        "full_seconds": round(t_full, 1), "c2f_seconds": round(t_c2f, 1),
        "time_ratio": round(t_c2f / t_full, 3),
        "ari_individuals_c2f_vs_full": round(ari(full.individual_labels_, c2f.individual_labels_), 4),
        "ari_cells_c2f_vs_full": round(ari(full.cell_labels_, c2f.cell_labels_), 4),
        "full_ari_individuals": round(ari(truth_ind, full.individual_labels_), 4),
        "c2f_ari_individuals": round(ari(truth_ind, c2f.individual_labels_), 4),
        "full_ari_cells": round(ari(truth_cells, full.cell_labels_), 4),
        "c2f_ari_cells": round(ari(truth_cells, c2f.cell_labels_), 4),
        "full_elbo": round(float(full.elbo_), 1), "c2f_elbo": round(float(c2f.elbo_), 1),
        "best_seed_full": int(full.seed_), "best_seed_c2f": info["best_seed"],
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--first-replicate", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for rep in range(args.first_replicate, args.first_replicate + args.replicates):
        if not args.no_demo:
            rows.append(compare("demo", rep, *demo_data(rep), args.restarts, args.fraction))
        for name in args.scenarios:
            params = SCENARIOS[name]
            data = simulate(**{**GENERATOR, **params}, seed=rep)
            rows.append(compare(name, rep, data.X, data.Y, data.group, data.individual_labels,
                                data.cell_labels, args.restarts, args.fraction))
    same = [r["ari_individuals_c2f_vs_full"] == 1.0 for r in rows]
    print(json.dumps({
        "summary": "coarse-to-fine vs full restarts",
        "runs": len(rows), "same_individual_partition": int(sum(same)),
        "median_ari_cells_c2f_vs_full": float(np.median([r["ari_cells_c2f_vs_full"] for r in rows])),
        "median_time_ratio": float(np.median([r["time_ratio"] for r in rows])),
    }), flush=True)


if __name__ == "__main__":
    main()
