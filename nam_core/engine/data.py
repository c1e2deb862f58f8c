"""The prepared cohort: validated data on the device, cells sorted by individual, layers centred.

:func:`prepare_cohort` is the one place where user arrays become tensors; every model's run
reads a :class:`CohortData`.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from ..components import normal_wishart as nw
from ..components.cell_pass import MAX_INDICATOR_ROWS
from ..components.cells import (
    CPU_CHUNK_BYTES,
    ChunkWorkspace,
    FeatureMap,
    chunk_size,
    chunks,
)
from ..errors import NAMInputError
from ..validation import as_group_codes, as_matrix, resolve_device, resolve_dtype
from .distributed import Shard, sum_over_ranks_

__all__ = ["CohortData", "prepare_cohort", "prior_from_options"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CohortData:
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
    shard: Shard | None = None  # a data-parallel fit: this rank's cells (engine/distributed.py)

    @property
    def J(self) -> int:
        """Individuals."""
        return int(self.n_cells.shape[0])

    @property
    def N(self) -> int:
        """Cells."""
        return int(self.Y.shape[0])

    @property
    def p(self) -> int:
        """Cell-level dimension."""
        return int(self.Y.shape[1])

    def features(self, sl: slice, ws: ChunkWorkspace | None = None) -> torch.Tensor:
        """Transposed features (F, n_c) of the cells in ``sl`` (cached, or computed into ws)."""
        if self.phi is not None:
            return self.phi[:, sl]
        return self.fmap(self.Y[sl], out=ws.features if ws is not None else None)

    def cell_chunks(self):
        """Slices of at most ``chunk`` sorted cells: all cells, or this rank's shard."""
        start, stop = (0, self.N) if self.shard is None else (self.shard.start, self.shard.stop)
        for sl in chunks(stop - start, self.chunk):
            yield slice(start + sl.start, start + sl.stop)

    def chunk_individuals(self) -> list[tuple[slice, int, int]]:
        """:meth:`cell_chunks` with the individuals each holds: (cells, first, end individual)."""
        cached = getattr(self, "_chunk_individuals", None)
        if cached is None or cached[0] is not self.shard:
            group = self.group.cpu()
            spans = [(sl, int(group[sl.start]), int(group[sl.stop - 1]) + 1) for sl in self.cell_chunks()]
            self._chunk_individuals = cached = (self.shard, spans)
        return cached[1]

    def indicator_rows(self) -> int:
        """Indicator rows of the cell pass's features: the most individuals in a chunk, or 0.

        0 (a gather and a scatter per chunk instead) when the features are cached, the
        quadratic forms direct, or a chunk holds more than
        :data:`~nam_core.components.cell_pass.MAX_INDICATOR_ROWS` individuals.
        """
        if self.quad != "expanded" or self.phi is not None:
            return 0
        most = max(last - first for _, first, last in self.chunk_individuals())
        return most if most <= MAX_INDICATOR_ROWS else 0

    def sum_over_ranks_(self, *tensors: torch.Tensor | None) -> None:
        """In a data-parallel fit, replace each tensor by its sum over the ranks (else nothing)."""
        if self.shard is not None:
            sum_over_ranks_(*tensors)

    def workspace(self, n_atoms: int) -> ChunkWorkspace:
        """Chunk buffers for ``n_atoms`` atoms, allocated once per data set."""
        if getattr(self, "_workspace", None) is None or self._workspace.xi.shape[1] != n_atoms:
            self._workspace = ChunkWorkspace(self.fmap, n_atoms, min(self.chunk, self.N), self.dtype, self.device,
                                             self.indicator_rows())
        return self._workspace

    def to_input_order(self, values: torch.Tensor) -> torch.Tensor:
        """Per-cell values (N, ...) in sorted order, returned in the input order of the cells."""
        inverse = torch.empty_like(self.order)
        inverse[self.order] = torch.arange(self.N, device=self.device)
        return values[inverse]


def prior_from_options(options, data: torch.Tensor, layer: str) -> nw.NWPrior:
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


