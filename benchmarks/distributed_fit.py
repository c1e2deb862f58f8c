"""Seconds per sweep of one NAM fit in one process against the same fit over 2 ranks.

The cells are bench_fit.py's OneK1K-shaped simulated data (982 individuals, 30 cell PCs, 10
genotype PCs; K = 20, L = 50, float32), written once as a fit-inputs file. Each setting runs
the fit job of the workflow (``python -m nam_core.fit_jobs``) in fresh processes for
``--sweeps`` sweeps without merges, alternately, ``--repeats`` times:

* ``1 process, 1 thread`` and ``1 process, 2 threads`` (``OMP_NUM_THREADS``);
* ``2 ranks, 1 thread each`` (torchrun, ``fit.ranks: 2``: the cell passes divided, statistics
  all-reduced over gloo).

Prints one JSON line per fit (median seconds per sweep from the fit's own sweep timings, the
final ELBO) and one summary line per setting with its ratio to one process with one thread.
The ELBOs of all settings must agree (float32: to about 1e-6 relative). Example::

    python benchmarks/distributed_fit.py --n-cells 1270000 --sweeps 20 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SETTINGS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2),
            "2 ranks, 1 thread each": (2, 1)}


def write_inputs(folder: Path, n_cells: int) -> Path:
    """bench_fit's simulated cells as a fit-inputs file."""
    from bench_fit import make_data

    from nam_core.inputs.fit_inputs import FitInputs, write_fit_inputs

    d = make_data(n_cells)
    J = d.X.shape[0]
    path = folder / "inputs.npz"
    write_fit_inputs(path, FitInputs(x=d.X, y=d.Y.astype(np.float32), group=d.group,
                                     individuals=np.array([f"D{j}" for j in range(J)]),
                                     cells=np.arange(len(d.Y)).astype(str)))
    return path


def run_fit(folder: Path, inputs: Path, ranks: int, threads: int, sweeps: int) -> dict:
    """One fit job in fresh processes; its median seconds per sweep (sweeps 2 on) and ELBO."""
    from bench_fit import K, L

    from nam_core import NAM
    from nam_core.engine.settings import FitSettings
    from nam_core.fit_jobs import rank_command, write_job

    settings = FitSettings(K=K, L=L, max_iter=sweeps, tol=0.0, merge=False, merge_atoms=False,
                           atoms="student_t", dtype="float32", ranks=ranks)
    out = folder / f"fit_{ranks}_{threads}.npz"
    job = write_job(folder / "job.json", "restart", settings, inputs, out, seed=0)
    command = (rank_command(ranks, job) if ranks > 1
               else [sys.executable, "-m", "nam_core.fit_jobs", job])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    model = NAM.load(out)
    per_sweep = model.restarts_[0]["sweep_seconds"][1:]
    return {"seconds_per_sweep": float(np.median(per_sweep)), "sweeps": len(per_sweep) + 1,
            "wall_seconds": round(wall, 1), "elbo": float(model.elbo_)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-cells", type=int, default=100_000)
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nam_distributed_") as tmp:
        folder = Path(tmp)
        inputs = write_inputs(folder, args.n_cells)
        results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
        for repeat in range(args.repeats):
            for name, (ranks, threads) in SETTINGS.items():
                row = run_fit(folder, inputs, ranks, threads, args.sweeps)
                results[name].append(row)
                print(json.dumps({"setting": name, "repeat": repeat, "cells": args.n_cells,
                                  "load_1min": round(os.getloadavg()[0], 2), **row}), flush=True)
    base = np.median([r["seconds_per_sweep"] for r in results["1 process, 1 thread"]])
    elbos = [r["elbo"] for rows in results.values() for r in rows]
    for name, rows in results.items():
        median = float(np.median([r["seconds_per_sweep"] for r in rows]))
        print(json.dumps({"setting": name, "cells": args.n_cells, "seconds_per_sweep": round(median, 4),
                          "speedup_vs_1_thread": round(base / median, 3),
                          "elbo_spread_relative": float((max(elbos) - min(elbos)) / abs(np.mean(elbos)))}),
              flush=True)


if __name__ == "__main__":
    main()
