"""Cost of preprocessing with log1p against analytic Pearson residuals, on a generated cohort.

Writes a OneK1K-shaped cohort (``nam_core.synthetic.scale_cohort.make_scale_cohort``; kept if
already there), then runs ``preprocess_h5ad`` once per ``expression.normalisation`` in a fresh
process, one thread, and prints per run: wall and CPU seconds, peak RSS (VmHWM), and two
checks of the PCs: the ARI of k-means (k = true types, on the PCs) against the true types, and
the largest |correlation| of a PC with the log library size. The cell-type benchmark
(``benchmarks/cell_types.py``) scores NAM itself on the two.

Example::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/preprocess_normalisation.py \
        --cells 100000 --median-library 1000 --workdir /tmp/nam_pre100k
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, re, sys
from nam_core.inputs.expression import preprocess_h5ad
summary = preprocess_h5ad(sys.argv[1], sys.argv[2], "donor_id", normalisation=sys.argv[3],
                          **json.loads(sys.argv[4]))
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"peak_gb": round(peak / 2**20, 3), "cells": summary["n_cells_out"],
                  "genes": summary["n_genes_out"]}))
"""

#: config/onek1k.yaml's expression settings.
SETTINGS = dict(min_genes=200, min_cells=10, min_counts=500, max_pct_mt=15, target_sum=1000,
                n_top_genes=2000, n_pcs=20)


def _check_pcs(path, truth_path) -> dict:
    """k-means ARI against the true types and max |corr(PC, log library size)|."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    cells = ad.read_h5ad(path, backed="r")
    pcs = np.asarray(cells.obsm["X_pca"], dtype=np.float64)
    truth = pd.read_csv(truth_path, sep="\t", dtype=str).set_index("cell")
    types = truth.loc[cells.obs_names, "cell_type"].to_numpy()
    z = np.log(cells.obs["total_counts"].to_numpy(np.float64))
    labels = KMeans(len(set(types)), n_init=3, random_state=0).fit_predict(pcs)
    corr = max(abs(np.corrcoef(z, pcs[:, k])[0, 1]) for k in range(pcs.shape[1]))
    return {"kmeans_ari": round(float(adjusted_rand_score(types, labels)), 3),
            "max_corr_pc_loglib": round(float(corr), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--donors", type=int, default=100)
    parser.add_argument("--median-library", type=float, default=1000.0)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--normalisations", nargs="+", default=["log1p", "pearson_residuals"])
    args = parser.parse_args()
    from nam_core.synthetic.base import CohortSpec
    from nam_core.synthetic.scale_cohort import make_scale_cohort

    cohort = args.workdir / "cohort"
    if not (cohort / "counts.h5ad").exists():
        make_scale_cohort(cohort, CohortSpec(n_individuals=args.donors,
                                             mean_cells=args.cells / args.donors, n_snps=200,
                                             seed=0), median_library=args.median_library)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for normalisation in args.normalisations:
        out = args.workdir / f"pre_{normalisation}.h5ad"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, cohort / "counts.h5ad", out,
                               normalisation, json.dumps(SETTINGS)],
                              capture_output=True, text=True, check=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        row = {"normalisation": normalisation, **json.loads(proc.stdout.strip().splitlines()[-1]),
               "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
               **_check_pcs(out, cohort / "truth_cells.tsv")}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
