"""Relabelling of fitted clusters: labels by decreasing expected size."""

from __future__ import annotations

import numpy as np

__all__ = ["size_order"]


def size_order(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label order of clusters by decreasing size (ties keep the internal order).

    Parameters
    ----------
    sizes : ndarray (C,)
        Expected size of each cluster, in internal (stick) order.

    Returns
    -------
    order : ndarray (C,)
        Internal index of each label (label l is internal cluster ``order[l]``).
    rank : ndarray (C,)
        Label of each internal index (the inverse permutation).
    """
    order = np.argsort(-np.asarray(sizes), kind="stable")
    return order, np.argsort(order)
