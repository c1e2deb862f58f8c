"""Subnormal floats flushed to zero while a fit runs, and the caller's mode restored after.

As a fit converges, the responsibilities, weights and their products for far atoms underflow
into the subnormal range (below 1.2e-38 in float32). CPU arithmetic that produces or reads
subnormals is 10-100x slower, so without flushing a sweep near convergence costs several times
a first sweep (measured on 127,000 cells of a OneK1K-shaped cohort, Student-t atoms, one
thread: 5.9x slower at sweeps 51-60 than at sweeps 1-5; 1.3x with flushing). Zeroing the
responsibilities after each softmax (:func:`nam_core.components.cells.flush_subnormals_`) is not
enough: subnormals are also produced inside ``exp`` and the products that follow. So the fit
sets the CPU's flush-to-zero mode (``torch.set_flush_denormal``) for its duration. The ELBO
and labels change only below the smallest normal number, far under the working precision; the
float64 tests check equality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["flushes_subnormals", "subnormals_flushed"]


def flushes_subnormals() -> bool:
    """True when torch's CPU arithmetic currently flushes subnormal results to zero."""
    tiny = torch.tensor([torch.finfo(torch.float32).tiny], dtype=torch.float32)
    return bool((tiny / 4)[0] == 0)


@contextlib.contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Flush subnormals to zero inside the block (where the CPU supports it); restore after."""
    before = flushes_subnormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
