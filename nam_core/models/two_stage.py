"""Two-stage baseline (``docs/model.md`` section 9f): cells first, then individuals.

Stage 1 fits a DP mixture to the pooled cells (:class:`DPMixture`, layer "y"); stage 2 clusters
the individuals on their features [x_j, N-bar_j / n_j] with a DP mixture (or k-means with K
clusters). Each block of features is standardised per column and scaled to unit total variance
(as NAM's initialisation does), then reduced by PCA to at most ``n_features`` dimensions, since a
full-covariance mixture on J individuals cannot afford L + q dimensions (and the composition
block is singular: its columns sum to one).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..engine.estimator import VariationalEstimator
from ..errors import NAMInputError
from ..validation import as_matrix, check_int_at_least
from .dpmix import DPMixture

__all__ = ["TwoStage", "individual_features"]


def standardise_block(A: np.ndarray) -> np.ndarray:
    """Columns of A (n, d) standardised, then the block scaled to unit total variance."""
    sd = A.std(0)
    Z = (A - A.mean(0)) / np.where(sd > 0, sd, 1.0)
    return Z / math.sqrt(max(1, int((sd > 0).sum())))


def individual_features(composition: np.ndarray, X: np.ndarray | None, n_features: int) -> np.ndarray:
    """Standardised blocks [composition, x], reduced to at most ``n_features`` principal components.

    Parameters
    ----------
    composition : ndarray (J, L)
        Per-individual cell fractions.
    X : ndarray (J, q) or None
    n_features : int

    Returns
    -------
    ndarray (J, d), d <= n_features (components with non-negligible variance only)
    """
    blocks = [standardise_block(composition)]
    if X is not None:
        blocks.append(standardise_block(X))
    F = np.concatenate(blocks, 1)
    F = F - F.mean(0)
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    keep = min(n_features, int((s > 1e-8 * max(s[0], 1e-300)).sum()), F.shape[0] - 1)
    return U[:, : max(keep, 1)] * s[: max(keep, 1)]


class TwoStage(VariationalEstimator):
    """DP mixture of the cells, then a DP mixture (or k-means) of the individuals.

    Parameters
    ----------
    K, L : int
        Truncations of the individual-level and cell-level mixtures.
    use_x : bool
        Include x_j among the individuals' features.
    second_stage : {"dpmix", "kmeans"}
        Clusterer of the individuals; "kmeans" uses K clusters (scikit-learn's KMeans).
    n_features : int
        Principal components of the individuals' features kept for stage 2.
    n_init, max_iter, tol, seed, device, dtype, verbose
        Passed to both stages (stage 2 always in float64 on the CPU: it is J rows).

    Attributes
    ----------
    cell_model_, individual_model_ : DPMixture (the latter None for k-means)
        The fitted stages (not saved; :meth:`load` restores the labels and features only).
    cell_labels_ : ndarray (N,)
    individual_labels_ : ndarray (J,)
    composition_ : ndarray (J, L)
        N-bar_jl / n_j from stage 1 (label order of stage 1).
    features_ : ndarray (J, d)
        Stage-2 features.
    elbo_ : float
        NaN: the two stages have no joint bound (``stage_elbos_`` holds each stage's).
    """

    _param_names = (
        "K", "L", "use_x", "second_stage", "n_features", "n_init", "max_iter", "tol", "seed",
        "device", "dtype", "verbose",
    )

    def __init__(self, K=20, L=50, use_x=True, second_stage="dpmix", n_features=3, n_init=10,
                 max_iter=1000, tol=None, seed=None, device="auto", dtype="float32", verbose=True):
        self.K = K
        self.L = L
        self.use_x = use_x
        self.second_stage = second_stage
        self.n_features = n_features
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    def _validate_params(self) -> None:
        check_int_at_least(self.K, "K", 1)
        check_int_at_least(self.L, "L", 1)
        check_int_at_least(self.n_features, "n_features", 1)
        if self.second_stage not in ("dpmix", "kmeans"):
            raise NAMInputError(f"second_stage must be 'dpmix' or 'kmeans', got {self.second_stage!r}")

    def fit(self, X, Y, group):
        """Fit both stages; see the class docstring. Returns self."""
        self._validate_params()
        wall = time.perf_counter()
        seed = self._restart_seeds()[0] if self.seed is None else self.seed
        common = dict(n_init=self.n_init, max_iter=self.max_iter, tol=self.tol, seed=seed,
                      verbose=self.verbose)
        X_rows = as_matrix(X, "X (individuals)") if X is not None else None
        if self.use_x and X_rows is None:
            raise NAMInputError("X (individuals) is required when use_x=True")
        X_np = X_rows if self.use_x else None
        cells = DPMixture("y", self.L, device=self.device, dtype=self.dtype, **common)
        cells.fit(X_rows, Y, group)
        n_cells = cells.cell_counts_.sum(1)
        comp = np.where(n_cells[:, None] > 0, cells.cell_counts_ / np.maximum(n_cells, 1)[:, None],
                        cells.cell_counts_.sum(0) / max(n_cells.sum(), 1))
        feats = individual_features(comp, X_np, self.n_features)
        if self.second_stage == "dpmix":
            ind = DPMixture("x", self.K, device="cpu", dtype="float64", **common).fit(feats)
            labels, elbo2, n2, conv2 = ind.labels_, ind.elbo_, ind.n_iter_, ind.converged_
        else:
            from sklearn.cluster import KMeans

            ind = None
            k = min(self.K, feats.shape[0])
            labels = KMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit_predict(feats)
            elbo2, n2, conv2 = math.nan, 0, True
        self.cell_model_, self.individual_model_ = cells, ind
        self.stage_elbos_ = (cells.elbo_, elbo2)
        self.restarts_ = cells.restarts_ + (ind.restarts_ if ind is not None else [])
        self.seed_ = seed
        self.elbo_trace_ = np.empty(0)
        self.elbo_ = math.nan
        self.n_iter_ = int(cells.n_iter_ + n2)
        self.converged_ = bool(cells.converged_ and conv2)
        self.device_ = cells.device_
        self._restore_state({"cell_labels": cells.cell_labels_, "individual_labels": np.asarray(labels),
                             "composition": comp, "features": feats})
        self.fit_seconds_ = time.perf_counter() - wall
        return self

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        self._state = state
        self.cell_labels_ = state["cell_labels"]
        self.individual_labels_ = state["individual_labels"]
        self.composition_ = state["composition"]
        self.features_ = state["features"]
