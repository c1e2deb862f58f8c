"""What a nested-atoms run needs from its estimator: :class:`NestedSpec` and the cell-atom family."""

from __future__ import annotations

import dataclasses

from ...components.normal_wishart import NWAtoms
from ...components.student_t import StudentTAtoms

__all__ = ["ATOM_FAMILIES", "NestedSpec", "cell_atoms"]

ATOM_FAMILIES = ("gaussian", "student_t")


@dataclasses.dataclass(frozen=True)
class NestedSpec:
    """Everything a nested-atoms run needs from its estimator (the estimator never reaches it).

    Attributes
    ----------
    K, L : int
        Individual clusters and cell atoms (per individual cluster for the nested DP).
    trunc_v, trunc_u : str
        Stick truncations of pi and omega.
    alpha, beta : float or None
        Fixed concentrations, or None for random ones with Gamma(s), Gamma(r) priors.
    s, r : tuple of two floats
    init : str
        Initialisation (``nam_core.components.init.INIT_METHODS``).
    init_resp : tuple or None
        (xi0 (N, L), rho0 (J, K)) for ``init="resp"``, cells in input order.
    dirichlet_b : float or None
        fiSAN: omega_{.k} ~ Dir_L(b) instead of sticks.
    atoms : {"gaussian", "student_t"}
        Family of the cell atoms.
    atom_dof : float or None
        Student-t atoms: fixed degrees of freedom, or None to update them.
    """

    K: int
    L: int
    trunc_v: str = "tsb"
    trunc_u: str = "tsb"
    alpha: float | None = None
    beta: float | None = None
    s: tuple[float, float] = (1.0, 1.0)
    r: tuple[float, float] = (1.0, 1.0)
    init: str = "kmeans"
    init_resp: tuple | None = None
    dirichlet_b: float | None = None
    atoms: str = "gaussian"
    atom_dof: float | None = None


def cell_atoms(spec: NestedSpec, data, n_atoms: int) -> NWAtoms:
    """The cell-atom component of a spec: Normal-Wishart (Gaussian) or Student-t atoms."""
    if spec.atoms == "student_t":
        return StudentTAtoms("atoms_y", data.prior_y, "y", n_atoms, dof=spec.atom_dof)
    return NWAtoms("atoms_y", data.prior_y, "y")
