"""Sequencing pools against NAM, CAM and Leiden: pools off, on without correction, on corrected.

A cohort of donors of three ancestries (six PBMC cell types, gamma-Poisson counts) is drawn
without pools and with ``--n-pools`` pools (each a log-normal shift of sd ``--shift-sd`` on every
gene and on the library), pool either independent of ancestry or confounded with it. The counts
are preprocessed as the workflow does; the PCs are fitted as they are and after
:func:`nam_core.inputs.batch.correct_pcs` (log library regressed out, then Harmony). Printed and
written to ``--out`` (TSV): individual ARI against ancestry, ARI of the individual clusters
against each donor's pool, cell ARI against the cell types, for each method.

    python benchmarks/pools.py --out benchmarks/results/pools.tsv
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.inputs.batch import correct_pcs
from nam_core.inputs.expression import preprocess
from nam_core.study.methods import fit_method
from nam_core.synthetic.base import CohortSpec, genotype_pcs
from nam_core.synthetic.demo import demo_anndata, draw_demo_cohort


def _scenario(spec: CohortSpec, n_pcs: int):
    """Preprocessed PCs, donor of each cell, ancestry, types, donor pools and genotype PCs."""
    cohort = draw_demo_cohort(spec)
    adata = preprocess(demo_anndata(cohort), n_pcs=n_pcs, n_top_genes=500, target_sum=1000,
                       seed=spec.seed)
    index = {iid: j for j, iid in enumerate(cohort["iids"])}
    group = adata.obs["individual"].astype(str).map(index).to_numpy(dtype=np.int64)
    types = adata.obs["cell_type"].astype(str).to_numpy()
    pools = cohort["pools"]
    donor_pool = pools.pool if pools is not None else np.zeros(spec.n_individuals, dtype=int)
    X = genotype_pcs(cohort["genotypes"].astype(np.float64), 3)
    return adata, group, types, cohort["ancestry"], donor_pool, X


def main(argv=None) -> int:
    """Run every scenario and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-individuals", type=int, default=300)
    parser.add_argument("--mean-cells", type=float, default=150)
    parser.add_argument("--n-pools", type=int, default=24)
    parser.add_argument("--shift-sd", type=float, default=0.3)
    parser.add_argument("--n-pcs", type=int, default=10)
    parser.add_argument("--methods", default="nam,leiden_1.0", help="comma-separated, e.g. nam,cam,leiden_1.0")
    parser.add_argument("--K", type=int, default=20)
    parser.add_argument("--L", type=int, default=30)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/pools.tsv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = FitSettings(K=args.K, L=args.L, n_init=1, max_iter=args.max_iter, device="cpu")
    base = dict(n_individuals=args.n_individuals, n_ancestries=3, mean_cells=args.mean_cells,
                n_snps=2000, seed=args.seed)
    scenarios = {
        "no_pools": CohortSpec(**base),
        "pools_independent": CohortSpec(**base, n_pools=args.n_pools, pool_shift_sd=args.shift_sd),
        "pools_confounded": CohortSpec(**base, n_pools=args.n_pools, pool_shift_sd=args.shift_sd,
                                       pool_confounding=0.9),
    }
    rows = []
    for scenario, spec in scenarios.items():
        adata, group, types, ancestry, donor_pool, X = _scenario(spec, args.n_pcs)
        pcs = {"uncorrected": np.asarray(adata.obsm["X_pca"], dtype=np.float64)}
        if spec.n_pools:
            pcs["corrected"] = correct_pcs(pcs["uncorrected"], donor_pool[group],
                                           adata.obs["total_counts"].to_numpy())[0]
        for correction, Y in pcs.items():
            for method in args.methods.split(","):
                t0 = time.perf_counter()
                res = fit_method(method, X, np.asarray(Y, np.float64), group,
                                 settings=settings, seed=args.seed)
                ind = res.individual_labels
                row = {
                    "scenario": scenario, "correction": correction, "method": method,
                    "individual_ari": np.nan if ind is None else adjusted_rand_score(ancestry, ind),
                    "individual_vs_pool_ari": (np.nan if ind is None or not spec.n_pools
                                               else adjusted_rand_score(donor_pool, ind)),
                    "n_individual_clusters": np.nan if ind is None else len(np.unique(ind)),
                    "cell_ari": adjusted_rand_score(types, res.cell_labels),
                    "n_cell_clusters": len(np.unique(res.cell_labels)),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                rows.append(row)
                _write(rows, args.out)  # after every row: a cut-short run keeps what it did
                print("\t".join(str(round(v, 3) if isinstance(v, float) else v)
                                for v in row.values()), flush=True)
    return 0


def _write(rows: list[dict], path: str) -> None:
    """The table so far, headed by the command that made it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# python {' '.join(sys.argv)}\n")
        pd.DataFrame(rows).to_csv(f, sep="\t", index=False, float_format="%.3f")


if __name__ == "__main__":
    raise SystemExit(main())
