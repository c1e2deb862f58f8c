"""What a running restart keeps (its ELBO trace, convergence, merges and timing), and SIGTERM deferred.

A fit in progress turns SIGTERM into a flag (:class:`DeferredSigterm`) so that the sweep loop
can write its checkpoint before it stops.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["RestartProgress", "DeferredSigterm"]


class DeferredSigterm:
    """Within the context, SIGTERM sets a flag instead of ending the process (main thread only)."""

    def __init__(self, active: bool):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.received = False

    def __enter__(self):
        if self.active:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = True

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGTERM, self._old)
        return False


class RestartProgress:
    """Bookkeeping of one restart: the ELBO trace, convergence, merges and timing."""

    def __init__(self, restart: int, seed: int):
        self.restart, self.seed = restart, seed
        self.elbo_trace: list[float] = []
        self.sweep_seconds: list[float] = []
        self.converged = False
        self.merges, self.atom_merges, self.merge_seconds, self.searches = 0, 0, 0.0, 0
        self.alternatives: list[dict] = []
        self.seconds = 0.0

    def record(self) -> dict:
        """The restart's row of ``restarts_``."""
        return {"seed": self.seed, "elbo": self.elbo_trace[-1], "n_iter": len(self.elbo_trace),
                "converged": self.converged, "seconds": self.seconds, "merges": self.merges,
                "atom_merges": self.atom_merges, "merge_seconds": self.merge_seconds,
                "sweep_seconds": list(self.sweep_seconds)}
