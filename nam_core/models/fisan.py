"""fiSAN, the finite-infinite shared atoms nested model (``docs/model.md`` section 9b).

NAM's shared-atoms run with the cell-level sticks u and their concentration beta replaced by the
finite symmetric Dirichlet component omega_{.k} ~ Dir_L(b)
(:class:`~nam_core.components.dirichlet.DirichletWeights`): U5' instead of U5, no U7, and the
Dirichlet ELBO term ``weights_omega`` instead of T6+H4+T8+H6. ``use_x=True`` gives the "NAM-fiSAN" variant.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NAMInputError
from .nam import NAM
from .nested import NestedSpec

__all__ = ["FiSAN"]


class FiSAN(NAM):
    """fiSAN (D'Angelo & Denti 2024): DP over individual clusters, finite Dirichlet over L atoms.

    Parameters
    ----------
    K, L : int
        Truncation of individual clusters; number of shared cell atoms.
    b : float or None
        Symmetric Dirichlet concentration of every omega_{.k}; None: 1 / L (sanba's default).
    use_x : bool
        Add NAM's genotype layer (default False: fiSAN proper, fitted with ``fit(None, Y, group)``).
    **kwargs
        NAM's other parameters (``alpha``, ``s``, ``trunc_v``, ``n_init``, ``seed``, ...).

    Attributes
    ----------
    b_star_ : ndarray (L, K)
        Dirichlet parameters of q(omega), atoms and clusters in label order.
    Every NAM attribute; ``cell_weights_`` is E[omega] and ``a_u_``, ``b_u_`` hold the Beta sticks
    equivalent to q(omega) (``nam_core.components.dirichlet.as_sticks``).
    """

    _param_names = tuple(n for n in NAM._param_names if n not in ("beta", "r", "trunc_u")) + ("b",)

    def __init__(self, K: int = 20, L: int = 50, b: float | None = None, use_x: bool = False, **kwargs):
        super().__init__(K=K, L=L, use_x=use_x, beta=1.0, trunc_u="tsb", **kwargs)
        self.b = b

    def _dirichlet_b(self) -> float:
        return 1.0 / self.L if self.b is None else float(self.b)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.b is not None and not (isinstance(self.b, (int, float)) and np.isfinite(self.b) and self.b > 0):
            raise NAMInputError(f"b must be a positive number or None, got {self.b!r}")

    def _spec(self) -> NestedSpec:
        return dataclasses.replace(super()._spec(), dirichlet_b=self._dirichlet_b())

    def _restore_state(self, state) -> None:
        super()._restore_state(state)
        if "b_star" in state:
            self.b_star_ = state["b_star"][np.ix_(self.cell_order_, self.individual_order_)]
