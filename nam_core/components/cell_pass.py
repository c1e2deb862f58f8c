"""The cell pass: all cells through U1 and the statistics of q(M), a chunk at a time.

Gaussian atoms with features built per chunk take the fast route: the features gain one
indicator row per individual of the chunk, so one product gives the logits with each cell's
individual term and another gives the moments with each individual's sums
(:func:`chunk_responsibilities_with_indicators`). Everything else (given responsibilities,
Student-t atoms, cached features, direct quadratic forms, chunks of many individuals) takes
the general route of :mod:`nam_core.components.cells`. Both give the same statistics.
"""

from __future__ import annotations

import dataclasses

import torch

from .cells import (
    CellStats,
    ChunkWorkspace,
    FeatureMap,
    accumulate,
    add_moments,
    chunk_responsibilities,
    empty_stats,
    normalise_logits_,
)

__all__ = [
    "CellPassResult",
    "cell_pass",
    "MAX_INDICATOR_SHARE",
    "indicator_features",
    "chunk_responsibilities_with_indicators",
    "accumulate_with_indicators",
]


#: Indicator rows are used while a chunk holds at most this fraction of F individuals: each row
#: adds 1/F to both products, and at a quarter they cost what the gather and scatter they
#: replace cost (``docs/performance.md``).
MAX_INDICATOR_SHARE = 0.25


def indicator_features(
    ws: ChunkWorkspace, fmap: FeatureMap, Y_c: torch.Tensor, group_c: torch.Tensor, first: int, last: int
) -> torch.Tensor:
    """Features of a chunk with one indicator row per individual: (F + last - first, n_c).

    Rows F.. hold 1 where the cell belongs to individual first + row, else 0. ``group_c`` are
    the chunk's individuals, all within [first, last).
    """
    n, F = Y_c.shape[0], fmap.n_features
    fmap(Y_c, out=ws.features)
    rows = ws.features[F : F + last - first, :n]
    rows.zero_()
    rows.scatter_(0, (group_c - first).unsqueeze(0), 1.0)
    return ws.features[: F + last - first, :n]


