"""Normal-Wishart atoms: prior, conjugate update, expectations and ELBO terms.

Equations are those of ``docs/model.md``: (E4)-(E6) for expectations, U3/U4 for the update,
T9/T10 and H7/H8 for the ELBO. Every function works on a batch of C components at once and in
float64; ``d`` is the dimension of the layer.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..errors import NAMInputError

__all__ = [
    "NWPrior",
    "NWPosterior",
    "NWExpectations",
    "default_prior",
    "make_prior",
    "update",
    "expectations",
    "expected_log_density",
    "expected_log_likelihood_from_moments",
    "elbo_terms",
    "NWAtoms",
    "merge_gains",
    "log_wishart_norm",
]

LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass
class NWPrior:
    """Normal-Wishart prior NW(mu0, lam0, nu0, Psi0), with Psi0 given by its inverse.

    Attributes
    ----------
    mean : Tensor (d,)
        mu0 (in the engine's centred frame).
    mean_precision : float
        lam0 > 0.
    dof : float
        nu0 > d - 1.
    scale_inv : Tensor (d, d)
        Psi0^{-1}, symmetric positive definite (the Wishart scale is Psi0, E[Lambda] = nu0 Psi0).
    """

    mean: torch.Tensor
    mean_precision: float
    dof: float
    scale_inv: torch.Tensor

    @property
    def dim(self) -> int:
        """Dimension d of the layer."""
        return int(self.mean.shape[0])

    def shifted(self, shift: torch.Tensor) -> NWPrior:
        """The same prior with its mean moved by ``-shift`` (for data centred by ``shift``)."""
        return dataclasses.replace(self, mean=self.mean - shift)


@dataclasses.dataclass
class NWPosterior:
    """Variational NW factors of C components: NW(m_c, t_c, c_c, D_c), D stored as D^{-1}.

    Attributes
    ----------
    mean : Tensor (C, d)
    mean_precision : Tensor (C,)
        t.
    dof : Tensor (C,)
        c.
    scale_inv : Tensor (C, d, d)
        D^{-1}.
    """

    mean: torch.Tensor
    mean_precision: torch.Tensor
    dof: torch.Tensor
    scale_inv: torch.Tensor


@dataclasses.dataclass
class NWExpectations:
    """Quantities derived from an :class:`NWPosterior` and reused within a sweep.

    Attributes
    ----------
    logdet_precision : Tensor (C,)
        E log|Lambda| (E4).
    scale : Tensor (C, d, d)
        D.
    logdet_scale : Tensor (C,)
        log|D|.
    precision_chol : Tensor (C, d, d)
        Lower Cholesky factor G of c D = E[Lambda].
    """

    logdet_precision: torch.Tensor
    scale: torch.Tensor
    logdet_scale: torch.Tensor
    precision_chol: torch.Tensor

    @property
    def expected_precision(self) -> torch.Tensor:
        """E[Lambda] = c D, shape (C, d, d)."""
        return self.precision_chol @ self.precision_chol.transpose(-1, -2)


def make_prior(
    mean, mean_precision: float, dof: float, scale_inv, *, layer: str, device, dim: int
) -> NWPrior:
    """Validate and build an :class:`NWPrior` in float64 on ``device``.

    Raises
    ------
    NAMInputError
        If lam0 <= 0, nu0 <= d - 1, or Psi0^{-1} is not symmetric positive definite.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float64, device=device).reshape(-1)
    scale_inv_t = torch.as_tensor(scale_inv, dtype=torch.float64, device=device)
    if mean_t.shape != (dim,):
        raise NAMInputError(f"prior mean of layer {layer} has {mean_t.numel()} values, expected {dim}")
    if scale_inv_t.shape != (dim, dim):
        raise NAMInputError(
            f"prior scale of layer {layer} has shape {tuple(scale_inv_t.shape)}, expected ({dim}, {dim})"
        )
    if not mean_precision > 0:
        raise NAMInputError(f"prior mean precision of layer {layer} must be > 0, got {mean_precision}")
    if not dof > dim - 1:
        raise NAMInputError(
            f"prior degrees of freedom of layer {layer} must exceed d - 1 = {dim - 1}, got {dof}"
        )
    if not torch.isfinite(scale_inv_t).all() or not torch.isfinite(mean_t).all():
        raise NAMInputError(f"prior of layer {layer} has non-finite values")
    if not torch.allclose(scale_inv_t, scale_inv_t.T, rtol=1e-10, atol=1e-12):
        raise NAMInputError(f"prior scale matrix (Psi0^-1) of layer {layer} is not symmetric")
    _, info = torch.linalg.cholesky_ex(scale_inv_t)
    if int(info) != 0:
        raise NAMInputError(
            f"prior scale matrix (Psi0^-1) of layer {layer} is not positive definite; with the "
            "default prior this means the data of that layer have a singular covariance "
            "(a constant or duplicated column)"
        )
    return NWPrior(mean_t, float(mean_precision), float(dof), scale_inv_t)


