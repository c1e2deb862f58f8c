"""Checks shared by the CAVI tests (no tests here): monotone blocks, perturbations, save/load."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from nam_core.components import normal_wishart as nw
from nam_core.engine.estimator import VariationalEstimator


def assert_blocks_monotone(run, blocks, n_sweeps=8, rtol=1e-9):
    """The ELBO never decreases after any block of ``n_sweeps`` sweeps (float64)."""
    previous = run.elbo()
    for _ in range(n_sweeps):
        for block in blocks:
            getattr(run, block)()
            value = run.elbo()
            assert value >= previous - rtol * abs(previous), (block, previous, value)
            previous = value


def assert_coordinate_maxima(run, checks, rng, eps=1e-3, repeats=4):
    """For each (block, perturb): after the block's update no perturbation raises the ELBO."""
    assert checks, "no block to check"
    for block, perturb in checks:
        getattr(run, block)()
        best = run.elbo()
        for _ in range(repeats):
            undo = perturb(run, rng, eps)
            value = run.elbo()
            undo()
            assert value <= best + 1e-10 * abs(best), (block, best, value)
        assert abs(run.elbo() - best) <= 1e-12 * abs(best), block  # undo restored the state


def noise(t, rng):
    return torch.as_tensor(rng.normal(size=tuple(t.shape)), dtype=t.dtype)


def jitter_simplex(p, rng, eps, dim=-1):
    return torch.softmax(torch.log(p.clamp(min=1e-300)) + eps * noise(p, rng), dim=dim)


def _owner(run, path):
    """The object holding the last part of a dotted attribute path, and that part's name."""
    *parents, name = path.split(".")
    for part in parents:
        run = getattr(run, part)
    return run, name


def perturb_attr_simplex(path, dim=-1):
    def perturb(run, rng, eps):
        owner, name = _owner(run, path)
        old = getattr(owner, name)
        setattr(owner, name, jitter_simplex(old, rng, eps, dim))
        return lambda: setattr(owner, name, old)

    return perturb


def perturb_positive(*paths):
    """Multiplicative jitter of positive tensors (Beta or Dirichlet parameters)."""

    def perturb(run, rng, eps):
        slots = [_owner(run, p) for p in paths]
        old = [getattr(owner, n) for owner, n in slots]
        for (owner, n), v in zip(slots, old, strict=True):
            setattr(owner, n, v * torch.exp(eps * noise(v, rng)))

        def undo():
            for (owner, n), v in zip(slots, old, strict=True):
                setattr(owner, n, v)

        return undo

    return perturb


def perturb_atoms(component):
    def perturb(run, rng, eps):
        atoms = getattr(run, component)
        post, ex = atoms.post, atoms.ex
        A = noise(post.scale_inv, rng)
        new = dataclasses.replace(
            post,
            mean=post.mean + eps * noise(post.mean, rng),
            mean_precision=post.mean_precision * torch.exp(eps * noise(post.mean_precision, rng)),
            dof=post.dof + eps * noise(post.dof, rng),
            scale_inv=post.scale_inv + eps * 0.5 * (A + A.transpose(-1, -2)) * post.scale_inv.abs().mean(),
        )
        atoms.post, atoms.ex = new, nw.expectations(new)

        def undo():
            atoms.post, atoms.ex = post, ex

        return undo

    return perturb


def perturb_concentration(path):
    def perturb(run, rng, eps):
        owner, name = _owner(run, path)
        conc = getattr(owner, name)
        shape, rate = conc.shape, conc.rate
        conc.shape = shape * float(np.exp(eps * rng.normal()))
        conc.rate = rate * float(np.exp(eps * rng.normal()))

        def undo():
            conc.shape, conc.rate = shape, rate

        return undo

    return perturb


def assert_save_load(model, tmp_path, names):
    """save then load (by class and through the base class) restores ``names`` exactly."""
    path = model.save(tmp_path / f"{type(model).__name__}.npz")
    for loader in (type(model), VariationalEstimator):
        loaded = loader.load(path)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        for name in names:
            a, b = getattr(loaded, name), getattr(model, name)
            if isinstance(b, float) and np.isnan(b):
                assert np.isnan(a), name
            else:
                assert np.array_equal(np.asarray(a), np.asarray(b)), name
    return loaded
