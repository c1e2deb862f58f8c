"""Estimator faces of the nested family: hyperparameters, validation, fitted state, prediction.

:class:`NestedEstimator` holds what NAM, CAM, fiSAN, the DP mixtures and the nested DP take;
:class:`NestedAtomsEstimator` adds the fitted state of the shared-atoms models and prediction of
new cells with the run's own local step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ...components.init import INIT_METHODS
from ...components.sticks import Concentration, expected_weights, n_random_sticks
from ...engine.data import prepare_cohort
from ...engine.estimator import VariationalEstimator
from ...engine.fitted import size_order
from ...engine.float_mode import subnormals_flushed
from ...errors import NAMInputError
from ...validation import as_matrix, check_int_at_least
from .run import NestedAtomsRun
from .spec import ATOM_FAMILIES, NestedSpec

__all__ = ["NestedEstimator", "NestedAtomsEstimator"]


class NestedEstimator(VariationalEstimator):
    """Estimator base of the nested family: its hyperparameters, validation and data preparation.

    The parameters are :class:`~nam_core.models.nam.NAM`'s (documented there) without the merge
    and checkpoint options. A subclass with other parameters (the DP mixture) overrides
    :meth:`_spec` and :meth:`_layer_options` to state how they map onto the family's run.
    """

    _param_names = (
        "K", "L", "n_init", "max_iter", "tol", "init", "seed", "device", "dtype", "alpha", "beta",
        "s", "r", "trunc_v", "trunc_u", "prior_x", "prior_y", "use_x", "init_resp",
        "memory_budget", "quad", "cache_features", "check_monotone", "verbose",
    )

    def __init__(
        self,
        K: int = 20,
        L: int = 50,
        n_init: int = 10,
        max_iter: int = 1000,
        tol: float | None = None,
        init: str = "kmeans",
        seed: int | None = None,
        device: str = "auto",
        dtype: str = "float32",
        alpha: float | None = None,
        beta: float | None = None,
        s: tuple[float, float] = (1.0, 1.0),
        r: tuple[float, float] = (1.0, 1.0),
        trunc_v: str = "tsb",
        trunc_u: str = "tsb",
        prior_x: dict | None = None,
        prior_y: dict | None = None,
        use_x: bool = True,
        init_resp: tuple | None = None,
        memory_budget: int = 2**28,
        quad: str = "auto",
        cache_features: bool | str = "auto",
        check_monotone: bool = True,
        verbose: bool = True,
    ):
        self.K = K
        self.L = L
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.alpha = alpha
        self.beta = beta
        self.s = s
        self.r = r
        self.trunc_v = trunc_v
        self.trunc_u = trunc_u
        self.prior_x = prior_x
        self.prior_y = prior_y
        self.use_x = use_x
        self.init_resp = init_resp
        self.memory_budget = memory_budget
        self.quad = quad
        self.cache_features = cache_features
        self.check_monotone = check_monotone
        self.verbose = verbose

    def get_params(self) -> dict:
        """Constructor arguments as given (``init_resp`` is not kept: it is data)."""
        params = super().get_params()
        params["init_resp"] = None
        return params

    def _spec(self) -> NestedSpec:
        """The hyperparameters as the run takes them."""
        return NestedSpec(
            K=self.K, L=self.L, trunc_v=self.trunc_v, trunc_u=self.trunc_u, alpha=self.alpha,
            beta=self.beta, s=tuple(self.s), r=tuple(self.r), init=self.init, init_resp=self.init_resp,
        )

    def _layer_options(self) -> dict:
        """Which layers the data hold, and their prior overrides."""
        return {"use_x": self.use_x, "prior_x": self.prior_x, "prior_y": self.prior_y}

    def _validate_params(self) -> None:
        spec = self._spec()
        check_int_at_least(spec.K, "K", 1)
        check_int_at_least(spec.L, "L", 1)
        self._validate_run_options()
        if spec.init not in INIT_METHODS:
            raise NAMInputError(f"init must be one of {INIT_METHODS}, got {spec.init!r}")
        if spec.init == "resp" and spec.init_resp is None:
            raise NAMInputError("init='resp' needs init_resp=(xi0, rho0)")
        for truncation in (spec.trunc_v, spec.trunc_u):
            n_random_sticks(2, truncation)
        Concentration(tuple(spec.s), spec.alpha).validate("alpha")
        Concentration(tuple(spec.r), spec.beta).validate("beta")

    def _prepare(self, X, Y, group):
        return prepare_cohort(
            X, Y, group, **self._layer_options(), n_atoms=self._spec().L, device=self.device,
            dtype=self.dtype, memory_budget=self.memory_budget, quad=self.quad,
            cache_features=self.cache_features, label=type(self).__name__,
        )


    def _restore_individuals(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """Individual-layer attributes, clusters labelled by decreasing expected size.

        Sets ``rho_``, ``individual_labels_``, sizes, counts, ``weights_``, the x atoms and the
        stick parameters; returns the label of each internal cluster.
        """
        rho = state["rho"]
        sizes = rho.sum(0)
        self.individual_order_, rank = size_order(sizes)
        order = self.individual_order_
        self.rho_ = rho[:, order]
        self.individual_labels_ = self.rho_.argmax(1)
        self.individual_cluster_sizes_ = sizes[order]
        self.n_individual_clusters_ = int(np.unique(self.individual_labels_).size)
        self.n_individual_clusters_expected_ = int((sizes > 0.5).sum())
        for name in ("m", "t", "c", "D_inv"):
            if f"{name}_x" in state:
                setattr(self, f"{name}_x_", state[f"{name}_x"][order])
        for key in ("a_u", "b_u", "a_v", "b_v", "s_hat", "r_hat"):
            if key in state:
                setattr(self, key + "_", state[key])
        pi = expected_weights(torch.as_tensor(state["a_v"]), torch.as_tensor(state["b_v"]), len(sizes)).numpy()
        self.weights_ = pi[order]
        return rank


class NestedAtomsEstimator(NestedEstimator):
    """Estimator base of the shared-atoms models (NAM, CAM, fiSAN, DP mixtures).

    The fitted state, relabelling by size, save/load and :meth:`predict` are shared.
    """

    def _spec(self) -> NestedSpec:
        return dataclasses.replace(super()._spec(), atoms=self.atoms, atom_dof=self.dof)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.atoms not in ATOM_FAMILIES:
            raise NAMInputError(f"atoms must be one of {ATOM_FAMILIES}, got {self.atoms!r}")
        if self.dof is not None and not (isinstance(self.dof, (int, float)) and self.dof > 0):
            raise NAMInputError(f"dof must be a positive number or None, got {self.dof!r}")

    def _new_run(self, data) -> NestedAtomsRun:
        return NestedAtomsRun(self._spec(), data)

    # ------------------------------------------------------------ fitted state
    def _fitted_state(self, run: NestedAtomsRun, data) -> dict[str, np.ndarray]:
        """The kept run's factors (internal order) after one more U1 at the optimum."""
        d = run.data
        out = run.cell_pass(want_labels=True)
        state = {
            "rho": run.rho,
            "cell_atom": d.to_input_order(out.labels),
            "cell_proba": d.to_input_order(out.proba).to(torch.float64),
            "cell_counts": out.stats.per_individual,
            "atom_sizes": out.stats.counts,
        } | run.fitted_globals()
        return {k: v.detach().cpu().numpy() for k, v in state.items()}

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        """Set the public fitted attributes from the internal (stick-ordered) state."""
        self._state = state
        self._restore_individuals(state)
        atom_sizes = state["atom_sizes"]
        self.cell_order_, cell_rank = size_order(atom_sizes)
        self.cell_labels_ = cell_rank[state["cell_atom"]]
        self.cell_label_proba_ = state["cell_proba"]
        self.cell_counts_ = state["cell_counts"][:, self.cell_order_]
        self.cell_cluster_sizes_ = atom_sizes[self.cell_order_]
        self.n_cell_clusters_ = int(np.unique(self.cell_labels_).size)
        self.n_cell_clusters_expected_ = int((atom_sizes > 0.5).sum())
        for name in ("m", "t", "c", "D_inv", "dof"):
            if f"{name}_y" in state:
                setattr(self, f"{name}_y_", state[f"{name}_y"][self.cell_order_])
        omega = expected_weights(torch.as_tensor(state["a_u"]), torch.as_tensor(state["b_u"]), len(atom_sizes)).numpy()
        self.cell_weights_ = omega[np.ix_(self.cell_order_, self.individual_order_)]

    # ------------------------------------------------------------ prediction
    def predict(self, Y, group) -> np.ndarray:
        """Cell atoms (label order) of new cells of fitted individuals: one U1 step, float64 CPU.

        Parameters
        ----------
        Y : array (n, p)
        group : array (n,) of int
            Individual codes 0..J-1 of the fitted data.

        Returns
        -------
        ndarray (n,) of cell-cluster labels (as ``cell_labels_``).
        """
        self._check_fitted()
        with subnormals_flushed():
            return self._cell_labels_given(Y, group, self._state["rho"])

    def cohort_cell_labels(self, Y, group) -> np.ndarray:
        """Cell atoms (label order) as if each individual's cluster were unknown: one U1 step.

        U1 weighs cell n of individual j by sum_k rho_jk E log omega_lk. Here every rho_j is the
        same vector, the share of the individuals in each cluster (hard labels), so a cell's
        atom depends on its expression and on cohort-wide weights only, never on its
        individual's cluster. The fit is unchanged. Parameters and result as for :meth:`predict`.
        """
        self._check_fitted()
        J, K = self._state["rho"].shape
        labels = np.asarray(self.individual_labels_)
        cohort = np.zeros(K)
        cohort[np.asarray(self.individual_order_)] = np.bincount(labels, minlength=K) / len(labels)
        return self._cell_labels_given(Y, group, np.tile(cohort, (J, 1)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "_state"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")

    def _cell_labels_given(self, Y, group, rho: np.ndarray) -> np.ndarray:
        """U1 of the fit's run on cells ``Y`` with individual weights ``rho`` (J, K), internal order."""
        state = self._state
        Y_np = as_matrix(Y, "Y (cells)")
        J, p = state["rho"].shape[0], state["m_y"].shape[1]
        if Y_np.shape[1] != p:
            raise NAMInputError(f"Y has {Y_np.shape[1]} columns, the model was fitted with p = {p}")
        data = prepare_cohort(
            np.empty((J, 0)), Y_np, group, use_x=False, prior_x=None, prior_y=None,
            n_atoms=state["m_y"].shape[0], device="cpu", dtype="float64",
            memory_budget=self.memory_budget, quad="direct", cache_features=False,
            label=f"{type(self).__name__} (prediction)",
        )
        run = self._new_run(data)
        run.load_fitted_cell_factors({k: torch.as_tensor(v) for k, v in state.items()}
                                     | {"rho": torch.as_tensor(rho)})
        labels = data.to_input_order(run.cell_pass(want_labels=True, statistics=False).labels).numpy()
        return np.argsort(self.cell_order_)[labels]
