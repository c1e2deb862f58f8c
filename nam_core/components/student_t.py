"""Student-t atoms by the Gamma scale-mixture augmentation (``docs/model.md`` section 11).

Cell n on atom l: y_n | w_nl, M_n = l ~ N(mu_l, (w_nl Lambda_l)^{-1}), w_nl ~ Gamma(nu_l/2, nu_l/2)
(rate), so y_n | M_n = l is a multivariate Student-t with nu_l degrees of freedom
(Svensen & Bishop 2005; Archambeau & Verleysen 2007). q(w_nl | M_n = l) = Gamma(a_l, b_nl) is
optimal at a_l = (nu_l + p)/2, b_nl = (nu_l + Delta_nl)/2 with
Delta_nl = E[(y_n - mu_l)^T Lambda_l (y_n - mu_l)] = p/t_l + c_l (y_n - m_l)^T D_l (y_n - m_l).

At that optimum the cell's expected log density under atom l, entropy of q(w) included, is

    g_nl = h_l + kappa_l - a_l log1p(Delta_nl / nu_l),
    h_l = (E log|Lambda_l| - p log 2 pi)/2,
    kappa_l = lnG(a_l) - lnG(nu_l/2) - (p/2) log(nu_l/2),

with E[w] = a_l / b_nl and E log w = psi(a_l) - log b_nl. The atoms see w-weighted statistics
(N~_l = sum xi E w, s~_l, R~_l) for their mean and scale and the plain counts N_l for their
Wishart degrees of freedom. Between cell passes q(w) is held, so the ELBO of the atom layer is
linear in (N_l, N~_l, s~_l, R~_l, S_l = sum xi E log w) and exact after any global update.
nu_l is updated by maximising its ELBO term, which is concave: the root of
log(nu/2) - psi(nu/2) = mean(E w - E log w) - 1, found by bisection on log nu.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from . import normal_wishart as nw
from .cells import chunk_log_densities, normalise_logits_
from .normal_wishart import LOG_2PI, NWAtoms

__all__ = ["StudentTAtoms", "DOF_BOUNDS", "optimal_dof", "dof_term", "scale_entropy", "chunk_scale_terms",
           "log_density_offsets", "chunk_student_t", "accumulate_scaled", "start_scale_stats",
           "finish_scale_stats"]

#: the degrees of freedom are kept within these bounds (1e6: indistinguishable from Gaussian)
DOF_BOUNDS = (0.1, 1e6)


def _lgamma(x: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(x)


def log_density_offsets(post: nw.NWPosterior, ex: nw.NWExpectations, dof: torch.Tensor) -> dict:
    """Per-atom constants of g_nl, float64: h (L,), kappa (L,), a (L,) and nu (L,)."""
    p = post.mean.shape[1]
    h = 0.5 * (ex.logdet_precision - p * LOG_2PI)
    a = 0.5 * (dof + p)
    kappa = _lgamma(a) - _lgamma(0.5 * dof) - 0.5 * p * torch.log(0.5 * dof)
    return {"h": h, "kappa": kappa, "a": a, "nu": dof}


def chunk_scale_terms(e: torch.Tensor, off: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From Gaussian expected log densities e (n, L) to (g, E w, E log w), each (n, L).

    ``e`` must be computed with the constant (E log|Lambda| - p log 2 pi - p/t)/2, so that
    Delta = 2 (h - e). ``off`` holds :func:`log_density_offsets` cast to e's dtype.
    """
    delta = (off["h"] - e).mul_(2.0).clamp_(min=0.0)
    u = torch.log1p(delta / off["nu"])
    g = off["h"] + off["kappa"] - off["a"] * u
    ew = off["a"] * 2.0 / (off["nu"] + delta)
    elogw = off["digamma_a"] - torch.log(0.5 * off["nu"]) - u
    return g, ew, elogw


def dof_term(dof: torch.Tensor, counts: torch.Tensor, weighted_counts: torch.Tensor,
             log_scale_sums: torch.Tensor) -> torch.Tensor:
    """sum_n xi_nl E log Gamma(w_nl | nu_l/2, nu_l/2) per atom (L,), float64.

    = N_l [(nu/2) log(nu/2) - lnG(nu/2)] + (nu/2 - 1) S_l - (nu/2) N~_l.
    """
    half = 0.5 * dof
    return counts * (half * torch.log(half) - _lgamma(half)) + (half - 1.0) * log_scale_sums - half * weighted_counts


