"""Per-sweep seconds read from a fit's log, for benchmarks that also time older checkouts."""

from __future__ import annotations

import logging
import statistics

#: the fit's per-sweep log line starts with this format (nam_core.engine.estimator)
SWEEP_LINE = "restart %d seed %d sweep %d"


class SweepTimes(logging.Handler):
    """Collects the seconds of every sweep (the last argument of the per-sweep log line)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seconds: list[float] = []

    def emit(self, record):
        if isinstance(record.msg, str) and record.msg.startswith(SWEEP_LINE):
            self.seconds.append(float(record.args[-1]))

    def __enter__(self):
        log = logging.getLogger("nam_core")
        self._level = log.level
        log.addHandler(self)
        log.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        log = logging.getLogger("nam_core")
        log.removeHandler(self)
        log.setLevel(self._level)
        return False


def sweep_profile(seconds: list[float]) -> dict:
    """Median seconds of sweeps 2-6 (first) and of the last 10 sweeps, and their ratio."""
    first = statistics.median(seconds[1:6] or seconds)
    last = statistics.median(seconds[-10:])
    return {"seconds_per_sweep_first": round(first, 5), "seconds_per_sweep_last": round(last, 5),
            "last_over_first": round(last / first, 3)}