def chunk_responsibilities_with_indicators(
    ws: ChunkWorkspace, phi_c: torch.Tensor, mix: torch.Tensor, first: int, last: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """U1 for a chunk as one product: xi (L, n_c), atoms first, and sum xi log xi.

    ``phi_c`` from :func:`indicator_features`; ``ws.coef[:F]`` must hold the atoms' W (F, L).
    Their indicator rows pick each cell's row of ``mix`` (J, L), so [W; mix[first:last]]^T phi
    is the logits E^y + mix[g(n)] in the (L, n_c) layout where the softmax's reductions over
    atoms run along contiguous cells. The returned xi is a view of the workspace, valid until
    the next chunk.
    """
    rows, n = phi_c.shape
    L = mix.shape[1]
    coef = ws.coef[:rows]
    coef[rows - (last - first) :] = mix[first:last]
    logits = torch.mm(coef.T, phi_c, out=ws.logits.view(-1)[: L * n].view(L, n))
    xi, _ = normalise_logits_(logits, out=ws.xi.view(-1)[: L * n].view(L, n), dim=0)
    return xi, torch.vdot(xi.reshape(-1), logits.reshape(-1))


def accumulate_with_indicators(
    stats: CellStats, moments: torch.Tensor, phi_c: torch.Tensor, xi_t: torch.Tensor, first: int,
    neg_entropy_c: torch.Tensor,
) -> None:
    """Add a chunk to the pass's float64 ``moments`` (F, L) and to ``stats``, by one product.

    phi_c (F + r, n_c) from :func:`indicator_features` times xi (n_c, L): its first F rows are
    phi^T xi (unpacked once per pass by :func:`add_moments`), its last r rows the chunk's
    individuals' sums of xi.
    """
    product = torch.mm(phi_c, xi_t.T)
    F = moments.shape[0]
    moments.add_(product[:F])
    stats.per_individual[first : first + product.shape[0] - F] += product[F:]
    stats.neg_entropy += neg_entropy_c.to(torch.float64)


@dataclasses.dataclass
class CellPassResult:
    """What one pass over the cells returns.

    Attributes
    ----------
    stats : CellStats
    labels, proba : Tensor (N,) or None
        Argmax atom of each cell and its responsibility (cells in the data's sorted order).
    xi : Tensor (N, L) or None
        Every responsibility, when asked to keep them.
    """

    stats: CellStats
    labels: torch.Tensor | None = None
    proba: torch.Tensor | None = None
    xi: torch.Tensor | None = None


def cell_pass(data, n_atoms: int, coef=None, mix=None, resp_fn=None, want_labels: bool = False,
              keep_xi: bool = False, scales: dict | None = None, visit=None,
              statistics: bool = True) -> CellPassResult:
    """U1 over all cells in chunks, accumulating :class:`CellStats` (``docs/model.md`` 5.1, 7).

    Parameters
    ----------
    data : CohortData
        The prepared cohort (:mod:`nam_core.engine.data`).
    n_atoms : int
        L.
    coef : dict or None
        :func:`atom_coefficients` of the atoms (with ``mix``), when the responsibilities are
        computed.
    mix : Tensor (J, L) or None
        The per-individual log-weight term sum_k rho_jk E log omega_lk.
    resp_fn : callable (slice -> Tensor (n_c, L)) or None
        Given responsibilities instead (initialisation).
    want_labels, keep_xi : bool
        Also return the argmax atom per cell, or every responsibility.
    scales : dict or None
        Student-t atoms: the per-atom constants of
        :meth:`~nam_core.components.student_t.StudentTAtoms.pass_constants`; the pass then also
        sets q(w) and accumulates the w-weighted statistics.
    visit : callable or None
        Called with each chunk's responsibilities (n_c, L) (e.g. to collect merge entropies).
    statistics : bool
        Accumulate the statistics (else ``stats`` stays zero: a pass for labels alone, which
        then needs no features in the direct mode).
    """
    d = data
    ws = d.workspace(n_atoms)
    stats = empty_stats(d.J, n_atoms, d.p, d.device)
    out = CellPassResult(stats)
    new = torch.empty if d.shard is None else torch.zeros  # ranks sum what they fill
    if want_labels:
        out.labels = new(d.N, dtype=torch.long, device=d.device)
        out.proba = new(d.N, dtype=d.dtype, device=d.device)
    if keep_xi:
        out.xi = new((d.N, n_atoms), dtype=d.dtype, device=d.device)
    scales = scales if scales is not None else {}
    if scales and statistics:
        student_t().start_scale_stats(stats, scales)
    if resp_fn is None and not scales and ws.indicator_rows > 0:
        chunk_pass = _IndicatorChunks(d, ws, stats, coef, mix, statistics)
    else:
        chunk_pass = _GeneralChunks(d, ws, stats, coef, mix, resp_fn, scales, statistics)
    for sl, first, last in d.chunk_individuals():
        xi_c = chunk_pass(sl, first, last)
        if want_labels:
            out.proba[sl], out.labels[sl] = xi_c.max(1)
        if keep_xi:
            out.xi[sl] = xi_c
        if visit is not None:
            visit(xi_c)
    chunk_pass.finish()
    d.sum_over_ranks_(*(getattr(stats, f.name) for f in dataclasses.fields(CellStats)),
                      out.labels, out.proba, out.xi)
    if scales and statistics:
        student_t().finish_scale_stats(stats, scales)
    return out


def student_t():
    """The Student-t module (imported on use: it imports :mod:`nam_core.components.cells`)."""
    from . import student_t as module

    return module


class _GeneralChunks:
    """One chunk by the general route: responsibilities (n_c, L), then their statistics."""

    def __init__(self, d, ws, stats, coef, mix, resp_fn, scales, statistics):
        self.d, self.ws, self.stats, self.coef, self.mix = d, ws, stats, coef, mix
        self.resp_fn, self.scales, self.statistics = resp_fn, scales, statistics

    def __call__(self, sl: slice, first: int, last: int) -> torch.Tensor:
        d, scales = self.d, self.scales
        phi_c = d.features(sl, self.ws) if self.statistics or d.quad == "expanded" else None
        g_c = d.group[sl]
        if self.resp_fn is not None:
            xi_c = self.resp_fn(sl)
            neg_entropy = torch.special.xlogy(xi_c, xi_c).sum()
        elif scales:
            xi_c, neg_entropy, ew, elogw = student_t().chunk_student_t(d.Y[sl], phi_c, self.coef, d.quad,
                                                                     self.mix, g_c, scales)
        else:
            xi_c, neg_entropy = chunk_responsibilities(self.ws, d.Y[sl], phi_c, self.coef, d.quad, self.mix, g_c)
        if self.statistics and scales:
            if self.resp_fn is not None:  # initial q(w) = the prior Gamma(nu/2, nu/2): E w = 1
                ew, elogw = torch.ones_like(xi_c), scales["prior_elogw"].expand_as(xi_c)
            student_t().accumulate_scaled(self.stats, d.fmap, phi_c, xi_c, ew, elogw, g_c, neg_entropy)
        elif self.statistics:
            accumulate(self.stats, d.fmap, phi_c, xi_c, g_c, neg_entropy)
        return xi_c

    def finish(self) -> None:
        """Nothing is left to add."""


class _IndicatorChunks:
    """One chunk by the fast route; the moments are summed in float64 and unpacked at the end."""

    def __init__(self, d, ws, stats, coef, mix, statistics):
        self.d, self.ws, self.stats, self.mix, self.statistics = d, ws, stats, mix, statistics
        F = d.fmap.n_features
        ws.coef[:F] = coef["W"]
        self.moments = torch.zeros((F, mix.shape[1]), dtype=torch.float64, device=d.device)

    def __call__(self, sl: slice, first: int, last: int) -> torch.Tensor:
        d = self.d
        phi_c = indicator_features(self.ws, d.fmap, d.Y[sl], d.group[sl], first, last)
        xi_t, neg_entropy = chunk_responsibilities_with_indicators(self.ws, phi_c, self.mix, first, last)
        if self.statistics:
            accumulate_with_indicators(self.stats, self.moments, phi_c, xi_t, first, neg_entropy)
        return xi_t.T

    def finish(self) -> None:
        """The pass's moments into the counts, sums and second moments."""
        if self.statistics:
            add_moments(self.stats, self.d.fmap, self.moments)
