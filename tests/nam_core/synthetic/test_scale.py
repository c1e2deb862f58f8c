"""Preprocessing memory does not grow with the number of cells (two generated cohorts)."""

import json
import os
import subprocess
import sys

import h5py
import pytest

from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.scale_cohort import make_scale_cohort

SIZES = (10_000, 40_000)  # cells; one block is 4,096
NORMALISATIONS = ("log1p", "pearson_residuals")
CHILD = """
import json, re, sys
from nam_core.inputs.expression import preprocess_h5ad
summary = preprocess_h5ad(sys.argv[1], sys.argv[2], "donor_id", min_genes=50, min_counts=100,
                          n_top_genes=1000, n_pcs=10, target_sum=1000, normalisation=sys.argv[3])
# VmHWM: this process's peak RSS since exec (ru_maxrss would include the forked pytest's)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"peak_kb": peak, "cells": summary["n_cells_out"]}))
"""

# A fixed mmap threshold stops glibc from keeping freed blocks in the heap, so the peak RSS
# measures live memory rather than how the allocator's dynamic threshold happened to drift.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "1048576"}


def _hvg_cache_bytes(path, normalisation: str) -> int:
    """Bytes of the HVG values that log1p preprocessing keeps for the PC scores, by design
    (float32 values and at most int64 indices; Pearson residuals keep none)."""
    if normalisation != "log1p":
        return 0
    from anndata.io import read_elem

    with h5py.File(path) as f:
        hvg = read_elem(f["var"])["highly_variable"].to_numpy()
        indices = f["X/indices"][:]
    return int(hvg[indices].sum()) * (4 + 8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Generate each cohort and preprocess it in a fresh process: its peak RSS and X's size."""
    out = {}
    for n in SIZES:
        folder = tmp_path_factory.mktemp(f"scale{n}")
        paths = make_scale_cohort(folder, CohortSpec(n_individuals=50, mean_cells=n / 50, n_snps=100, seed=1),
                                  median_library=500)
        with h5py.File(paths["counts"]) as f:
            nnz = f["X/data"].shape[0]
        for normalisation in NORMALISATIONS:
            proc = subprocess.run([sys.executable, "-c", CHILD, paths["counts"],
                                   folder / "pre.h5ad", normalisation],
                                  capture_output=True, text=True, check=True, env=ENV)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            out[n, normalisation] = {**result, "x_bytes": nnz * (4 + 8),  # float32, int64
                                     "hvg_cache_bytes": _hvg_cache_bytes(folder / "pre.h5ad",
                                                                         normalisation)}
    return out


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
def test_preprocess_memory_does_not_grow_with_cells(runs, normalisation):
    small, large = runs[SIZES[0], normalisation], runs[SIZES[1], normalisation]
    growth = (large["peak_kb"] - small["peak_kb"]) * 1024
    # holding one copy of X would grow the peak by at least the growth of X's size, so the bound
    # sits halfway between streaming (no growth) and one copy; the peak RSS of a streaming run
    # varies by up to a third of X's growth from run to run (allocator and HDF5 buffers: 9 to
    # 35 MB here against 110 MB). The HVG values kept for the scores grow with the cells by
    # design (bounded by HVG_CACHE_BYTES).
    cache_growth = large["hvg_cache_bytes"] - small["hvg_cache_bytes"]
    assert growth < 0.5 * (large["x_bytes"] - small["x_bytes"]) + cache_growth, (small, large)
    assert large["peak_kb"] < 1.2e6, large  # about 0.4 GB of imports and one block of cells
