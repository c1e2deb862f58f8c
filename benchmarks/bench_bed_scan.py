"""Benchmark: the .bed scan of validate_plink (rule match_individuals) against the genotype PCs.

The scan (``nam_core.inputs.genotypes.validate_plink(bfile, scan=True)``) reads every genotype
code once to check the .fam against the .bed (padding bits, all-homozygous rows) and to find
individuals without any call; it adds one pass over the .bed to the first rule. Its peer, on
the same ``plink2 --dummy`` files and in the same run, is ``compute_genotype_pcs`` (the second
rule, one pass plus the J x J products). Both run in this process, one after the other, with
the page cache warmed and the BLAS/OpenMP threads set by --threads; the script prints one JSON
line: seconds of each, their ratio, and the peak RSS of this process.

Example::

    .venv/bin/python benchmarks/bench_bed_scan.py --n-individuals 1000 --n-snps 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--n-individuals", type=int, default=1000)
    parser.add_argument("--n-snps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk-snps", type=int, default=20_000)
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy is imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_genotype_pcs import ensure_dummy_fileset, warm_page_cache

    from nam_core.inputs.genotypes import compute_genotype_pcs, validate_plink

    bfile = ensure_dummy_fileset("plink2", args.workdir, args.n_individuals, args.n_snps,
                                 args.threads)
    warm_page_cache(Path(f"{bfile}.bed"))
    tic = time.perf_counter()
    validate_plink(bfile, scan=False)
    checks = time.perf_counter() - tic
    tic = time.perf_counter()
    summary = validate_plink(bfile, 10, chunk_snps=args.chunk_snps, min_maf=0.01, max_missing=0.05)
    scan = time.perf_counter() - tic
    tic = time.perf_counter()
    compute_genotype_pcs(bfile, n_pcs=10, chunk_snps=args.chunk_snps)
    pcs = time.perf_counter() - tic
    print(json.dumps({
        "n_individuals": args.n_individuals, "n_snps": args.n_snps, "threads": args.threads,
        "file_checks_s": round(checks, 3), "scan_s": round(scan, 2), "pcs_s": round(pcs, 2),
        "scan_over_pcs": round(scan / pcs, 3), "uncalled": len(summary.uncalled),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
