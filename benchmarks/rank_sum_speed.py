"""Marker genes by the Wilcoxon test: our rank-sum test against scanpy's, on the same cells.

Reads ``--cells`` random rows of a counts .h5ad (e.g. the cohort of ``bench_scale.py``),
log-normalises them with scanpy, draws ``--groups`` random groups and ranks the top 20 genes
of each group both ways in this process. Prints one JSON line: seconds of each, their ratio and
the share of (group, rank) positions that name the same gene::

    python benchmarks/rank_sum_speed.py --counts WORKDIR/cohort/counts.h5ad --cells 44000
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scanpy as sc

from nam_core.inputs.h5ad import read_rows
from nam_core.results.markers import _groups_to_test, _scanpy_markers, rank_markers


def log_normalised_sample(path: str, n_cells: int, n_groups: int, seed: int = 0) -> ad.AnnData:
    """``n_cells`` random rows of the counts in ``path``, log-normalised, with obs ``group``."""
    with h5py.File(path, "r") as f:
        n = f["obs"][f["obs"].attrs["_index"]].shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n_cells, n), replace=False))
    adata = ad.AnnData(X=read_rows(path, rows).astype(np.float32))
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["group"] = pd.Categorical(rng.integers(0, n_groups, adata.n_obs).astype(str))
    return adata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", required=True)
    parser.add_argument("--cells", type=int, default=44_000)
    parser.add_argument("--groups", type=int, default=22)
    parser.add_argument("--n-genes", type=int, default=20)
    args = parser.parse_args()
    adata = log_normalised_sample(args.counts, args.cells, args.groups)
    t0 = time.perf_counter()
    ours = rank_markers(adata, "group", n_genes=args.n_genes)
    seconds = time.perf_counter() - t0
    labels = adata.obs["group"].astype(str).astype("category")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pd.concat(_scanpy_markers(adata.X, labels, _groups_to_test(labels), adata,
                                           "group", args.n_genes, "wilcoxon"))
    scanpy_seconds = time.perf_counter() - t0
    print(json.dumps({
        "cells": adata.n_obs, "genes": adata.n_vars, "groups": args.groups,
        "seconds": round(seconds, 2), "scanpy_seconds": round(scanpy_seconds, 2),
        "ratio": round(seconds / scanpy_seconds, 3),
        "same_gene_share": float((ours["gene"].to_numpy() == theirs["gene"].to_numpy()).mean()),
    }))


if __name__ == "__main__":
    main()
