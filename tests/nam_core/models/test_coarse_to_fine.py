import numpy as np
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM
from nam_core.models.coarse_to_fine import (
    fit_coarse_to_fine,
    merge_atoms_of_best,
    subsample_within_individuals,
)
from nam_core.synthetic.simulate import simulate


def test_subsample_keeps_every_individual():
    group = np.repeat(np.arange(5), [3, 50, 100, 21, 200])
    rows = subsample_within_individuals(group, 0.1, min_cells=20, seed=0)
    counts = np.bincount(group[rows], minlength=5)
    assert counts.tolist() == [3, 20, 20, 20, 20]
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, subsample_within_individuals(group, 0.1, min_cells=20, seed=0))


def test_a_cell_cap_lowers_the_share_but_keeps_the_floor():
    group = np.repeat(np.arange(4), [10, 1000, 2000, 4000])  # 7,010 cells
    capped = subsample_within_individuals(group, 0.5, min_cells=20, seed=0, max_cells=701)
    counts = np.bincount(group[capped], minlength=4)
    assert counts.tolist() == [10, 100, 200, 400]  # a tenth of each, all of a small individual
    uncapped = subsample_within_individuals(group, 0.05, min_cells=20, seed=0, max_cells=10**6)
    assert np.array_equal(uncapped, subsample_within_individuals(group, 0.05, min_cells=20, seed=0))


def test_coarse_to_fine_refines_on_all_cells():
    data = simulate(J=40, n_clusters=2, q=3, p=4, n_cell_types=3, mean_cells=60, seed=1)
    model, info = fit_coarse_to_fine(data.X, data.Y, data.group, n_init=2, fraction=0.25,
                                     min_cells=10, K=5, L=8, max_iter=200, dtype="float64",
                                     device="cpu", verbose=False)
    assert model.cell_labels_.shape == (data.Y.shape[0],)
    assert info["rows"].size < 0.4 * data.Y.shape[0]
    assert info["best_seed"] == max(info["restarts"], key=lambda r: r["elbo"])["seed"]
    assert adjusted_rand_score(data.individual_labels, model.individual_labels_) > 0.9
    assert adjusted_rand_score(data.cell_labels, model.cell_labels_) > 0.9


def test_atom_merges_run_on_the_chosen_restart_only():
    """With merge_atoms, "best" fits the restarts without atom merges and merges the chosen one
    on the same cells: no restart accepts an atom merge, the continued fit does, and it ends at
    least as high as the chosen restart."""
    data = simulate(J=40, n_clusters=2, q=3, p=4, n_cell_types=3, mean_cells=60, seed=1)
    params = dict(K=5, L=12, max_iter=300, tol=1e-6, dtype="float64", device="cpu", verbose=False,
                  atoms="student_t", merge_atoms=True)
    rows = subsample_within_individuals(data.group, 0.5, min_cells=10)
    X, Y, group = data.X, data.Y[rows], data.group[rows]
    restart = NAM(n_init=1, seed=0, **{**params, "merge_atoms": False}).fit(X, Y, group)
    merged = merge_atoms_of_best(restart, X, Y, group, **params)
    assert merged.seed_ == restart.seed_
    assert merged.n_cell_clusters_ < restart.n_cell_clusters_
    assert merged.elbo_ >= restart.elbo_
    model, info = fit_coarse_to_fine(data.X, data.Y, data.group, n_init=2, fraction=0.5,
                                     min_cells=10, **params)
    assert info["best_seed"] == max(info["restarts"], key=lambda r: r["elbo"])["seed"]
    assert adjusted_rand_score(data.cell_labels, model.cell_labels_) > 0.9
