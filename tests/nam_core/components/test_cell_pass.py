"""The cell pass's routes give the same results.

By atom with indicator rows, by atom with a gather and a segment sum, and by cell (direct
quadratic forms, an independent computation of the same statistics).
"""

import warnings

import numpy as np
import pytest
import torch

from nam_core import NAM, ConvergenceWarning, simulate
from nam_core.components.cell_pass import MAX_INDICATOR_ROWS, cell_pass
from nam_core.engine.data import CohortData, prepare_cohort

L = 8


def simulated(J=30, mean_cells=120, min_cells=5, p=6):
    return simulate(J=J, n_clusters=3, q=3, p=p, n_cell_types=6, mean_cells=mean_cells,
                    min_cells=min_cells, seed=4)


def prepared(d, dtype="float64", quad="expanded", cache_features=False, p=6):
    """Chunks of 300 cells: about three individuals each at 120 cells per individual."""
    per_cell = 4 * (28 + 5 * L + p) + 8 * L
    return prepare_cohort(d.X, d.Y, d.group, use_x=True, prior_x=None, prior_y=None, n_atoms=L,
                          device="cpu", dtype=dtype, memory_budget=300 * per_cell, quad=quad,
                          cache_features=cache_features)


class without_indicator_rows:
    """Within the block, cohorts take the gather and segment sum instead of indicator rows."""

    def __enter__(self):
        self.original = CohortData.indicator_rows
        CohortData.indicator_rows = lambda data: 0

    def __exit__(self, *exc):
        CohortData.indicator_rows = self.original


def pass_inputs(data):
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(data.fmap.n_features, L, generator=gen, dtype=torch.float64) * 0.05
    mix = torch.randn(data.J, L, generator=gen, dtype=torch.float64)
    return W, mix.to(data.dtype)


def routes(dtype="float64", **kwargs):
    """cell_pass of one cohort and one set of inputs by atom with and without indicator rows."""
    d = simulated()
    results = {}
    for route in ("indicators", "gather"):
        if route == "gather":
            with without_indicator_rows():
                data = prepared(d, dtype)
                assert data.workspace(L).indicator_rows == 0
        else:
            data = prepared(d, dtype)
            assert data.workspace(L).indicator_rows > 0
        W, mix = pass_inputs(data)
        seen = []
        results[route] = (cell_pass(data, L, {"W": W.to(data.dtype)}, mix, visit=lambda xi, seen=seen: seen.append(xi.clone()),
                                    **kwargs), seen)
    return results, data


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_indicator_rows_and_the_gather_give_the_same_statistics(dtype, rtol):
    results, data = routes(dtype, want_labels=True, keep_xi=True)
    (fast, fast_seen), (gather, gather_seen) = results["indicators"], results["gather"]
    for name in ("per_individual", "counts", "sums", "second_moments", "neg_entropy"):
        a, b = getattr(fast.stats, name), getattr(gather.stats, name)
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()), msg=name)
    assert torch.equal(fast.labels, gather.labels)
    torch.testing.assert_close(fast.xi, gather.xi, rtol=rtol, atol=1e-30)
    assert torch.equal(fast.xi == 0, gather.xi == 0)
    assert len(fast_seen) == len(gather_seen) == len(data.chunk_individuals()) > 5
    torch.testing.assert_close(torch.cat(fast_seen), torch.cat(gather_seen), rtol=rtol, atol=1e-30)


