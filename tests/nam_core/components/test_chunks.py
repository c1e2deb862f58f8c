"""How many cells the cell pass takes at a time."""

import numpy as np

from nam_core.components.cells import CPU_CHUNK_BYTES, chunk_size
from nam_core.engine.data import prepare_cohort


def test_the_cache_bound_caps_the_memory_bound_only_when_smaller():
    args = dict(n_cells=10**7, n_atoms=50, p=10, n_features=66, itemsize=4, quad="expanded")
    per_cell = 4 * (66 + 5 * 50 + 10) + 8 * 50
    assert chunk_size(**args, memory_budget=2**31) == 2**31 // per_cell
    assert chunk_size(**args, memory_budget=2**31, cache_bytes=2**25) == 2**25 // per_cell
    assert chunk_size(**args, memory_budget=2**20, cache_bytes=2**25) == 2**20 // per_cell
    assert chunk_size(**args, memory_budget=1, cache_bytes=1) == 256  # at least 256 cells


def test_cpu_chunks_hold_a_cache_worth_of_cells_whatever_the_memory_budget():
    rng = np.random.default_rng(0)
    Y, group = rng.standard_normal((100_000, 10)), np.repeat(np.arange(100), 1000)
    data = prepare_cohort(None, Y, group, use_x=False, prior_x=None, prior_y=None, n_atoms=50,
                          device="cpu", dtype="float32", memory_budget=2**31, quad="expanded",
                          cache_features=False)
    per_cell = 4 * (data.fmap.n_features + 5 * 50 + 10) + 8 * 50
    assert data.chunk == CPU_CHUNK_BYTES // per_cell