def prepare_cohort(
    X, Y, group, *, use_x: bool, prior_x, prior_y, n_atoms: int, device, dtype, memory_budget: int,
    quad: str, cache_features, label: str = "NAM",
) -> CohortData:
    """Validate and move a cohort to the device.

    Parameters
    ----------
    X : array (J, q) or None
        Individual-level vectors; required when ``use_x``, else only its row count is used.
    Y : array (N, p)
    group : array (N,) of int
        Individual of each cell, codes 0..J-1.
    use_x : bool
    prior_x, prior_y : dict or None
        Overrides of the default Normal-Wishart priors (:func:`prior_from_options`).
    n_atoms : int
        Atoms the cell pass evaluates at once (sets the chunk size with ``memory_budget`` bytes).
    device, dtype : str
        As the estimators take them ("auto", "cpu", "cuda[:i]"; "float32", "float64").
    quad : {"auto", "direct", "expanded"}
    cache_features : bool or "auto"
    label : str
        Model name for the log line.
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    if device.type == "cuda":  # TF32's 10-bit mantissa corrupts the quadratic forms
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    Y_np = as_matrix(Y, "Y (cells)")
    X_np = None
    if use_x:
        if X is None:
            raise NAMInputError("X (individuals) is required when use_x=True")
        X_np = as_matrix(X, "X (individuals)")
        J = X_np.shape[0]
    else:
        J = X.shape[0] if X is not None else None
    g = as_group_codes(group, Y_np.shape[0], J)
    J = J if J is not None else int(g.max()) + 1
    if use_x and J < 2:
        raise NAMInputError("X (individuals) needs at least 2 rows to set the default prior")

    order = np.argsort(g, kind="stable")
    Y64 = torch.as_tensor(Y_np[order], device=device)
    prior_y = prior_from_options(prior_y, Y64, "y")
    y_shift = Y64.mean(0)
    Yc = (Y64 - y_shift).to(dtype)
    del Y64
    X64, x_shift = None, None
    if use_x:
        X64 = torch.as_tensor(X_np, device=device)
        prior_x = prior_from_options(prior_x, X64, "x")
        x_shift = X64.mean(0)
        X64 = X64 - x_shift
        prior_x = prior_x.shifted(x_shift)
    else:
        prior_x = None
    quad = quad if quad != "auto" else ("direct" if dtype == torch.float64 else "expanded")
    fmap = FeatureMap(Yc.shape[1], device)
    itemsize = torch.finfo(dtype).bits // 8
    chunk = chunk_size(Yc.shape[0], n_atoms, Yc.shape[1], fmap.n_features, itemsize, memory_budget, quad,
                       cache_bytes=CPU_CHUNK_BYTES if device.type == "cpu" else None)
    feature_bytes = Yc.shape[0] * fmap.n_features * itemsize
    group_t = torch.as_tensor(g[order], device=device)
    data = CohortData(
        Y=Yc, group=group_t, order=torch.as_tensor(order, device=device), X=X64,
        y_shift=y_shift, x_shift=x_shift,
        n_cells=torch.bincount(group_t, minlength=J).to(torch.float64),
        prior_y=prior_y.shifted(y_shift), prior_x=prior_x, fmap=fmap, phi=None,
        chunk=chunk, quad=quad, device=device, dtype=dtype,
    )
    # "auto" keeps the features when they fit, unless the chunks take indicator rows: those are
    # built with the features, and at 10 PCs building both per chunk is faster than a gather and
    # a segment sum over kept features (docs/performance.md)
    cache = cache_features is True or (
        cache_features == "auto" and feature_bytes <= memory_budget and data.indicator_rows() == 0
    )
    if cache:
        data.phi = torch.cat([fmap(Yc[sl]) for sl in chunks(data.N, chunk)], dim=1)
    logger.info(
        "%s data: J=%d individuals, N=%d cells, p=%d, q=%s, %d atoms per pass on %s (%s, %s "
        "quadratic forms, chunks of %d cells, features %s)",
        label, J, data.N, data.p, X_np.shape[1] if X_np is not None else "-", n_atoms,
        device, str(dtype).removeprefix("torch."), quad, chunk, "cached" if cache else "on the fly",
    )
    return data
