"""The protocol between the engine and a model's CAVI run (``docs/model.md`` section 5.4).

A run holds one restart's variational state. The engine calls only the methods below; it
never knows which model it drives. A run whose model supports merge moves exposes its
:class:`MergeLayer` objects by name in ``merge_layers``.
"""

from __future__ import annotations

import abc

import torch

__all__ = ["Run", "MergeLayer"]


class Run(abc.ABC):
    """One CAVI run: a local step, a global step and the ELBO as named terms.

    Attributes
    ----------
    dtype : torch.dtype
        Precision of the cell-level work (float64 runs check monotonicity strictly).
    merge_layers : dict of str to MergeLayer
        The layers whose clusters greedy merges may join (e.g. "individuals", "atoms").
    """

    dtype: torch.dtype
    merge_layers: dict = {}

    @abc.abstractmethod
    def initialise(self, gen: torch.Generator, seed: int) -> None:
        """Initial local factors, then the global ones (``docs/model.md`` section 8)."""

    @abc.abstractmethod
    def local_step(self) -> None:
        """Update the local factors (cells, individuals) and their sufficient statistics."""

    @abc.abstractmethod
    def global_step(self) -> None:
        """Update the global factors (atoms, weights, concentrations) from the statistics."""

    @abc.abstractmethod
    def elbo_terms(self) -> dict[str, float]:
        """Every term of the ELBO at the current state, float64, named by component."""

    @abc.abstractmethod
    def state(self) -> dict:
        """The variational state as nested dicts of tensors and floats (a snapshot)."""

    @abc.abstractmethod
    def load_state(self, state: dict) -> None:
        """Return to a snapshot taken by :meth:`state` (which stays intact)."""

    def occupied_summary(self) -> str:
        """Occupied clusters for the per-sweep log line."""
        return "-"

    def elbo(self) -> float:
        """The full ELBO (all constants kept)."""
        return float(sum(self.elbo_terms().values()))

    def sweep(self) -> float:
        """One sweep: the local step, then the global step; returns the ELBO."""
        self.local_step()
        self.global_step()
        return self.elbo()


class MergeLayer(abc.ABC):
    """A layer of clusters that greedy merge moves may join (``docs/model.md`` section 8)."""

    @abc.abstractmethod
    def merge_candidates(self) -> list[tuple[int, int]]:
        """Pairs (keep, drop) of occupied clusters, in a fixed order."""

    @abc.abstractmethod
    def merge(self, keep: int, drop: int) -> float:
        """Move ``drop``'s members into ``keep``, refit what depends on them; the new ELBO.

        Every refit block must be a coordinate update of the full ELBO, so that the ELBO of a
        merged state is exact and comparable with the current one.
        """

    @abc.abstractmethod
    def n_clusters(self) -> int:
        """Occupied clusters at the current state."""
