"""CAM, the Common Atoms Model (``docs/model.md`` section 9a): NAM without the genotype layer."""

from __future__ import annotations

from .nam import NAM

__all__ = ["CAM"]


class CAM(NAM):
    """Common Atoms Model (Denti et al. 2023) with NAM's multivariate Normal-Wishart atoms.

    Exactly ``NAM(use_x=False)``: updates U1, U2 without the x term, U3, U5-U8; ELBO without
    T1, T9, H7. Parameters, fitted attributes, ``save``/``load`` and ``predict`` are NAM's
    (without ``use_x``, ``prior_x``); ``fit(X, Y, group)`` ignores ``X`` except for its row count
    (individuals without cells), so ``fit(None, Y, group)`` is the usual call.
    """

    _param_names = tuple(n for n in NAM._param_names if n not in ("use_x", "prior_x"))

    def __init__(self, K: int = 20, L: int = 50, **kwargs):
        super().__init__(K=K, L=L, use_x=False, **kwargs)
