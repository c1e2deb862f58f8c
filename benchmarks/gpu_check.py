"""One check of the CUDA path on a GPU machine: device, cuda tests, agreement and speed.

Run it through ``benchmarks/gpu_check.sh`` (which sets ``PYTHONPATH`` to this checkout). Steps:

1. the device torch sees (exit 2 with a clear message when there is none);
2. ``pytest -m cuda`` on the test files that carry that marker;
3. agreement: one float64 fit of a 100k-cell cohort on the CPU and on the GPU (same seed, same
   settings, merges on): identical cell and individual labels, final ELBO within 1e-6 relative;
4. speed: a float32 fit of a OneK1K-sized cohort (982 individuals, 1.27M cells, p = 30, K = 20,
   L = 50) for ``--sweeps`` sweeps on the GPU and on the CPU (all cores), seconds per sweep at
   the first sweeps and at the last, for each memory budget of ``--gpu-budgets-mb``.

Prints one JSON line per measurement, then one summary line starting ``gpu_check:``. With
``--out DIR`` the JSON lines are also written to ``DIR/gpu_check.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sweep_log import SweepTimes

ROOT = Path(__file__).resolve().parent.parent
J, P, Q, K, L = 982, 30, 10, 20, 50
NO_GPU_EXIT = 2


def emit(row: dict, sink) -> None:
    line = json.dumps(row, sort_keys=True)
    print(line, flush=True)
    if sink is not None:
        sink.write(line + "\n")
        sink.flush()


def describe_gpu() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"step": "device", "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count, "torch": torch.__version__,
            "cuda": torch.version.cuda, "devices": torch.cuda.device_count()}


def cuda_test_files() -> list[str]:
    """Test files that hold a ``pytest.mark.cuda`` test."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if "mark.cuda" in p.read_text())


def run_cuda_tests() -> dict:
    files = cuda_test_files()
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *files]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return {"step": "pytest -m cuda", "files": files, "returncode": proc.returncode,
            "result": tail[0], "seconds": round(time.perf_counter() - t0, 1)}


def cohort(n_cells: int, seed: int = 0):
    """OneK1K-shaped simulated data: J individuals, p = 30 cell PCs, q = 10 genotype PCs."""
    from nam_core import simulate

    return simulate(J=J, n_clusters=6, q=Q, p=P, n_cell_types=14, mean_cells=n_cells / J,
                    min_cells=1, delta_y=4.0, seed=seed)


def timed_fit(data, device: str, dtype: str, **options):
    """Fit NAM; return (model, per-sweep seconds)."""
    from nam_core import NAM

    with SweepTimes() as times:
        model = NAM(K=K, L=L, n_init=1, seed=0, device=device, dtype=dtype, verbose=False,
                    **options).fit(data.X, data.Y, data.group)
    return model, times.seconds


def agreement(n_cells: int, max_sweeps: int) -> dict:
    """float64 fits on the CPU and the GPU: same labels, same ELBO."""
    import numpy as np

    data = cohort(n_cells, seed=1)
    cpu, cpu_times = timed_fit(data, "cpu", "float64", max_iter=max_sweeps)
    gpu, gpu_times = timed_fit(data, "cuda", "float64", max_iter=max_sweeps)
    rel = abs(gpu.elbo_ - cpu.elbo_) / abs(cpu.elbo_)
    same_cells = bool(np.array_equal(gpu.cell_labels_, cpu.cell_labels_))
    same_individuals = bool(np.array_equal(gpu.individual_labels_, cpu.individual_labels_))
    return {"step": "agreement float64", "n_cells": int(data.Y.shape[0]),
            "sweeps_cpu": cpu.n_iter_, "sweeps_gpu": gpu.n_iter_,
            "elbo_cpu": cpu.elbo_, "elbo_gpu": gpu.elbo_, "elbo_rel_diff": rel,
            "cell_labels_identical": same_cells, "individual_labels_identical": same_individuals,
            "cell_clusters": int(gpu.n_cell_clusters_),
            "individual_clusters": int(gpu.n_individual_clusters_),
            "seconds_cpu": round(cpu.fit_seconds_, 2), "seconds_gpu": round(gpu.fit_seconds_, 2),
            "ok": same_cells and same_individuals and rel <= 1e-6}


