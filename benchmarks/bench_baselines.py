"""Seconds per sweep and peak memory of every baseline and of NAM, in the same run.

Prints one JSON line per (model, N). Each measurement runs in its own subprocess (torch threads
= ``--threads``), so peak resident memory (``ru_maxrss``) is per model; ``rss_before_fit_gib``
is the same process after imports and data generation. Each model runs one restart of
``--sweeps`` sweeps (``tol=0``, so no early stop) in ``--dtype`` on ``--device``;
``seconds_per_sweep`` is the sweeps' wall time over their number (initialisation excluded;
``seconds_total`` includes it). TwoStage reports both stages' sweeps together.

Shape: J = 500 individuals, p = 20, q = 10, K = 20, L = 30 (HDP: T = 20 tables).

Examples::

    python benchmarks/bench_baselines.py --n-cells 2000 --sweeps 2          # smoke test
    python benchmarks/bench_baselines.py --n-cells 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

J, P, Q, K, L, T = 500, 20, 10, 20, 30, 20
MODELS = ("nam", "cam", "fisan", "ndp", "hdp", "dpmix_x", "dpmix_y", "two_stage")


def make_data(n_cells: int, seed: int = 0):
    from nam_core import simulate

    return simulate(J=J, n_clusters=6, q=Q, p=P, n_cell_types=14, mean_cells=n_cells / J,
                    min_cells=1, delta_y=4.0, seed=seed)


def build(name: str, common: dict):
    from nam_core import NAM
    from nam_core.models import CAM, HDP, DPMixture, FiSAN, NestedDP, TwoStage

    return {
        "nam": lambda: NAM(K=K, L=L, **common),
        "cam": lambda: CAM(K=K, L=L, **common),
        "fisan": lambda: FiSAN(K=K, L=L, **common),
        "ndp": lambda: NestedDP(K=K, L=L, **common),
        "hdp": lambda: HDP(K=K, L=L, T=T, **common),
        "dpmix_x": lambda: DPMixture("x", K, **common),
        "dpmix_y": lambda: DPMixture("y", L, **common),
        "two_stage": lambda: TwoStage(K=K, L=L, **common),
    }[name]()


def child(args) -> None:
    import warnings

    import torch

    torch.set_num_threads(args.threads)
    data = make_data(args.n)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    common = dict(n_init=1, seed=0, max_iter=args.sweeps, tol=0.0, dtype=args.dtype,
                  device=args.device, verbose=False)
    model = build(args.model, common)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data.X, data.Y, data.group)
    total = time.perf_counter() - t0
    sweep_seconds = sum(r["seconds"] for r in model.restarts_)
    out = {
        "model": args.model, "n_cells": int(data.Y.shape[0]), "J": J, "p": P, "q": Q, "K": K,
        "L": L, "dtype": args.dtype, "device": args.device, "threads": args.threads,
        "sweeps": int(model.n_iter_), "seconds_per_sweep": sweep_seconds / max(model.n_iter_, 1),
        "seconds_total": total, "rss_before_fit_gib": rss_before,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if args.device.startswith("cuda"):
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out), flush=True)


def spawn(model: str, n: int, args) -> None:
    threads = str(args.threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    cmd = [sys.executable, __file__, "--child", model, "--n", str(n), "--threads", threads,
           "--sweeps", str(args.sweeps), "--dtype", args.dtype, "--device", args.device]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(json.dumps({"model": model, "n_cells": n, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
        return
    print(proc.stdout.strip().splitlines()[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, nargs="+", default=[100_000])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=MODELS, dest="model")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.model:
        child(args)
        return
    for n in args.n_cells:
        for model in args.models:
            spawn(model, n, args)


if __name__ == "__main__":
    main()
