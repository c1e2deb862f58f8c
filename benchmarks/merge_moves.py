"""What the merge moves change on the small simulation study's scenarios B and C.

For each replicate (the data of ``config/simulation.yaml``: J = 200, 20 cells per individual,
K = 10, L = 20), prints one JSON line per (start, merge): the final ELBO, the individual ARI and
the number of occupied individual clusters of a float64 NAM restart

* from the k-means start with the replicate's seed (``start = "kmeans"``), and
* from the true partitions (``start = "truth"``: one-hot xi0 of the cell types, rho0 of the
  individual clusters),

each with ``merge=False`` and ``merge=True``. The truth starts show which partition the model's
ELBO prefers.

Example::

    python benchmarks/merge_moves.py --scenarios B C --replicates 3
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, simulate

GENERATOR = dict(J=200, n_clusters=4, q=5, p=10, n_cell_types=8, mean_cells=20, delta_x=3.0,
                 sigma_x=1.0, delta_y=4.0, sigma_y=1.0, eta=0.8, kappa=float("inf"))
SCENARIOS = {"A": {}, "B": {"eta": 0.0}, "C": {"delta_x": 0.0}}
K, L = 10, 20


def fit(data, seed: int, start: str, merge: bool) -> NAM:
    kw = dict(K=K, L=L, n_init=1, seed=seed, merge=merge, dtype="float64", device="cpu",
              verbose=False)
    if start == "truth":
        resp = (np.eye(L)[data.cell_labels], np.eye(K)[data.individual_labels])
        kw |= dict(init="resp", init_resp=resp)
    return NAM(**kw).fit(data.X, data.Y, data.group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["B", "C"], choices=list(SCENARIOS))
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    for scenario in args.scenarios:
        for replicate in range(args.replicates):
            data = simulate(**(GENERATOR | SCENARIOS[scenario]), seed=replicate)
            for start in ("kmeans", "truth"):
                for merge in (False, True):
                    model = fit(data, replicate, start, merge)
                    print(json.dumps({
                        "scenario": scenario, "replicate": replicate, "start": start,
                        "merge": merge, "elbo": round(model.elbo_, 2),
                        "ari_individuals": round(adjusted_rand_score(
                            data.individual_labels, model.individual_labels_), 3),
                        "n_individual_clusters": model.n_individual_clusters_,
                        "merges": model.restarts_[0]["merges"],
                    }), flush=True)


if __name__ == "__main__":
    main()