def test_the_statistics_are_sums_over_cells_computed_directly():
    """Against responsibilities and sums written out with the softmax of torch."""
    results, data = routes(keep_xi=True)
    stats, xi = results["indicators"][0].stats, results["indicators"][0].xi
    W, mix = pass_inputs(data)
    phi = data.fmap(data.Y.to(torch.float64))
    logits = (W.T @ phi).T + mix[data.group]
    expected = torch.softmax(logits, dim=1)
    torch.testing.assert_close(xi, expected, rtol=1e-10, atol=1e-12)
    Y = data.Y
    torch.testing.assert_close(stats.counts, expected.sum(0), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(stats.sums, expected.T @ Y, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(stats.second_moments, torch.einsum("nl,ni,nj->lij", expected, Y, Y),
                               rtol=1e-12, atol=1e-9)
    per_individual = torch.zeros((data.J, L), dtype=torch.float64).index_add_(0, data.group, expected)
    torch.testing.assert_close(stats.per_individual, per_individual, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(stats.neg_entropy, torch.special.xlogy(expected, expected).sum(),
                               rtol=1e-10, atol=1e-9)


def test_a_labels_only_pass_by_atom():
    results, _ = routes(want_labels=True, statistics=False)
    fast, gather = results["indicators"][0], results["gather"][0]
    assert torch.equal(fast.labels, gather.labels)
    assert float(fast.stats.counts.abs().sum()) == 0.0


def test_indicator_rows_cover_each_chunks_individuals():
    data = prepared(simulated())
    spans = data.chunk_individuals()
    assert [sl.start for sl, _, _ in spans] == list(range(0, data.N, data.chunk))
    for sl, first, last in spans:
        assert set(data.group[sl].tolist()) == set(range(first, last))
    assert data.indicator_rows() == max(last - first for _, first, last in spans)


@pytest.mark.parametrize("case", ["cached features", "direct quadratic forms", "small individuals"])
def test_indicator_rows_only_where_they_pay(case):
    if case == "cached features":
        data = prepared(simulated(), cache_features=True)
    elif case == "direct quadratic forms":
        data = prepared(simulated(), quad="direct")
    else:  # 300-cell chunks of individuals of about 2 cells
        data = prepared(simulated(J=600, mean_cells=2, min_cells=1))
        most = max(last - first for _, first, last in data.chunk_individuals())
        assert most > MAX_INDICATOR_ROWS
    assert data.indicator_rows() == 0


@pytest.mark.parametrize("atoms", ["gaussian", "student_t"])
def test_fits_by_every_route_agree(monkeypatch, atoms):
    """float64 fits: by atom with indicator rows, with the gather, with cached features, by cell."""
    import nam_core.components.cell_pass as passes

    calls = []
    original_features = passes.indicator_features
    monkeypatch.setattr(passes, "indicator_features", lambda *a: calls.append(1) or original_features(*a))
    d = simulate(J=40, n_clusters=3, q=3, p=6, n_cell_types=6, mean_cells=200, min_cells=5, seed=0)
    kw = dict(K=4, L=10, n_init=1, seed=0, max_iter=60, dtype="float64", device="cpu", quad="expanded",
              cache_features=False, memory_budget=200_000, atoms=atoms, verbose=False)
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits["indicators"] = NAM(**kw).fit(d.X, d.Y, d.group)
        assert calls, "the fit did not take the indicator rows"
        calls.clear()
        with without_indicator_rows():
            fits["gather"] = NAM(**kw).fit(d.X, d.Y, d.group)
        fits["cached"] = NAM(**kw | {"cache_features": True}).fit(d.X, d.Y, d.group)
        fits["by cell"] = NAM(**kw | {"quad": "direct"}).fit(d.X, d.Y, d.group)
    assert not calls
    reference = fits["indicators"]
    for route, fit in fits.items():
        assert fit.n_iter_ == reference.n_iter_, route
        rtol = 1e-10 if route != "by cell" else 1e-8  # expanded against direct quadratic forms
        np.testing.assert_allclose(fit.elbo_trace_, reference.elbo_trace_, rtol=rtol, err_msg=route)
        assert np.array_equal(fit.cell_labels_, reference.cell_labels_), route
        assert np.array_equal(fit.individual_labels_, reference.individual_labels_), route


def test_auto_keeps_features_only_for_chunks_without_indicator_rows():
    """Indicator rows are built with the features, so "auto" builds both per chunk."""
    few = simulated()
    per_cell = 4 * (28 + 5 * L + 6) + 8 * L
    kw = dict(use_x=True, prior_x=None, prior_y=None, n_atoms=L, device="cpu", dtype="float32",
              memory_budget=300 * per_cell, quad="expanded", cache_features="auto")
    on_the_fly = prepare_cohort(few.X, few.Y, few.group, **kw)
    assert on_the_fly.phi is None and on_the_fly.indicator_rows() > 0
    many = simulated(J=600, mean_cells=2, min_cells=1)
    kept = prepare_cohort(many.X, many.Y, many.group, **kw | {"memory_budget": 10**8})
    assert kept.phi is not None and kept.indicator_rows() == 0
