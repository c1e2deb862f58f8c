"""Truncated DP mixture of Normal-Wishart Gaussians on one layer (``docs/model.md`` section 9e).

A DP mixture of the rows of Z is the shared-atoms run (``models/nested/``) with one individual
cluster (K = 1), no genotype layer and Z as the cells: U1 is then the mixture's E-step and U3, U5,
U7 its M-step. :meth:`DPMixture._spec` states that reduction explicitly. With
``truncation="open"`` and a fixed concentration it is scikit-learn's
``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
covariance_type="full", reg_covar=0)`` sweep for sweep (ELBO = ``lower_bounds_`` + C).
"""

from __future__ import annotations

import numpy as np

from ..errors import NAMInputError
from ..validation import as_matrix
from .nested import NestedAtomsEstimator, NestedSpec

__all__ = ["DPMixture"]


class DPMixture(NestedAtomsEstimator):
    """DP Gaussian mixture on the individuals (``layer="x"``) or on the pooled cells (``"y"``).

    Parameters
    ----------
    layer : {"y", "x"}
        Cluster the rows of ``Y`` (cells) or of ``X`` (individuals).
    n_components : int
        Truncation level.
    concentration : float or None
        Fixed DP concentration (scikit-learn's ``weight_concentration_prior``); None: random
        with a Gamma(``concentration_prior``) hyperprior, as NAM's beta.
    concentration_prior : tuple of two floats
        Gamma (shape, rate) hyperprior of a random concentration.
    truncation : {"open", "tsb"}
        "open" is scikit-learn's convention (every stick random).
    prior : dict or None
        Normal-Wishart prior overrides (keys as NAM's ``prior_y``); default scikit-learn's.
    init_resp : array (n_rows, n_components) or None
        Initial responsibilities for ``init="resp"``, rows in input order.
    atoms, dof
        Family of the components and the Student-t degrees of freedom (as for NAM).
    n_init, max_iter, tol, init, seed, device, dtype, memory_budget, quad, cache_features,
    check_monotone, verbose
        As for :class:`~nam_core.NAM`.

    Attributes
    ----------
    labels_ : ndarray (n_rows,)
        Component of each row (label order: largest expected size first).
    proba_ : ndarray (n_rows,)
        Its responsibility.
    means_, covariances_ : ndarray (n_components, d), (n_components, d, d)
        E[mu] and E[Lambda]^{-1} = D^{-1} / c, label order.
    mixture_weights_ : ndarray (n_components,)
        E[w] (stick-breaking; under "open" they do not sum to one), label order.
    individual_labels_, cell_labels_ : ndarray or None
        ``labels_`` on the fitted layer, None on the other.
    cell_counts_ : ndarray (J, n_components)
        For ``layer="y"``: expected cells of each individual per component (J from ``group``).
    All NAM attributes of the y layer (``m_y_``, ``a_u_``, ``b_u_``, ``cell_order_``, ...) hold
    the mixture's posterior, whichever layer was fitted.
    """

    _param_names = (
        "layer", "n_components", "concentration", "concentration_prior", "truncation", "n_init",
        "max_iter", "tol", "init", "seed", "device", "dtype", "prior", "init_resp",
        "memory_budget", "quad", "cache_features", "atoms", "dof", "check_monotone", "verbose",
    )

    def __init__(
        self,
        layer: str = "y",
        n_components: int = 50,
        concentration: float | None = None,
        concentration_prior: tuple[float, float] = (1.0, 1.0),
        truncation: str = "open",
        n_init: int = 10,
        max_iter: int = 1000,
        tol: float | None = None,
        init: str = "kmeans",
        seed: int | None = None,
        device: str = "auto",
        dtype: str = "float32",
        prior: dict | None = None,
        init_resp=None,
        memory_budget: int = 2**28,
        quad: str = "auto",
        cache_features: bool | str = "auto",
        atoms: str = "gaussian",
        dof: float | None = None,
        check_monotone: bool = True,
        verbose: bool = True,
    ):
        self.layer = layer
        self.n_components = n_components
        self.concentration = concentration
        self.concentration_prior = concentration_prior
        self.truncation = truncation
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.prior = prior
        self.init_resp = init_resp
        self.memory_budget = memory_budget
        self.quad = quad
        self.cache_features = cache_features
        self.atoms = atoms
        self.dof = dof
        self.check_monotone = check_monotone
        self.verbose = verbose

    def _spec(self) -> NestedSpec:
        """The reduction: K = 1 with a fixed alpha, the mixture's sticks as omega."""
        init_resp = None if self.init_resp is None else (self.init_resp, None)
        return NestedSpec(
            K=1, L=self.n_components, trunc_v="tsb", trunc_u=self.truncation, alpha=1.0,
            beta=self.concentration, s=(1.0, 1.0), r=tuple(self.concentration_prior), init=self.init,
            init_resp=init_resp, atoms=self.atoms, atom_dof=self.dof,
        )

    def _layer_options(self) -> dict:
        return {"use_x": False, "prior_x": None, "prior_y": self.prior}

    def _validate_params(self) -> None:
        if self.layer not in ("x", "y"):
            raise NAMInputError(f"layer must be 'x' or 'y', got {self.layer!r}")
        super()._validate_params()

    def fit(self, X=None, Y=None, group=None):
        """Fit the mixture to the rows of ``X`` (layer "x") or ``Y`` (layer "y").

        Parameters
        ----------
        X : array (J, q) or None
            Individuals; needed for layer "x", else only its row count is used.
        Y : array (N, p) or None
            Cells; needed for layer "y".
        group : array (N,) of int or None
            Individual of each cell (layer "y"; None: all cells in one group).

        Returns
        -------
        self
        """
        return super().fit(X, Y, group)

    def _prepare(self, X, Y, group):
        if self.layer == "x":
            if X is None:
                raise NAMInputError("X (individuals) is required for layer='x'")
            rows = as_matrix(X, "X (individuals)")
            return super()._prepare(None, rows, np.arange(rows.shape[0]))
        if Y is None:
            raise NAMInputError("Y (cells) is required for layer='y'")
        if group is None:
            group = np.zeros(np.shape(Y)[0], dtype=np.int64)
        return super()._prepare(X, Y, group)

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        super()._restore_state(state)
        self.labels_ = self.cell_labels_
        self.proba_ = self.cell_label_proba_
        self.means_ = self.m_y_
        self.covariances_ = self.D_inv_y_ / self.c_y_[:, None, None]
        self.mixture_weights_ = self.cell_weights_[:, 0]
        if self.layer == "x":
            self.individual_labels_, self.cell_labels_ = self.labels_, None
        else:
            self.individual_labels_ = None
