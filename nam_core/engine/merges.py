"""Greedy merge moves for any :class:`~nam_core.engine.run.MergeLayer` of a run.

At a converged state every pair of occupied clusters is merged in turn and the layer refitted;
the best merge is kept if it raises the ELBO by more than ``rtol |elbo|``, and the search
repeats from there (``docs/model.md`` section 8). Every evaluated candidate is recorded, so a
user sees the alternative partitions and their ELBO gaps.
"""

from __future__ import annotations

from .run import MergeLayer, Run

__all__ = ["greedy_merges"]


def greedy_merges(run: Run, elbo: float, rtol: float, alternatives: list | None = None,
                  search: int = 0, layer: MergeLayer | None = None) -> list[tuple[int, int, float]]:
    """Merge moves at a converged state; without an accepted merge the state is left exactly.

    Parameters
    ----------
    run : Run
    elbo : float
        The ELBO of the run's current state.
    rtol : float
        Smallest relative gain that accepts a merge.
    alternatives : list or None
        Receives one dict per evaluated candidate: ``search``, ``keep``, ``drop`` (internal
        indices), ``n_clusters`` after the merge, ``elbo``, ``accepted``.
    search : int
        Number of the first search (several run per fit: one at each convergence).
    layer : MergeLayer or None
        The layer to merge (default: the run's "individuals" layer).

    Returns
    -------
    list of (keep, drop, new ELBO), in the order accepted.
    """
    layer = layer if layer is not None else run.merge_layers["individuals"]
    accepted = []
    while True:
        start = run.state()
        best_elbo, best_state, best_record = elbo, None, None
        for keep, drop in layer.merge_candidates():
            candidate = layer.merge(keep, drop)
            record = {"search": search, "keep": keep, "drop": drop, "n_clusters": layer.n_clusters(),
                      "elbo": candidate, "accepted": False}
            if alternatives is not None:
                alternatives.append(record)
            if candidate > best_elbo:
                best_elbo, best_state, best_record = candidate, run.state(), record
            run.load_state(start)
        if best_state is None or best_elbo - elbo <= rtol * abs(elbo):
            return accepted
        run.load_state(best_state)
        best_record["accepted"] = True
        elbo = best_elbo
        accepted.append((best_record["keep"], best_record["drop"], elbo))
        search += 1
