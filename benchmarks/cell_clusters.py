"""Cell clusters against the true cell types: NAM, Leiden (0.5, 1.0) and the DP mixture on y.

In one run, on each data set of ``nam_core.study.cell_clusters.CASES`` (the demo cohort at 10
and 20 expression PCs, the realistic-counts cohort of > 50,000 cells at 10 PCs, and
Gaussian data from the model with p = q = 10, 8 types, ~100,000 cells), prints one JSON line per
method: cell ARI, clusters holding >= 1 % of the cells against the true number of types,
individual ARI (NAM only) and seconds.

Example::

    OMP_NUM_THREADS=2 python benchmarks/cell_clusters.py --atoms gaussian student_t
    OMP_NUM_THREADS=1 python benchmarks/cell_clusters.py --atoms student_t --merge-atoms --threads 1
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from nam_core.engine.settings import FitSettings
from nam_core.study.cell_clusters import CASES, draw_case, run_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--methods", nargs="+", default=["nam", "leiden_0.5", "leiden_1.0", "dpmix_y"])
    parser.add_argument("--atoms", nargs="+", default=["gaussian"], choices=["gaussian", "student_t"])
    parser.add_argument("--n-init", type=int, default=2, help="restarts of each variational fit")
    parser.add_argument("--K", type=int, default=10)
    parser.add_argument("--L", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--merge-atoms", action="store_true",
                        help="merge moves of cell atoms at each convergence (FitSettings.merge_atoms)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    settings = FitSettings(K=args.K, L=args.L, n_init=args.n_init, device="cpu", merge_atoms=args.merge_atoms)
    for case in args.cases:
        data = draw_case(case, seed=args.seed)
        for row in run_case(data, args.methods, settings, atoms=args.atoms, seed=args.seed):
            print(json.dumps({"case": case, **row}), flush=True)


if __name__ == "__main__":
    main()
