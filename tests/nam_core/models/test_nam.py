"""The NAM estimator: recovery, scenario B, precision, determinism, save/load, restarts, errors."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, ConvergenceWarning, NAMInputError, select_best, simulate
from nam_core.engine.merges import greedy_merges

from ..helpers import make_run, small_data


def _easy(seed=0, eta=0.8, delta_x=3.0, J=60):
    return simulate(
        J=J, n_clusters=3, q=2, p=3, n_cell_types=5, mean_cells=60, delta_x=delta_x,
        delta_y=5.0, eta=eta, seed=seed,
    )


@pytest.fixture(scope="module")
def easy():
    return _easy()


@pytest.fixture(scope="module")
def easy_fit(easy):
    return NAM(K=8, L=10, n_init=5, seed=0, dtype="float64", device="cpu", verbose=False).fit(
        easy.X, easy.Y, easy.group
    )


def test_recovers_both_levels(easy, easy_fit):
    assert adjusted_rand_score(easy.individual_labels, easy_fit.individual_labels_) > 0.9
    assert adjusted_rand_score(easy.cell_labels, easy_fit.cell_labels_) > 0.9
    assert easy_fit.converged_
    assert np.all(np.diff(easy_fit.elbo_trace_) >= -1e-9 * np.abs(easy_fit.elbo_trace_[1:]))


def test_fitted_attributes_are_consistent(easy, easy_fit):
    m = easy_fit
    J, N = easy.X.shape[0], easy.Y.shape[0]
    assert m.rho_.shape == (J, 8) and np.allclose(m.rho_.sum(1), 1)
    assert np.array_equal(m.individual_labels_, m.rho_.argmax(1))
    assert m.cell_labels_.shape == (N,) and m.cell_label_proba_.shape == (N,)
    assert np.all((m.cell_label_proba_ > 0) & (m.cell_label_proba_ <= 1 + 1e-12))
    assert np.all(np.diff(m.individual_cluster_sizes_) <= 0)  # relabelled by decreasing size
    assert np.all(np.diff(m.cell_cluster_sizes_) <= 0)
    assert m.n_individual_clusters_ == np.unique(m.individual_labels_).size
    assert m.weights_.shape == (8,) and m.cell_weights_.shape == (10, 8)
    assert np.isclose(m.weights_.sum(), 1) and np.allclose(m.cell_weights_.sum(0), 1)
    assert m.m_y_.shape == (10, 3) and m.D_inv_y_.shape == (10, 3, 3)
    assert m.m_x_.shape == (8, 2) and m.c_x_.shape == (8,)
    # the largest atom's mean is near the mean of the cells labelled with it
    cells = easy.Y[m.cell_labels_ == 0]
    assert np.allclose(m.m_y_[0], cells.mean(0), atol=0.2)
    assert m.elbo_ == m.elbo_trace_[-1] and m.n_iter_ == m.elbo_trace_.size
    assert len(m.restarts_) == 5 and m.seed_ in range(5)
    assert np.array_equal(m.predict(easy.Y[:200], easy.group[:200]), m.cell_labels_[:200])


def test_scenario_b_needs_the_genotype_layer():
    """Identical compositions (eta = 0): only x identifies the individual clusters.

    Each extra individual cluster costs its own composition sticks and x atom, and the default
    x prior (scikit-learn's: the data covariance as Psi0^{-1}) widens small clusters, so with
    too few individuals per cluster the model prefers to merge two genotype clusters: at J = 100
    here (60 cells each) the merged partition's ELBO is 9 nats above the true one's, and merge
    moves find it. J = 600 with 10 cells each (about 200 individuals per cluster) lets the x
    layer carry the split (seeds 0, 1 and 2 of the data all give ARI >= 0.995).
    """
    data = simulate(J=600, n_clusters=3, q=2, p=3, n_cell_types=5, mean_cells=10, min_cells=5,
                    delta_x=6.0, delta_y=5.0, eta=0.0, seed=0)
    kw = dict(K=8, L=10, n_init=3, seed=0, dtype="float64", device="cpu", verbose=False)
    nam = NAM(**kw).fit(data.X, data.Y, data.group)
    cam = NAM(use_x=False, **kw).fit(data.X, data.Y, data.group)
    assert adjusted_rand_score(data.individual_labels, nam.individual_labels_) > 0.9
    assert adjusted_rand_score(data.individual_labels, cam.individual_labels_) < 0.5


def _uninformative_genotype(seed=0):
    """Scenario C of the small simulation study: compositions carry the clusters, x is noise."""
    return simulate(J=200, n_clusters=4, q=5, p=10, n_cell_types=8, mean_cells=20, delta_x=0.0,
                    delta_y=4.0, eta=0.8, seed=seed)


def test_merge_moves_empty_the_redundant_clusters_of_the_kmeans_start():
    """The k-means start opens K = 10 individual clusters; CAVI alone keeps most of them."""
    data = _uninformative_genotype()
    kw = dict(K=10, L=20, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False)
    plain = NAM(merge=False, **kw).fit(data.X, data.Y, data.group)
    merged = NAM(merge=True, **kw).fit(data.X, data.Y, data.group)  # float64: raises on a decrease
    assert plain.restarts_[0]["merges"] == 0 and plain.n_individual_clusters_ > 4
    assert merged.restarts_[0]["merges"] >= 1
    assert merged.elbo_ > plain.elbo_
    assert merged.n_individual_clusters_ == 4
    assert adjusted_rand_score(data.individual_labels, merged.individual_labels_) > 0.95


def test_merge_step_raises_the_elbo_or_leaves_the_state_exactly():
    data = _uninformative_genotype(seed=1)
    model = NAM(K=10, L=20, seed=0, dtype="float64", device="cpu", verbose=False)
    run = make_run(model, data.X, data.Y, data.group)
    for _ in range(30):
        elbo = run.sweep()
    accepted = greedy_merges(run, elbo, 1e-10)
    assert accepted, "the k-means start leaves redundant clusters after 30 sweeps"
    gains = [elbo] + [e for _, _, e in accepted]
    assert all(b > a for a, b in zip(gains[:-1], gains[1:], strict=True))
    assert run.elbo() == pytest.approx(gains[-1], rel=1e-12)
    assert (run.rho[:, [drop for _, drop, _ in accepted]].sum(0) < 1e-3).all()  # emptied
    # at the end of the greedy search no merge helps: a second call changes nothing
    rho, final = run.rho.clone(), run.elbo()
    assert greedy_merges(run, final, 1e-10) == []
    assert torch.equal(run.rho, rho) and run.elbo() == final
    assert run.sweep() >= final * (1 + 1e-10)  # the next sweep continues from the merged state


def test_float32_and_float64_agree_on_labels(easy):
    kw = dict(K=8, L=10, n_init=1, seed=0, device="cpu", verbose=False)
    m64 = NAM(dtype="float64", **kw).fit(easy.X, easy.Y, easy.group)
    m32 = NAM(dtype="float32", **kw).fit(easy.X, easy.Y, easy.group)
    assert adjusted_rand_score(m64.cell_labels_, m32.cell_labels_) > 0.99
    assert adjusted_rand_score(m64.individual_labels_, m32.individual_labels_) == 1.0
    assert abs(m64.elbo_ - m32.elbo_) < 1e-4 * abs(m64.elbo_)


def test_direct_and_expanded_quadratic_forms_agree():
    d = small_data(seed=4, J=20, p=4)
    kw = dict(K=4, L=6, n_init=1, seed=1, dtype="float64", device="cpu", max_iter=20, tol=0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = NAM(quad="direct", **kw).fit(d.X, d.Y, d.group)
        b = NAM(quad="expanded", **kw).fit(d.X, d.Y, d.group)
    np.testing.assert_allclose(a.elbo_trace_, b.elbo_trace_, rtol=1e-10)


def test_chunking_does_not_change_the_result():
    d = small_data(seed=5, J=15)
    kw = dict(K=3, L=4, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False)
    a = NAM(memory_budget=1 << 16, cache_features=False, **kw).fit(d.X, d.Y, d.group)
    b = NAM(memory_budget=1 << 30, **kw).fit(d.X, d.Y, d.group)
    np.testing.assert_allclose(a.elbo_trace_, b.elbo_trace_, rtol=1e-11)


def test_same_seed_same_result_and_restarts_match_separate_runs():
    d = small_data(seed=6, J=15)
    kw = dict(K=3, L=4, dtype="float64", device="cpu", verbose=False)
    joint = NAM(n_init=3, seed=10, **kw).fit(d.X, d.Y, d.group)
    again = NAM(n_init=3, seed=10, **kw).fit(d.X, d.Y, d.group)
    assert np.array_equal(joint.elbo_trace_, again.elbo_trace_)
    assert np.array_equal(joint.cell_labels_, again.cell_labels_)
    separate = [NAM(n_init=1, seed=s, **kw).fit(d.X, d.Y, d.group) for s in (10, 11, 12)]
    best = max(separate, key=lambda m: m.elbo_)
    assert joint.elbo_ == best.elbo_ and joint.seed_ == best.seed_


def test_save_load_round_trip_and_select_best(tmp_path):
    d = small_data(seed=7, J=15)
    kw = dict(K=3, L=4, n_init=1, dtype="float64", device="cpu", verbose=False)
    fits = [NAM(seed=s, **kw).fit(d.X, d.Y, d.group) for s in (0, 1, 2)]
    paths = [f.save(tmp_path / f"fit_{i}.npz") for i, f in enumerate(fits)]
    loaded = NAM.load(paths[0])
    for name in ("rho_", "cell_labels_", "cell_label_proba_", "m_y_", "D_inv_y_", "m_x_", "a_u_",
                 "b_v_", "s_hat_", "weights_", "cell_weights_", "elbo_trace_"):
        assert np.array_equal(getattr(loaded, name), getattr(fits[0], name)), name
    assert loaded.elbo_ == fits[0].elbo_ and loaded.seed_ == 0
    assert loaded.get_params() == fits[0].get_params()
    assert set(loaded.versions_) >= {"nam_core", "torch", "numpy"}
    assert np.array_equal(loaded.predict(d.Y, d.group), fits[0].predict(d.Y, d.group))
    best, path = select_best(paths)
    assert best.elbo_ == max(f.elbo_ for f in fits)
    assert path == paths[int(np.argmax([f.elbo_ for f in fits]))]
    assert len(best.restarts_) == 3
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_individuals_without_cells_are_clustered_by_x():
    d = small_data(seed=8, J=14)
    keep = d.group < 12  # individuals 12 and 13 have no cells
    m = NAM(K=3, L=4, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False)
    m.fit(d.X, d.Y[keep], d.group[keep])
    assert m.rho_.shape == (14, 3) and np.allclose(m.rho_.sum(1), 1)


def test_all_init_methods_run():
    d = small_data(seed=9, J=12)
    rng = np.random.default_rng(0)
    resp = (rng.dirichlet(np.ones(4), size=d.Y.shape[0]), rng.dirichlet(np.ones(3), size=12))
    for init in ("kmeans", "random", "random_from_data", "resp"):
        m = NAM(K=3, L=4, n_init=1, seed=0, init=init, init_resp=resp if init == "resp" else None,
                dtype="float64", device="cpu", verbose=False).fit(d.X, d.Y, d.group)
        assert np.isfinite(m.elbo_), init


def test_atom_labels_as_init_resp_fit_as_their_one_hot_rows():
    d = small_data(seed=9, J=12)
    rng = np.random.default_rng(0)
    labels, rho0 = rng.integers(0, 4, size=d.Y.shape[0]), rng.dirichlet(np.ones(3), size=12)
    one_hot = np.eye(4)[labels]
    fits = [NAM(K=3, L=4, n_init=1, seed=0, init="resp", init_resp=(xi0, rho0), max_iter=20,
                tol=0, dtype="float64", device="cpu", verbose=False).fit(d.X, d.Y, d.group)
            for xi0 in (labels, one_hot)]
    assert np.array_equal(fits[0].elbo_trace_, fits[1].elbo_trace_)
    assert np.array_equal(fits[0].cell_labels_, fits[1].cell_labels_)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (lambda n: np.full(n, 4), "must lie in 0..3"),
        (lambda n: np.full(n, -1), "must lie in 0..3"),
        (lambda n: np.zeros(n - 1, dtype=int), "expected \\("),
        (lambda n: np.zeros(n), "must be integers"),
    ],
)
def test_bad_atom_labels_as_init_resp_get_a_clear_error(labels, message):
    d = small_data(seed=9, J=12)
    resp = (labels(d.Y.shape[0]), np.full((12, 3), 1 / 3))
    with pytest.raises(NAMInputError, match=message):
        NAM(K=3, L=4, n_init=1, init="resp", init_resp=resp, device="cpu", verbose=False).fit(
            d.X, d.Y, d.group)


def test_non_convergence_warns():
    d = small_data(seed=1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        NAM(K=3, L=4, n_init=1, seed=0, max_iter=2, tol=0, dtype="float64", device="cpu",
            verbose=False).fit(d.X, d.Y, d.group)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, Y, g: (X, np.where(np.arange(Y.size).reshape(Y.shape) == 7, np.nan, Y), g), "rows: 2"),
        (lambda X, Y, g: (np.vstack([X[:-1], [np.inf, 0]]), Y, g), "X \\(individuals\\) has NaN or infinite"),
        (lambda X, Y, g: (X, Y[:-1], g), "group must have shape"),
        (lambda X, Y, g: (X, Y, np.where(g == 0, 99, g)), "out of range"),
        (lambda X, Y, g: (X, Y[:0], g[:0]), "Y \\(cells\\) is empty"),
        (lambda X, Y, g: (X, Y.astype(str), g), "must be numeric"),
        (lambda X, Y, g: (X, Y[:, 0], g), "2-dimensional"),
        (lambda X, Y, g: (X, Y, g.astype(float) + 0.5), "integer codes"),
        (lambda X, Y, g: (None, Y, g), "X \\(individuals\\) is required"),
    ],
)
def test_bad_data_gets_a_clear_error(change, message):
    d = small_data(seed=0)
    X, Y, g = change(d.X, d.Y, d.group)
    with pytest.raises(NAMInputError, match=message):
        NAM(K=3, L=4, n_init=1, device="cpu", verbose=False).fit(X, Y, g)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(K=0), "K must be an integer >= 1"),
        (dict(L=0), "L must be an integer >= 1"),
        (dict(dtype="int32"), "dtype must be"),
        (dict(init="magic"), "init must be one of"),
        (dict(trunc_u="closed"), "truncation must be one of"),
        (dict(alpha=-1.0), "alpha must be a positive"),
        (dict(prior_y={"scale_inv": -np.eye(3)}), "not positive definite"),
        (dict(prior_x={"dof": 0.5}), "degrees of freedom of layer x"),
        (dict(prior_y={"mean_precision": 0}), "mean precision of layer y"),
        (dict(init="resp"), "needs init_resp"),
    ],
)
def test_bad_settings_get_a_clear_error(params, message):
    d = small_data(seed=0)
    with pytest.raises(NAMInputError, match=message):
        NAM(**{"K": 3, "L": 4, "n_init": 1, "device": "cpu", "verbose": False, **params}).fit(
            d.X, d.Y, d.group
        )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(easy):
    kw = dict(K=8, L=10, n_init=1, seed=0, dtype="float64", verbose=False)
    cpu = NAM(device="cpu", **kw).fit(easy.X, easy.Y, easy.group)
    gpu = NAM(device="cuda", **kw).fit(easy.X, easy.Y, easy.group)
    assert gpu.device_.startswith("cuda")
    np.testing.assert_allclose(gpu.elbo_trace_, cpu.elbo_trace_, rtol=1e-9)
    assert np.array_equal(gpu.cell_labels_, cpu.cell_labels_)
