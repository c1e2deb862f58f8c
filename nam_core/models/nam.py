"""The Nested Atoms Model estimator (``docs/model.md`` sections 2-8).

Individuals j carry vectors x_j (q,) and cells y_ji (p,). Individual clusters k = 1..K own a
Normal-Wishart atom for x and a stick-breaking weight vector omega_k over L cell atoms shared by
all clusters. :class:`NAM` fits the mean-field posterior by CAVI with the shared-atoms run of
:mod:`nam_core.models.nested`; ``use_x=False`` gives the Common Atoms Model (CAM).
"""

from __future__ import annotations

from ..engine.distributed import current_shard
from ..errors import NAMInputError
from .nested import NestedAtomsEstimator, NestedEstimator

__all__ = ["NAM"]


class NAM(NestedAtomsEstimator):
    """Nested Atoms Model fitted by coordinate-ascent variational inference.

    The defaults (K=20, L=50, Gaussian atoms, no atom merges) fit the plain model of
    ``docs/model.md``, whose fits the exactness tests compare with scikit-learn, whereas the
    workflow's ``fit:`` defaults (``workflow/schemas/config.schema.yaml``, read by
    :class:`~nam_core.engine.settings.FitSettings`) are truncations sized for its cohorts and the
    Student-t atoms with atom merges that recovered the cell types best.

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
    init_resp : tuple (xi0 (N, L) or (N,), rho0 (J, K)) or None
        Initial responsibilities for ``init="resp"``, cells in input order; xi0 may be integer
        atoms in 0..L-1 (one-hot rows).
    memory_budget : int
        Bytes of working memory per chunk of cells (sets the chunk size).
    quad : {"auto", "direct", "expanded"}
        Quadratic-form evaluation (see :mod:`nam_core.components.cells`); "auto": direct in float64,
        expanded in float32.
    cache_features : bool or "auto"
        Keep the cell features phi(y) between sweeps ("auto": when they fit in memory_budget and
        the chunks of cells hold too many individuals for indicator rows).
    atoms : {"gaussian", "student_t"}
        Family of the cell atoms. Student-t atoms (``docs/model.md`` section 11) give each
        cell a latent precision scale, so a cell type whose cells spread with heavier tails
        than a Gaussian (fewer UMIs, noise PCs) stays one atom.
    dof : float or None
        Student-t atoms: fixed degrees of freedom of every atom, or None to fit each atom's.
    merge : bool
        At each convergence, try merging every pair of individual clusters and keep the best
        merge that raises the ELBO, then sweep on (``docs/model.md`` section 8). Mean-field
        CAVI rarely empties a redundant cluster by itself, and the k-means start opens
        min(K, J) of them.
    merge_atoms : bool
        At each convergence also try merging cell atoms: pairs ranked by the gain of their
        summed Normal-Wishart statistics, the best few evaluated exactly (a refit with q(M) held,
        then three full sweeps), a merge kept only when the ELBO rises (``docs/model.md``
        section 11).
    checkpoint : path or None
        Write the variational state there atomically every ``checkpoint_every`` sweeps and on
        SIGTERM; a fit started with the same checkpoint (same settings and data) resumes from
        it, and ends exactly as an uninterrupted fit. The file is removed when the fit ends.
    checkpoint_every : int
    distributed : bool
        Divide the passes over the cells between the ranks of a running ``torch.distributed``
        process group (``torchrun``, ``srun``; :mod:`nam_core.engine.distributed`): each rank
        takes a block of individuals, and the statistics are summed over ranks. Every rank
        reads the whole data and ends with the same fit, equal to a one-process fit up to the
        order of float64 additions. Not with ``checkpoint``.
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
        Seed, final ELBO, sweeps, convergence, seconds (also of each sweep, ``sweep_seconds``)
        and accepted merges of every restart.
    alternatives_ : list of dict
        Every merge candidate the kept restart evaluated: ``search``, ``keep``, ``drop``
        (individual-cluster labels of the fit), ``n_clusters`` after the merge, its ``elbo``,
        ``accepted``.
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

    _param_names = NestedEstimator._param_names + (
        "atoms", "dof", "merge", "merge_atoms", "checkpoint", "checkpoint_every", "distributed",
    )
    _run_only_params = NestedAtomsEstimator._run_only_params + ("distributed",)

    def __init__(self, K: int = 20, L: int = 50, *, atoms: str = "gaussian", dof: float | None = None,
                 merge: bool = True, merge_atoms: bool = False, checkpoint=None,
                 checkpoint_every: int = 10, distributed: bool = False, **family):
        super().__init__(K=K, L=L, **family)
        self.atoms = atoms
        self.dof = dof
        self.merge = merge
        self.merge_atoms = merge_atoms
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.distributed = distributed

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.distributed and self.checkpoint is not None:
            raise NAMInputError("checkpoint is not supported with distributed=True")

    def _prepare(self, X, Y, group):
        data = super()._prepare(X, Y, group)
        if self.distributed:
            data.shard = current_shard(data.n_cells)
        return data

    def _merge_layers(self) -> tuple[str, ...]:
        return ("individuals",) * bool(self.merge) + ("atoms",) * bool(self.merge_atoms)

    def _checkpoint_settings(self) -> tuple[object, int] | None:
        return None if self.checkpoint is None else (self.checkpoint, self.checkpoint_every)