def default_prior(Z: torch.Tensor, *, layer: str) -> NWPrior:
    """scikit-learn's defaults for data Z (n, d): mu0 = mean, lam0 = 1, nu0 = d, Psi0^{-1} = cov.

    With a single row the covariance is undefined and the identity is used instead.
    """
    Z = Z.to(torch.float64)
    n, d = Z.shape
    mean = Z.mean(0)
    cov = torch.cov(Z.T).reshape(d, d) if n > 1 else torch.eye(d, dtype=Z.dtype, device=Z.device)
    return make_prior(mean, 1.0, float(d), cov, layer=layer, device=Z.device, dim=d)


def update(
    prior: NWPrior, counts: torch.Tensor, sums: torch.Tensor, second_moments: torch.Tensor
) -> NWPosterior:
    """Conjugate update U3/U4 from weighted statistics.

    Parameters
    ----------
    prior : NWPrior
    counts : Tensor (C,)
        N_c = sum_n w_nc.
    sums : Tensor (C, d)
        sum_n w_nc z_n.
    second_moments : Tensor (C, d, d)
        R_c = sum_n w_nc z_n z_n^T (about the origin of the engine's centred frame).

    Returns
    -------
    NWPosterior
    """
    lam0, nu0, mu0 = prior.mean_precision, prior.dof, prior.mean
    t = lam0 + counts
    c = nu0 + counts
    m = (lam0 * mu0 + sums) / t[:, None]
    occupied = counts > 1e-300
    safe = torch.where(occupied, counts, torch.ones_like(counts))
    zbar = sums / safe[:, None]
    scatter = second_moments - safe[:, None, None] * zbar[:, :, None] * zbar[:, None, :]
    diff = zbar - mu0
    shrink = (lam0 * counts / (lam0 + counts))[:, None, None] * diff[:, :, None] * diff[:, None, :]
    extra = torch.where(occupied[:, None, None], scatter + shrink, torch.zeros_like(scatter))
    scale_inv = prior.scale_inv + extra
    scale_inv = 0.5 * (scale_inv + scale_inv.transpose(-1, -2))
    return NWPosterior(m, t, c, scale_inv)


def expectations(post: NWPosterior, *, layer: str = "") -> NWExpectations:
    """E log|Lambda|, D, log|D| and chol(c D) for every component (E4).

    Raises
    ------
    FloatingPointError
        If some D^{-1} is not positive definite (a bug upstream, never patched with jitter).
    """
    d = post.mean.shape[1]
    chol_inv, info = torch.linalg.cholesky_ex(post.scale_inv)
    if bool((info != 0).any()):
        bad = int(torch.nonzero(info)[0, 0])
        raise FloatingPointError(
            f"D^-1 of component {bad} of layer {layer} is not positive definite "
            f"(its weighted count is {float(post.dof[bad]) - d:.6g} above the prior's)"
        )
    logdet_scale = -2.0 * torch.log(torch.diagonal(chol_inv, dim1=-2, dim2=-1)).sum(-1)
    scale = torch.cholesky_inverse(chol_inv)
    scale = 0.5 * (scale + scale.transpose(-1, -2))
    i = torch.arange(1, d + 1, dtype=post.dof.dtype, device=post.dof.device)
    digammas = torch.special.digamma((post.dof[:, None] + 1.0 - i) / 2.0).sum(-1)
    logdet_precision = digammas + d * math.log(2.0) + logdet_scale
    precision_chol = torch.linalg.cholesky(post.dof[:, None, None] * scale)
    return NWExpectations(logdet_precision, scale, logdet_scale, precision_chol)


