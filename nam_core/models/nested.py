"""The nested-atoms family's run, composed from components (``docs/model.md`` sections 4-8).

:class:`NestedGlobals` holds what NAM, CAM, fiSAN, the DP mixtures and the nested DP share:
the cell atoms (``atoms_y``), the optional genotype atoms (``atoms_x``), the individual-cluster
weights (``weights_pi``), the cell weights of each individual cluster (``weights_omega``:
sticks, or fiSAN's Dirichlet) and their global blocks U3-U8 and ELBO. :class:`NestedAtomsRun`
adds the shared-atoms local step (U1, U2) and merge moves of individual clusters; the nested DP
adds its own local step (``models/ndp.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..components import normal_wishart as nw
from ..components.cells import (
    CellStats,
    FeatureMap,
    atom_coefficients,
    cell_pass,
    chunk_log_densities,
    chunks,
)
from ..components.dirichlet import DirichletWeights
from ..components.init import INIT_METHODS, initial_cell_responsibilities, kmeans_individuals
from ..components.normal_wishart import NWAtoms
from ..components.sticks import (
    Concentration,
    StickWeights,
    expected_log_weights,
    expected_weights,
    n_random_sticks,
)
from ..components.student_t import StudentTAtoms, chunk_scale_terms, log_density_offsets
from ..engine.data import prepare_cohort
from ..engine.estimator import VariationalEstimator
from ..engine.fitted import size_order
from ..engine.run import MergeLayer, Run
from ..errors import NAMInputError
from ..validation import as_group_codes, as_matrix, check_int_at_least

__all__ = ["ATOM_FAMILIES", "NestedSpec", "NestedGlobals", "NestedAtomsRun", "IndividualMerges", "CellAtomMerges", "NestedEstimator",
           "NestedAtomsEstimator"]


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


ATOM_FAMILIES = ("gaussian", "student_t")


def cell_atoms(spec: NestedSpec, data, n_atoms: int) -> NWAtoms:
    """The cell-atom component of a spec: Normal-Wishart (Gaussian) or Student-t atoms."""
    if spec.atoms == "student_t":
        return StudentTAtoms("atoms_y", data.prior_y, "y", n_atoms, dof=spec.atom_dof)
    return NWAtoms("atoms_y", data.prior_y, "y")


class NestedGlobals(Run):
    """Global factors U3-U8 and the ELBO of the nested-atoms family.

    Subclasses provide the local step, which sets ``rho`` (J, K) and ``stats``
    (:class:`~nam_core.components.cells.CellStats` over ``n_atoms`` atoms), and
    :meth:`cluster_atom_counts` (L, K).
    """

    def __init__(self, spec: NestedSpec, data, n_atoms: int):
        self.spec, self.data, self.dtype = spec, data, data.dtype
        self.K, self.L = spec.K, spec.L
        self.use_x = data.X is not None
        self.atoms_y = cell_atoms(spec, data, n_atoms)
        self.atoms_x = NWAtoms("atoms_x", data.prior_x, "x") if self.use_x else None
        self.pi = StickWeights("weights_pi", spec.K, spec.trunc_v, Concentration(tuple(spec.s), spec.alpha))
        if spec.dirichlet_b is None:
            self.omega = StickWeights("weights_omega", spec.L, spec.trunc_u,
                                      Concentration(tuple(spec.r), spec.beta))
        else:
            self.omega = DirichletWeights("weights_omega", spec.L, spec.dirichlet_b)
        self.n_atoms = n_atoms
        self.rho: torch.Tensor | None = None
        self.stats: CellStats | None = None

    # ------------------------------------------------------------ expectations (section 4)
    def elog_x(self) -> torch.Tensor:
        """E log N(x_j | theta^x_k) (J, K) (E6)."""
        return self.atoms_x.expected_log_density(self.data.X)

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q (L, K): expected cells of atom l in individual cluster k."""
        raise NotImplementedError

    # ------------------------------------------------------------ global blocks (section 5.2)
    def update_atoms_y(self) -> None:
        """U3: q(theta^y) from the cell statistics."""
        self.atoms_y.update_from_stats(self.stats)

    def update_dof_y(self) -> None:
        """U3': the degrees of freedom of Student-t cell atoms (nothing for Gaussian atoms)."""
        self.atoms_y.update_dof(self.stats)

    def update_atoms_x(self) -> None:
        """U4: q(theta^x) with weights rho."""
        if not self.use_x:
            return
        X, rho = self.data.X, self.rho
        self.atoms_x.update(rho.sum(0), rho.T @ X, torch.einsum("jk,ja,jb->kab", rho, X, X))

    def update_u(self) -> None:
        """U5 (U5' for Dirichlet weights): q(omega) from Q."""
        self.omega.update(self.cluster_atom_counts())

    def update_v(self) -> None:
        """U6: q(v)."""
        self.pi.update(self.rho.sum(0))

    def update_beta(self) -> None:
        """U7: q(beta) (random beta only; nothing for Dirichlet weights)."""
        self.omega.update_concentration()

    def update_alpha(self) -> None:
        """U8: q(alpha) (random alpha only)."""
        self.pi.update_concentration()

    GLOBAL_BLOCKS = ("update_atoms_y", "update_dof_y", "update_atoms_x", "update_u", "update_v",
                     "update_beta", "update_alpha")
    #: the blocks that depend on q(S) alone (refitted after a merge of individual clusters)
    INDIVIDUAL_BLOCKS = GLOBAL_BLOCKS[2:]

    def initialise_globals(self) -> None:
        """Concentrations at their priors, then U3-U8 once (section 5.4)."""
        self.pi.concentration.reset()
        if isinstance(self.omega, StickWeights):
            self.omega.concentration.reset()
        self.global_step()

    def global_step(self) -> None:
        """U3-U8."""
        for block in self.GLOBAL_BLOCKS:
            getattr(self, block)()

    # ------------------------------------------------------------ ELBO (section 6)
    #: terms of the individual-level layer (the x part of the DP-mixture identity, section 9e)
    X_PART = ("atoms_x_loglik", "assign_individuals", "entropy_individuals", "weights_pi",
              "weights_pi_concentration", "atoms_x")

    def elbo_terms(self) -> dict[str, float]:
        """Every term of the ELBO at the current state, float64, named by component.

        ``docs/model.md`` section 6 maps the names to T1-T10 and H1-H8.
        """
        s = self.stats
        elog_pi, elog_omega = self.pi.expected_log(), self.omega.expected_log()
        weights_pi, weights_omega = self.pi.elbo_terms(), self.omega.elbo_terms()
        terms = {
            "atoms_y_loglik": self.atoms_y.loglik_from_stats(s),
            **self.atoms_y.extra_terms(s),
            "assign_individuals": (self.rho * elog_pi).sum(),
            "assign_cells": (self.cluster_atom_counts() * elog_omega).sum(),
            "entropy_individuals": -torch.special.xlogy(self.rho, self.rho).sum(),
            "entropy_cells": -s.neg_entropy,
            "weights_pi": weights_pi["weights_pi"],
            **weights_omega,
            "weights_pi_concentration": weights_pi["weights_pi_concentration"],
        }
        if "weights_omega_concentration" in terms:  # keep T5..T8's order in the sum
            terms["weights_omega_concentration"] = terms.pop("weights_omega_concentration")
        terms["atoms_y"] = self.atoms_y.prior_term()
        if self.use_x:
            terms["atoms_x_loglik"] = (self.rho * self.elog_x()).sum()
            terms["atoms_x"] = self.atoms_x.prior_term()
        return {k: float(v) for k, v in terms.items()}

    def occupied_summary(self) -> str:
        """Expected-size > 0.5 counts of individual clusters / cell atoms, for the log."""
        k = int((self.rho.sum(0) > 0.5).sum())
        l = int((self.stats.counts > 0.5).sum())
        return f"{k}/{l}"

    def fitted_globals(self) -> dict[str, torch.Tensor]:
        """The global factors as a fit saves them.

        Atoms in the data's coordinates, sticks (for Dirichlet weights the equivalent Beta
        sticks, plus ``b_star``) and concentrations.
        """
        d = self.data
        a_u, b_u = self.omega.sticks()
        post = self.atoms_y.post
        out = {
            "m_y": post.mean + d.y_shift, "t_y": post.mean_precision, "c_y": post.dof,
            "D_inv_y": post.scale_inv, "a_u": a_u, "b_u": b_u, "a_v": self.pi.a, "b_v": self.pi.b,
            "s_hat": torch.tensor([self.pi.concentration.shape, self.pi.concentration.rate]),
        }
        if isinstance(self.atoms_y, StudentTAtoms):
            out["dof_y"] = self.atoms_y.dof
        if isinstance(self.omega, StickWeights):
            out["r_hat"] = torch.tensor([self.omega.concentration.shape, self.omega.concentration.rate])
        else:
            out["b_star"] = self.omega.b_star
        if self.use_x:
            post = self.atoms_x.post
            out |= {"m_x": post.mean + d.x_shift, "t_x": post.mean_precision, "c_x": post.dof,
                    "D_inv_x": post.scale_inv}
        return out

    # ------------------------------------------------------------ snapshots
    def state(self) -> dict:
        """rho, the cell statistics and every global factor."""
        stats = {f.name: getattr(self.stats, f.name) for f in dataclasses.fields(CellStats)}
        st = {"rho": self.rho, "stats": {k: v for k, v in stats.items() if v is not None},
              "atoms_y": self.atoms_y.state(), "weights_pi": self.pi.state(),
              "weights_omega": self.omega.state()}
        if self.use_x:
            st["atoms_x"] = self.atoms_x.state()
        return st

    def load_state(self, state: dict) -> None:
        """Return to a :meth:`state` snapshot."""
        self.rho = state["rho"]
        stats = dict(state["stats"])
        stats["neg_entropy"] = torch.as_tensor(stats["neg_entropy"], dtype=torch.float64, device=self.data.device)
        self.stats = CellStats(**stats)
        self.atoms_y.load_state(state["atoms_y"])
        self.pi.load_state(state["weights_pi"])
        self.omega.load_state(state["weights_omega"])
        if self.use_x:
            self.atoms_x.load_state(state["atoms_x"])


