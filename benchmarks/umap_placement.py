"""Placing cells on a fitted UMAP: ``UMAP.transform`` against the mean of their neighbours.

Above ``expression.umap_max_cells`` the UMAP is fitted on a subsample and every other cell is
placed on it. ``UMAP.transform`` finds each cell's neighbours among the fitted cells, starts it
at their mean position weighted by UMAP's membership strengths, then refines it by 30 epochs of
stochastic gradient descent. ``neighbours`` stops after the start. This script fits one UMAP,
places the same cells both ways and prints, for each: seconds, and how well the placed cells
keep their neighbourhoods:

- ``knn_recall``: the share of each placed cell's 15 nearest fitted cells in the PCs that are
  among its 15 nearest fitted cells on the map (exact neighbours, scikit-learn);
- ``label_match``: the share of placed cells whose nearest fitted cell on the map has their
  label (the generator's cell type, or the file's ``--label`` column).

Data: Gaussian cell types of unequal widths and sizes in 10 PCs (``--types``), or the PCs of an
.h5ad (``--h5ad``, ``obsm[X_pca]``). One thread:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/umap_placement.py --fit 100000 --place 100000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def gaussian_types(n: int, n_types: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) PCs of ``n_types`` Gaussian types with sizes from a Dirichlet and widths 0.5-2."""
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(n_types, 2.0))
    labels = rng.choice(n_types, size=n, p=sizes)
    centres = rng.normal(0, 4, (n_types, dim))
    widths = rng.uniform(0.5, 2.0, n_types)
    return (centres[labels] + widths[labels, None] * rng.standard_normal((n, dim))).astype(np.float32), labels


def h5ad_pcs(path: str, label: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``obsm[X_pca]`` (n, d) and the ``label`` column of ``obs`` of an .h5ad, without X."""
    import h5py
    from anndata.io import read_elem

    with h5py.File(path) as f:
        X = np.asarray(f["obsm/X_pca"][...], dtype=np.float32)
        labels = None if label is None else np.asarray(read_elem(f["obs"])[label].astype(str))
    return X, labels


def neighbourhood_scores(X_fit, E_fit, X_placed, E_placed, labels_fit, labels_placed, k: int = 15):
    """knn_recall and label_match of placed cells (see the module docstring)."""
    from sklearn.neighbors import NearestNeighbors

    in_pcs = NearestNeighbors(n_neighbors=k).fit(X_fit).kneighbors(X_placed, return_distance=False)
    on_map = NearestNeighbors(n_neighbors=k).fit(E_fit).kneighbors(E_placed, return_distance=False)
    recall = np.mean([np.intersect1d(a, b).size / k for a, b in zip(in_pcs, on_map, strict=True)])
    out = {"knn_recall": round(float(recall), 4)}
    if labels_fit is not None:
        out["label_match"] = round(float(np.mean(labels_fit[on_map[:, 0]] == labels_placed)), 4)
    return out


def main(argv=None) -> int:
    """Fit one UMAP, place the same cells both ways, print one JSON line per placement."""
    import umap

    from nam_core.results.umap import place_by_neighbours

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", type=int, default=100_000, help="cells the UMAP is fitted on")
    parser.add_argument("--place", type=int, default=100_000, help="cells placed on it")
    parser.add_argument("--types", type=int, default=15)
    parser.add_argument("--h5ad", default=None, help="take the PCs of this .h5ad (obsm X_pca)")
    parser.add_argument("--label", default=None, help="obs column of --h5ad scored by label_match")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = args.fit + args.place
    if args.h5ad:
        X, labels = h5ad_pcs(args.h5ad, args.label)
        rows = np.random.default_rng(args.seed).choice(X.shape[0], size=n, replace=False)
        X, labels = X[rows], None if labels is None else labels[rows]
    else:
        X, labels = gaussian_types(n, args.types, 10, args.seed)
    fit, placed = slice(0, args.fit), slice(args.fit, n)
    t = time.perf_counter()
    model = umap.UMAP(n_neighbors=15, min_dist=0.5, random_state=args.seed, low_memory=True)
    E_fit = model.fit_transform(X[fit])
    print(json.dumps({"fit_cells": args.fit, "fit_seconds": round(time.perf_counter() - t, 1)}))
    placements = {"transform": model.transform, "neighbours": lambda Z: place_by_neighbours(model, Z)}
    for place in placements.values():  # numba compiles on first use: not timed
        place(X[placed][:500])
    for name, place in placements.items():
        t = time.perf_counter()
        E = place(X[placed])
        seconds = time.perf_counter() - t
        scores = neighbourhood_scores(X[fit], E_fit, X[placed], E,
                                      None if labels is None else labels[fit],
                                      None if labels is None else labels[placed])
        print(json.dumps({"placement": name, "cells": args.place, "seconds": round(seconds, 1),
                          **scores, "data": args.h5ad or f"{args.types} Gaussian types"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
