"""The cell pass's two routes (indicator rows, or a gather and a scatter) give the same results."""

import warnings

import numpy as np
import pytest
import torch

from nam_core import NAM, ConvergenceWarning, simulate
from nam_core.components.cell_pass import MAX_INDICATOR_ROWS, cell_pass
from nam_core.engine.data import CohortData, prepare_cohort

L = 8


def cohort(dtype="float64", cache_features=False, quad="expanded", mean_cells=120, p=6, J=30, min_cells=5):
    """About three individuals per 300-cell chunk."""
    d = simulate(J=J, n_clusters=3, q=3, p=p, n_cell_types=6, mean_cells=mean_cells, min_cells=min_cells,
                 seed=4)
    per_cell = 4 * (28 + 5 * L + p) + 8 * L
    return prepare_cohort(d.X, d.Y, d.group, use_x=True, prior_x=None, prior_y=None, n_atoms=L,
                          device="cpu", dtype=dtype, memory_budget=300 * per_cell, quad=quad,
                          cache_features=cache_features)


def pass_inputs(data):
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(data.fmap.n_features, L, generator=gen, dtype=torch.float64) * 0.05
    mix = torch.randn(data.J, L, generator=gen, dtype=torch.float64)
    return {"W": W.to(data.dtype)}, mix.to(data.dtype)


def run_both(data, **kwargs):
    """cell_pass by the indicator rows, then by the general route on the same data."""
    coef, mix = pass_inputs(data)
    assert data.workspace(L).indicator_rows > 0
    seen = {"fast": [], "general": []}
    fast = cell_pass(data, L, coef, mix, visit=lambda xi: seen["fast"].append(xi.clone()), **kwargs)
    data._workspace = None
    original = CohortData.indicator_rows
    CohortData.indicator_rows = lambda self: 0
    try:
        assert data.workspace(L).indicator_rows == 0
        general = cell_pass(data, L, coef, mix, visit=lambda xi: seen["general"].append(xi.clone()), **kwargs)
    finally:
        CohortData.indicator_rows = original
        data._workspace = None
    return fast, general, seen


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_indicator_rows_give_the_general_routes_statistics(dtype, rtol):
    data = cohort(dtype)
    fast, general, seen = run_both(data, want_labels=True, keep_xi=True)
    for name in ("per_individual", "counts", "sums", "second_moments", "neg_entropy"):
        a, b = getattr(fast.stats, name), getattr(general.stats, name)
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()), msg=name)
    assert torch.equal(fast.labels, general.labels)
    torch.testing.assert_close(fast.xi, general.xi, rtol=rtol, atol=1e-30)
    assert torch.equal(fast.xi == 0, general.xi == 0)
    assert len(seen["fast"]) == len(seen["general"]) == len(data.chunk_individuals()) > 5
    torch.testing.assert_close(torch.cat(seen["fast"]), torch.cat(seen["general"]), rtol=rtol, atol=1e-30)


def test_a_labels_only_pass_by_indicator_rows():
    data = cohort()
    fast, general, _ = run_both(data, want_labels=True, statistics=False)
    assert torch.equal(fast.labels, general.labels)
    assert float(fast.stats.counts.abs().sum()) == 0.0


def test_indicator_rows_cover_each_chunks_individuals():
    data = cohort()
    spans = data.chunk_individuals()
    assert [sl.start for sl, _, _ in spans] == list(range(0, data.N, data.chunk))
    for sl, first, last in spans:
        assert set(data.group[sl].tolist()) == set(range(first, last))
    assert data.indicator_rows() == max(last - first for _, first, last in spans)


@pytest.mark.parametrize("case", ["cached features", "direct quadratic forms", "small individuals"])
def test_indicator_rows_only_where_they_pay(case):
    if case == "cached features":
        data = cohort(cache_features=True)
    elif case == "direct quadratic forms":
        data = cohort(quad="direct")
    else:  # 300-cell chunks of individuals of about 2 cells
        data = cohort(mean_cells=2, J=600, min_cells=1)
        most = max(last - first for _, first, last in data.chunk_individuals())
        assert most > MAX_INDICATOR_ROWS
    assert data.indicator_rows() == 0


@pytest.mark.parametrize("atoms", ["gaussian", "student_t"])
def test_a_fit_by_indicator_rows_equals_the_general_fit(monkeypatch, atoms):
    import nam_core.components.cell_pass as passes

    calls = []
    original_features = passes.indicator_features
    monkeypatch.setattr(passes, "indicator_features", lambda *a: calls.append(1) or original_features(*a))
    d = simulate(J=40, n_clusters=3, q=3, p=6, n_cell_types=6, mean_cells=200, min_cells=5, seed=0)
    kw = dict(K=4, L=10, n_init=1, seed=0, max_iter=60, dtype="float64", device="cpu", quad="expanded",
              cache_features=False, memory_budget=200_000, atoms=atoms, verbose=False)
    fits = {}
    original = CohortData.indicator_rows
    for route in ("fast", "general"):
        if route == "general":
            CohortData.indicator_rows = lambda self: 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fits[route] = NAM(**kw).fit(d.X, d.Y, d.group)
        finally:
            CohortData.indicator_rows = original
        if route == "fast":
            assert calls, "the fit did not take the indicator rows"
            calls.clear()
    assert not calls
    fast, general = fits["fast"], fits["general"]
    assert fast.n_iter_ == general.n_iter_
    np.testing.assert_allclose(fast.elbo_trace_, general.elbo_trace_, rtol=1e-10)
    assert np.array_equal(fast.cell_labels_, general.cell_labels_)
    assert np.array_equal(fast.individual_labels_, general.individual_labels_)