def expected_log_density(Z: torch.Tensor, post: NWPosterior, ex: NWExpectations) -> torch.Tensor:
    """E log N(z_n | mu_c, Lambda_c^{-1}) for every row and component (E6), shape (n, C).

    Direct evaluation ||G_c^T (z_n - m_c)||^2; meant for small inputs (the individual layer).
    """
    d = Z.shape[1]
    diff = Z[:, None, :] - post.mean[None, :, :]  # (n, C, d)
    proj = torch.einsum("ncd,cde->nce", diff, ex.precision_chol)
    quad = (proj**2).sum(-1)
    const = ex.logdet_precision - d * LOG_2PI - d / post.mean_precision
    return 0.5 * (const[None, :] - quad)


def expected_log_likelihood_from_moments(
    post: NWPosterior,
    ex: NWExpectations,
    counts: torch.Tensor,
    sums: torch.Tensor,
    second_moments: torch.Tensor,
    reduce: bool = True,
) -> torch.Tensor:
    """sum_n sum_c w_nc E log N(z_n | theta_c) from weighted moments (T1/T2), a scalar.

    ``reduce=False`` returns the value of each component (C,).

    Uses sum_n w_nc (z_n - m_c)(z_n - m_c)^T = R_c - s_c m_c^T - m_c s_c^T + N_c m_c m_c^T.
    """
    d = post.mean.shape[1]
    m = post.mean
    outer = sums[:, :, None] * m[:, None, :]
    centred = second_moments - outer - outer.transpose(-1, -2) + counts[:, None, None] * (
        m[:, :, None] * m[:, None, :]
    )
    trace = (ex.scale * centred).sum((-1, -2))
    per_component = 0.5 * counts * (ex.logdet_precision - d * LOG_2PI - d / post.mean_precision)
    per_component = per_component - 0.5 * post.dof * trace
    return per_component.sum() if reduce else per_component


def log_wishart_norm(scale_logdet: torch.Tensor | float, dof, d: int):
    """Log-normaliser log B(W, nu) of the Wishart density, given log|W| (scale W) and nu."""
    dof_t = torch.as_tensor(dof, dtype=torch.float64)
    i = torch.arange(1, d + 1, dtype=torch.float64, device=dof_t.device)
    lgammas = torch.lgamma((dof_t.reshape(-1, 1) + 1.0 - i) / 2.0).sum(-1).reshape(dof_t.shape)
    return (
        -0.5 * dof_t * scale_logdet
        - 0.5 * dof_t * d * math.log(2.0)
        - d * (d - 1) / 4.0 * math.log(math.pi)
        - lgammas
    )


def elbo_terms(prior: NWPrior, post: NWPosterior, ex: NWExpectations, reduce: bool = True) -> torch.Tensor:
    """E log p(theta) - E log q(theta) summed over components (T9+H7 or T10+H8), a scalar.

    ``reduce=False`` returns the value of each component (C,).
    """
    d = prior.dim
    lam0, nu0 = prior.mean_precision, prior.dof
    t, c = post.mean_precision, post.dof
    elogdet = ex.logdet_precision
    diff = post.mean - prior.mean
    maha = torch.einsum("ci,cij,cj->c", diff, ex.scale, diff)
    prior_logdet_scale = -torch.linalg.slogdet(prior.scale_inv)[1]
    log_b_prior = log_wishart_norm(prior_logdet_scale, torch.tensor(nu0, device=t.device), d)
    trace = (prior.scale_inv[None] * ex.scale).sum((-1, -2))
    log_p = (
        0.5 * d * math.log(lam0 / (2.0 * math.pi))
        + 0.5 * elogdet
        - 0.5 * lam0 * (d / t + c * maha)
        + log_b_prior
        + 0.5 * (nu0 - d - 1.0) * elogdet
        - 0.5 * c * trace
    )
    log_b_post = log_wishart_norm(ex.logdet_scale, c, d)
    log_q = (
        0.5 * d * torch.log(t / (2.0 * math.pi))
        + 0.5 * elogdet
        - 0.5 * d
        + log_b_post
        + 0.5 * (c - d - 1.0) * elogdet
        - 0.5 * c * d
    )
    return (log_p - log_q).sum() if reduce else log_p - log_q


