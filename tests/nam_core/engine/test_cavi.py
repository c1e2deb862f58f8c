"""Monotone ELBO after every block and coordinate optimality by perturbation (docs/model.md 11.1-11.2)."""

import numpy as np
import pytest

from nam_core import NAM
from nam_core.models.nested import NestedAtomsRun

from ..cavi_checks import (
    assert_blocks_monotone,
    jitter_simplex,
    perturb_atoms,
    perturb_attr_simplex,
    perturb_concentration,
    perturb_positive,
)
from ..helpers import make_run, small_data

SETTINGS = [
    # (K, L, trunc_v, trunc_u, alpha, beta, use_x, quad)
    (4, 5, "tsb", "tsb", None, None, True, "direct"),
    (3, 6, "open", "open", None, None, True, "direct"),
    (5, 4, "tsb", "open", 1.5, 0.5, True, "expanded"),
    (3, 5, "open", "tsb", 0.8, None, False, "direct"),
    (1, 3, "tsb", "tsb", None, 2.0, True, "direct"),
]


def _run(setting, seed, init="random"):
    K, L, tv, tu, alpha, beta, use_x, quad = setting
    d = small_data(seed=seed, J=10 + seed, p=2 + seed % 2, q=2)
    model = NAM(
        K=K, L=L, trunc_v=tv, trunc_u=tu, alpha=alpha, beta=beta, use_x=use_x, init=init,
        dtype="float64", device="cpu", quad=quad, memory_budget=1 << 16,
    )
    return make_run(model, d.X, d.Y, d.group, seed=seed)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_elbo_never_decreases_after_any_block(setting, seed):
    assert_blocks_monotone(_run(setting, seed), NestedAtomsRun.BLOCKS, n_sweeps=12)


def _perturb_xi(run, rng, eps):
    """Responsibilities of the last U1, jittered; the statistics are recomputed from them."""
    stats = run.stats
    run.keep_xi = True
    run.update_cells()
    run.keep_xi = False
    xi_p = jitter_simplex(run.xi, rng, eps, dim=1)
    run.stats = run.cell_pass(resp_fn=lambda sl: xi_p[sl])
    return lambda: setattr(run, "stats", stats)


PERTURBATIONS = [
    ("update_cells", _perturb_xi),
    ("update_individuals", perturb_attr_simplex("rho", dim=1)),
    ("update_atoms_y", perturb_atoms("atoms_y")),
    ("update_atoms_x", perturb_atoms("atoms_x")),
    ("update_u", perturb_positive("omega.a", "omega.b")),
    ("update_v", perturb_positive("pi.a", "pi.b")),
    ("update_beta", perturb_concentration("omega.concentration")),
    ("update_alpha", perturb_concentration("pi.concentration")),
]


@pytest.mark.parametrize("setting", SETTINGS[:4])
def test_each_block_is_a_coordinate_maximum(setting):
    """Right after a block's update, no small perturbation of that block raises the ELBO."""
    run = _run(setting, seed=3, init="kmeans")
    for _ in range(3):
        run.sweep()
    rng = np.random.default_rng(0)
    checked = 0
    for block, perturb in PERTURBATIONS:
        if block == "update_atoms_x" and not run.use_x:
            continue
        if block == "update_v" and run.pi.a.numel() == 0:
            continue
        conc = {"update_beta": run.omega.concentration, "update_alpha": run.pi.concentration}.get(block)
        if conc is not None and conc.fixed is not None:
            continue
        getattr(run, block)()
        best = run.elbo()
        for _ in range(5):
            undo = perturb(run, rng, 1e-3)
            value = run.elbo()
            undo()
            assert value <= best + 1e-10 * abs(best), (block, best, value)
        checked += 1
    assert checked >= 5


def test_literal_appendix_update_is_not_optimal():
    """The garbled appendix update a_u = 1 + N_l (without rho) loses to the corrected U5."""
    run = _run(SETTINGS[0], seed=0, init="kmeans")
    for _ in range(2):
        run.sweep()
    run.update_u()
    best = run.elbo()
    counts = run.stats.counts
    run.omega.a = 1.0 + counts[: run.omega.n_random, None].expand_as(run.omega.a)
    assert run.elbo() < best
