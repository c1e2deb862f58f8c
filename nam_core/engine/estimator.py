"""The loop shared by every variational model: restarts, sweeps, convergence, logging, saving.

A model subclasses :class:`VariationalEstimator` and provides

* ``_prepare(X, Y, group)``: validated data on the device (raises NAMInputError early);
* ``_new_run(data, generator, seed)``: a run object with ``sweep() -> float`` (one sweep, returns the
  ELBO) after initialisation;
* ``_store_fitted(run)``: sets the fitted attributes from the best run;
* ``_state_arrays()`` / ``_restore_state(arrays)``: numpy arrays for :meth:`save`/:meth:`load`.
"""

from __future__ import annotations

import io as _io
import json
import logging
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import NAMInputError
from ..io import atomic_path

__all__ = ["VariationalEstimator", "ConvergenceWarning", "ELBODecreaseError", "select_best"]

logger = logging.getLogger(__name__)

MONOTONE_RTOL = 1e-8


class ConvergenceWarning(UserWarning):
    """A fit stopped at ``max_iter`` before the relative ELBO change fell below ``tol``."""


class ELBODecreaseError(RuntimeError):
    """The ELBO decreased in float64 by more than rounding allows: a bug, never expected."""


def _package_versions() -> dict[str, str]:
    from .. import __version__

    return {
        "nam_core": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


class VariationalEstimator:
    """Base class: see the module docstring. Hyperparameters are stored untouched by __init__."""

    #: names of the constructor arguments, in order (set by subclasses)
    _param_names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        """Constructor arguments as given."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def _restart_seeds(self) -> list[int]:
        base = self.seed
        if base is None:
            base = int(np.random.SeedSequence().entropy % (2**31))
        if isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base < 0:
            raise NAMInputError(f"seed must be a non-negative integer or None, got {self.seed!r}")
        return [int(base) + r for r in range(self.n_init)]

    def _tolerance(self, dtype: torch.dtype) -> float:
        if self.tol is None:
            return 1e-8 if dtype == torch.float64 else 1e-6
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise NAMInputError(f"tol must be a non-negative number or None, got {self.tol!r}")
        return float(self.tol)

    def _run_to_convergence(self, run, tol: float, seed: int, restart: int) -> None:
        """Sweep ``run`` until the relative ELBO change is <= tol or max_iter sweeps."""
        show_bar = self.verbose and sys.stderr.isatty()
        bar = None
        if show_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_iter, desc=f"restart {restart} (seed {seed})", leave=False)
        run.elbo_trace, run.converged = [], False
        run.merges, run.merge_seconds = 0, 0.0
        current = None  # ELBO of the run's state: the last sweep's, or an accepted merge's
        start = time.perf_counter()
        for it in range(1, self.max_iter + 1):
            t0 = time.perf_counter()
            elbo = float(run.sweep())
            prev, current = current, elbo
            run.elbo_trace.append(elbo)
            if not math.isfinite(elbo):
                raise FloatingPointError(f"the ELBO became {elbo} at sweep {it} (seed {seed})")
            change = math.inf if prev is None else (elbo - prev) / abs(elbo)
            if prev is not None and elbo < prev - MONOTONE_RTOL * abs(prev):
                self._report_decrease(it, prev, elbo, run.dtype)
            logger.log(
                logging.INFO if self.verbose else logging.DEBUG,
                "restart %d seed %d sweep %d elbo %.10g rel_change %.3e clusters %s seconds %.3f",
                restart, seed, it, elbo, change, run.occupied_summary(), time.perf_counter() - t0,
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(elbo=f"{elbo:.6g}", rel=f"{change:.1e}")
            if prev is not None and abs(elbo - prev) <= tol * abs(elbo):
                merged = self._try_merges(run, elbo, tol, seed, restart) if it < self.max_iter else None
                if merged is not None:
                    current = merged
                    continue
                run.converged = True
                break
        if bar is not None:
            bar.close()
        run.n_iter = len(run.elbo_trace)
        run.seconds = time.perf_counter() - start
        if not run.converged:
            warnings.warn(
                f"{type(self).__name__} restart {restart} (seed {seed}) did not converge in "
                f"{self.max_iter} sweeps (last relative change {change:.3e} > tol {tol:.1e}); "
                "raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _try_merges(self, run, elbo: float, tol: float, seed: int, restart: int) -> float | None:
        """Merge moves at a converged state, where model and run support them; the new ELBO or None."""
        if not (getattr(self, "merge", False) and getattr(run, "SUPPORTS_MERGES", False)):
            return None
        start = time.perf_counter()
        accepted = run.merge_individual_clusters(elbo, tol)
        run.merge_seconds += time.perf_counter() - start
        for keep, drop, new_elbo in accepted:
            logger.log(
                logging.INFO if self.verbose else logging.DEBUG,
                "restart %d seed %d after sweep %d: merged individual cluster %d into %d, elbo %.10g",
                restart, seed, len(run.elbo_trace), drop, keep, new_elbo,
            )
        run.merges += len(accepted)
        return accepted[-1][2] if accepted else None

    def _report_decrease(self, it: int, prev: float, elbo: float, dtype: torch.dtype) -> None:
        msg = f"ELBO decreased at sweep {it}: {prev:.12g} -> {elbo:.12g} (relative {(prev - elbo) / abs(prev):.3e})"
        if dtype == torch.float64 and self.check_monotone:
            raise ELBODecreaseError(msg)
        logger.warning("%s; float32 rounding at this scale is expected", msg)

    def fit(self, X, Y, group):
        """Fit by CAVI with ``n_init`` restarts and keep the run with the largest final ELBO.

        Parameters
        ----------
        X : array (J, q) or None
            Individual-level vectors (None for models without that layer).
        Y : array (N, p)
            Cell-level vectors.
        group : array (N,) of int
            Individual of each cell, codes 0..J-1.

        Returns
        -------
        self
        """
        self._validate_params()
        wall = time.perf_counter()
        data = self._prepare(X, Y, group)
        tol = self._tolerance(data.dtype)
        best, restarts = None, []
        for r, seed in enumerate(self._restart_seeds()):
            gen = torch.Generator().manual_seed(seed)
            run = self._new_run(data, gen, seed)
            run.seed = seed
            self._run_to_convergence(run, tol, seed, r)
            restarts.append({"seed": seed, "elbo": run.elbo_trace[-1], "n_iter": run.n_iter,
                             "converged": run.converged, "seconds": run.seconds,
                             "merges": run.merges, "merge_seconds": run.merge_seconds})
            logger.info(
                "restart %d seed %d finished: elbo %.10g after %d sweeps (%s) in %.2f s",
                r, seed, run.elbo_trace[-1], run.n_iter,
                "converged" if run.converged else "not converged", run.seconds,
            )
            if best is None or run.elbo_trace[-1] > best.elbo_trace[-1]:
                best = run
        self.restarts_ = restarts
        self.seed_ = best.seed
        self.elbo_trace_ = np.asarray(best.elbo_trace)
        self.elbo_ = float(self.elbo_trace_[-1])
        self.n_iter_ = best.n_iter
        self.converged_ = best.converged
        self.device_ = str(data.device)
        self._store_fitted(best)
        self.fit_seconds_ = time.perf_counter() - wall
        return self

    # ------------------------------------------------------------------ persistence
    _scalar_fitted = ("elbo_", "n_iter_", "converged_", "seed_", "fit_seconds_", "device_")

    def save(self, path) -> Path:
        """Write the fitted model to one portable ``.npz`` file, atomically.

        It holds every posterior parameter, the labels, the ELBO trace, the hyperparameters, the
        seed, the package versions and the wall time; :meth:`load` needs no GPU.
        """
        if not hasattr(self, "elbo_trace_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        meta = {
            "class": type(self).__name__,
            "params": _jsonable(self.get_params()),
            "fitted": {k: _jsonable(getattr(self, k)) for k in self._scalar_fitted},
            "restarts": self.restarts_,
            "versions": _package_versions(),
        }
        arrays = {f"state__{k}": v for k, v in self._state_arrays().items()}
        arrays["elbo_trace"] = self.elbo_trace_
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            buf = _io.BytesIO()
            np.savez_compressed(buf, **arrays)
            tmp.write_bytes(buf.getvalue())
        return path

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (on the CPU)."""
        path = Path(path)
        if not path.exists():
            raise NAMInputError(f"no saved model at {path}")
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(arrays.pop("meta_json").tobytes().decode())
        if meta["class"] != cls.__name__ and cls is not VariationalEstimator:
            raise NAMInputError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        target = cls if cls is not VariationalEstimator else _registry()[meta["class"]]
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
        model = target(**params)
        for k, v in meta["fitted"].items():
            setattr(model, k, v)
        model.restarts_ = meta["restarts"]
        model.versions_ = meta["versions"]
        model.elbo_trace_ = arrays.pop("elbo_trace")
        state = {k.removeprefix("state__"): v for k, v in arrays.items()}
        model._restore_state(state)
        return model


def _registry() -> dict[str, type]:
    from .. import models

    classes = {}
    for name in models.__all__:
        obj = getattr(models, name)
        if isinstance(obj, type) and issubclass(obj, VariationalEstimator):
            classes[name] = obj
    return classes


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def select_best(paths) -> tuple[VariationalEstimator, Path]:
    """Load fits saved by separate restarts and return (the one with the largest ELBO, its path).

    All fits must be of the same class, fitted to the same data with the same hyperparameters
    (the seed may differ); the full ELBO is then comparable across them.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise NAMInputError("select_best needs at least one saved fit")
    models = [VariationalEstimator.load(p) for p in paths]
    ref = {k: v for k, v in models[0].get_params().items() if k != "seed"}
    for m, p in zip(models[1:], paths[1:], strict=True):
        other = {k: v for k, v in m.get_params().items() if k != "seed"}
        if type(m) is not type(models[0]) or other != ref:
            raise NAMInputError(f"{p} was fitted with other settings than {paths[0]}; ELBOs are not comparable")
    best = max(range(len(models)), key=lambda i: models[i].elbo_)
    model = models[best]
    model.restarts_ = [r for m in models for r in m.restarts_]
    return model, paths[best]