def sweep_speed(data, device: str, sweeps: int, budget_mb: int) -> dict:
    """float32 sweeps without merges: first-sweep and last-sweep seconds."""
    import statistics

    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model, times = timed_fit(data, device, "float32", max_iter=sweeps, tol=0.0, merge=False,
                             memory_budget=budget_mb * 2**20)
    head, tail = times[1:4], times[-5:]
    row = {"step": "speed float32", "device": model.device_, "n_cells": int(data.Y.shape[0]),
           "memory_budget_mb": budget_mb, "sweeps": len(times),
           "threads": torch.get_num_threads(),
           "seconds_first_sweep": round(times[0], 4),
           "seconds_per_sweep_early": round(statistics.median(head), 4),
           "seconds_per_sweep_late": round(statistics.median(tail), 4),
           "seconds_fit": round(model.fit_seconds_, 2), "elbo": model.elbo_}
    if device == "cuda":
        row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1_270_000,
                        help="cells of the speed cohort (default: OneK1K's 1.27M)")
    parser.add_argument("--agreement-cells", type=int, default=100_000,
                        help="cells of the CPU/GPU float64 agreement cohort")
    parser.add_argument("--agreement-sweeps", type=int, default=150,
                        help="sweeps at most of each agreement fit")
    parser.add_argument("--sweeps", type=int, default=30, help="sweeps of each speed fit")
    parser.add_argument("--cpu-sweeps", type=int, default=12, help="sweeps of the CPU speed fit")
    parser.add_argument("--gpu-budgets-mb", type=int, nargs="+", default=[256, 4096],
                        help="memory budgets of the GPU speed fits (MiB per chunk of cells)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON lines here")
    args = parser.parse_args(argv)

    import torch

    sink = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        sink = open(args.out / "gpu_check.jsonl", "w")
    device = describe_gpu()
    if device is None:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(f"gpu_check: NO GPU - torch {torch.__version__} ({build}) sees no CUDA device; "
              "nothing was checked. Run this on a machine with an NVIDIA GPU and a CUDA build "
              "of torch.", flush=True)
        return NO_GPU_EXIT
    emit(device, sink)
    failures = []
    if not args.skip_tests:
        tests = run_cuda_tests()
        emit(tests, sink)
        if tests["returncode"] != 0:
            failures.append("cuda tests")
    agree = agreement(args.agreement_cells, args.agreement_sweeps)
    emit(agree, sink)
    if not agree["ok"]:
        failures.append("CPU/GPU agreement")
    data = cohort(args.cells)
    gpu_rows = [sweep_speed(data, "cuda", args.sweeps, mb) for mb in args.gpu_budgets_mb]
    for row in gpu_rows:
        emit(row, sink)
    torch.set_num_threads(os.cpu_count() or 1)
    cpu_row = sweep_speed(data, "cpu", args.cpu_sweeps, args.gpu_budgets_mb[0])
    emit(cpu_row, sink)
    best = min(gpu_rows, key=lambda r: r["seconds_per_sweep_late"])
    speedup = cpu_row["seconds_per_sweep_late"] / best["seconds_per_sweep_late"]
    summary = (f"gpu_check: {'PASS' if not failures else 'FAIL (' + ', '.join(failures) + ')'} on "
               f"{device['name']} | agreement at {agree['n_cells']} cells: labels identical "
               f"{agree['cell_labels_identical'] and agree['individual_labels_identical']}, ELBO rel "
               f"diff {agree['elbo_rel_diff']:.1e} | {best['n_cells']} cells float32: "
               f"{best['seconds_per_sweep_late']:.3f} s/sweep on the GPU ({best['memory_budget_mb']} MiB "
               f"chunks) vs {cpu_row['seconds_per_sweep_late']:.3f} on {cpu_row['threads']} CPU "
               f"threads ({speedup:.1f}x)")
    print(summary, flush=True)
    if sink is not None:
        sink.write(json.dumps({"step": "summary", "line": summary}) + "\n")
        sink.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
