"""What indicator rows cost the cell pass's two products, against the gather and scatter they replace.

Per chunk of cells (n cells, F features, L = 50 atoms, two threads): the milliseconds of the
two products W^T phi and phi xi^T with r extra rows, against adding each cell's individual
term by a gather and summing each individual's responsibilities by a scatter::

    python benchmarks/indicator_rows.py

The cell pass uses indicator rows while a chunk holds at most
:data:`nam_core.components.cell_pass.MAX_INDICATOR_ROWS` individuals.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

L = 50
SHAPES = ((9_576, 496), (19_700, 66))  # the CPU chunks at p = 30 and p = 10


def milliseconds(f, repeats: int = 60) -> float:
    """Mean milliseconds of f() after one warm-up call."""
    f()
    start = time.perf_counter()
    for _ in range(repeats):
        f()
    return 1e3 * (time.perf_counter() - start) / repeats


def products(n: int, F: int, rows: int) -> float:
    phi, W = torch.randn(F + rows, n), torch.randn(F + rows, L)
    logits, xi = torch.empty(L, n), torch.rand(L, n)
    return milliseconds(lambda: (torch.mm(W.T, phi, out=logits), torch.mm(phi, xi.T)))


def gather_and_scatter(n: int, individuals: int = 16, J: int = 2_000) -> float:
    mix, logits, xi = torch.randn(J, L), torch.randn(L, n), torch.rand(L, n)
    group = torch.sort(torch.randint(0, individuals, (n,), generator=torch.Generator().manual_seed(0))).values
    out = torch.empty(n, L)

    def run():
        torch.add(logits.T, torch.index_select(mix, 0, group), out=out)
        torch.zeros(J, L).index_add_(0, group, xi.T)

    return milliseconds(run)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Milliseconds that indicator rows add to the cell pass's two products, "
        "against a gather and a scatter; one JSON line per chunk shape.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    torch.set_num_threads(parser.parse_args(argv).threads)
    for n, F in SHAPES:
        base = products(n, F, 0)
        extra = {r: round(products(n, F, r) - base, 3) for r in (16, 32, 64, 128)}
        print(json.dumps({"cells": n, "features": F, "atoms": L, "products_ms": round(base, 3),
                          "gather_scatter_ms": round(gather_and_scatter(n), 3), "extra_ms_by_rows": extra}))


if __name__ == "__main__":
    main()
