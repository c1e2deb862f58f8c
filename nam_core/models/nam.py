"""The Nested Atoms Model estimator (``docs/model.md`` sections 2-8).

Individuals j carry vectors x_j (q,) and cells y_ji (p,). Individual clusters k = 1..K own a
Normal-Wishart atom for x and a stick-breaking weight vector omega_k over L cell atoms shared by
all clusters. :class:`NAM` fits the mean-field posterior by CAVI; ``use_x=False`` gives the
Common Atoms Model (CAM).
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np
import torch

from ..components import normal_wishart as nw
from ..components.cells import (
    QUAD_MODES,
    ChunkWorkspace,
    FeatureMap,
    accumulate,
    atom_coefficients,
    chunk_log_densities,
    chunk_responsibilities,
    chunk_size,
    chunks,
    empty_stats,
)
from ..components.init import INIT_METHODS, kmeans, one_hot, random_responsibilities
from ..components.sticks import (
    Concentration,
    expected_log_weights,
    expected_weights,
    n_random_sticks,
    stick_elbo,
    update_sticks,
)
from ..engine.estimator import VariationalEstimator
from ..errors import NAMInputError
from ..validation import (
    as_group_codes,
    as_matrix,
    check_int_at_least,
    resolve_device,
    resolve_dtype,
)

__all__ = ["NAM"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _Data:
    """Validated data on the device; cells sorted by individual and both layers centred."""

    Y: torch.Tensor  # (N, p) working dtype, sorted by group, centred
    group: torch.Tensor  # (N,) long, sorted
    order: torch.Tensor  # (N,) long: sorted row i is input row order[i]
    X: torch.Tensor | None  # (J, q) float64 centred, or None
    y_shift: torch.Tensor  # (p,) float64
    x_shift: torch.Tensor | None  # (q,) float64
    n_cells: torch.Tensor  # (J,) float64
    prior_y: nw.NWPrior  # in the centred frame
    prior_x: nw.NWPrior | None
    fmap: FeatureMap
    phi: torch.Tensor | None  # cached transposed features (F, N) or None
    chunk: int
    quad: str
    device: torch.device
    dtype: torch.dtype

    @property
    def J(self) -> int:
        return int(self.n_cells.shape[0])

    @property
    def N(self) -> int:
        return int(self.Y.shape[0])

    @property
    def p(self) -> int:
        return int(self.Y.shape[1])

    def features(self, sl: slice, ws: ChunkWorkspace | None = None) -> torch.Tensor:
        """Transposed features (F, n_c) of the cells in ``sl`` (cached, or computed into ws)."""
        if self.phi is not None:
            return self.phi[:, sl]
        return self.fmap(self.Y[sl], out=ws.features if ws is not None else None)

    def workspace(self, n_atoms: int) -> ChunkWorkspace:
        """Chunk buffers for ``n_atoms`` atoms, allocated once per data set."""
        if getattr(self, "_workspace", None) is None or self._workspace.xi.shape[1] != n_atoms:
            self._workspace = ChunkWorkspace(self.fmap, n_atoms, min(self.chunk, self.N), self.dtype, self.device)
        return self._workspace


def _standardise_block(A: torch.Tensor) -> torch.Tensor:
    """Columns standardised, then the block scaled to unit total variance.

    Scaling each block by 1/sqrt(columns) gives the composition block (L columns) and the x
    block (q columns) equal weight in the k-means of the individuals.
    """
    sd = A.std(0, unbiased=False)
    Z = (A - A.mean(0)) / torch.where(sd > 0, sd, torch.ones_like(sd))
    return Z / max(1.0, float((sd > 0).sum())) ** 0.5


class _NAMRun:
    """One CAVI run: the variational state and its block updates (U1-U8) and ELBO (T1-T10, H1-H8)."""

    def __init__(self, model: NAM, data: _Data, gen: torch.Generator, seed: int = 0):
        self._init_settings(model, data)
        xi_fn, rho0 = self._initial_responsibilities(model, gen)
        self.stats = self.cell_pass(resp_fn=xi_fn)
        if rho0 is None:
            rho0 = self._kmeans_individuals(gen, seed)
        self.rho = rho0
        self.initialise_globals()

    def _init_settings(self, model: NAM, data: _Data) -> None:
        """Sizes, stick counts and concentration factors of a run (no variational state yet)."""
        self.data = data
        self.dtype = data.dtype
        self.K, self.L = model.K, model.L
        self.use_x = data.X is not None
        self.n_v = n_random_sticks(self.K, model.trunc_v)
        self.n_u = n_random_sticks(self.L, model.trunc_u)
        self.alpha = Concentration(tuple(model.s), model.alpha)
        self.beta = Concentration(tuple(model.r), model.beta)
        self.keep_xi = False
        self.xi: torch.Tensor | None = None

    # ------------------------------------------------------------ initialisation (section 8)
    def _initial_responsibilities(self, model: NAM, gen: torch.Generator):
        d, L, K = self.data, self.L, self.K
        if model.init == "kmeans":
            labels = kmeans(d.Y, L, gen)
            return (lambda sl: one_hot(labels[sl], L, d.dtype)), None
        if model.init == "random":
            rho0 = random_responsibilities(d.J, K, gen, torch.float64, d.device)
            return (lambda sl: random_responsibilities(sl.stop - sl.start, L, gen, d.dtype, d.device)), rho0
        if model.init == "random_from_data":
            seeds = torch.randperm(d.N, generator=gen)[: min(L, d.N)].to(d.device)
            rho0 = torch.zeros((d.J, K), dtype=torch.float64, device=d.device)
            ind = torch.randperm(d.J, generator=gen)[: min(K, d.J)].to(d.device)
            rho0[ind, torch.arange(ind.numel(), device=d.device)] = 1.0

            def seed_rows(sl):
                out = torch.zeros((sl.stop - sl.start, L), dtype=d.dtype, device=d.device)
                inside = (seeds >= sl.start) & (seeds < sl.stop)
                out[seeds[inside] - sl.start, torch.nonzero(inside)[:, 0]] = 1.0
                return out

            return seed_rows, rho0
        xi0, rho0 = model._checked_init_resp(d)
        return (lambda sl: xi0[sl]), rho0

    def _kmeans_individuals(self, gen: torch.Generator, seed: int) -> torch.Tensor:
        """k-means of the individuals on [composition, x], with min(K, J) centres.

        Both blocks are standardised per column and scaled to unit total variance; the x block
        then gets weight w and the composition block 1 - w, with w cycling with the seed over
        X_BLOCK_WEIGHTS (balanced, x only, composition only). Either layer alone may carry the
        cluster signal (scenarios B and C of the simulation design); restarts over consecutive
        seeds try all three and the ELBO picks.
        """
        d = self.data
        nbar = self.stats.per_individual
        has_cells = d.n_cells > 0
        comp = torch.where(
            has_cells[:, None], nbar / d.n_cells.clamp(min=1)[:, None], nbar[has_cells].sum(0) / d.N
        )
        feats = _standardise_block(comp)
        if self.use_x:
            w = self.X_BLOCK_WEIGHTS[seed % len(self.X_BLOCK_WEIGHTS)]
            feats = torch.cat([(1.0 - w) ** 0.5 * feats, w**0.5 * _standardise_block(d.X)], 1)
        labels = kmeans(feats, min(self.K, d.J), gen)
        return one_hot(labels, self.K, torch.float64)

    X_BLOCK_WEIGHTS = (0.5, 1.0, 0.0)

    def initialise_globals(self) -> None:
        """q(alpha), q(beta) at their priors, then U3-U8 once (section 5.4)."""
        self.alpha.reset()
        self.beta.reset()
        self.update_atoms_y()
        self.update_atoms_x()
        self.update_u()
        self.update_v()
        self.update_beta()
        self.update_alpha()

    # ------------------------------------------------------------ merge moves (section 8)
    SUPPORTS_MERGES = True
    MERGE_REFIT_ROUNDS = 5
    GLOBAL_INDIVIDUAL_BLOCKS = ("update_atoms_x", "update_u", "update_v", "update_beta", "update_alpha")

    def _snapshot(self) -> dict:
        """The run's variational state (block updates replace tensors, so a shallow copy holds)."""
        state = dict(self.__dict__)
        state["alpha"], state["beta"] = copy.deepcopy(self.alpha), copy.deepcopy(self.beta)
        return state

    def _restore(self, state: dict) -> None:
        """Return to a snapshot (which stays intact: the concentrations update in place)."""
        self.__dict__.update(state)
        self.alpha, self.beta = copy.deepcopy(state["alpha"]), copy.deepcopy(state["beta"])

    def _refit_individual_layer(self) -> float:
        """U4-U8 given rho, then rounds of U2, U4-U8 with the cell statistics held; the ELBO.

        Each block is a coordinate update of the full ELBO (q(M) fixed), so the ELBO cannot fall.
        """
        for block in self.GLOBAL_INDIVIDUAL_BLOCKS:
            getattr(self, block)()
        for _ in range(self.MERGE_REFIT_ROUNDS):
            self.update_individuals()
            for block in self.GLOBAL_INDIVIDUAL_BLOCKS:
                getattr(self, block)()
        return self.elbo()

    def _merged_elbo(self, keep: int, drop: int) -> float:
        """Move cluster ``drop``'s individuals into ``keep``, refit the individual layer; the ELBO."""
        rho = self.rho.clone()
        rho[:, keep] += rho[:, drop]
        rho[:, drop] = 0.0
        self.rho = rho
        return self._refit_individual_layer()

    def merge_individual_clusters(self, elbo: float, rtol: float) -> list[tuple[int, int, float]]:
        """Greedy merge moves of individual clusters at a converged state (``docs/model.md`` 8).

        Every pair of occupied clusters is merged in turn (into the earlier stick) and the
        individual layer refitted with q(M) held; the best merge is kept if it raises the ELBO
        by more than ``rtol |elbo|``, and the search repeats from there. Without an accepted
        merge the state is left exactly as it was.

        Returns
        -------
        list of (keep, drop, new ELBO), in the order accepted.
        """
        accepted = []
        while True:
            start = self._snapshot()
            occupied = torch.nonzero(self.rho.sum(0) > 1e-3).flatten().tolist()
            best_elbo, best_state, best_pair = elbo, None, None
            for i, keep in enumerate(occupied):
                for drop in occupied[i + 1:]:
                    candidate = self._merged_elbo(keep, drop)
                    if candidate > best_elbo:
                        best_elbo, best_state, best_pair = candidate, self._snapshot(), (keep, drop)
                    self._restore(start)
            if best_state is None or best_elbo - elbo <= rtol * abs(elbo):
                return accepted
            self._restore(best_state)
            elbo = best_elbo
            accepted.append((*best_pair, elbo))

    # ------------------------------------------------------------ expectations (section 4)
    def elog_omega(self) -> torch.Tensor:
        """E log omega (L, K) (E2)."""
        return expected_log_weights(self.a_u, self.b_u, self.L)

    def elog_pi(self) -> torch.Tensor:
        """E log pi (K,) (E2)."""
        return expected_log_weights(self.a_v, self.b_v, self.K)

    def elog_x(self) -> torch.Tensor:
        """E log N(x_j | theta^x_k) (J, K) (E6)."""
        return nw.expected_log_density(self.data.X, self.post_x, self.ex_x)

    # ------------------------------------------------------------ the cell pass (U1)
    def cell_pass(self, resp_fn=None, want_labels: bool = False):
        """U1 over all cells in chunks, accumulating :class:`CellStats`.

        With ``resp_fn`` (slice -> (n_c, L) responsibilities) the responsibilities are given
        rather than computed (initialisation). With ``want_labels`` also returns the argmax atom
        and its responsibility per cell (sorted order).
        """
        d = self.data
        ws = d.workspace(self.L)
        stats = empty_stats(d.J, self.L, d.p, d.device)
        if resp_fn is None:
            coef = atom_coefficients(self.post_y, self.ex_y, d.fmap, d.dtype)
            mix = (self.rho @ self.elog_omega().T).to(d.dtype)  # (J, L)
        labels = torch.empty(d.N, dtype=torch.long, device=d.device) if want_labels else None
        proba = torch.empty(d.N, dtype=d.dtype, device=d.device) if want_labels else None
        if self.keep_xi:
            self.xi = torch.empty((d.N, self.L), dtype=d.dtype, device=d.device)
        for sl in chunks(d.N, d.chunk):
            phi_c, g_c = d.features(sl, ws), d.group[sl]
            if resp_fn is None:
                xi_c, neg_entropy = chunk_responsibilities(ws, d.Y[sl], phi_c, coef, d.quad, mix, g_c)
            else:
                xi_c = resp_fn(sl)
                neg_entropy = torch.special.xlogy(xi_c, xi_c).sum()
            accumulate(stats, d.fmap, phi_c, xi_c, g_c, neg_entropy)
            if want_labels:
                proba[sl], labels[sl] = xi_c.max(1)
            if self.keep_xi:
                self.xi[sl] = xi_c
        return (stats, labels, proba) if want_labels else stats

    # ------------------------------------------------------------ block updates (section 5.2)
    def update_cells(self) -> None:
        """U1: q(M) and its statistics."""
        self.stats = self.cell_pass()

    def update_individuals(self) -> None:
        """U2: q(S)."""
        logits = self.elog_pi()[None, :] + self.stats.per_individual @ self.elog_omega()
        if self.use_x:
            logits = logits + self.elog_x()
        self.rho = torch.softmax(logits, dim=1)

    def update_atoms_y(self) -> None:
        """U3: q(theta^y) from the cell statistics."""
        s = self.stats
        self.post_y = nw.update(self.data.prior_y, s.counts, s.sums, s.second_moments)
        self.ex_y = nw.expectations(self.post_y, layer="y")

    def update_atoms_x(self) -> None:
        """U4: q(theta^x) with weights rho."""
        if not self.use_x:
            return
        X, rho = self.data.X, self.rho
        counts = rho.sum(0)
        sums = rho.T @ X
        second = torch.einsum("jk,ja,jb->kab", rho, X, X)
        self.post_x = nw.update(self.data.prior_x, counts, sums, second)
        self.ex_x = nw.expectations(self.post_x, layer="x")

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q = N-bar^T rho (L, K): expected cells of atom l in individual cluster k."""
        return self.stats.per_individual.T @ self.rho

    def update_u(self) -> None:
        """U5: q(u)."""
        self.a_u, self.b_u = update_sticks(self.cluster_atom_counts(), self.n_u, self.beta.mean)

    def update_v(self) -> None:
        """U6: q(v)."""
        self.a_v, self.b_v = update_sticks(self.rho.sum(0), self.n_v, self.alpha.mean)

    def update_beta(self) -> None:
        """U7: q(beta) (random beta only)."""
        self.beta.update(self.b_u, self.a_u)

    def update_alpha(self) -> None:
        """U8: q(alpha) (random alpha only)."""
        self.alpha.update(self.b_v, self.a_v)

    BLOCKS = (
        "update_cells",
        "update_individuals",
        "update_atoms_y",
        "update_atoms_x",
        "update_u",
        "update_v",
        "update_beta",
        "update_alpha",
    )

    def sweep(self) -> float:
        """One sweep in the order of section 5.4; returns the ELBO."""
        for block in self.BLOCKS:
            getattr(self, block)()
        return self.elbo()

    # ------------------------------------------------------------ ELBO (section 6)
    def elbo_terms(self) -> dict[str, float]:
        """Every term of the ELBO at the current state, float64."""
        s = self.stats
        elog_pi, elog_omega = self.elog_pi(), self.elog_omega()
        terms = {
            "T2": nw.expected_log_likelihood_from_moments(
                self.post_y, self.ex_y, s.counts, s.sums, s.second_moments
            ),
            "T3": (self.rho * elog_pi).sum(),
            "T4": (self.cluster_atom_counts() * elog_omega).sum(),
            "H1": -torch.special.xlogy(self.rho, self.rho).sum(),
            "H2": -s.neg_entropy,
            "T5H3": stick_elbo(self.a_v, self.b_v, self.alpha.expected_log, self.alpha.mean),
            "T6H4": stick_elbo(self.a_u, self.b_u, self.beta.expected_log, self.beta.mean),
            "T7H5": self.alpha.elbo(),
            "T8H6": self.beta.elbo(),
            "T10H8": nw.elbo_terms(self.data.prior_y, self.post_y, self.ex_y),
        }
        if self.use_x:
            terms["T1"] = (self.rho * self.elog_x()).sum()
            terms["T9H7"] = nw.elbo_terms(self.data.prior_x, self.post_x, self.ex_x)
        return {k: float(v) for k, v in terms.items()}

    X_PART = ("T1", "T3", "H1", "T5H3", "T7H5", "T9H7")

    def elbo(self) -> float:
        """The full ELBO (all constants kept)."""
        return float(sum(self.elbo_terms().values()))

    def occupied_summary(self) -> str:
        """Expected-size > 0.5 counts of individual clusters / cell atoms, for the log."""
        k = int((self.rho.sum(0) > 0.5).sum())
        l = int((self.stats.counts > 0.5).sum())
        return f"{k}/{l}"


def _prior_from_options(options, data: torch.Tensor, layer: str) -> nw.NWPrior:
    """Default NW prior of a layer (scikit-learn's), with any user-given entries replacing it."""
    default = nw.default_prior(data, layer=layer)
    if options is None:
        return default
    allowed = {"mean", "mean_precision", "dof", "scale_inv"}
    if not isinstance(options, dict) or set(options) - allowed:
        raise NAMInputError(
            f"prior_{layer} must be a dict with keys among {sorted(allowed)}, got {options!r}"
        )
    merged = {k: getattr(default, k) for k in allowed} | dict(options)
    return nw.make_prior(
        merged["mean"], merged["mean_precision"], merged["dof"], merged["scale_inv"],
        layer=layer, device=data.device, dim=data.shape[1],
    )


class NAM(VariationalEstimator):
    """Nested Atoms Model fitted by coordinate-ascent variational inference.

    Parameters
    ----------
    K : int
        Truncation of individual clusters.
    L : int
        Truncation of shared cell atoms.
    n_init : int
        Restarts with seeds ``seed, seed + 1, ...``; the largest final ELBO is kept.
    max_iter : int
        Sweeps per restart at most.
    tol : float or None
        Stop when |ELBO_t - ELBO_{t-1}| <= tol |ELBO_t|; None: 1e-8 (float64) or 1e-6 (float32).
    init : {"kmeans", "random", "random_from_data", "resp"}
        Initial responsibilities (``docs/model.md`` section 8); "resp" uses ``init_resp``.
    seed : int or None
        Seed of the first restart (None: drawn, and recorded in ``seed_``).
    device : "auto", "cpu" or "cuda[:i]"
    dtype : {"float32", "float64"}
        Precision of the cell-level work; global statistics and the ELBO are always float64.
    alpha, beta : float or None
        Fixed concentrations of the individual-cluster and cell-atom sticks; None: random with
        Gamma(s) and Gamma(r) hyperpriors (shape, rate).
    s, r : tuple of two floats
        Gamma hyperpriors of alpha and beta.
    trunc_v, trunc_u : {"tsb", "open"}
        Truncation conventions of the two stick-breaking layers.
    prior_x, prior_y : dict or None
        Overrides of the Normal-Wishart priors, keys ``mean``, ``mean_precision``, ``dof``,
        ``scale_inv`` (Psi0^{-1}); defaults are scikit-learn's (data mean, 1, d, data covariance).
    use_x : bool
        False drops the individual-level layer: the Common Atoms Model.
    init_resp : tuple (xi0 (N, L), rho0 (J, K)) or None
        Initial responsibilities for ``init="resp"``, cells in input order.
    memory_budget : int
        Bytes of working memory per chunk of cells (sets the chunk size).
    quad : {"auto", "direct", "expanded"}
        Quadratic-form evaluation (see :mod:`nam_core.components.cells`); "auto": direct in float64,
        expanded in float32.
    cache_features : bool or "auto"
        Keep the cell features phi(y) between sweeps ("auto": when they fit in memory_budget).
    merge : bool
        At each convergence, try merging every pair of individual clusters and keep the best
        merge that raises the ELBO, then sweep on (``docs/model.md`` section 8). Mean-field
        CAVI rarely empties a redundant cluster by itself, and the k-means start opens
        min(K, J) of them.
    check_monotone : bool
        Raise :class:`~nam_core.engine.estimator.ELBODecreaseError` if a float64 ELBO decreases.
    verbose : bool
        Log one INFO line per sweep (else DEBUG); a progress bar only on a terminal.

    Attributes
    ----------
    elbo_trace_ : ndarray (n_iter_,)
    elbo_ : float
    n_iter_ : int
    converged_ : bool
    seed_ : int
        Seed of the kept restart.
    restarts_ : list of dict
        Seed, final ELBO, sweeps, convergence, seconds and accepted merges of every restart.
    rho_ : ndarray (J, K)
        q(S_j = k), columns in label order (largest expected cluster first).
    individual_labels_ : ndarray (J,)
    cell_labels_ : ndarray (N,)
        Atom of each cell (label order), input cell order, after one more U1 at the optimum.
    cell_label_proba_ : ndarray (N,)
        Its responsibility.
    weights_ : ndarray (K,)
        E[pi], label order.
    cell_weights_ : ndarray (L, K)
        E[omega_lk], atoms and clusters in label order.
    individual_cluster_sizes_, cell_cluster_sizes_ : ndarray (K,), (L,)
        Expected sizes sum_j rho_jk and sum_n xi_nl.
    n_individual_clusters_, n_cell_clusters_ : int
        Occupied clusters (hard labels).
    n_individual_clusters_expected_, n_cell_clusters_expected_ : int
        Clusters with expected size > 0.5.
    cell_counts_ : ndarray (J, L)
        N-bar_jl, expected cells of individual j on atom l (label order).
    m_y_, t_y_, c_y_, D_inv_y_ : ndarrays (L, p), (L,), (L,), (L, p, p)
        q(theta^y) in label order, in the data's coordinates. Likewise ``m_x_`` ... (K, ...).
    a_u_, b_u_ : ndarray (n_u, K); a_v_, b_v_ : ndarray (n_v,)
        Beta parameters of the sticks, in stick order (``cell_order_``/``individual_order_``
        map labels to stick positions).
    s_hat_, r_hat_ : ndarray (2,)
        Gamma parameters of q(alpha), q(beta) (equal to the prior when fixed).
    individual_order_, cell_order_ : ndarray
        Internal (stick) index of each label.
    """

    _param_names = (
        "K", "L", "n_init", "max_iter", "tol", "init", "seed", "device", "dtype", "alpha", "beta",
        "s", "r", "trunc_v", "trunc_u", "prior_x", "prior_y", "use_x", "init_resp",
        "memory_budget", "quad", "cache_features", "merge", "check_monotone", "verbose",
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
        merge: bool = True,
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
        self.merge = merge
        self.check_monotone = check_monotone
        self.verbose = verbose

    def get_params(self) -> dict:
        """Constructor arguments as given (``init_resp`` is not kept: it is data)."""
        params = super().get_params()
        params["init_resp"] = None
        return params

    # ------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        check_int_at_least(self.K, "K", 1)
        check_int_at_least(self.L, "L", 1)
        check_int_at_least(self.n_init, "n_init", 1)
        check_int_at_least(self.max_iter, "max_iter", 1)
        check_int_at_least(self.memory_budget, "memory_budget", 1 << 16)
        if self.init not in INIT_METHODS:
            raise NAMInputError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        if self.init == "resp" and self.init_resp is None:
            raise NAMInputError("init='resp' needs init_resp=(xi0, rho0)")
        for name in ("trunc_v", "trunc_u"):
            n_random_sticks(2, getattr(self, name))
        if self.quad not in (*QUAD_MODES, "auto"):
            raise NAMInputError(f"quad must be 'auto' or one of {QUAD_MODES}, got {self.quad!r}")
        if self.cache_features not in (True, False, "auto"):
            raise NAMInputError(f"cache_features must be True, False or 'auto', got {self.cache_features!r}")
        Concentration(tuple(self.s), self.alpha).validate("alpha")
        Concentration(tuple(self.r), self.beta).validate("beta")
        resolve_dtype(self.dtype)

    def _prepare(self, X, Y, group) -> _Data:
        device, dtype = resolve_device(self.device), resolve_dtype(self.dtype)
        if device.type == "cuda":  # TF32's 10-bit mantissa corrupts the quadratic forms
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        Y_np = as_matrix(Y, "Y (cells)")
        X_np = None
        if self.use_x:
            if X is None:
                raise NAMInputError("X (individuals) is required when use_x=True")
            X_np = as_matrix(X, "X (individuals)")
            J = X_np.shape[0]
        else:
            J = X.shape[0] if X is not None else None
        g = as_group_codes(group, Y_np.shape[0], J)
        J = J if J is not None else int(g.max()) + 1
        if self.use_x and J < 2:
            raise NAMInputError("X (individuals) needs at least 2 rows to set the default prior")

        order = np.argsort(g, kind="stable")
        Y64 = torch.as_tensor(Y_np[order], device=device)
        prior_y = _prior_from_options(self.prior_y, Y64, "y")
        y_shift = Y64.mean(0)
        Yc = (Y64 - y_shift).to(dtype)
        del Y64
        prior_x, X64, x_shift = None, None, None
        if self.use_x:
            X64 = torch.as_tensor(X_np, device=device)
            prior_x = _prior_from_options(self.prior_x, X64, "x")
            x_shift = X64.mean(0)
            X64 = X64 - x_shift
            prior_x = prior_x.shifted(x_shift)
        quad = self.quad if self.quad != "auto" else ("direct" if dtype == torch.float64 else "expanded")
        fmap = FeatureMap(Yc.shape[1], device)
        itemsize = torch.finfo(dtype).bits // 8
        chunk = chunk_size(Yc.shape[0], self.L, Yc.shape[1], fmap.n_features, itemsize, self.memory_budget, quad)
        feature_bytes = Yc.shape[0] * fmap.n_features * itemsize
        cache = self.cache_features is True or (self.cache_features == "auto" and feature_bytes <= self.memory_budget)
        group_t = torch.as_tensor(g[order], device=device)
        data = _Data(
            Y=Yc, group=group_t, order=torch.as_tensor(order, device=device), X=X64,
            y_shift=y_shift, x_shift=x_shift,
            n_cells=torch.bincount(group_t, minlength=J).to(torch.float64),
            prior_y=prior_y.shifted(y_shift), prior_x=prior_x, fmap=fmap, phi=None,
            chunk=chunk, quad=quad, device=device, dtype=dtype,
        )
        if cache:
            data.phi = torch.cat([fmap(Yc[sl]) for sl in chunks(data.N, chunk)], dim=1)
        logger.info(
            "NAM data: J=%d individuals, N=%d cells, p=%d, q=%s, K=%d, L=%d on %s (%s, %s "
            "quadratic forms, chunks of %d cells, features %s)",
            J, data.N, data.p, X_np.shape[1] if X_np is not None else "-", self.K, self.L,
            device, str(dtype).removeprefix("torch."), quad, chunk, "cached" if cache else "on the fly",
        )
        return data

    def _checked_init_resp(self, data: _Data) -> tuple[torch.Tensor, torch.Tensor]:
        """init_resp as (xi0 sorted like the data, working dtype; rho0 float64), validated."""
        try:
            xi0, rho0 = self.init_resp
        except (TypeError, ValueError) as exc:
            raise NAMInputError("init_resp must be a pair (xi0 (N, L), rho0 (J, K))") from exc
        xi0 = as_matrix(xi0, "init_resp xi0")
        rho0 = as_matrix(rho0, "init_resp rho0")
        for name, arr, shape in (("xi0", xi0, (data.N, self.L)), ("rho0", rho0, (data.J, self.K))):
            if arr.shape != shape:
                raise NAMInputError(f"init_resp {name} has shape {arr.shape}, expected {shape}")
            if (arr < 0).any():
                raise NAMInputError(f"init_resp {name} has negative entries")
        xi_t = torch.as_tensor(xi0, device=data.device)[data.order].to(data.dtype)
        return xi_t, torch.as_tensor(rho0, device=data.device)

    def _new_run(self, data: _Data, gen: torch.Generator, seed: int = 0) -> _NAMRun:
        return _NAMRun(self, data, gen, seed)

    # ------------------------------------------------------------ fitted state
    def _store_fitted(self, run: _NAMRun) -> None:
        d = run.data
        stats, labels, proba = run.cell_pass(want_labels=True)
        inverse = torch.empty_like(d.order)
        inverse[d.order] = torch.arange(d.N, device=d.device)
        state = {
            "rho": run.rho,
            "cell_atom": labels[inverse],
            "cell_proba": proba[inverse].to(torch.float64),
            "cell_counts": stats.per_individual,
            "atom_sizes": stats.counts,
            "m_y": run.post_y.mean + d.y_shift,
            "t_y": run.post_y.mean_precision,
            "c_y": run.post_y.dof,
            "D_inv_y": run.post_y.scale_inv,
            "a_u": run.a_u, "b_u": run.b_u, "a_v": run.a_v, "b_v": run.b_v,
            "s_hat": torch.tensor([run.alpha.shape, run.alpha.rate]),
            "r_hat": torch.tensor([run.beta.shape, run.beta.rate]),
        }
        if run.use_x:
            state |= {
                "m_x": run.post_x.mean + d.x_shift,
                "t_x": run.post_x.mean_precision,
                "c_x": run.post_x.dof,
                "D_inv_x": run.post_x.scale_inv,
            }
        self._restore_state({k: v.detach().cpu().numpy() for k, v in state.items()})

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self._state)

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        """Set the public fitted attributes from the internal (stick-ordered) state."""
        self._state = state
        rho = state["rho"]
        ind_sizes = rho.sum(0)
        atom_sizes = state["atom_sizes"]
        self.individual_order_ = np.argsort(-ind_sizes, kind="stable")
        self.cell_order_ = np.argsort(-atom_sizes, kind="stable")
        cell_rank = np.argsort(self.cell_order_)
        self.rho_ = rho[:, self.individual_order_]
        self.individual_labels_ = self.rho_.argmax(1)
        self.cell_labels_ = cell_rank[state["cell_atom"]]
        self.cell_label_proba_ = state["cell_proba"]
        self.cell_counts_ = state["cell_counts"][:, self.cell_order_]
        self.individual_cluster_sizes_ = ind_sizes[self.individual_order_]
        self.cell_cluster_sizes_ = atom_sizes[self.cell_order_]
        self.n_individual_clusters_ = int(np.unique(self.individual_labels_).size)
        self.n_cell_clusters_ = int(np.unique(self.cell_labels_).size)
        self.n_individual_clusters_expected_ = int((ind_sizes > 0.5).sum())
        self.n_cell_clusters_expected_ = int((atom_sizes > 0.5).sum())
        for layer, order in (("y", self.cell_order_), ("x", self.individual_order_)):
            for name in ("m", "t", "c", "D_inv"):
                key = f"{name}_{layer}"
                if key in state:
                    setattr(self, key + "_", state[key][order])
        for key in ("a_u", "b_u", "a_v", "b_v", "s_hat", "r_hat"):
            setattr(self, key + "_", state[key])
        a_u, b_u = torch.as_tensor(state["a_u"]), torch.as_tensor(state["b_u"])
        a_v, b_v = torch.as_tensor(state["a_v"]), torch.as_tensor(state["b_v"])
        omega = expected_weights(a_u, b_u, len(atom_sizes)).numpy()
        pi = expected_weights(a_v, b_v, len(ind_sizes)).numpy()
        self.weights_ = pi[self.individual_order_]
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
            raise RuntimeError("NAM is not fitted; call fit first")
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
        for sl in chunks(Y_np.shape[0], 65_536):
            logits = chunk_log_densities(Yt[sl], None, coef, "direct") + mix[g[sl]]
            out[sl] = logits.argmax(1).numpy()
        return np.argsort(self.cell_order_)[out]

