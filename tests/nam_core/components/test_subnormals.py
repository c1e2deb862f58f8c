"""Responsibilities never hold subnormal numbers, and a fit leaves the floating-point mode alone.

CPU arithmetic on subnormal operands is 10-100x slower; far atoms' responsibilities underflow
into that range as a fit converges (benchmarks/bench_fit.py --profile-sweeps measures it).
"""

import warnings

import numpy as np
import pytest
import torch

from nam_core import NAM, ConvergenceWarning, simulate
from nam_core.components.cells import flush_subnormals_, normalise_logits_, zero_bound
from nam_core.engine.float_mode import flushes_subnormals

from ..helpers import small_data


def subnormal_count(x: torch.Tensor) -> int:
    tiny = torch.finfo(x.dtype).tiny
    return int(((x != 0) & (x.abs() < tiny)).sum())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flush_subnormals_zeroes_only_subnormals(dtype):
    tiny = torch.finfo(dtype).tiny
    x = torch.tensor([0.0, tiny / 8, tiny / 2, tiny, 2 * tiny, 1e-3, 1.0], dtype=dtype)
    if flushes_subnormals():
        pytest.skip("this process flushes subnormals already")
    assert subnormal_count(x) == 2
    out = flush_subnormals_(x)
    assert out.data_ptr() == x.data_ptr()  # in place
    assert subnormal_count(x) == 0
    expected = torch.tensor([0.0, 0.0, 0.0, 0.0, 2 * tiny, 1e-3, 1.0], dtype=dtype)
    assert torch.equal(x, expected)


def test_far_atoms_get_zero_not_subnormal_responsibility():
    logits = torch.tensor([[0.0, -95.0, -200.0], [-1.0, 0.0, -120.0]], dtype=torch.float32)
    assert subnormal_count(torch.softmax(logits, dim=1)) > 0  # what the flush prevents
    xi, _ = normalise_logits_(logits.clone())
    assert subnormal_count(xi) == 0
    assert torch.equal(xi == 0, torch.tensor([[False, True, True], [False, False, True]]))
    assert torch.allclose(xi.sum(1), torch.ones(2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalised_logits_are_the_softmax_and_its_log(dtype):
    """Against torch's softmax and log_softmax, with rows spanning the underflow bound."""
    gen = torch.Generator().manual_seed(0)
    spread = torch.tensor([1.0, 50.0, 200.0, 2000.0], dtype=dtype)[:, None]
    logits = torch.randn(4 * 64, 30, generator=gen, dtype=dtype) * spread.repeat_interleave(64, 0)
    expected = torch.softmax(logits, dim=1)
    far = logits - logits.amax(1, keepdim=True) < zero_bound(dtype, logits.shape[1])
    assert far.any() and not far.all()
    expected = torch.where(far, 0.0, expected)
    log_xi = logits.clone()
    out = torch.empty_like(logits)
    xi, log_norm = normalise_logits_(log_xi, out=out)
    assert xi.data_ptr() == out.data_ptr()
    rtol = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(log_norm, torch.logsumexp(logits, dim=1), rtol=rtol, atol=0.0)
    torch.testing.assert_close(xi, expected, rtol=rtol, atol=0.0)
    assert torch.equal(xi == 0, expected == 0)  # the same exact zeros
    assert subnormal_count(xi) == 0
    torch.testing.assert_close(log_xi, torch.log_softmax(logits, dim=1), rtol=rtol, atol=rtol)
    columns = logits.T.contiguous()  # atoms along the first dimension
    xi_t, log_norm_t = normalise_logits_(columns, dim=0)
    assert torch.equal(xi_t == 0, xi.T == 0)
    torch.testing.assert_close(xi_t, xi.T, rtol=rtol, atol=0.0)
    torch.testing.assert_close(log_norm_t, log_norm, rtol=rtol, atol=0.0)
    torch.testing.assert_close(columns, log_xi.T, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("route", ["indicators", "gather", "by cell"])
def test_cell_pass_makes_no_subnormal_responsibilities(monkeypatch, route):
    """Spy on every softmax of the cell pass: far, well-separated atoms get exact zeros."""
    import nam_core.components.cell_pass as passes
    import nam_core.components.cells as cells

    seen = []
    for module in (passes, cells):
        original = module.normalise_logits_

        def spy(*args, _original=original, **kwargs):
            xi, log_norm = _original(*args, **kwargs)
            seen.append(subnormal_count(xi))
            return xi, log_norm

        monkeypatch.setattr(module, "normalise_logits_", spy)
    d = simulate(J=12, n_clusters=2, q=2, p=6, n_cell_types=4, mean_cells=300, min_cells=5,
                 delta_y=40.0, seed=0)
    model = NAM(K=3, L=6, n_init=1, seed=0, max_iter=10, dtype="float32", device="cpu",
                cache_features=route == "gather", quad="direct" if route == "by cell" else "expanded",
                memory_budget=200_000, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(d.X, d.Y, d.group)
    assert len(seen) > 10
    assert sum(seen) == 0


@pytest.mark.parametrize("flush", [False, True])
def test_fit_leaves_the_callers_floating_point_mode(flush):
    d = small_data(seed=1)
    assert torch.set_flush_denormal(flush)
    try:
        assert flushes_subnormals() == flush
        NAM(K=3, L=5, n_init=1, seed=0, dtype="float32", device="cpu", verbose=False).fit(d.X, d.Y, d.group)
        assert flushes_subnormals() == flush
    finally:
        torch.set_flush_denormal(False)


def test_fit_is_the_same_with_and_without_flushing():
    d = small_data(seed=2)
    kw = dict(K=3, L=6, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False)
    plain = NAM(**kw).fit(d.X, d.Y, d.group)
    torch.set_flush_denormal(True)
    try:
        flushed = NAM(**kw).fit(d.X, d.Y, d.group)
    finally:
        torch.set_flush_denormal(False)
    np.testing.assert_allclose(flushed.elbo_trace_, plain.elbo_trace_, rtol=1e-12)
    assert np.array_equal(flushed.cell_labels_, plain.cell_labels_)


def test_the_fit_flushes_subnormals_while_it_runs(monkeypatch):
    """Every cell pass runs with flush-to-zero on, whatever the caller's mode."""
    import nam_core.components.cell_pass as passes

    modes = []
    original = passes.normalise_logits_

    def spy(*args, **kwargs):
        modes.append(flushes_subnormals())
        return original(*args, **kwargs)

    monkeypatch.setattr(passes, "normalise_logits_", spy)
    d = small_data(seed=3)
    assert torch.set_flush_denormal(False)
    assert not flushes_subnormals()
    NAM(K=3, L=5, n_init=1, seed=0, dtype="float32", device="cpu", verbose=False).fit(d.X, d.Y, d.group)
    assert len(modes) > 5 and all(modes)
    assert not flushes_subnormals()