def scale_entropy(shape: torch.Tensor, counts: torch.Tensor, log_scale_sums: torch.Tensor) -> torch.Tensor:
    """-sum_n xi_nl E log q(w_nl) per atom (L,), for q(w | M = l) = Gamma(shape_l, b_nl).

    With E log w = psi(a) - log b, each cell gives lnG(a) - a psi(a) + a + E log w.
    """
    a = shape
    return counts * (_lgamma(a) - a * torch.special.digamma(a) + a) + log_scale_sums


def optimal_dof(counts: torch.Tensor, weighted_counts: torch.Tensor, log_scale_sums: torch.Tensor,
                current: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """The nu_l maximising :func:`dof_term` within :data:`DOF_BOUNDS`; atoms without cells keep ``current``.

    The term is concave in nu; its stationary point solves log(nu/2) - psi(nu/2) = c_l with
    c_l = (N~_l - S_l)/N_l - 1 >= 0 (Jensen), and the left side decreases in nu.
    """
    occupied = counts > 1e-8
    safe = torch.where(occupied, counts, torch.ones_like(counts))
    c = (weighted_counts - log_scale_sums) / safe - 1.0
    lo = torch.full_like(c, math.log(DOF_BOUNDS[0]))
    hi = torch.full_like(c, math.log(DOF_BOUNDS[1]))

    def slope(log_nu):  # derivative of the term / (N/2): decreasing in nu
        half = 0.5 * torch.exp(log_nu)
        return torch.log(half) - torch.special.digamma(half) - c

    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        up = slope(mid) > 0  # still rising: the maximum lies above
        lo = torch.where(up, mid, lo)
        hi = torch.where(up, hi, mid)
    nu = torch.exp(0.5 * (lo + hi))
    return torch.where(occupied, nu, current)


def start_scale_stats(stats, scales: dict) -> None:
    """Zeroed N~ and S accumulators on a pass's :class:`~nam_core.components.cells.CellStats`."""
    zeros = torch.zeros_like(stats.counts)
    stats.weighted_counts, stats.log_scale_sums = zeros.clone(), zeros.clone()


def finish_scale_stats(stats, scales: dict) -> None:
    """The entropy of this pass's q(w), once the pass has summed S."""
    stats.scale_entropy = scale_entropy(scales["shape"], stats.counts, stats.log_scale_sums)


def chunk_student_t(Y_c, phi_c, coef, quad, mix, group_c, scales):
    """U1 with Student-t atoms for a chunk: xi, sum xi log xi, E w and E log w (n_c, L).

    The Gaussian expected log densities e give Delta = 2 (h - e) and the t log densities g
    (``nam_core.components.student_t``); logits g + mix[g(n)].
    """
    e = chunk_log_densities(Y_c, phi_c, coef, quad)
    g, ew, elogw = chunk_scale_terms(e, scales)
    logits = g.add_(torch.index_select(mix, 0, group_c))
    xi, _ = normalise_logits_(logits)
    return xi, torch.vdot(xi.reshape(-1), logits.reshape(-1)), ew, elogw


def accumulate_scaled(stats, fmap, phi_c, xi_c, ew_c, elogw_c, group_c, neg_entropy_c) -> None:
    """Add a chunk to ``stats`` for Student-t atoms: w-weighted moments, plain counts, S_l."""
    weighted = xi_c * ew_c
    moments = (phi_c @ weighted).to(torch.float64)
    weighted_counts, sums, R = fmap.unpack(moments)
    stats.weighted_counts += weighted_counts
    stats.sums += sums
    stats.second_moments += R
    stats.counts += xi_c.sum(0).to(torch.float64)
    stats.log_scale_sums += (xi_c * elogw_c).sum(0).to(torch.float64)
    per_individual = torch.zeros(stats.per_individual.shape, dtype=xi_c.dtype, device=xi_c.device)
    per_individual.index_add_(0, group_c, xi_c)
    stats.per_individual += per_individual.to(torch.float64)
    stats.neg_entropy += neg_entropy_c.to(torch.float64)


class StudentTAtoms(NWAtoms):
    """Student-t atoms as a component: Normal-Wishart factors, degrees of freedom, and q(w).

    Its ELBO terms: ``{name}_loglik`` (the w-augmented T2), ``{name}_scales`` (E log p(w | nu)
    - E log q(w)) and ``{name}`` (T10+H8, the Normal-Wishart prior term as for Gaussian atoms).

    Parameters
    ----------
    name, prior, layer
        As for :class:`~nam_core.components.normal_wishart.NWAtoms`.
    n_atoms : int
    dof : float or None
        Fixed degrees of freedom of every atom, or None to update each nu_l (starting at
        ``dof_init``).
    dof_init : float
    """

    def __init__(self, name: str, prior: nw.NWPrior, layer: str, n_atoms: int, dof: float | None = None,
                 dof_init: float = 10.0):
        super().__init__(name, prior, layer)
        self.fixed_dof = dof
        start = dof if dof is not None else dof_init
        self.dof = torch.full((n_atoms,), float(start), dtype=torch.float64, device=prior.mean.device)

    # ------------------------------------------------------------ the cell pass
    def pass_constants(self, dtype: torch.dtype, initial: bool = False) -> dict:
        """Per-atom constants of a cell pass (``cells.cell_pass``'s ``scales``).

        ``initial``: for a pass with given responsibilities before any atom exists, q(w) is
        the prior Gamma(nu/2, nu/2) (E w = 1).
        """
        if initial:
            half = 0.5 * self.dof
            return {"shape": half, "prior_elogw": (torch.special.digamma(half) - torch.log(half)).to(dtype)[None, :]}
        off = log_density_offsets(self.post, self.ex, self.dof)
        off["digamma_a"] = torch.special.digamma(off["a"])
        return {k: v.to(dtype) for k, v in off.items()} | {"shape": off["a"]}

    # ------------------------------------------------------------ updates
    def update_from_stats(self, stats) -> None:
        """q(theta): mean and scale from the w-weighted statistics, Wishart dof from N."""
        post = nw.update(self.prior, stats.weighted_counts, stats.sums, stats.second_moments)
        self.set_posterior(dataclasses.replace(post, dof=self.prior.dof + stats.counts))

    def update_dof(self, stats) -> None:
        """nu_l at the maximum of its ELBO term given q(w) (no-op when fixed)."""
        if self.fixed_dof is None:
            self.dof = optimal_dof(stats.counts, stats.weighted_counts, stats.log_scale_sums, self.dof)

    # ------------------------------------------------------------ ELBO
    def loglik_from_stats(self, stats) -> torch.Tensor:
        """sum_nl xi E_q(w) E_q(theta) log N(y_n | mu_l, (w Lambda_l)^{-1}), a scalar."""
        post, ex = self.post, self.ex
        d = post.mean.shape[1]
        m, Nw, s, R = post.mean, stats.weighted_counts, stats.sums, stats.second_moments
        outer = s[:, :, None] * m[:, None, :]
        centred = R - outer - outer.transpose(-1, -2) + Nw[:, None, None] * (m[:, :, None] * m[:, None, :])
        trace = (ex.scale * centred).sum((-1, -2))
        per_atom = (0.5 * stats.counts * (ex.logdet_precision - d * LOG_2PI) - 0.5 * d * Nw / post.mean_precision
                    + 0.5 * d * stats.log_scale_sums - 0.5 * post.dof * trace)
        return per_atom.sum()

    def extra_terms(self, stats) -> dict[str, torch.Tensor]:
        """``{name}_scales``: E log p(w | nu) - E log q(w), summed over cells and atoms."""
        return {f"{self.name}_scales": self.scales_term(stats)}

    def scales_term(self, stats) -> torch.Tensor:
        """E log p(w | nu) - E log q(w), summed over cells and atoms."""
        return (dof_term(self.dof, stats.counts, stats.weighted_counts, stats.log_scale_sums)
                + stats.scale_entropy).sum()

    def state(self) -> dict:
        """The NW factor and the degrees of freedom."""
        return super().state() | {"t_dof": self.dof}

    def load_state(self, state: dict) -> None:
        """Return to :meth:`state`."""
        state = dict(state)
        self.dof = state.pop("t_dof")
        super().load_state(state)
