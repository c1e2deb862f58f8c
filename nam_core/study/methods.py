"""Every clustering method of the benchmarks by name, with one calling convention.

``fit_method(name, X, Y, group, K=..., L=..., n_init=..., seed=...)`` returns a
:class:`MethodResult` with the individual labels (J,) and the cell labels (N,) a method produces
(None where it produces none), so that the simulation rules can list methods in the config.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..errors import NAMInputError

__all__ = ["METHODS", "MethodResult", "fit_method"]


@dataclasses.dataclass
class MethodResult:
    """What one method returns.

    Attributes
    ----------
    individual_labels : ndarray (J,) or None
    cell_labels : ndarray (N,) or None
        In the input order of the cells.
    elbo : float
        Final ELBO (NaN for methods without one).
    n_iter : int
    seconds : float
        Wall time of the fit.
    model : object
        The fitted estimator.
    """

    individual_labels: np.ndarray | None
    cell_labels: np.ndarray | None
    elbo: float
    n_iter: int
    seconds: float
    model: object


def _estimator(name: str, K: int, L: int, common: dict):
    from .. import models

    factories = {
        "nam": lambda: models.NAM(K=K, L=L, **common),
        "cam": lambda: models.CAM(K=K, L=L, **common),
        "fisan": lambda: models.FiSAN(K=K, L=L, **common),
        "ndp": lambda: models.NestedDP(K=K, L=L, **common),
        "hdp": lambda: models.HDP(K=K, L=L, **common),
        "dpmix_x": lambda: models.DPMixture("x", K, **common),
        "dpmix_y": lambda: models.DPMixture("y", L, **common),
        "two_stage": lambda: models.TwoStage(K=K, L=L, **common),
    }
    return factories[name]()


def _kmeans_oracle(X, Y, group, oracle_K, oracle_L, n_init, seed):
    """k-means with the true numbers of clusters (scikit-learn's KMeans).

    Cells: k-means of Y with ``oracle_L`` clusters. Individuals: k-means with ``oracle_K`` clusters
    of the standardised [composition of the cell labels, x] (as the two-stage features, without
    the PCA); x alone when no cell number is given.
    """
    from sklearn.cluster import KMeans

    from ..models.two_stage import _standardise

    cell_labels = ind_labels = None
    if oracle_L is not None:
        cell_labels = KMeans(n_clusters=oracle_L, n_init=n_init, random_state=seed).fit_predict(Y)
    if oracle_K is not None:
        blocks = [] if X is None else [_standardise(np.asarray(X, float))]
        if cell_labels is not None:
            J = X.shape[0] if X is not None else int(np.max(group)) + 1
            counts = np.zeros((J, oracle_L))
            np.add.at(counts, (np.asarray(group), cell_labels), 1.0)
            blocks.insert(0, _standardise(counts / np.maximum(counts.sum(1, keepdims=True), 1)))
        if not blocks:
            raise NAMInputError("kmeans_oracle needs X or oracle_L to cluster the individuals")
        feats = np.concatenate(blocks, 1)
        ind_labels = KMeans(n_clusters=oracle_K, n_init=n_init, random_state=seed).fit_predict(feats)
    return ind_labels, cell_labels


METHODS = ("nam", "cam", "fisan", "ndp", "hdp", "dpmix_x", "dpmix_y", "two_stage", "kmeans_oracle")


def fit_method(
    name: str, X, Y, group, *, K: int, L: int, n_init: int, seed: int, device: str = "auto",
    dtype: str = "float32", max_iter: int = 1000, oracle_K: int | None = None,
    oracle_L: int | None = None, verbose: bool = False,
) -> MethodResult:
    """Fit method ``name`` (one of :data:`METHODS`) and return its labels.

    Parameters
    ----------
    name : str
    X : array (J, q) or None
    Y : array (N, p)
    group : array (N,) of int
    K, L : int
        Truncations (individual clusters, cell atoms); "dpmix_x" uses K, "dpmix_y" L.
    n_init, seed : int
        Restarts and the seed of the first.
    device, dtype, max_iter, verbose
        As for :class:`~nam_core.NAM` (ignored by "kmeans_oracle").
    oracle_K, oracle_L : int or None
        True numbers of clusters, for "kmeans_oracle" only.

    Returns
    -------
    MethodResult
    """
    if name not in METHODS:
        raise NAMInputError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    start = time.perf_counter()
    if name == "kmeans_oracle":
        ind, cells = _kmeans_oracle(X, Y, group, oracle_K, oracle_L, n_init, seed)
        return MethodResult(ind, cells, math.nan, 0, time.perf_counter() - start, None)
    common = dict(n_init=n_init, seed=seed, device=device, dtype=dtype, max_iter=max_iter,
                  verbose=verbose)
    model = _estimator(name, K, L, common)
    model.fit(X, Y, group)
    ind = getattr(model, "individual_labels_", None)
    cells = getattr(model, "cell_labels_", None)
    return MethodResult(
        None if ind is None else np.asarray(ind), None if cells is None else np.asarray(cells),
        float(model.elbo_), int(model.n_iter_), time.perf_counter() - start, model,
    )
