"""How fast torch's CPU exp is on arguments by range: why the softmax clamps before exponentiating.

Times ``torch.exp`` on 4.1M float32 values drawn in each range, one thread, flush-to-zero on
(as during a fit)::

    python benchmarks/exp_speed.py

Arguments whose result underflows (below log ``finfo.tiny`` = -87.3), and -inf, fall off the
vectorised path; :func:`nam_core.components.cells.normalise_logits_` clamps them above it.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

RANGES = {"[-10, 0]": (-10.0, 0.0), "[-87, -80]": (-87.0, -80.0), "[-100, -87.4]": (-100.0, -87.4)}


def milliseconds(x: torch.Tensor, repeats: int = 10) -> float:
    """Median milliseconds of exp(x) into a reused buffer."""
    out = torch.empty_like(x)
    torch.exp(x, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.exp(x, out=out)
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time torch.exp on float32 arguments by range, one thread.")
    parser.add_argument("--values", type=int, default=4_100_000, help="values per range (default 4,100,000)")
    n = parser.parse_args(argv).values
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(n, generator=gen)
    cases = {name: lo + (hi - lo) * u for name, (lo, hi) in RANGES.items()}
    cases["-inf"] = torch.full((n,), -math.inf)
    print(json.dumps({"values": n, "threads": 1, "ms": {k: round(milliseconds(v), 2) for k, v in cases.items()}}))


if __name__ == "__main__":
    main()
