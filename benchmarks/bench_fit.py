"""Benchmark one NAM fit against scikit-learn's BayesianGaussianMixture on the same cells.

Prints one JSON line per (tool, N): seconds per sweep/iteration, sweeps to convergence, total
seconds and peak resident memory, then one line with NAM's ratio to scikit-learn. Every
measurement runs in its own subprocess with its own thread setting, so peaks do not mix:

* NAM: torch intra-op threads = ``--nam-threads`` (default 2, all cores of this machine);
* scikit-learn: ``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=--sklearn-threads``
  (default 1, its fastest setting on 2 cores: nested BLAS threads slow it down up to 10x).

scikit-learn's seconds per iteration come from ``--sklearn-iters`` EM iterations (its bound is
timed per iteration; the k-means initialisation is excluded). NAM runs one restart to
convergence (``tol`` 1e-6 in float32) or ``--max-sweeps``.

Example (the README's table)::

    python benchmarks/bench_fit.py --n-cells 100000 1270000

``--atoms gaussian student_t`` times both cell-atom families alternately (``--repeats``) and
prints the ratio of their median seconds per sweep.

``--profile-sweeps`` runs each fit to convergence without merges and reports the median
seconds of sweeps 2-6 and of the last 10 sweeps (a sweep should cost the same at convergence as
at the start); with ``--data counts`` the cells are PCs of negative-binomial counts around real
PBMC profiles (the demo's generator), where far atoms' responsibilities underflow::

    python benchmarks/bench_fit.py --profile-sweeps --data counts --atoms gaussian student_t \
        --n-cells 45000 127000 1270000 --nam-threads 1 --skip-sklearn

``--compare-tree DIR`` (a checkout of another commit) runs NAM from that tree and from this one,
alternately ``--repeats`` times in the same run, and prints the ratio of their median seconds
per sweep (a refactor's cost)::

    git worktree add /tmp/old <commit>
    python benchmarks/bench_fit.py --compare-tree /tmp/old --skip-sklearn --max-sweeps 40
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

J, P, Q, K, L = 982, 30, 10, 20, 50


def make_data(n_cells: int, seed: int = 0, kind: str = "gaussian", data_dir: str | None = None):
    """OneK1K-shaped simulated data: J individuals, p = 30 cell PCs, q = 10 genotype PCs.

    ``kind="counts"``: PCs of negative-binomial counts of the demo's 6 cell types. With
    ``data_dir`` the arrays are read from ``{data_dir}/{kind}_{n_cells}.npz`` when it exists
    (written there otherwise), so another machine or an older checkout fits the same cells.
    """
    if data_dir is not None:
        from types import SimpleNamespace

        import numpy as np

        path = os.path.join(data_dir, f"{kind}_{n_cells}.npz")
        if os.path.exists(path):
            with np.load(path) as saved:
                return SimpleNamespace(X=saved["X"], Y=saved["Y"], group=saved["group"])
        data = make_data(n_cells, seed, kind)
        os.makedirs(data_dir, exist_ok=True)
        np.savez(path, X=data.X, Y=data.Y.astype(np.float32), group=data.group)
        return make_data(n_cells, seed, kind, data_dir)
    from nam_core import simulate

    if kind == "counts":
        return simulate(J=J, n_clusters=3, q=Q, p=P, n_cell_types=6, mean_cells=n_cells / J,
                        min_cells=1, expression_model="counts", seed=seed)
    return simulate(
        J=J, n_clusters=6, q=Q, p=P, n_cell_types=14, mean_cells=n_cells / J, min_cells=1,
        delta_y=4.0, seed=seed,
    )


def run_nam(n_cells: int, threads: int, max_sweeps: int, dtype: str, atoms: str = "gaussian",
            kind: str = "gaussian", profile: bool = False, data_dir: str | None = None) -> dict:
    import torch
    from sweep_log import SweepTimes, sweep_profile

    from nam_core import NAM

    torch.set_num_threads(threads)
    data = make_data(n_cells, kind=kind, data_dir=data_dir)
    options = {"merge": False} if profile else {}
    t0 = time.perf_counter()
    with SweepTimes() as times:
        model = NAM(K=K, L=L, n_init=1, seed=0, max_iter=max_sweeps, dtype=dtype, device="cpu",
                    atoms=atoms, verbose=False, **options).fit(data.X, data.Y, data.group)
    total = time.perf_counter() - t0
    restart = model.restarts_[0]
    init = total - restart["seconds"]
    profiled = sweep_profile(times.seconds) | {"elbo": model.elbo_} if profile else {}
    return profiled | {
        "tool": "nam", "atoms": atoms, "n_cells": int(data.Y.shape[0]), "threads": threads, "dtype": dtype,
        "seconds_per_sweep": (restart["seconds"] - restart["merge_seconds"]) / model.n_iter_,
        "sweeps": model.n_iter_, "converged": bool(model.converged_),
        "merges": restart["merges"], "seconds_merge_search": restart["merge_seconds"],
        "seconds_total": total, "seconds_init_and_output": init, "data": kind,
    }


def run_sklearn(n_cells: int, threads: int, iters: int) -> dict:
    import numpy as np
    from sklearn.mixture import BayesianGaussianMixture

    stamps = []

    class Timed(BayesianGaussianMixture):
        def _compute_lower_bound(self, *a, **kw):
            stamps.append(time.perf_counter())
            return super()._compute_lower_bound(*a, **kw)

    data = make_data(n_cells)
    gm = Timed(n_components=L, covariance_type="full", weight_concentration_prior_type="dirichlet_process",
               max_iter=iters, tol=0.0, random_state=0, init_params="k-means++")
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(data.Y)
    total = time.perf_counter() - t0
    per_iter = float(np.median(np.diff(stamps))) if len(stamps) > 1 else float("nan")
    return {
        "tool": "sklearn", "n_cells": int(data.Y.shape[0]), "threads": threads,
        "dtype": "float64", "seconds_per_iteration": per_iter, "iterations": len(stamps),
        "seconds_total": total,
    }


def child(args) -> None:
    if args.tool == "nam":
        out = run_nam(args.n, args.nam_threads, args.max_sweeps, args.dtype, args.atoms[0],
                      args.data, args.profile_sweeps, args.data_dir)
    else:
        out = run_sklearn(args.n, args.sklearn_threads, args.sklearn_iters)
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(out), flush=True)


def spawn(tool: str, n: int, args, tree: str | None = None, atoms: str = "gaussian") -> dict:
    threads = str(args.nam_threads if tool == "nam" else args.sklearn_threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    if tree is not None:  # import nam_core from that checkout
        env["PYTHONPATH"] = os.path.abspath(tree)
    cmd = [sys.executable, __file__, "--child", tool, "--n", str(n), "--nam-threads", str(args.nam_threads),
           "--sklearn-threads", str(args.sklearn_threads), "--sklearn-iters", str(args.sklearn_iters),
           "--max-sweeps", str(args.max_sweeps), "--dtype", args.dtype, "--data", args.data]
    if args.profile_sweeps:
        cmd.append("--profile-sweeps")
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if tree is None or atoms != "gaussian":  # another tree may predate the option
        cmd += ["--atoms", atoms]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1]) | {"tree": tree or "."}
    print(json.dumps(out), flush=True)
    return out


def compare_atoms(n: int, args) -> None:
    """Each atom family alternately, same data; medians of s/sweep and their ratio to the first."""
    import statistics

    times = {a: [] for a in args.atoms}
    for _ in range(args.repeats):
        for a in args.atoms:
            times[a].append(spawn("nam", n, args, atoms=a)["seconds_per_sweep"])
    base = statistics.median(times[args.atoms[0]])
    print(json.dumps({"n_cells": n} | {f"median_seconds_per_sweep_{a}": statistics.median(v) for a, v in times.items()}
                     | {f"ratio_{a}_over_{args.atoms[0]}": statistics.median(v) / base for a, v in times.items()}),
          flush=True)


def compare_trees(n: int, args) -> None:
    """This tree against ``--compare-tree``, alternately, same data; the ratio of median s/sweep."""
    import statistics

    here, there = [], []
    for _ in range(args.repeats):
        for atoms in args.atoms:
            here.append(spawn("nam", n, args, atoms=atoms)["seconds_per_sweep"])
            there.append(spawn("nam", n, args, args.compare_tree, atoms=atoms)["seconds_per_sweep"])
    print(json.dumps({"n_cells": n, "median_seconds_per_sweep": statistics.median(here),
                      "median_seconds_per_sweep_other_tree": statistics.median(there),
                      "ratio_this_over_other": statistics.median(here) / statistics.median(there)}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, nargs="+", default=[100_000])
    parser.add_argument("--nam-threads", type=int, default=2)
    parser.add_argument("--sklearn-threads", type=int, default=1)
    parser.add_argument("--sklearn-iters", type=int, default=4)
    parser.add_argument("--max-sweeps", type=int, default=1000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--child", choices=["nam", "sklearn"], dest="tool")
    parser.add_argument("--n", type=int)
    parser.add_argument("--compare-tree", help="checkout of another commit to compare NAM against")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=["gaussian", "counts"], default="gaussian",
                        help="cells: Gaussian atoms (default) or PCs of negative-binomial counts")
    parser.add_argument("--data-dir", help="read (or first write) the simulated cells here as .npz")
    parser.add_argument("--profile-sweeps", action="store_true",
                        help="fit to convergence without merges; seconds per sweep, first and last")
    parser.add_argument("--atoms", nargs="+", default=["gaussian"], choices=["gaussian", "student_t"],
                        help="cell-atom families to time; two give their ratio, alternately --repeats times")
    args = parser.parse_args()
    if args.tool:
        child(args)
        return
    for n in args.n_cells:
        if args.compare_tree and not args.profile_sweeps:
            compare_trees(n, args)
            continue
        if args.profile_sweeps:
            for atoms in args.atoms:
                spawn("nam", n, args, atoms=atoms)
                if args.compare_tree:
                    spawn("nam", n, args, args.compare_tree, atoms=atoms)
            continue
        if len(args.atoms) > 1:
            compare_atoms(n, args)
            continue
        nam = spawn("nam", n, args)
        if args.skip_sklearn:
            continue
        sk = spawn("sklearn", n, args)
        print(json.dumps({
            "n_cells": nam["n_cells"],
            "nam_seconds_per_sweep_over_sklearn_seconds_per_iteration":
                nam["seconds_per_sweep"] / sk["seconds_per_iteration"],
        }), flush=True)


if __name__ == "__main__":
    main()
