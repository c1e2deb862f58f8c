"""OneK1K-shaped cohort end to end: seconds and peak RSS of every rule, and a plain scanpy peer.

1. Writes a cohort with :func:`nam_core.synthetic.scale_cohort.make_scale_cohort` (``--donors``
   donors, 982 by default, ``--cells`` cells, 33,538 genes; skipped when the folder already holds
   one).
2. Runs the workflow on it (``snakemake --cores N`` with config/onek1k.yaml and the cohort's
   paths, ``--restarts`` fit seeds) and prints each rule's seconds and peak RSS from the
   ``benchmark:`` files Snakemake writes.
3. With ``--peer``: a plain scanpy pipeline on the same file in a fresh process (read_h5ad, the
   same QC, normalize_total, log1p, HVG, PCA, neighbors, UMAP, rank_genes_groups on the leiden-free
   cell types), printing each step's seconds and the process's peak RSS (VmHWM), then the ratio
   of our largest per-rule peak for the same steps (preprocess, UMAP, markers) to those of a reference scanpy run.

Every line printed is JSON. Example (the README's table)::

    OMP_NUM_THREADS=2 python benchmarks/bench_scale.py --cells 127000 --peer \\
        --workdir /tmp/nam_scale_127k

With ``--pools 75 --harmony`` the cohort is sequenced in 75 pools (independent of ancestry) and
the workflow corrects the PCs with Harmony (``expression.batch_key: pool``); use a new
``--workdir`` for each cohort, since an existing cohort folder is reused as it is.
``--expression-pcs 10`` fits on 10 expression PCs instead of the config's 20 (the results
folder's name ends in ``_pcs10``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DONORS = 982  # OneK1K's donors

PEER = r"""
import json, re, sys, time
import numpy as np
import scanpy as sc

def peak_gb():
    return int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) / 1e6

steps, t = {}, time.perf_counter()
def step(name):
    global t
    now = time.perf_counter()
    steps[name] = round(now - t, 1)
    t = now
    print(json.dumps({"tool": "scanpy", "step": name, "seconds": steps[name],
                      "peak_rss_gb_so_far": round(peak_gb(), 2)}), flush=True)

adata = sc.read_h5ad(sys.argv[1]); step("read_h5ad")
adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
adata = adata[(adata.obs.n_genes_by_counts >= 200) & (adata.obs.total_counts >= 500)
              & (adata.obs.pct_counts_mt <= 15)].copy()
sc.pp.filter_genes(adata, min_cells=10); step("qc")
adata.layers["counts"] = adata.X.copy()
sc.pp.normalize_total(adata, target_sum=2000); sc.pp.log1p(adata); step("normalize_log1p")
sc.pp.highly_variable_genes(adata, n_top_genes=2000, flavor="seurat"); step("hvg")
sc.pp.pca(adata, n_comps=20, mask_var="highly_variable"); step("pca")
sc.pp.neighbors(adata, n_neighbors=15); step("neighbors")
sc.tl.umap(adata); step("umap")
sc.tl.rank_genes_groups(adata, "cell_type", method="wilcoxon"); step("rank_genes_groups")
print(json.dumps({"tool": "scanpy", "step": "total", "seconds": round(sum(steps.values()), 1),
                  "peak_rss_gb": round(peak_gb(), 2)}), flush=True)
