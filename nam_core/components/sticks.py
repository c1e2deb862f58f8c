"""Stick-breaking weights with Beta factors, and Gamma concentrations.

``docs/model.md``: (E1)-(E3) expectations, U5-U8 updates, T5-T8 and H3-H6 ELBO terms, and the
two truncation conventions ("tsb": last stick fixed at 1; "open": every stick random). Sticks
run along the first axis; any trailing axes are independent sequences (the K columns of u).
All float64.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..errors import NAMInputError

__all__ = [
    "TRUNCATIONS",
    "Concentration",
    "n_random_sticks",
    "expected_log_sticks",
    "expected_log_weights",
    "update_sticks",
    "stick_elbo",
    "expected_weights",
    "StickWeights",
]

TRUNCATIONS = ("tsb", "open")


def n_random_sticks(n_components: int, truncation: str) -> int:
    """Number of Beta-distributed sticks: n - 1 under "tsb", n under "open"."""
    if truncation not in TRUNCATIONS:
        raise NAMInputError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    return n_components - 1 if truncation == "tsb" else n_components


def _digamma_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """g(a, b) = psi(a) - psi(a + b)."""
    return torch.special.digamma(a) - torch.special.digamma(a + b)


def expected_log_sticks(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E log v, E log(1 - v)) for Beta(a, b) sticks (E1)."""
    return _digamma_diff(a, b), _digamma_diff(b, a)


def expected_log_weights(a: torch.Tensor, b: torch.Tensor, n_components: int) -> torch.Tensor:
    """E log of stick-breaking weights (E2), shape (n_components, ...).

    ``a``, ``b`` have n_random rows (n_components - 1 under "tsb", whose last stick is 1 and
    contributes E log v = 0; n_components under "open").
    """
    elog_v, elog_1mv = expected_log_sticks(a, b)
    zero_row = torch.zeros((1, *a.shape[1:]), dtype=a.dtype, device=a.device)
    if a.shape[0] < n_components:  # tsb: append the fixed last stick (E log v = 0)
        elog_v = torch.cat([elog_v, zero_row])
    prefix = torch.cumsum(elog_1mv, 0)
    shifted = torch.cat([zero_row, prefix])[:n_components]
    return elog_v + shifted


def update_sticks(
    counts: torch.Tensor, n_random: int, concentration_mean: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """U5/U6: a = 1 + n_l, b = E[conc] + sum_{t > l} n_t for the random sticks.

    Parameters
    ----------
    counts : Tensor (n_components, ...)
        Expected counts per component (Q or J_k).
    n_random : int
    concentration_mean : float or 0-d Tensor

    Returns
    -------
    a, b : Tensor (n_random, ...)
    """
    tail = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0]) - counts  # sum_{t>l}
    a = 1.0 + counts[:n_random]
    b = concentration_mean + tail[:n_random]
    return a, b


def stick_elbo(
    a: torch.Tensor, b: torch.Tensor, elog_conc: torch.Tensor | float, e_conc: torch.Tensor | float
) -> torch.Tensor:
    """E log p(v | conc) - E log q(v) over all random sticks (T5+H3 or T6+H4), a scalar."""
    elog_v, elog_1mv = expected_log_sticks(a, b)
    log_p = elog_conc + (e_conc - 1.0) * elog_1mv
    log_beta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    neg_log_q = log_beta - (a - 1.0) * elog_v - (b - 1.0) * elog_1mv
    return (log_p + neg_log_q).sum()


def expected_weights(a: torch.Tensor, b: torch.Tensor, n_components: int) -> torch.Tensor:
    """E[w] of stick-breaking weights, shape (n_components, ...), exact under q.

    Under "open" the weights do not sum to one (the leftover mass belongs to unused
    components); callers renormalise for display.
    """
    ev = a / (a + b)
    if ev.shape[0] < n_components:
        ev = torch.cat([ev, torch.ones((1, *ev.shape[1:]), dtype=ev.dtype, device=ev.device)])
    remaining = torch.cumprod(1.0 - ev, 0)
    shifted = torch.cat([torch.ones_like(remaining[:1]), remaining])[:n_components]
    return ev * shifted


