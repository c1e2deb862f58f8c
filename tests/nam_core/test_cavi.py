"""Monotone ELBO after every block and coordinate optimality by perturbation (docs/model.md 11.1-11.2)."""

import dataclasses

import numpy as np
import pytest
import torch

from nam_core import NAM
from nam_core import normal_wishart as nw
from nam_core.nam import _NAMRun

from .helpers import make_run, small_data

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
    run = _run(setting, seed)
    previous = run.elbo()
    for _ in range(12):
        for block in _NAMRun.BLOCKS:
            getattr(run, block)()
            value = run.elbo()
            assert value >= previous - 1e-9 * abs(previous), (block, previous, value)
            previous = value


def _noise(t, rng):
    return torch.as_tensor(rng.normal(size=tuple(t.shape)), dtype=t.dtype)


def _jitter_logits(p, rng, eps):
    return torch.softmax(torch.log(p.clamp(min=1e-300)) + eps * _noise(p, rng), dim=1)


def _perturb_rho(run, rng, eps):
    rho = run.rho
    run.rho = _jitter_logits(rho, rng, eps)
    return lambda: setattr(run, "rho", rho)


def _perturb_xi(run, rng, eps):
    """Responsibilities of the last U1, jittered; the statistics are recomputed from them."""
    stats = run.stats
    run.keep_xi = True
    run.update_cells()
    run.keep_xi = False
    xi_p = _jitter_logits(run.xi, rng, eps)
    run.stats = run.cell_pass(resp_fn=lambda sl: xi_p[sl])
    return lambda: setattr(run, "stats", stats)


def _perturb_atoms(layer):
    def perturb(run, rng, eps):
        post, ex = getattr(run, f"post_{layer}"), getattr(run, f"ex_{layer}")
        A = _noise(post.scale_inv, rng)
        sym = 0.5 * (A + A.transpose(-1, -2))
        new = dataclasses.replace(
            post,
            mean=post.mean + eps * _noise(post.mean, rng),
            mean_precision=post.mean_precision * torch.exp(eps * _noise(post.mean_precision, rng)),
            dof=post.dof + eps * _noise(post.dof, rng),
            scale_inv=post.scale_inv + eps * sym * post.scale_inv.abs().mean(),
        )
        setattr(run, f"post_{layer}", new)
        setattr(run, f"ex_{layer}", nw.expectations(new))

        def undo():
            setattr(run, f"post_{layer}", post)
            setattr(run, f"ex_{layer}", ex)

        return undo

    return perturb


def _perturb_sticks(a_name, b_name):
    def perturb(run, rng, eps):
        a, b = getattr(run, a_name), getattr(run, b_name)
        setattr(run, a_name, a * torch.exp(eps * _noise(a, rng)))
        setattr(run, b_name, b * torch.exp(eps * _noise(b, rng)))

        def undo():
            setattr(run, a_name, a)
            setattr(run, b_name, b)

        return undo

    return perturb


def _perturb_concentration(name):
    def perturb(run, rng, eps):
        conc = getattr(run, name)
        shape, rate = conc.shape, conc.rate
        conc.shape = shape * float(np.exp(eps * rng.normal()))
        conc.rate = rate * float(np.exp(eps * rng.normal()))

        def undo():
            conc.shape, conc.rate = shape, rate

        return undo

    return perturb


PERTURBATIONS = [
    ("update_cells", _perturb_xi),
    ("update_individuals", _perturb_rho),
    ("update_atoms_y", _perturb_atoms("y")),
    ("update_atoms_x", _perturb_atoms("x")),
    ("update_u", _perturb_sticks("a_u", "b_u")),
    ("update_v", _perturb_sticks("a_v", "b_v")),
    ("update_beta", _perturb_concentration("beta")),
    ("update_alpha", _perturb_concentration("alpha")),
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
        if block == "update_v" and run.a_v.numel() == 0:
            continue
        conc = {"update_beta": run.beta, "update_alpha": run.alpha}.get(block)
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
    run.a_u = 1.0 + counts[: run.n_u, None].expand_as(run.a_u)
    assert run.elbo() < best
