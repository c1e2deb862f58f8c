"""Benchmark: genotype PCs by nam_core.inputs.genotypes against plink2 --pca, on the same files.

Creates (once, under --workdir) a ``plink2 --dummy`` PLINK 1 fileset of the requested size, then
runs, each in its own subprocess and with the same thread count and SNP filters,

* ``nam_core.inputs.genotypes.compute_genotype_pcs(bfile, n_pcs)`` and
* ``plink2 --bfile bfile --pca n_pcs --maf 0.01 --geno 0.05 --threads T``,

and prints one JSON line per tool (wall seconds, peak RSS of the child process from ``wait4``)
and a last line with the ratios nam_core / plink2 and the agreement of the top eigenvalues
(dummy genotypes are unstructured, so their eigenvectors are not comparable one by one).

Example (the full OneK1K-like size; plink2 alone takes minutes)::

    .venv/bin/python benchmarks/bench_genotype_pcs.py --n-individuals 1000 --n-snps 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MIN_MAF = 0.01
MAX_MISSING = 0.05


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--n-individuals", type=int, default=1000)
    parser.add_argument("--n-snps", type=int, default=1_000_000)
    parser.add_argument("--n-pcs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-snps", type=int, default=20_000)
    parser.add_argument("--plink2", default="plink2", help="plink2 executable")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bfile", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def thread_env(threads: int) -> dict[str, str]:
    """Environment limiting BLAS/OpenMP pools to ``threads``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def ensure_dummy_fileset(plink2: str, workdir: Path, n_ind: int, n_snps: int, threads: int) -> Path:
    """Create ``plink2 --dummy`` files once; written under a temporary prefix, then renamed."""
    prefix = workdir / f"dummy_{n_ind}x{n_snps}"
    if all(Path(f"{prefix}.{ext}").is_file() for ext in ("bed", "bim", "fam")):
        return prefix
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / f".tmp_dummy_{n_ind}x{n_snps}"
    tic = time.perf_counter()
    subprocess.run(
        [plink2, "--dummy", str(n_ind), str(n_snps), "acgt", "--make-bed", "--out", str(tmp),
         "--threads", str(threads)],
        check=True, stdout=subprocess.DEVNULL,
    )
    for ext in ("bim", "fam", "bed"):  # .bed last: its presence marks a complete fileset
        os.replace(f"{tmp}.{ext}", f"{prefix}.{ext}")
    print(f"# created {prefix}.bed/.bim/.fam in {time.perf_counter() - tic:.1f} s", file=sys.stderr)
    return prefix


def warm_page_cache(path: Path, block: int = 1 << 24) -> None:
    """Read a file once so that neither tool pays for a cold disk cache."""
    with open(path, "rb") as handle:
        while handle.read(block):
            pass


def run_measured(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd``; return wall and CPU seconds, the child's own peak RSS (``wait4``), stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        tic = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - tic
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "stdout": stdout,
    }


def worker(args: argparse.Namespace) -> None:
    """Child process: compute PCs and print the eigenvalues and inner timing as JSON."""
    from nam_core.inputs.genotypes import compute_genotype_pcs

    tic = time.perf_counter()
    res = compute_genotype_pcs(
        args.bfile, n_pcs=args.n_pcs, min_maf=MIN_MAF, max_missing=MAX_MISSING,
        chunk_snps=args.chunk_snps,
    )
    print(json.dumps({
        "compute_s": round(time.perf_counter() - tic, 2),
        "eigenvalues": res.eigenvalues.tolist(),
        "n_snps_used": res.n_snps_used,
    }))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    plink2 = shutil.which(args.plink2)
    if plink2 is None:
        sys.exit(f"{args.plink2} not found on PATH; install plink2 (Debian: apt-get install plink2)")
    bfile = ensure_dummy_fileset(
        plink2, args.workdir, args.n_individuals, args.n_snps, args.threads
    )
    warm_page_cache(Path(f"{bfile}.bed"))
    env = thread_env(args.threads)
    common = {
        "n_individuals": args.n_individuals, "n_snps": args.n_snps, "n_pcs": args.n_pcs,
        "threads": args.threads, "min_maf": MIN_MAF, "max_missing": MAX_MISSING,
        "host": platform.node(), "cpus": os.cpu_count(),
    }

    ours = run_measured(
        [sys.executable, __file__, "--worker", "--bfile", str(bfile), "--n-pcs",
         str(args.n_pcs), "--chunk-snps", str(args.chunk_snps)],
        env,
    )
    inner = json.loads(ours.pop("stdout").strip().splitlines()[-1])
    print(json.dumps({"tool": "nam_core", **common, **ours, "compute_s": inner["compute_s"],
                      "n_snps_used": inner["n_snps_used"], "chunk_snps": args.chunk_snps}))

    out = args.workdir / f"plink2_pca_{args.n_individuals}x{args.n_snps}"
    theirs = run_measured(
        [plink2, "--bfile", str(bfile), "--pca", str(args.n_pcs), "--maf", str(MIN_MAF),
         "--geno", str(MAX_MISSING), "--threads", str(args.threads), "--out", str(out)],
        env,
    )
    theirs.pop("stdout")
    print(json.dumps({"tool": "plink2", **common, **theirs}))

    plink_eig = np.loadtxt(f"{out}.eigenval")
    our_eig = np.asarray(inner["eigenvalues"])
    print(json.dumps({
        "ratio_nam_over_plink2": {
            "wall_s": round(ours["wall_s"] / theirs["wall_s"], 3),
            "peak_rss": round(ours["peak_rss_mib"] / theirs["peak_rss_mib"], 3),
        },
        "eigenvalue_max_rel_diff": float(np.max(np.abs(our_eig - plink_eig) / plink_eig)),
    }))


if __name__ == "__main__":
    main()
