"""The cell pass: all cells through U1 and the statistics of q(M), a chunk at a time.

With expanded quadratic forms (the float32 default) a chunk is worked by atom: logits,
responsibilities and their products in the (L, n_c) layout, where the softmax's reductions
over atoms run along contiguous cells, in reused workspace buffers. Each cell's individual term
and each individual's sums come from indicator rows (:func:`indicator_features`) when features
are built per chunk and the chunk holds at most :data:`MAX_INDICATOR_ROWS` individuals, else
from a gather and a segment sum. Direct quadratic forms (the float64 default) and given
responsibilities are worked by cell, (n_c, L), with the functions of
:mod:`nam_core.components.cells`. All routes give the same statistics.
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

__all__ = ["CellPassResult", "cell_pass", "MAX_INDICATOR_ROWS", "indicator_features"]


#: Indicator rows are used while a chunk holds at most this many individuals. r rows add 2 r
#: multiply-adds per cell and atom to the products; they cost what the gather and scatter they
#: replace cost at about r = 128, at p = 10 and at p = 30 alike
#: (``benchmarks/indicator_rows.py``), and half that leaves a margin.
MAX_INDICATOR_ROWS = 64


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
    if resp_fn is None and d.quad == "expanded" and not scales:
        chunk_pass = _GaussianByAtom(d, ws, stats, coef, mix, statistics)
    elif resp_fn is None and d.quad == "expanded":
        chunk_pass = _StudentTByAtom(d, ws, stats, coef, mix, scales, statistics)
    else:
        chunk_pass = _ByCell(d, ws, stats, coef, mix, resp_fn, scales, statistics)
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


class _ByCell:
    """One chunk by cell: responsibilities (n_c, L), then their statistics."""

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


class _ByAtom:
    """What the by-atom routes share: a chunk's features, individual terms and sums."""

    def __init__(self, d, ws, stats, mix, statistics):
        self.d, self.ws, self.stats, self.mix, self.statistics = d, ws, stats, mix, statistics
        self.F = d.fmap.n_features
        self.indicators = ws.indicator_rows > 0
        self.mix_by_atom = None if self.indicators else mix.T.contiguous()  # (L, J)
        self.neg_entropy = torch.zeros((), dtype=torch.float64, device=d.device)

    def features(self, sl: slice, first: int, last: int) -> torch.Tensor:
        """(F + r, n_c) with r indicator rows, or (F, n_c) without."""
        d = self.d
        if self.indicators:
            return indicator_features(self.ws, d.fmap, d.Y[sl], d.group[sl], first, last)
        return d.features(sl, self.ws)

    def add_individual_terms(self, logits: torch.Tensor, phi_c: torch.Tensor, sl: slice, first: int,
                             last: int) -> None:
        """Add each cell's individual term mix[g(n)] to the logits (L, n_c)."""
        if self.indicators:
            logits.addmm_(self.mix[first:last].T, phi_c[self.F :])
        else:
            logits.add_(torch.index_select(self.mix_by_atom, 1, self.d.group[sl]))

    def individual_sums(self, xi: torch.Tensor, phi_c: torch.Tensor, sl: slice, first: int,
                        last: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's sum_n xi (L,) and each of its individuals' (last - first, L)."""
        if self.indicators:
            plain = torch.mm(phi_c[self.F - 1 :], xi.T)  # the constant row, then the indicator rows
            return plain[0], plain[1:]
        lengths = torch.bincount(self.d.group[sl] - first, minlength=last - first)
        per_individual = torch.segment_reduce(xi, "sum", lengths=lengths.expand(xi.shape[0], -1), axis=1)
        return xi.sum(1), per_individual.T

    def add_entropy(self, xi: torch.Tensor, log_xi: torch.Tensor) -> None:
        """Add the chunk's sum xi log xi."""
        self.neg_entropy += torch.vdot(xi.reshape(-1), log_xi.reshape(-1)).to(torch.float64)

    def finish(self) -> None:
        """The pass's entropy term."""
        if self.statistics:
            self.stats.neg_entropy += self.neg_entropy


class _GaussianByAtom(_ByAtom):
    """Gaussian atoms: logits [W; mix rows]^T phi; moments phi xi^T summed in float64."""

    def __init__(self, d, ws, stats, coef, mix, statistics):
        super().__init__(d, ws, stats, mix, statistics)
        ws.coef[: self.F] = coef["W"]
        self.moments = torch.zeros((self.F, mix.shape[1]), dtype=torch.float64, device=d.device)

    def __call__(self, sl: slice, first: int, last: int) -> torch.Tensor:
        ws, F, n = self.ws, self.F, sl.stop - sl.start
        phi_c = self.features(sl, first, last)
        rows = phi_c.shape[0]
        if self.indicators:  # the individual terms by the same product
            ws.coef[F:rows] = self.mix[first:last]
        logits = torch.mm(ws.coef[:rows].T, phi_c, out=ws.by_atom(ws.logits, n))
        if not self.indicators:
            self.add_individual_terms(logits, phi_c, sl, first, last)
        xi, _ = normalise_logits_(logits, out=ws.by_atom(ws.xi, n), dim=0)
        if self.statistics:
            self.add_entropy(xi, logits)
            product = torch.mm(phi_c, xi.T)  # moments, then each individual's sums
            self.moments.add_(product[:F])
            if self.indicators:
                self.stats.per_individual[first:last] += product[F:]
            else:
                self.stats.per_individual[first:last] += self.individual_sums(xi, phi_c, sl, first, last)[1]
        return xi.T

    def finish(self) -> None:
        """The pass's moments into the counts, sums and second moments."""
        super().finish()
        if self.statistics:
            add_moments(self.stats, self.d.fmap, self.moments)


class _StudentTByAtom(_ByAtom):
    """Student-t atoms (``nam_core.components.student_t``) worked by atom.

    One product gives Delta = 2 (h - e) directly (coefficients -2 W, plus 2 h on the constant
    row); q = Delta / nu, E w = (2 a / nu) / (1 + q), u = log1p(q), logits h + kappa - a u plus
    the individual terms. The statistics: w-weighted moments by one product, plain counts and
    each individual's sums, and S_l = c_l N_l - sum_n xi u with c = psi(a) - log(nu / 2).
    """

    def __init__(self, d, ws, stats, coef, mix, scales, statistics):
        super().__init__(d, ws, stats, mix, statistics)
        F, L = self.F, mix.shape[1]
        column = {k: scales[k][:, None] for k in ("h", "kappa", "a", "nu")}
        ws.coef[:F] = -2.0 * coef["W"]
        ws.coef[F - 1] += 2.0 * scales["h"]
        self.inv_nu = 1.0 / column["nu"]
        self.two_a_over_nu = 2.0 * column["a"] / column["nu"]
        self.minus_a = -column["a"]
        self.h_kappa = column["h"] + column["kappa"]
        self.log_scale_offset = (scales["digamma_a"] - torch.log(0.5 * scales["nu"])).to(torch.float64)
        f64 = dict(dtype=torch.float64, device=d.device)
        self.moments = torch.zeros((F, L), **f64)
        self.counts, self.xi_u = torch.zeros(L, **f64), torch.zeros(L, **f64)

    def __call__(self, sl: slice, first: int, last: int) -> torch.Tensor:
        ws, F, n = self.ws, self.F, sl.stop - sl.start
        phi_c = self.features(sl, first, last)
        q = torch.mm(ws.coef[:F].T, phi_c[:F], out=ws.by_atom(ws.densities, n))
        q.clamp_(min=0.0).mul_(self.inv_nu)
        ew = torch.add(q, 1.0, out=ws.by_atom(ws.mix, n)).reciprocal_().mul_(self.two_a_over_nu)
        u = q.log1p_()
        logits = torch.mul(u, self.minus_a, out=ws.by_atom(ws.logits, n)).add_(self.h_kappa)
        self.add_individual_terms(logits, phi_c, sl, first, last)
        xi, _ = normalise_logits_(logits, out=ws.by_atom(ws.xi, n), dim=0)
        if self.statistics:
            self.add_entropy(xi, logits)
            self.xi_u += u.mul_(xi).sum(1)
            self.moments.add_(torch.mm(phi_c[:F], ew.mul_(xi).T))
            counts, per_individual = self.individual_sums(xi, phi_c, sl, first, last)
            self.counts += counts
            self.stats.per_individual[first:last] += per_individual
        return xi.T

    def finish(self) -> None:
        """Moments, counts and S_l into the pass's statistics."""
        super().finish()
        if not self.statistics:
            return
        stats = self.stats
        weighted_counts, sums, R = self.d.fmap.unpack(self.moments)
        stats.weighted_counts += weighted_counts
        stats.sums += sums
        stats.second_moments += R
        stats.counts += self.counts
        stats.log_scale_sums += self.log_scale_offset * self.counts - self.xi_u
