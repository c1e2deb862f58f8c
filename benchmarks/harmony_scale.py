"""Time and peak memory of the batch correction (library regression + Harmony) at OneK1K scale.

The PCs are Gaussian clusters (12 cell types) shifted per batch (75 pools), N cells x 30 PCs,
the shape of OneK1K's PCs; the correction is :func:`nam_core.inputs.batch.correct_pcs` on one
thread. Peak RSS is this process's (``ru_maxrss``), printed with the time.

    python benchmarks/harmony_scale.py --cells 1270000 --pools 75
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from nam_core.inputs.batch import correct_pcs


def main(argv=None) -> int:
    """Draw the PCs, correct them, print cells, pools, seconds and peak RSS (MB)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_270_000)
    parser.add_argument("--pools", type=int, default=75)
    parser.add_argument("--pcs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    types = rng.integers(0, 12, args.cells)
    pool = rng.integers(0, args.pools, args.cells)
    Y = (rng.normal(0, 5, (12, args.pcs))[types] + rng.normal(0, 1, (args.pools, args.pcs))[pool]
         + rng.standard_normal((args.cells, args.pcs)))
    library = np.exp(rng.normal(7.8, 0.4, args.cells))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    _, summary = correct_pcs(Y, pool, library)
    print(json.dumps({"cells": args.cells, "pools": args.pools, "pcs": args.pcs,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "harmony_iterations": summary["n_iterations"],
                      "peak_rss_mb_before": round(before),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           / 1024)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
