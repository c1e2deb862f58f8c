"""Merge moves of the shared-atoms run (``docs/model.md`` sections 8 and 11).

:class:`IndividualMerges` joins individual clusters, :class:`CellAtomMerges` joins cell atoms;
both are :class:`~nam_core.engine.run.MergeLayer` s of a
:class:`~nam_core.models.nested.run.NestedAtomsRun`, which the engine's merge search drives.
"""

from __future__ import annotations

import dataclasses

import torch

from ...components import normal_wishart as nw
from ...components.cell_pass import cell_pass
from ...components.cells import CellStats, atom_coefficients
from ...engine.run import MergeLayer

__all__ = ["IndividualMerges", "CellAtomMerges", "refit_with_cells_held"]


def refit_with_cells_held(run, blocks: tuple[str, ...], rounds: int) -> float:
    """``blocks`` once, then ``rounds`` rounds of U2 and ``blocks``, q(M) held; the ELBO.

    ``run`` is a :class:`~nam_core.models.nested.run.NestedAtomsRun`. Each block is a
    coordinate update of the full ELBO, so the ELBO cannot fall.
    """
    for block in blocks:
        getattr(run, block)()
    for _ in range(rounds):
        run.update_individuals()
        for block in blocks:
            getattr(run, block)()
    return run.elbo()


class IndividualMerges(MergeLayer):
    """Merges of individual clusters: rho columns joined, then the individual layer refitted.

    The refit runs U4-U8, then rounds of U2, U4-U8 with q(M) held: each a coordinate update of
    the full ELBO, so a candidate's ELBO is exact and needs no pass over the cells.

    Parameters
    ----------
    run : NestedAtomsRun
        The run whose clusters merge (it owns this layer).
    """

    REFIT_ROUNDS = 5

    def __init__(self, run):
        self.run = run

    def merge_candidates(self) -> list[tuple[int, int]]:
        """Every pair of occupied clusters (expected size > 1e-3), keep < drop."""
        occupied = torch.nonzero(self.run.rho.sum(0) > 1e-3).flatten().tolist()
        return [(keep, drop) for i, keep in enumerate(occupied) for drop in occupied[i + 1:]]

    def merge(self, keep: int, drop: int) -> float:
        """Move cluster ``drop``'s individuals into ``keep``, refit the individual layer; the ELBO."""
        run = self.run
        rho = run.rho.clone()
        rho[:, keep] += rho[:, drop]
        rho[:, drop] = 0.0
        run.rho = rho
        return refit_with_cells_held(run, run.INDIVIDUAL_BLOCKS, self.REFIT_ROUNDS)

    def n_clusters(self) -> int:
        """Individual clusters with expected size > 0.5."""
        return int((self.run.rho.sum(0) > 0.5).sum())



class CellAtomMerges(MergeLayer):
    """Merges of cell atoms: q(M) columns joined, then every global factor refitted.

    Candidates are ranked by :func:`~nam_core.components.normal_wishart.merge_gains` of their
    summed statistics and only the best :attr:`EXACT` are evaluated. An exact evaluation needs
    the entropy of the joined responsibilities, so the candidate search starts with one U1 pass
    (a coordinate update) that also collects sum xi log xi of each atom and of each candidate
    pair; the merged state's statistics are then sums, and its ELBO exact. After the refit with
    q(M) held, :attr:`REFINE_SWEEPS` full sweeps let q(M) and q(w) follow the merged atom (held,
    the cells of a small broad atom keep their old scales and the merge scores too low;
    ``docs/model.md`` section 11).

    Parameters
    ----------
    run : NestedAtomsRun
        The run whose atoms merge (it owns this layer).
    """

    EXACT = 4
    REFIT_ROUNDS = 5
    #: full sweeps (U1 with q(M) and q(w) free, then every global block) after the held refit
    REFINE_SWEEPS = 3

    def __init__(self, run):
        self.run = run
        self._stats: CellStats | None = None
        self._pairs: list[tuple[int, int]] = []
        self._pair_entropy: dict[tuple[int, int], torch.Tensor] = {}

    def merge_candidates(self) -> list[tuple[int, int]]:
        """The best-ranked pairs of occupied atoms (expected size > 0.5), keep < drop."""
        run = self.run
        occupied = torch.nonzero(run.stats.counts > 0.5).flatten()
        if occupied.numel() < 2:
            return []
        pairs = torch.combinations(occupied, 2)
        s = run.stats
        counts = s.weighted_counts if s.weighted_counts is not None else s.counts
        gains = nw.merge_gains(run.atoms_y.prior, counts, s.sums, s.second_moments, pairs)
        best = pairs[torch.argsort(gains, descending=True)[: self.EXACT]]
        self._pairs = [tuple(int(v) for v in pair) for pair in best]
        self._collect_entropies()
        return self._pairs

    def _collect_entropies(self) -> None:
        """One U1 pass; sum xi log xi of each atom and of each candidate pair's joined column."""
        run = self.run
        index = torch.tensor(self._pairs, device=run.data.device)
        per_atom = torch.zeros(run.L, dtype=torch.float64, device=run.data.device)
        per_pair = torch.zeros(len(self._pairs), dtype=torch.float64, device=run.data.device)

        def visit(xi_c):
            per_atom.add_(torch.special.xlogy(xi_c, xi_c).sum(0).to(torch.float64))
            joined = xi_c[:, index[:, 0]] + xi_c[:, index[:, 1]]
            per_pair.add_(torch.special.xlogy(joined, joined).sum(0).to(torch.float64))

        coef = atom_coefficients(run.atoms_y.post, run.atoms_y.ex, run.data.fmap, run.dtype)
        out = cell_pass(run.data, run.L, coef, run.mix(), scales=run.atoms_y.pass_constants(run.dtype),
                        visit=visit)
        run.data.sum_over_ranks_(per_atom, per_pair)
        self._stats = out.stats
        self._pair_entropy = {pair: per_pair[i] - per_atom[pair[0]] - per_atom[pair[1]]
                              for i, pair in enumerate(self._pairs)}

    def merge(self, keep: int, drop: int) -> float:
        """Join atom ``drop`` into ``keep`` in the statistics of the search's pass, refit, sweep; the ELBO."""
        run = self.run
        fields = {f.name: getattr(self._stats, f.name) for f in dataclasses.fields(CellStats)}
        merged = {}
        for name, value in fields.items():
            if value is None or name == "neg_entropy":
                merged[name] = value
                continue
            value = value.clone()
            axis = 1 if name == "per_individual" else 0
            value.select(axis, keep).add_(value.select(axis, drop))
            value.select(axis, drop).zero_()
            merged[name] = value
        merged["neg_entropy"] = fields["neg_entropy"] + self._pair_entropy[(keep, drop)]
        run.stats = CellStats(**merged)
        elbo = refit_with_cells_held(run, run.GLOBAL_BLOCKS, self.REFIT_ROUNDS)
        for _ in range(self.REFINE_SWEEPS):
            elbo = run.sweep()
        return elbo

    def n_clusters(self) -> int:
        """Cell atoms with expected size > 0.5."""
        return int((self.run.stats.counts > 0.5).sum())
