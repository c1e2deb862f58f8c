"""Merge moves of cell atoms (docs/model.md section 8): exact, monotone, fewer split types."""

import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, simulate
from nam_core.engine.merges import greedy_merges

from ..helpers import make_run, small_data


def _converged_run(atoms="gaussian"):
    d = small_data(seed=6, J=20, p=2, n_types=3, mean_cells=40)
    model = NAM(K=3, L=8, atoms=atoms, dtype="float64", device="cpu", quad="direct")
    run = make_run(model, d.X, d.Y, d.group, seed=0)
    elbo = None
    for _ in range(60):
        elbo = run.sweep()
    return run, elbo, d


@pytest.mark.parametrize("atoms", ["gaussian", "student_t"])
def test_atom_merges_raise_the_elbo_exactly_and_empty_the_dropped_atoms(atoms):
    run, elbo, _ = _converged_run(atoms)
    before = int((run.stats.counts > 0.5).sum())
    accepted = greedy_merges(run, elbo, 1e-10, layer=run.merge_layers["atoms"])
    assert accepted, "k-means opens 8 atoms for 3 types: some merge must pay"
    gains = [e for _, _, e in accepted]
    assert gains == sorted(gains) and gains[0] > elbo
    assert run.elbo() == pytest.approx(gains[-1], rel=1e-12)  # the state is the merged one
    assert int((run.stats.counts > 0.5).sum()) == before - len(accepted)
    assert run.sweep() >= gains[-1] * (1 + 1e-10)  # the next sweep continues from there


def test_rejected_atom_merges_leave_the_state_exactly():
    run, elbo, _ = _converged_run()
    for _ in range(5):  # merge until nothing pays, then once more
        accepted = greedy_merges(run, elbo, 1e-10, layer=run.merge_layers["atoms"])
        elbo = run.sweep()
        if not accepted:
            break
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in run.state().items()}
    value = run.elbo()
    assert greedy_merges(run, value, 0.5, layer=run.merge_layers["atoms"]) == []  # no gain of 50%
    assert run.elbo() == value and torch.equal(run.rho, state["rho"])


def test_fit_with_atom_merges_finds_the_types():
    """Without merges CAVI keeps a split type here (5 atoms for 4 types); with them, 4."""
    d = simulate(J=40, n_clusters=2, q=2, p=3, n_cell_types=4, mean_cells=100, min_cells=5, seed=6)
    common = dict(K=3, L=15, n_init=1, seed=0, device="cpu", verbose=False)
    merged = NAM(**common, merge_atoms=True).fit(d.X, d.Y, d.group)
    plain = NAM(**common).fit(d.X, d.Y, d.group)
    assert merged.elbo_ >= plain.elbo_
    assert merged.restarts_[0]["atom_merges"] > 0
    assert merged.n_cell_clusters_ == 4 < plain.n_cell_clusters_
    assert adjusted_rand_score(d.cell_labels, merged.cell_labels_) > adjusted_rand_score(
        d.cell_labels, plain.cell_labels_)


@pytest.mark.parametrize("atoms", ["gaussian", "student_t"])
def test_refine_sweeps_are_exact_and_never_lower_a_candidate(atoms):
    """Each candidate's refine sweeps (free q(M), q(w)) start from the held refit: float64, monotone."""
    run, _, _ = _converged_run(atoms)
    layer = run.merge_layers["atoms"]
    start = run.state()
    pairs = layer.merge_candidates()
    assert pairs
    for keep, drop in pairs:
        layer.REFINE_SWEEPS = 0
        held = layer.merge(keep, drop)
        run.load_state(start)
        layer.REFINE_SWEEPS = type(layer).REFINE_SWEEPS
        refined = layer.merge(keep, drop)
        assert refined >= held - 1e-10 * abs(held)
        assert run.elbo() == pytest.approx(refined, rel=1e-12)  # the candidate's state is exact
        run.load_state(start)