class NestedAtomsRun(NestedGlobals):
    """One CAVI run of a shared-atoms model: NAM, CAM, fiSAN, the DP mixtures (section 5).

    Local step U1 (``update_cells``: q(M) and its statistics, one pass over the cells) and U2
    (``update_individuals``: q(S)); merge moves of individual clusters (section 8).
    """

    def __init__(self, spec: NestedSpec, data):
        super().__init__(spec, data, spec.L)
        self.keep_xi = False
        self.xi: torch.Tensor | None = None
        self.merge_layers = {"individuals": IndividualMerges(self), "atoms": CellAtomMerges(self)}

    def initialise(self, gen: torch.Generator, seed: int) -> None:
        """Initial q(M), q(S) (k-means of the individuals unless the method fixes it), then U3-U8."""
        spec, d = self.spec, self.data
        xi_fn, rho0 = initial_cell_responsibilities(spec.init, d, self.L, self.K, gen, spec.init_resp)
        self.stats = self.cell_pass(resp_fn=xi_fn)
        self.rho = rho0 if rho0 is not None else kmeans_individuals(self.stats.per_individual, d, self.K, gen, seed)
        self.initialise_globals()

    def mix(self) -> torch.Tensor:
        """sum_k rho_jk E log omega_lk, shape (J, L), in the working dtype."""
        return (self.rho @ self.omega.expected_log().T).to(self.dtype)

    def cell_pass(self, resp_fn=None, want_labels: bool = False):
        """U1 over all cells (:func:`~nam_core.components.cells.cell_pass`); the statistics.

        With ``resp_fn`` the responsibilities are given. With ``want_labels`` returns the whole
        :class:`~nam_core.components.cells.CellPassResult`; with ``keep_xi`` set, stores xi.
        """
        coef = mix = None
        if resp_fn is None:
            coef = atom_coefficients(self.atoms_y.post, self.atoms_y.ex, self.data.fmap, self.dtype)
            mix = self.mix()
        scales = self.atoms_y.pass_constants(self.dtype, initial=resp_fn is not None)
        out = cell_pass(self.data, self.L, coef, mix, resp_fn, want_labels, self.keep_xi, scales)
        if self.keep_xi:
            self.xi = out.xi
        return out if want_labels else out.stats

    def update_cells(self) -> None:
        """U1: q(M) and its statistics."""
        self.stats = self.cell_pass()

    def update_individuals(self) -> None:
        """U2: q(S)."""
        logits = self.pi.expected_log()[None, :] + self.stats.per_individual @ self.omega.expected_log()
        if self.use_x:
            logits = logits + self.elog_x()
        self.rho = torch.softmax(logits, dim=1)

    def local_step(self) -> None:
        """U1, U2."""
        self.update_cells()
        self.update_individuals()

    BLOCKS = ("update_cells", "update_individuals") + NestedGlobals.GLOBAL_BLOCKS

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q = N-bar^T rho (L, K)."""
        return self.stats.per_individual.T @ self.rho


def refit_with_cells_held(run: NestedAtomsRun, blocks: tuple[str, ...], rounds: int) -> float:
    """``blocks`` once, then ``rounds`` rounds of U2 and ``blocks``, q(M) held; the ELBO.

    Each block is a coordinate update of the full ELBO, so the ELBO cannot fall.
    """
    for block in blocks:
        getattr(run, block)()
    for _ in range(rounds):
        run.update_individuals()
        for block in blocks:
            getattr(run, block)()
    return run.elbo()


class IndividualMerges(MergeLayer):
    """Merges of individual clusters: rho columns joined, then the individual layer refitted.

    The refit runs U4-U8, then rounds of U2, U4-U8 with q(M) held: each a coordinate update of
    the full ELBO, so a candidate's ELBO is exact and needs no pass over the cells.
    """

    REFIT_ROUNDS = 5

    def __init__(self, run: NestedAtomsRun):
        self.run = run

    def merge_candidates(self) -> list[tuple[int, int]]:
        """Every pair of occupied clusters (expected size > 1e-3), keep < drop."""
        occupied = torch.nonzero(self.run.rho.sum(0) > 1e-3).flatten().tolist()
        return [(keep, drop) for i, keep in enumerate(occupied) for drop in occupied[i + 1:]]

    def merge(self, keep: int, drop: int) -> float:
        """Move cluster ``drop``'s individuals into ``keep``, refit the individual layer; the ELBO."""
        run = self.run
        rho = run.rho.clone()
        rho[:, keep] += rho[:, drop]
        rho[:, drop] = 0.0
        run.rho = rho
        return refit_with_cells_held(run, run.INDIVIDUAL_BLOCKS, self.REFIT_ROUNDS)

    def n_clusters(self) -> int:
        """Individual clusters with expected size > 0.5."""
        return int((self.run.rho.sum(0) > 0.5).sum())


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
        """
        if not hasattr(self, "_state"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        st = self._state
        Y_np = as_matrix(Y, "Y (cells)")
        J, p = st["rho"].shape[0], st["m_y"].shape[1]
        if Y_np.shape[1] != p:
            raise NAMInputError(f"Y has {Y_np.shape[1]} columns, the model was fitted with p = {p}")
        g = torch.as_tensor(as_group_codes(group, Y_np.shape[0], J))
        t = {k: torch.as_tensor(v) for k, v in st.items()}
        post = nw.NWPosterior(t["m_y"], t["t_y"], t["c_y"], t["D_inv_y"])
        ex = nw.expectations(post, layer="y")
        fmap = FeatureMap(p, torch.device("cpu"))
        coef = atom_coefficients(post, ex, fmap, torch.float64)
        L = post.mean.shape[0]
        mix = t["rho"] @ expected_log_weights(t["a_u"], t["b_u"], L).T
        Yt = torch.as_tensor(Y_np)
        out = np.empty(Y_np.shape[0], dtype=np.int64)
        scales = None
        if "dof_y" in st:  # Student-t atoms
            scales = log_density_offsets(post, ex, t["dof_y"])
            scales["digamma_a"] = torch.special.digamma(scales["a"])
        for sl in chunks(Y_np.shape[0], 65_536):
            dens = chunk_log_densities(Yt[sl], None, coef, "direct")
            if scales is not None:
                dens = chunk_scale_terms(dens, scales)[0]
            out[sl] = (dens + mix[g[sl]]).argmax(1).numpy()
        return np.argsort(self.cell_order_)[out]


class CellAtomMerges(MergeLayer):
    """Merges of cell atoms: q(M) columns joined, then every global factor refitted.

    Candidates are ranked by :func:`~nam_core.components.normal_wishart.merge_gains` of their
    summed statistics and only the best :attr:`EXACT` are evaluated. An exact evaluation needs
    the entropy of the joined responsibilities, so the candidate search starts with one U1 pass
    (a coordinate update) that also collects sum xi log xi of each atom and of each candidate
    pair; the merged state's statistics are then sums, and its ELBO exact. After the refit with
    q(M) held, :attr:`REFINE_SWEEPS` full sweeps let q(M) and q(w) follow the merged atom (held,
    the cells of a small broad atom keep their old scales and the merge scores too low;
    ``docs/model.md`` section 11).
    """

    EXACT = 4
    REFIT_ROUNDS = 5
    #: full sweeps (U1 with q(M) and q(w) free, then every global block) after the held refit
    REFINE_SWEEPS = 3

    def __init__(self, run: NestedAtomsRun):
        self.run = run
        self._stats: CellStats | None = None
        self._pairs: list[tuple[int, int]] = []
        self._pair_entropy: dict[tuple[int, int], torch.Tensor] = {}

    def merge_candidates(self) -> list[tuple[int, int]]:
        """The best-ranked pairs of occupied atoms (expected size > 0.5), keep < drop."""
        run = self.run
        occupied = torch.nonzero(run.stats.counts > 0.5).flatten()
        if occupied.numel() < 2:
            return []
        pairs = torch.combinations(occupied, 2)
        s = run.stats
        counts = s.weighted_counts if s.weighted_counts is not None else s.counts
        gains = nw.merge_gains(run.atoms_y.prior, counts, s.sums, s.second_moments, pairs)
        best = pairs[torch.argsort(gains, descending=True)[: self.EXACT]]
        self._pairs = [tuple(int(v) for v in pair) for pair in best]
        self._collect_entropies()
        return self._pairs

    def _collect_entropies(self) -> None:
        """One U1 pass; sum xi log xi of each atom and of each candidate pair's joined column."""
        run = self.run
        index = torch.tensor(self._pairs, device=run.data.device)
        per_atom = torch.zeros(run.L, dtype=torch.float64, device=run.data.device)
        per_pair = torch.zeros(len(self._pairs), dtype=torch.float64, device=run.data.device)

        def visit(xi_c):
            per_atom.add_(torch.special.xlogy(xi_c, xi_c).sum(0).to(torch.float64))
            joined = xi_c[:, index[:, 0]] + xi_c[:, index[:, 1]]
            per_pair.add_(torch.special.xlogy(joined, joined).sum(0).to(torch.float64))

        coef = atom_coefficients(run.atoms_y.post, run.atoms_y.ex, run.data.fmap, run.dtype)
        out = cell_pass(run.data, run.L, coef, run.mix(), scales=run.atoms_y.pass_constants(run.dtype),
                        visit=visit)
        self._stats = out.stats
        self._pair_entropy = {pair: per_pair[i] - per_atom[pair[0]] - per_atom[pair[1]]
                              for i, pair in enumerate(self._pairs)}

    def merge(self, keep: int, drop: int) -> float:
        """Join atom ``drop`` into ``keep`` in the statistics of the search's pass, refit, sweep; the ELBO."""
        run = self.run
        fields = {f.name: getattr(self._stats, f.name) for f in dataclasses.fields(CellStats)}
        merged = {}
        for name, value in fields.items():
            if value is None or name == "neg_entropy":
                merged[name] = value
                continue
            value = value.clone()
            axis = 1 if name == "per_individual" else 0
            value.select(axis, keep).add_(value.select(axis, drop))
            value.select(axis, drop).zero_()
            merged[name] = value
        merged["neg_entropy"] = fields["neg_entropy"] + self._pair_entropy[(keep, drop)]
        run.stats = CellStats(**merged)
        elbo = refit_with_cells_held(run, run.GLOBAL_BLOCKS, self.REFIT_ROUNDS)
        for _ in range(self.REFINE_SWEEPS):
            elbo = run.sweep()
        return elbo

    def n_clusters(self) -> int:
        """Cell atoms with expected size > 0.5."""
        return int((self.run.stats.counts > 0.5).sum())
