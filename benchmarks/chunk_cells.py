"""Seconds per sweep against the number of cells per chunk of the cell pass.

The cell pass works through the cells a chunk at a time (``nam_core.components.cells``); its
working arrays are a few multiples of (chunk x atoms) floats. This fits one NAM restart per
(threads, cells per chunk) on the same cells, alternately ``--repeats`` times, and prints the
median seconds per sweep of each setting (sweeps 2 to the last, without merges). ``auto`` is the
chunk the fit chooses itself. Data: OneK1K-shaped Gaussian cells from ``bench_fit.py`` (p = 30,
``--data gaussian``) or a subsample of a workflow's ``fit/inputs.npz`` (``--inputs``)::

    python benchmarks/chunk_cells.py --data gaussian --cells 1270000 --threads 1 2 \\
        --chunks auto 4096 16384 65536 262144
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load_cells(args):
    """(X, Y, group) of the cells to fit."""
    if args.inputs:
        d = np.load(args.inputs, allow_pickle=True)
        rows = np.sort(np.random.default_rng(0).choice(d["y"].shape[0], min(args.cells, d["y"].shape[0]),
                                                       replace=False))
        return d["x"], d["y"][rows], d["group"][rows]
    from bench_fit import make_data

    data = make_data(args.cells)
    return data.X, data.Y, data.group


def seconds_per_sweep(X, Y, group, chunk, threads: int, args) -> float:
    """Median seconds of sweeps 2.. of one restart with ``chunk`` cells per chunk ("auto": as chosen)."""
    import torch
    from sweep_log import SweepTimes

    import nam_core.engine.data as engine_data
    from nam_core import NAM

    torch.set_num_threads(threads)
    chosen = engine_data.chunk_size
    if chunk != "auto":
        engine_data.chunk_size = lambda n_cells, *rest, **options: min(n_cells, int(chunk))
    try:
        with SweepTimes() as times:
            NAM(K=20, L=50, n_init=1, seed=0, max_iter=args.sweeps, tol=0, atoms=args.atoms,
                merge=False, merge_atoms=False, dtype="float32", device="cpu", verbose=False,
                cache_features=args.cache_features).fit(X, Y, group)
    finally:
        engine_data.chunk_size = chosen
    return statistics.median(times.seconds[1:])


def main(argv=None) -> int:
    """Time every (threads, chunk) setting alternately; print one JSON line per setting."""
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["gaussian"], default="gaussian")
    parser.add_argument("--inputs", help="a workflow's fit/inputs.npz instead of --data")
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", nargs="+", default=["auto", "4096", "16384", "65536", "262144"])
    parser.add_argument("--atoms", default="student_t", choices=["gaussian", "student_t"])
    parser.add_argument("--sweeps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-features", default="auto", type=lambda v: {"true": True, "false": False}.get(v, v))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    X, Y, group = load_cells(args)
    times: dict = {}
    for _ in range(args.repeats):
        for threads in args.threads:
            for chunk in args.chunks:
                times.setdefault((threads, chunk), []).append(seconds_per_sweep(X, Y, group, chunk, threads, args))
    for (threads, chunk), values in times.items():
        print(json.dumps({"cells": int(Y.shape[0]), "p": int(Y.shape[1]), "atoms": args.atoms,
                          "threads": threads, "chunk": chunk,
                          "seconds_per_sweep": round(statistics.median(values), 3),
                          "runs": [round(v, 3) for v in values],
                          "data": args.inputs or args.data, "time": time.strftime("%H:%M")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
