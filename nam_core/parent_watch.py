"""Make a workflow job exit when the Snakemake process that started it is gone.

A Snakemake killed with SIGKILL cannot stop its jobs: they keep computing and writing after
their parent is gone. :func:`watch_parent` starts a daemon thread that polls, about once a
second, whether the job's ancestors are still alive: every process from the direct parent up to
the nearest ancestor running Snakemake if one is found in ``/proc`` (a job's direct parent is
often a shell that outlives Snakemake), else the direct parent alone (so a job started by hand
under ``nohup`` is not ended with the terminal). When it is gone the thread interrupts the main thread, removes the temporary
files of the atomic writes under way (see :func:`nam_core.io.atomic_path`), so nothing partial is
left, and ends the process with exit status 143 a few seconds later at most.

Standard library only.
"""

from __future__ import annotations

import _thread
import logging
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["find_snakemake_ancestor", "watch_parent"]

logger = logging.getLogger(__name__)

EXIT_STATUS = 143
"""Exit status of a job ended because its parent is gone (as for SIGTERM)."""

_STARTED: list[threading.Thread] = []


def _parent_of(pid: int) -> int | None:
    """The parent PID of ``pid`` from /proc, or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[1]) if len(fields) > 1 else None


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), which tells a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def find_snakemake_ancestor(pid: int | None = None, max_depth: int = 8) -> int | None:
    """The nearest ancestor of ``pid`` (default: this process) naming snakemake, or None.

    None also where /proc cannot be read, or no ancestor within ``max_depth`` generations has
    "snakemake" in its command line.
    """
    current = os.getpid() if pid is None else pid
    for _ in range(max_depth):
        parent = _parent_of(current)
        if parent is None or parent <= 1:
            return None
        if "snakemake" in _cmdline(parent).lower():
            return parent
        current = parent
    return None


def _alive(pid: int, start: str | None) -> bool:
    if start is not None:
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_job(reason: str, grace_s: float) -> None:
    """Interrupt the main thread; if it has not ended within ``grace_s``, clean up and exit."""
    from nam_core.io import remove_pending_temporaries

    logger.error("%s; stopping this job, no output is written", reason)
    print(f"NAM ERROR: {reason}; stopping this job, no output is written", file=sys.stderr)
    _thread.interrupt_main()
    time.sleep(grace_s)
    remove_pending_temporaries()
    logging.shutdown()
    os._exit(EXIT_STATUS)


def _watch(watched: dict[int, str | None], interval_s: float, grace_s: float) -> None:
    """Poll every ``interval_s`` that each watched process ({PID: start time}) is alive."""
    while True:
        time.sleep(interval_s)
        for pid, start in watched.items():
            if not _alive(pid, start):
                _end_job(f"the process {pid} that started this job is gone", grace_s)


def _chain(direct: int, top: int | None) -> list[int]:
    """The PIDs from ``direct`` up to ``top`` (both included), or [direct] without ``top``."""
    chain = [direct]
    while top is not None and chain[-1] != top and len(chain) < 16:
        parent = _parent_of(chain[-1])
        if parent is None or parent <= 1:
            break
        chain.append(parent)
    return chain


def watch_parent(interval_s: float = 1.0, grace_s: float = 2.0) -> int | None:
    """Start (once per process) the thread that ends this job when its Snakemake is gone.

    Parameters
    ----------
    interval_s : float
        Seconds between two checks.
    grace_s : float
        Seconds the main thread is given to unwind (removing its temporary files) before the
        process is ended.

    Returns
    -------
    int or None
        The Snakemake ancestor watched, else the direct parent; None where the process has no
        parent to watch (its parent is init).
    """
    direct = os.getppid()
    if direct <= 1:
        return None
    snakemake = find_snakemake_ancestor()
    parent = snakemake if snakemake is not None else direct
    if _STARTED:
        return parent
    watched = {pid: _start_time(pid) for pid in _chain(direct, snakemake)}
    thread = threading.Thread(
        target=_watch, args=(watched, interval_s, grace_s),
        name="nam-parent-watch", daemon=True,
    )
    thread.start()
    _STARTED.append(thread)
    return parent