@dataclasses.dataclass
class Concentration:
    """A stick-breaking concentration: fixed, or Gamma(shape, rate) with a Gamma factor (U7/U8).

    Attributes
    ----------
    prior : tuple (shape, rate)
        Hyperprior (s1, s2) or (r1, r2); used only when random.
    fixed : float or None
        The fixed value, or None when the concentration is random.
    shape, rate : float
        Parameters of q (equal to the prior before the first update).
    """

    prior: tuple[float, float]
    fixed: float | None = None
    shape: float = dataclasses.field(init=False)
    rate: float = dataclasses.field(init=False)

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        """Set q to the prior (start of a fit)."""
        self.shape, self.rate = float(self.prior[0]), float(self.prior[1])

    @property
    def mean(self) -> float:
        """E[conc]."""
        return self.fixed if self.fixed is not None else self.shape / self.rate

    @property
    def expected_log(self) -> float:
        """E log conc (E3)."""
        if self.fixed is not None:
            return math.log(self.fixed)
        return float(torch.special.digamma(torch.tensor(self.shape, dtype=torch.float64))) - math.log(
            self.rate
        )

    def update(self, b_sticks: torch.Tensor, a_sticks: torch.Tensor) -> None:
        """U7/U8: shape = s1 + n_sticks, rate = s2 - sum E log(1 - v); no-op when fixed."""
        if self.fixed is not None:
            return
        _, elog_1mv = expected_log_sticks(a_sticks, b_sticks)
        self.shape = float(self.prior[0]) + a_sticks.numel()
        self.rate = float(self.prior[1]) - float(elog_1mv.sum())

    def elbo(self) -> float:
        """E log p(conc) - E log q(conc) (T7+H5 or T8+H6); 0 when fixed."""
        if self.fixed is not None:
            return 0.0
        s1, s2 = float(self.prior[0]), float(self.prior[1])
        elog, mean = self.expected_log, self.mean
        log_p = s1 * math.log(s2) - math.lgamma(s1) + (s1 - 1.0) * elog - s2 * mean
        log_q = (
            self.shape * math.log(self.rate)
            - math.lgamma(self.shape)
            + (self.shape - 1.0) * elog
            - self.shape
        )
        return log_p - log_q

    def validate(self, name: str) -> None:
        """Raise NAMInputError for a non-positive fixed value or hyperprior."""
        if self.fixed is not None and not (math.isfinite(self.fixed) and self.fixed > 0):
            raise NAMInputError(f"{name} must be a positive number or None, got {self.fixed}")
        if len(self.prior) != 2 or not all(math.isfinite(v) and v > 0 for v in self.prior):
            raise NAMInputError(f"the Gamma hyperprior of {name} must be two positive numbers, got {self.prior}")


class StickWeights:
    """Stick-breaking weights as a component: Beta sticks along axis 0 and their concentration.

    Columns (trailing axes) are independent sequences sharing one concentration: the K columns
    of u (``weights_omega``) or the single sequence v (``weights_pi``). Owns its update (U5 or
    U6), the concentration's update (U7 or U8) and two named ELBO terms: ``{name}`` (T6+H4 or
    T5+H3) and ``{name}_concentration`` (T8+H6 or T7+H5).

    Parameters
    ----------
    name : str
    n_components : int
    truncation : {"tsb", "open"}
    concentration : Concentration
    """

    def __init__(self, name: str, n_components: int, truncation: str, concentration: Concentration):
        self.name = name
        self.n_components = n_components
        self.n_random = n_random_sticks(n_components, truncation)
        self.concentration = concentration
        self.a: torch.Tensor | None = None
        self.b: torch.Tensor | None = None

    def update(self, counts: torch.Tensor) -> None:
        """Beta factors from expected counts (n_components, ...)."""
        self.a, self.b = update_sticks(counts, self.n_random, self.concentration.mean)

    def update_concentration(self) -> None:
        """q(concentration) given the sticks (no-op when it is fixed)."""
        self.concentration.update(self.b, self.a)

    def expected_log(self) -> torch.Tensor:
        """E log w, shape (n_components, ...) (E2)."""
        return expected_log_weights(self.a, self.b, self.n_components)

    def expected(self) -> torch.Tensor:
        """E[w], shape (n_components, ...)."""
        return expected_weights(self.a, self.b, self.n_components)

    def sticks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Beta parameters (a, b), each (n_random, ...)."""
        return self.a, self.b

    def elbo_terms(self) -> dict[str, float | torch.Tensor]:
        """The sticks' and the concentration's ELBO terms."""
        conc = self.concentration
        return {
            self.name: stick_elbo(self.a, self.b, conc.expected_log, conc.mean),
            f"{self.name}_concentration": conc.elbo(),
        }

    def state(self) -> dict:
        """Sticks and q(concentration)."""
        return {"a": self.a, "b": self.b, "shape": self.concentration.shape,
                "rate": self.concentration.rate}

    def load_state(self, state: dict) -> None:
        """Return to :meth:`state`."""
        self.a, self.b = state["a"], state["b"]
        self.concentration.shape, self.concentration.rate = float(state["shape"]), float(state["rate"])
