"""Every clustering method of the benchmarks by name, with one calling convention.

``fit_method(name, X, Y, group, settings=FitSettings(...), seed=...)`` returns a
:class:`MethodResult` with the individual labels (J,) and the cell labels (N,) a method produces
(None where it produces none), so that the simulation rules can list methods in the config.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..models.registry import build_estimator
from ..results.leiden import leiden_labels

__all__ = ["LEIDEN_RESOLUTIONS", "METHODS", "MethodResult", "fit_method"]


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


def _kmeans_oracle(X, Y, group, oracle_K, oracle_L, n_init, seed):
    """k-means with the true numbers of clusters (scikit-learn's KMeans).

    Cells: k-means of Y with ``oracle_L`` clusters. Individuals: k-means with ``oracle_K`` clusters
    of the standardised [composition of the cell labels, x] (as the two-stage features, without
    the PCA); x alone when no cell number is given.
    """
    from sklearn.cluster import KMeans

    from ..models.two_stage import standardise_block

    cell_labels = ind_labels = None
    if oracle_L is not None:
        cell_labels = KMeans(n_clusters=oracle_L, n_init=n_init, random_state=seed).fit_predict(Y)
    if oracle_K is not None:
        blocks = [] if X is None else [standardise_block(np.asarray(X, float))]
        if cell_labels is not None:
            J = X.shape[0] if X is not None else int(np.max(group)) + 1
            counts = np.zeros((J, oracle_L))
            np.add.at(counts, (np.asarray(group), cell_labels), 1.0)
            blocks.insert(0, standardise_block(counts / np.maximum(counts.sum(1, keepdims=True), 1)))
        if not blocks:
            raise NAMInputError("kmeans_oracle needs X or oracle_L to cluster the individuals")
        feats = np.concatenate(blocks, 1)
        ind_labels = KMeans(n_clusters=oracle_K, n_init=n_init, random_state=seed).fit_predict(feats)
    return ind_labels, cell_labels


#: Leiden methods by name -> resolution; they cluster cells only (scanpy, igraph flavour).
LEIDEN_RESOLUTIONS = {"leiden_0.5": 0.5, "leiden_1.0": 1.0}

METHODS = (
    "nam", "cam", "fisan", "ndp", "hdp", "dpmix_x", "dpmix_y", "two_stage", "kmeans_oracle",
    *LEIDEN_RESOLUTIONS,
)


def fit_method(
    name: str, X, Y, group, *, settings: FitSettings, seed: int, oracle_K: int | None = None,
    oracle_L: int | None = None, verbose: bool = False,
) -> MethodResult:
    """Fit method ``name`` (one of :data:`METHODS`) and return its labels.

    Parameters
    ----------
    name : str
    X : array (J, q) or None
    Y : array (N, p)
    group : array (N,) of int
    settings : FitSettings
        Every fit option; each model takes those that apply to it
        (:func:`nam_core.models.registry.build_estimator`); k-means uses ``n_init`` only, Leiden
        none (its kNN graph and resolution are fixed: :mod:`nam_core.results.leiden`).
    seed : int
        Seed of the first restart.
    oracle_K, oracle_L : int or None
        True numbers of clusters, for "kmeans_oracle" only.
    verbose : bool

    Returns
    -------
    MethodResult
    """
    if name not in METHODS:
        raise NAMInputError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    start = time.perf_counter()
    if name == "kmeans_oracle":
        ind, cells = _kmeans_oracle(X, Y, group, oracle_K, oracle_L, settings.n_init, seed)
        return MethodResult(ind, cells, math.nan, 0, time.perf_counter() - start, None)
    if name in LEIDEN_RESOLUTIONS:
        res = LEIDEN_RESOLUTIONS[name]
        cells = leiden_labels(Y, resolutions=(res,), seed=seed)[res]
        return MethodResult(None, cells, math.nan, 0, time.perf_counter() - start, None)
    model = build_estimator(name, settings, seed=seed, verbose=verbose)
    model.fit(X, Y, group)
    ind = getattr(model, "individual_labels_", None)
    cells = getattr(model, "cell_labels_", None)
    return MethodResult(
        None if ind is None else np.asarray(ind), None if cells is None else np.asarray(cells),
        float(model.elbo_), int(model.n_iter_), time.perf_counter() - start, model,
    )
