"""Seconds per sweep at the first sweeps and near convergence, on a workflow run's expression PCs.

Fits NAM (K=20, L=50, float32, one thread unless ``--threads``, no merges) for 60 sweeps on a seeded subsample of the
cells of a workflow run's ``fit/inputs.npz`` and prints the median seconds of sweeps 2-6 and of the
last 10, and their ratio (``sweep_log.sweep_profile``: medians, because one sweep slowed by another
process on a shared machine moves a mean of five; sweep 1 also holds one-off work), and the
seconds of every sweep. ``--caller-flush on`` sets torch's flush-to-zero mode before the fit
(the fit sets it itself for its duration; ``off`` shows that it does).

    python benchmarks/sweep_speed.py --inputs WORKDIR/results/scale1270000_pools75/fit/inputs.npz \
        --cells 127000 --atoms student_t

``--cache-features true|false`` and ``--memory-budget-mb`` set NAM's options of those names
(the workflow's ``fit.memory_budget_mb`` is 2048).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from sweep_log import SweepTimes, sweep_profile  # noqa: E402

from nam_core import NAM  # noqa: E402
from nam_core.inputs.fit_inputs import read_fit_inputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True, help="fit/inputs.npz of a workflow run")
    parser.add_argument("--cells", type=int, default=127_000, help="cells drawn (seed 0)")
    parser.add_argument("--atoms", default="student_t", choices=["gaussian", "student_t"])
    parser.add_argument("--sweeps", type=int, default=60)
    parser.add_argument("--caller-flush", default="off", choices=["on", "off"])
    parser.add_argument("--cache-features", default="auto", choices=["auto", "true", "false"],
                        help="keep the cell features between sweeps (NAM's cache_features)")
    parser.add_argument("--memory-budget-mb", type=int, default=256, help="NAM's memory_budget")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    cache = {"auto": "auto", "true": True, "false": False}[args.cache_features]
    torch.set_num_threads(args.threads)
    inputs = read_fit_inputs(args.inputs)
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(inputs.y), min(args.cells, len(inputs.y)), replace=False))
    _, group = np.unique(inputs.group[keep], return_inverse=True)
    torch.set_flush_denormal(args.caller_flush == "on")
    with SweepTimes() as times:
        NAM(K=20, L=50, n_init=1, seed=1, atoms=args.atoms, merge=False, merge_atoms=False,
            max_iter=args.sweeps, tol=0, dtype="float32", cache_features=cache,
            memory_budget=args.memory_budget_mb << 20).fit(inputs.x, inputs.y[keep], group)
    print(json.dumps({"atoms": args.atoms, "cells": int(keep.size), "caller_flush": args.caller_flush,
                      "cache_features": args.cache_features, "memory_budget_mb": args.memory_budget_mb,
                      "threads": args.threads}
                     | sweep_profile(times.seconds)
                     | {"total_s": round(sum(times.seconds), 1),
                        "sweep_seconds": [round(t, 3) for t in times.seconds]}))


if __name__ == "__main__":
    main()
