import numpy as np
from sklearn.metrics import adjusted_rand_score

from nam_core.models.coarse_to_fine import fit_coarse_to_fine, subsample_within_individuals
from nam_core.synthetic.simulate import simulate


def test_subsample_keeps_every_individual():
    group = np.repeat(np.arange(5), [3, 50, 100, 21, 200])
    rows = subsample_within_individuals(group, 0.1, min_cells=20, seed=0)
    counts = np.bincount(group[rows], minlength=5)
    assert counts.tolist() == [3, 20, 20, 20, 20]
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, subsample_within_individuals(group, 0.1, min_cells=20, seed=0))


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
