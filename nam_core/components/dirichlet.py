"""Finite symmetric Dirichlet weights with Dirichlet factors (fiSAN, ``docs/model.md`` 9b).

omega_{.k} ~ Dir_L(b, ..., b) for every column k; q(omega_{.k}) = Dir(b*_{.k}). Components run
along the first axis, columns (the K individual clusters) along the second. All float64.
"""

from __future__ import annotations

import torch

__all__ = [
    "expected_log_weights",
    "update_weights",
    "dirichlet_elbo",
    "expected_weights",
    "as_sticks",
    "DirichletWeights",
]


def expected_log_weights(b_star: torch.Tensor) -> torch.Tensor:
    """E log omega_lk = psi(b*_lk) - psi(sum_l' b*_l'k), shape (L, K)."""
    return torch.special.digamma(b_star) - torch.special.digamma(b_star.sum(0, keepdim=True))


def update_weights(counts: torch.Tensor, b: float) -> torch.Tensor:
    """U5': b*_lk = b + Q_lk for all l = 1..L (``counts`` is Q, (L, K))."""
    return b + counts


def dirichlet_elbo(b_star: torch.Tensor, b: float) -> torch.Tensor:
    """E log p(omega) - E log q(omega) summed over the K columns (replaces T6+H4+T8+H6), a scalar.

    sum_k [lnG(L b) - L lnG(b) + (b - 1) sum_l E log w_lk]
    - sum_k [lnG(sum_l b*_lk) - sum_l lnG(b*_lk) + sum_l (b*_lk - 1) E log w_lk].
    """
    L = b_star.shape[0]
    elog = expected_log_weights(b_star)
    b_t = torch.as_tensor(float(b), dtype=b_star.dtype, device=b_star.device)
    log_p = torch.lgamma(L * b_t) - L * torch.lgamma(b_t) + (b - 1.0) * elog.sum(0)
    log_q = (
        torch.lgamma(b_star.sum(0)) - torch.lgamma(b_star).sum(0) + ((b_star - 1.0) * elog).sum(0)
    )
    return (log_p - log_q).sum()


def expected_weights(b_star: torch.Tensor) -> torch.Tensor:
    """E[omega_lk] = b*_lk / sum_l' b*_l'k, shape (L, K)."""
    return b_star / b_star.sum(0, keepdim=True)


def as_sticks(b_star: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The equivalent independent Beta sticks of Dir(b*): a_l = b*_l, b_l = sum_{t>l} b*_t.

    Returns (a, b) with L - 1 rows (the last stick is 1, as under "tsb"), so that the
    stick-breaking helpers of :mod:`nam_core.components.sticks` give the same E log omega and E[omega].
    """
    tail = torch.flip(torch.cumsum(torch.flip(b_star, [0]), 0), [0]) - b_star
    return b_star[:-1], tail[:-1]


class DirichletWeights:
    """Finite symmetric Dirichlet weights as a component (fiSAN's omega, ``docs/model.md`` 9b).

    The same interface as :class:`~nam_core.components.sticks.StickWeights`: its update (U5')
    and one named ELBO term ``{name}`` (which replaces T6+H4+T8+H6); there is no concentration
    to update.

    Parameters
    ----------
    name : str
    n_components : int
    b : float
        Symmetric concentration of every column.
    """

    def __init__(self, name: str, n_components: int, b: float):
        self.name, self.n_components, self.b = name, n_components, float(b)
        self.b_star: torch.Tensor | None = None

    def update(self, counts: torch.Tensor) -> None:
        """U5': b* = b + counts, counts (L, K)."""
        self.b_star = update_weights(counts, self.b)

    def update_concentration(self) -> None:
        """No concentration: b is fixed."""

    def expected_log(self) -> torch.Tensor:
        """E log omega, shape (L, K)."""
        return expected_log_weights(self.b_star)

    def expected(self) -> torch.Tensor:
        """E[omega], shape (L, K)."""
        return expected_weights(self.b_star)

    def sticks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The equivalent Beta sticks (:func:`as_sticks`)."""
        return as_sticks(self.b_star)

    def elbo_terms(self) -> dict[str, torch.Tensor]:
        """E log p(omega) - E log q(omega)."""
        return {self.name: dirichlet_elbo(self.b_star, self.b)}

    def state(self) -> dict:
        """q(omega)'s parameters."""
        return {"b_star": self.b_star}

    def load_state(self, state: dict) -> None:
        """Return to :meth:`state`."""
        self.b_star = state["b_star"]
