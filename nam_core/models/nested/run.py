"""The shared-atoms run of NAM, CAM, fiSAN and the DP mixtures (``docs/model.md`` sections 5, 7).

:class:`NestedAtomsRun` adds to the global factors of
:class:`~nam_core.models.nested.globals.NestedGlobals` the local step: U1 (q(M) and its
statistics, one pass over the cells) and U2 (q(S)), and the merge layers of
:mod:`nam_core.models.nested.merges`.
"""

from __future__ import annotations

import torch

from ...components.cell_pass import cell_pass
from ...components.cells import atom_coefficients, flush_subnormals_
from ...components.init import initial_cell_responsibilities, kmeans_individuals
from .globals import NestedGlobals
from .merges import CellAtomMerges, IndividualMerges
from .spec import NestedSpec

__all__ = ["NestedAtomsRun"]


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

    def cell_pass(self, resp_fn=None, want_labels: bool = False, statistics: bool = True):
        """U1 over all cells (:func:`~nam_core.components.cell_pass.cell_pass`); the statistics.

        With ``resp_fn`` the responsibilities are given. With ``want_labels`` returns the whole
        :class:`~nam_core.components.cell_pass.CellPassResult` (``statistics=False``: labels alone,
        for prediction); with ``keep_xi`` set, stores xi.
        """
        coef = mix = None
        if resp_fn is None:
            coef = atom_coefficients(self.atoms_y.post, self.atoms_y.ex, self.data.fmap, self.dtype)
            mix = self.mix()
        scales = self.atoms_y.pass_constants(self.dtype, initial=resp_fn is not None)
        out = cell_pass(self.data, self.L, coef, mix, resp_fn, want_labels, self.keep_xi, scales,
                        statistics=statistics)
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
        self.rho = flush_subnormals_(torch.softmax(logits, dim=1))

    def local_step(self) -> None:
        """U1, U2."""
        self.update_cells()
        self.update_individuals()

    BLOCKS = ("update_cells", "update_individuals") + NestedGlobals.GLOBAL_BLOCKS

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q = N-bar^T rho (L, K)."""
        return self.stats.per_individual.T @ self.rho

