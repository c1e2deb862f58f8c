"""Checkpoints of a fit: the variational state written atomically, so a killed fit resumes.

A checkpoint holds the finished restarts (their bookkeeping and the best run's state) and the
restart in progress (its state after the last checkpointed sweep, its ELBO trace, merges and
time). It is tied to the model class, its hyperparameters and a fingerprint of the data: a
checkpoint of another fit is never resumed. Restoring a float64 state and sweeping on gives
the same numbers as a fit that was never stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path, check_finite

__all__ = ["Checkpoint", "Resumed", "flatten_state", "unflatten_state"]

logger = logging.getLogger(__name__)

_SEP = "/"


def flatten_state(state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of tensors and numbers as flat ``a/b/c`` keys of numpy arrays."""
    flat = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten_state(value, name + _SEP)
        elif isinstance(value, torch.Tensor):
            flat[name] = value.detach().cpu().numpy()
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten_state(flat: dict[str, np.ndarray], device: torch.device) -> dict:
    """The inverse of :func:`flatten_state`; arrays become tensors on ``device``, 0-d ones floats."""
    state: dict = {}
    for name, arr in flat.items():
        *path, leaf = name.split(_SEP)
        node = state
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = float(arr) if arr.ndim == 0 and arr.dtype.kind == "f" else torch.as_tensor(arr, device=device)
    return state


def data_fingerprint(data) -> str:
    """SHA-1 of the prepared cells, their individuals and the individual-level layer."""
    h = hashlib.sha1()
    for t in (data.Y, data.group, data.X):
        if t is not None:
            h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class Resumed:
    """What a checkpoint restores: finished restarts, the best state, the restart in progress."""

    finished: list[dict]
    best_restart: int | None
    best_state: dict | None
    current: dict | None
    current_state: dict | None


class Checkpoint:
    """The checkpoint file of one fit.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file (written atomically; removed when the fit completes).
    every : int
        Sweeps between writes (and on SIGTERM).
    model : str
        Class name.
    params : dict
        Hyperparameters (JSON-able) that must match for a resume.
    data : CohortData
    """

    def __init__(self, path, every: int, model: str, params: dict, data):
        if not (isinstance(every, int) and every >= 1):
            from ..errors import NAMInputError

            raise NAMInputError(f"checkpoint_every must be an integer >= 1, got {every!r}")
        self.path, self.every, self.device = Path(path), every, data.device
        self.identity = {"model": model, "params": json.loads(json.dumps(params, default=str)),
                         "data": data_fingerprint(data)}
        self._finished: dict[str, np.ndarray] = {}
        self._meta: dict = {"finished": [], "best_restart": None, "current": None}

    # ------------------------------------------------------------ reading
    def load(self) -> Resumed | None:
        """The saved progress, or None when there is no usable checkpoint (logged)."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            meta = json.loads(arrays.pop("meta_json").tobytes().decode())
        except Exception as exc:  # a damaged checkpoint is not worth failing the fit for
            logger.warning("checkpoint %s is unreadable (%s); starting afresh", self.path, exc)
            return None
        if meta.get("identity") != self.identity:
            logger.warning("checkpoint %s belongs to another fit (model, settings or data differ); "
                           "starting afresh", self.path)
            return None
        self._meta = {k: meta[k] for k in ("finished", "best_restart", "current")}
        self._finished = {k: v for k, v in arrays.items() if k.startswith("best/")}
        best = {k.removeprefix("best/"): v for k, v in self._finished.items()}
        current = {k.removeprefix("current/"): v for k, v in arrays.items() if k.startswith("current/")}
        logger.info("checkpoint %s: %d finished restart(s), %s", self.path, len(meta["finished"]),
                    "one in progress" if meta["current"] else "none in progress")
        return Resumed(
            finished=meta["finished"], best_restart=meta["best_restart"],
            best_state=unflatten_state(best, self.device) if best else None,
            current=meta["current"],
            current_state=unflatten_state(current, self.device) if current else None,
        )

    # ------------------------------------------------------------ writing
    @staticmethod
    def _progress(prog) -> dict:
        return {"restart": prog.restart, "seed": prog.seed, "elbo_trace": list(prog.elbo_trace),
                "converged": prog.converged, "merges": prog.merges, "atom_merges": prog.atom_merges,
                "merge_seconds": prog.merge_seconds, "searches": prog.searches,
                "alternatives": prog.alternatives, "seconds": prog.seconds,
                "sweep_seconds": list(prog.sweep_seconds)}

    def write_current(self, run, prog) -> None:
        """Save the restart in progress (its state after the last sweep)."""
        self._meta["current"] = self._progress(prog)
        self._write({f"current/{k}": v for k, v in flatten_state(run.state()).items()})

    def write_finished(self, done: list, best_run, best_prog) -> None:
        """Save the finished restarts and the best state so far; nothing is in progress."""
        self._meta["finished"] = [self._progress(p) for p in done]
        self._meta["best_restart"] = best_prog.restart
        self._meta["current"] = None
        self._finished = {f"best/{k}": v for k, v in flatten_state(best_run.state()).items()}
        self._write({})

    def _write(self, current: dict[str, np.ndarray]) -> None:
        meta = dict(self._meta, identity=self.identity)
        arrays = self._finished | current
        check_finite(arrays, self.path)
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path, suffix=".npz") as tmp:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            tmp.write_bytes(buf.getvalue())

    def remove(self) -> None:
        """Delete the checkpoint once the fit is complete."""
        self.path.unlink(missing_ok=True)
