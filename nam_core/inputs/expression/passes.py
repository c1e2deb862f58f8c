"""Passes over the counts: progress lines, and blocks replayed from memory on a second pass."""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .qc import Blocks

__all__ = ["PROGRESS_SECONDS", "Replay", "compacted", "expanded", "release_freed_memory", "with_progress"]

logger = logging.getLogger(__name__)


class Replay:
    """CSR blocks of ``make()`` for one pass, then again from memory while they fit in ``budget`` bytes."""

    def __init__(self, make: Callable, budget: int):
        self.make, self.budget, self.kept = make, budget, None

    def __call__(self):
        """The blocks: from ``make()`` on the first pass, from memory after it when they fit."""
        if self.kept is not None:
            yield from (expanded(*kept) for kept in self.kept)
            return
        kept, size = [], 0
        for block in self.make():
            if kept is not None:
                compact = compacted(block)
                size += sum(part.nbytes for part in compact[:3])
                if size <= self.budget:
                    kept.append(compact)
                else:
                    kept = None
            yield block
        self.kept = kept


def release_freed_memory() -> bool:
    """Give the heap's freed pages back to the system (glibc's ``malloc_trim``); False where absent.

    The blocks a :class:`Replay` keeps are a few MB each. Once the passes have freed larger
    arrays, glibc places blocks of that size on its heap rather than in their own mappings, and
    freeing them leaves the process's resident memory where it was: on a 4.84M-cell cohort the
    3.4 GB of HVG values stayed resident through the batch correction after them.
    """
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return False
    trim(ctypes.c_size_t(0))
    return True


def compacted(block: sp.csr_matrix) -> tuple:
    """(data, indices, indptr, shape) of a CSR block, indices as uint16 when its columns allow."""
    index_dtype = np.uint16 if block.shape[1] <= np.iinfo(np.uint16).max + 1 else block.indices.dtype
    return block.data, block.indices.astype(index_dtype), block.indptr, block.shape


def expanded(data, indices, indptr, shape) -> sp.csr_matrix:
    """The CSR block that :func:`compacted` kept (int32 or wider indices, as scipy needs)."""
    return sp.csr_matrix((data, indices.astype(np.int32, copy=False) if indices.dtype == np.uint16
                          else indices, indptr), shape=shape)


#: Seconds between progress lines of a pass over the counts.
PROGRESS_SECONDS = 60.0


def with_progress(blocks: Blocks, n_cells: int) -> Blocks:
    """``blocks`` that log, at most every :data:`PROGRESS_SECONDS`, how far each pass has come."""
    passes = itertools.count(1)

    def logged_blocks():
        number, done, last = next(passes), 0, time.perf_counter()
        for rows, block in blocks():
            done += len(rows)
            if time.perf_counter() - last >= PROGRESS_SECONDS:
                logger.info("pass %d over the counts: %d of %d cells (%.0f %%)", number, done,
                            n_cells, 100 * done / max(n_cells, 1))
                last = time.perf_counter()
            yield rows, block

    return logged_blocks