def merge_gains(prior: NWPrior, counts: torch.Tensor, sums: torch.Tensor, second_moments: torch.Tensor,
                pairs: torch.Tensor) -> torch.Tensor:
    """Change of the atom terms (T2 + T10+H8) if the two atoms of each pair shared one factor.

    Each atom, and each merged pair, is refitted to its statistics (which add up under a
    merge, as bnpy's merge gaps): a cheap ranking of merge candidates, no pass over the data.

    Parameters
    ----------
    counts, sums, second_moments : Tensors (C,), (C, d), (C, d, d)
    pairs : Tensor (P, 2) of atom indices

    Returns
    -------
    Tensor (P,)
    """

    def fitted_terms(n, s, R):
        post = update(prior, n, s, R)
        ex = expectations(post)
        return (expected_log_likelihood_from_moments(post, ex, n, s, R, reduce=False)
                + elbo_terms(prior, post, ex, reduce=False))

    single = fitted_terms(counts, sums, second_moments)
    i, j = pairs[:, 0], pairs[:, 1]
    merged = fitted_terms(counts[i] + counts[j], sums[i] + sums[j], second_moments[i] + second_moments[j])
    return merged - single[i] - single[j]


class NWAtoms:
    """Normal-Wishart atoms of one layer, as a component: q(theta_c) for C atoms.

    Owns its factor (``post``), the expectations derived from it (``ex``), its update (U3 or U4
    of ``docs/model.md``) and two named ELBO terms: ``{name}_loglik`` (T2 or T1, from weighted
    moments) and ``{name}`` (T10+H8 or T9+H7).

    Parameters
    ----------
    name : str
        Term prefix, e.g. ``"atoms_y"``.
    prior : NWPrior
    layer : {"y", "x"}
        Named in error messages.
    """

    def __init__(self, name: str, prior: NWPrior, layer: str):
        self.name, self.prior, self.layer = name, prior, layer
        self.post: NWPosterior | None = None
        self.ex: NWExpectations | None = None

    def set_posterior(self, post: NWPosterior) -> None:
        """Replace q(theta) and recompute its expectations."""
        self.post, self.ex = post, expectations(post, layer=self.layer)

    def update(self, counts: torch.Tensor, sums: torch.Tensor, second_moments: torch.Tensor) -> None:
        """The coordinate update from weighted counts (C,), sums (C, d), second moments (C, d, d)."""
        self.set_posterior(update(self.prior, counts, sums, second_moments))

    def update_from_stats(self, stats) -> None:
        """U3 from a cell pass's :class:`~nam_core.components.cells.CellStats`."""
        self.update(stats.counts, stats.sums, stats.second_moments)

    def update_dof(self, stats) -> None:
        """Gaussian atoms have no degrees of freedom to update."""

    def pass_constants(self, dtype: torch.dtype, initial: bool = False) -> None:
        """Gaussian atoms need no per-cell scales in the cell pass."""
        return None

    def loglik_from_stats(self, stats) -> torch.Tensor:
        """T2 from a cell pass's statistics."""
        return self.loglik(stats.counts, stats.sums, stats.second_moments)

    def extra_terms(self, stats) -> dict[str, torch.Tensor]:
        """ELBO terms beyond T2 and the prior term (none for Gaussian atoms)."""
        return {}

    def expected_log_density(self, Z: torch.Tensor) -> torch.Tensor:
        """E log N(z_n | theta_c), shape (n, C) (E6)."""
        return expected_log_density(Z, self.post, self.ex)

    def loglik(self, counts: torch.Tensor, sums: torch.Tensor, second_moments: torch.Tensor) -> torch.Tensor:
        """The expected log-likelihood term from weighted moments (T2), a scalar."""
        return expected_log_likelihood_from_moments(self.post, self.ex, counts, sums, second_moments)

    def prior_term(self) -> torch.Tensor:
        """E log p(theta) - E log q(theta) over the atoms (T10+H8 or T9+H7), a scalar."""
        return elbo_terms(self.prior, self.post, self.ex)

    def state(self) -> dict[str, torch.Tensor]:
        """The factor's tensors (updates replace them, so the dict stays valid)."""
        if self.post is None:
            return {}
        return {f.name: getattr(self.post, f.name) for f in dataclasses.fields(self.post)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Return to :meth:`state`'s factor."""
        if state:
            self.set_posterior(NWPosterior(**state))