"""


def make_cohort(folder: Path, n_cells: int, n_pools: int = 0, pool_shift: float = 0.3,
                n_donors: int = DONORS) -> dict:
    from nam_core.synthetic.base import CohortSpec
    from nam_core.synthetic.scale_cohort import make_scale_cohort

    counts = folder / "counts.h5ad"
    if not counts.exists():
        t0 = time.perf_counter()
        spec = CohortSpec(n_individuals=n_donors, mean_cells=n_cells / n_donors, seed=0,
                          n_pools=n_pools, pool_shift_sd=pool_shift)
        make_scale_cohort(folder, spec)
        print(json.dumps({"step": "make_scale_cohort", "cells": n_cells, "donors": n_donors,
                          "pools": n_pools,
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return {"bfile": str(folder / "genotypes"), "counts": str(counts)}


def run_workflow(workdir: Path, paths: dict, cores: int, restarts: int, cohort: str,
                 batch_key: str | None = None, expression_pcs: int | None = None,
                 keep_counts: bool = True) -> float:
    override = workdir / "scale.yaml"
    settings = {
        "cohort": cohort,
        "inputs": {**paths, "individual_column": "donor_id", "counts_layer": None},
        "fit": {"seeds": list(range(restarts))},
    }
    expression = {"batch_key": batch_key} if batch_key else {}
    if expression_pcs:
        expression["n_pcs"] = expression_pcs
    if not keep_counts:
        expression["keep_counts"] = False
    if expression:
        settings["expression"] = expression
    override.write_text(json.dumps(settings))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--cores", str(cores), "--configfile", str(ROOT / "config" / "onek1k.yaml"),
           str(override)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        sys.exit(f"workflow failed ({proc.returncode}); see {workdir / 'snakemake.out'}")
    return seconds


def rule_table(results: Path) -> pd.DataFrame:
    """Wall and CPU seconds (summed over a rule's jobs) and peak RSS (max) of every rule with a
    ``benchmark:`` file. CPU seconds matter on a shared machine, where wall time waits."""
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        bench = pd.read_csv(path, sep="\t")
        rule = re.sub(r"[._-]?\d+$", "", path.stem) if path.parent.name == "benchmarks" else path.parent.name
        rows.append({"rule": rule, "seconds": float(bench["s"].iloc[0]),
                     "cpu_seconds": float(bench["cpu_time"].iloc[0]),
                     "peak_rss_gb": float(bench["max_rss"].iloc[0]) / 1024})
    table = pd.DataFrame(rows)
    return table.groupby("rule").agg(jobs=("seconds", "size"), seconds=("seconds", "sum"),
                                     cpu_seconds=("cpu_seconds", "sum"),
                                     peak_rss_gb=("peak_rss_gb", "max")).reset_index()


def run_peer(counts: str) -> float:
    """Run the scanpy pipeline in a fresh process, echoing its lines as they come."""
    proc = subprocess.Popen([sys.executable, "-c", PEER, counts], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    last = None
    for line in proc.stdout:
        print(line, end="", flush=True)
        last = line
    if proc.wait() or last is None:
        print(json.dumps({"tool": "scanpy", "error": f"exit status {proc.returncode}"}))
        return float("nan")
    return json.loads(last)["peak_rss_gb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=127_000)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--peer", action="store_true", help="also run the plain scanpy pipeline")
    parser.add_argument("--donors", type=int, default=DONORS,
                        help="donors in the generated cohort (default: OneK1K's 982)")
    parser.add_argument("--skip-workflow", action="store_true")
    parser.add_argument("--pools", type=int, default=0,
                        help="sequencing pools in the generated cohort (0: none; OneK1K had 75)")
    parser.add_argument("--pool-shift", type=float, default=0.3,
                        help="sd of the natural log of each pool's gene and library factors")
    parser.add_argument("--harmony", action="store_true",
                        help="correct the expression PCs for the pools (expression.batch_key: pool)")
    parser.add_argument("--expression-pcs", type=int, default=None,
                        help="expression PCs (default: config/onek1k.yaml's 20)")
    parser.add_argument("--no-counts-layer", action="store_true",
                        help="leave the raw counts out of the preprocessed cells and cells.h5ad "
                             "(expression.keep_counts: false; 0.53x their size)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    if args.harmony and not args.pools:
        parser.error("--harmony needs --pools")
    paths = make_cohort(args.workdir / "cohort", args.cells, args.pools, args.pool_shift,
                        args.donors)
    cohort = f"scale{args.cells}" + (f"_donors{args.donors}" if args.donors != DONORS else "")
    cohort += f"_pools{args.pools}" if args.pools else ""
    cohort += f"_pcs{args.expression_pcs}" if args.expression_pcs else ""
    ours = None
    if not args.skip_workflow:
        total = run_workflow(args.workdir, paths, args.cores, args.restarts, cohort,
                             "pool" if args.harmony else None, args.expression_pcs,
                             not args.no_counts_layer)
        table = rule_table(args.workdir / "results" / cohort)
        for row in table.to_dict("records"):
            print(json.dumps({"tool": "nam", **row}), flush=True)
        print(json.dumps({"tool": "nam", "rule": "whole workflow", "seconds": round(total, 1),
                          "peak_rss_gb": round(table["peak_rss_gb"].max(), 2)}), flush=True)
        same_steps = table[table["rule"].isin(["preprocess_expression", "compute_umap",
                                               "find_markers"])]
        ours = float(same_steps["peak_rss_gb"].max())
    if args.peer:
        peer = run_peer(paths["counts"])
        if ours is not None:
            print(json.dumps({"ratio": "nam peak (preprocess, umap, markers) / scanpy peak",
                              "nam_gb": round(ours, 2), "scanpy_gb": peer,
                              "ratio_value": round(ours / peer, 3)}), flush=True)


if __name__ == "__main__":
    main()
