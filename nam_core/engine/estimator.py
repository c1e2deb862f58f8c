"""The estimator loop shared by every variational model (``docs/model.md`` sections 5.4 and 8).

Restarts, sweeps, convergence, merges, logging, checkpoints, saving and loading.

The engine knows the run protocol (:class:`~nam_core.engine.run.Run`) and nothing about any
model. A model subclasses :class:`VariationalEstimator` and provides

* ``_validate_params()``: raise NAMInputError for a bad hyperparameter;
* ``_prepare(X, Y, group)``: validated data on the device (raises NAMInputError early);
* ``_new_run(data)``: a :class:`~nam_core.engine.run.Run` (not yet initialised);
* ``_fitted_state(run, data)``: numpy arrays of the kept run, in internal order;
* ``_restore_state(arrays)``: sets the public fitted attributes (relabelled) from those arrays;
* ``_merge_layers()``: names of the run's merge layers to search at each convergence.

Every subclass registers itself by class name, so :meth:`VariationalEstimator.load` can rebuild
any saved model without the engine importing it.
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

from ..components.cells import QUAD_MODES
from ..errors import NAMInputError
from ..io import atomic_path, check_finite, json_compatible
from ..validation import check_int_at_least, resolve_dtype
from .checkpoint import Checkpoint
from .float_mode import subnormals_flushed
from .merges import greedy_merges
from .restart_progress import DeferredSigterm, RestartProgress

__all__ = ["VariationalEstimator", "ConvergenceWarning", "ELBODecreaseError", "FitInterrupted",
           "select_best"]

logger = logging.getLogger(__name__)

MONOTONE_RTOL = 1e-8
#: In float32, ELBO drops up to this relative size are rounding (INFO); larger ones warn. The demo's
#: dips reach 4.3e-6 (8 dips over 4 restarts, 17,836 cells).
FLOAT32_NOISE_RTOL = 1e-4

_REGISTRY: dict[str, type] = {}


class ConvergenceWarning(UserWarning):
    """A fit stopped at ``max_iter`` before the relative ELBO change fell below ``tol``."""


class ELBODecreaseError(RuntimeError):
    """The ELBO decreased in float64 by more than rounding allows: a bug, never expected."""


class FitInterrupted(RuntimeError):
    """SIGTERM reached a fit; its checkpoint was written and a rerun resumes from it."""


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
    #: fit options that are not hyperparameters (two fits differing in them are comparable)
    _run_only_params: tuple[str, ...] = ("seed", "checkpoint", "checkpoint_every", "verbose")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        """Constructor arguments as given."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_run_options(self) -> None:
        """Restarts, sweeps and the cell pass's options (memory, quadratic forms, precision)."""
        check_int_at_least(self.n_init, "n_init", 1)
        check_int_at_least(self.max_iter, "max_iter", 1)
        check_int_at_least(self.memory_budget, "memory_budget", 1 << 16)
        if self.quad not in (*QUAD_MODES, "auto"):
            raise NAMInputError(f"quad must be 'auto' or one of {QUAD_MODES}, got {self.quad!r}")
        if self.cache_features not in (True, False, "auto"):
            raise NAMInputError(f"cache_features must be True, False or 'auto', got {self.cache_features!r}")
        resolve_dtype(self.dtype)

    def _merge_layers(self) -> tuple[str, ...]:
        """Names of the run's merge layers searched at each convergence (none by default)."""
        return ()

    def _checkpoint_settings(self) -> tuple[object, int] | None:
        """(path, sweeps between writes) for models with a ``checkpoint`` option, else None."""
        return None

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

    def _log(self, msg: str, *args) -> None:
        logger.log(logging.INFO if self.verbose else logging.DEBUG, msg, *args)

    def _run_to_convergence(self, run, prog: RestartProgress, tol: float, ckpt: Checkpoint | None,
                            term: DeferredSigterm) -> None:
        """Sweep ``run`` until the relative ELBO change is <= tol or max_iter sweeps."""
        bar = None
        if self.verbose and sys.stderr.isatty():
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_iter, initial=len(prog.elbo_trace),
                       desc=f"restart {prog.restart} (seed {prog.seed})", leave=False)
        # ELBO of the run's state: the last sweep's, or an accepted merge's
        current = prog.elbo_trace[-1] if prog.elbo_trace else None
        change = math.inf
        start = time.perf_counter() - prog.seconds
        while len(prog.elbo_trace) < self.max_iter:
            it = len(prog.elbo_trace) + 1
            t0 = time.perf_counter()
            elbo = float(run.sweep())
            prev, current = current, elbo
            prog.elbo_trace.append(elbo)
            prog.sweep_seconds.append(time.perf_counter() - t0)
            if not math.isfinite(elbo):
                raise FloatingPointError(f"the ELBO became {elbo} at sweep {it} (seed {prog.seed})")
            change = math.inf if prev is None else (elbo - prev) / abs(elbo)
            if prev is not None and elbo < prev - MONOTONE_RTOL * abs(prev):
                self._report_decrease(it, prev, elbo, run.dtype)
            self._log("restart %d seed %d sweep %d elbo %.10g rel_change %.3e clusters %s seconds %.3f",
                      prog.restart, prog.seed, it, elbo, change, run.occupied_summary(),
                      prog.sweep_seconds[-1])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(elbo=f"{elbo:.6g}", rel=f"{change:.1e}")
            if prev is not None and abs(elbo - prev) <= tol * abs(elbo):
                merged = self._try_merges(run, prog, elbo, tol) if it < self.max_iter else None
                if merged is None:
                    prog.converged = True
                    break
                current = merged
            prog.seconds = time.perf_counter() - start
            if ckpt is not None and (term.received or it % ckpt.every == 0):
                ckpt.write_current(run, prog)
            if term.received:
                raise FitInterrupted(f"SIGTERM after sweep {it}; checkpoint written to {ckpt.path}"
                                     if ckpt is not None else f"SIGTERM after sweep {it}")
        if bar is not None:
            bar.close()
        prog.seconds = time.perf_counter() - start
        if not prog.converged:
            warnings.warn(
                f"{type(self).__name__} restart {prog.restart} (seed {prog.seed}) did not converge in "
                f"{self.max_iter} sweeps (last relative change {change:.3e} > tol {tol:.1e}); "
                "raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _try_merges(self, run, prog: RestartProgress, elbo: float, tol: float) -> float | None:
        """Merge moves at a converged state on every enabled layer; the new ELBO or None.

        Candidates of the "individuals" layer are recorded in ``alternatives_``.
        """
        start, merged = time.perf_counter(), None
        for name in self._merge_layers():
            if name not in run.merge_layers:
                continue
            individuals = name == "individuals"
            accepted = greedy_merges(run, elbo, tol, prog.alternatives if individuals else None,
                                     prog.searches, run.merge_layers[name])
            if individuals and prog.alternatives:
                prog.searches = prog.alternatives[-1]["search"] + 1
            for keep, drop, new_elbo in accepted:
                self._log("restart %d seed %d after sweep %d: merged %s %d into %d, elbo %.10g",
                          prog.restart, prog.seed, len(prog.elbo_trace), name, drop, keep, new_elbo)
            if accepted:
                elbo = merged = accepted[-1][2]
            if individuals:
                prog.merges += len(accepted)
            else:
                prog.atom_merges += len(accepted)
        prog.merge_seconds += time.perf_counter() - start
        return merged

    def _report_decrease(self, it: int, prev: float, elbo: float, dtype: torch.dtype) -> None:
        msg = f"ELBO decreased at sweep {it}: {prev:.12g} -> {elbo:.12g} (relative {(prev - elbo) / abs(prev):.3e})"
        if dtype == torch.float64 and self.check_monotone:
            raise ELBODecreaseError(msg)
        if (prev - elbo) <= FLOAT32_NOISE_RTOL * abs(prev):
            logger.info("%s; float32 rounding at this scale is expected", msg)
        else:
            logger.warning("%s; larger than float32 rounding explains: try fit.dtype float64", msg)

    def _checkpoint(self, data) -> Checkpoint | None:
        settings = self._checkpoint_settings()
        if settings is None:
            return None
        path, every = settings
        # the seed too: a checkpoint of another seed's restarts is never resumed
        identity = {k: v for k, v in self.get_params().items() if k not in self._run_only_params}
        return Checkpoint(path, every, type(self).__name__, identity | {"seed": self.seed}, data)

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
        with subnormals_flushed():  # a sweep near convergence costs what a first sweep does
            return self._fit(X, Y, group)

    def _fit(self, X, Y, group):
        """:meth:`fit` with the floating-point mode set."""
        self._validate_params()
        wall = time.perf_counter()
        data = self._prepare(X, Y, group)
        tol = self._tolerance(data.dtype)
        ckpt = self._checkpoint(data)
        best, best_prog, done = None, None, []
        resumed = ckpt.load() if ckpt is not None else None
        with DeferredSigterm(ckpt is not None) as term:
            for r, seed in enumerate(self._restart_seeds()):
                run = self._new_run(data)
                prog = RestartProgress(r, seed)
                if resumed is not None and r < len(resumed.finished):
                    prog.__dict__.update(resumed.finished[r])
                    done.append(prog)
                    if resumed.best_restart == r:
                        run.load_state(resumed.best_state)
                        best, best_prog = run, prog
                    continue
                if resumed is not None and resumed.current is not None and resumed.current["restart"] == r:
                    run.load_state(resumed.current_state)
                    prog.__dict__.update(resumed.current)
                    logger.info("restart %d seed %d resumed from %s after sweep %d", r, seed, ckpt.path,
                                len(prog.elbo_trace))
                else:
                    run.initialise(torch.Generator().manual_seed(seed), seed)
                self._run_to_convergence(run, prog, tol, ckpt, term)
                done.append(prog)
                logger.info(
                    "restart %d seed %d finished: elbo %.10g after %d sweeps (%s) in %.2f s",
                    r, seed, prog.elbo_trace[-1], len(prog.elbo_trace),
                    "converged" if prog.converged else "not converged", prog.seconds,
                )
                if best is None or prog.elbo_trace[-1] > best_prog.elbo_trace[-1]:
                    best, best_prog = run, prog
                if ckpt is not None:
                    ckpt.write_finished(done, best, best_prog)
        self._store(best, best_prog, done, data)
        self.fit_seconds_ = time.perf_counter() - wall
        if ckpt is not None:
            ckpt.remove()
        return self

    def initialised_run(self, X, Y, group, seed: int = 0):
        """Validate, prepare and initialise one run without sweeping: (run, prepared data).

        For exact comparisons with an independent implementation (``python -m nam_core.case``)
        and for tests of single blocks.
        """
        self._validate_params()
        data = self._prepare(X, Y, group)
        run = self._new_run(data)
        run.initialise(torch.Generator().manual_seed(seed), seed)
        return run, data

    def _store(self, run, prog: RestartProgress, done: list[RestartProgress], data) -> None:
        """Set every fitted attribute from the kept run."""
        self.restarts_ = [p.record() for p in done]
        self.seed_ = prog.seed
        self.elbo_trace_ = np.asarray(prog.elbo_trace)
        self.elbo_ = float(self.elbo_trace_[-1])
        self.n_iter_ = len(prog.elbo_trace)
        self.converged_ = prog.converged
        self.device_ = str(data.device)
        self._restore_state(self._fitted_state(run, data))
        self.alternatives_ = self._labelled_alternatives(prog.alternatives)

    def _labelled_alternatives(self, alternatives: list[dict]) -> list[dict]:
        """Merge candidates with cluster indices turned into the fitted labels."""
        rank = np.argsort(getattr(self, "individual_order_", np.arange(0)))
        return [a | {"keep": int(rank[a["keep"]]), "drop": int(rank[a["drop"]])} for a in alternatives]

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
            "params": json_compatible(self.get_params(), keep_non_finite=True),
            "fitted": {k: json_compatible(getattr(self, k), keep_non_finite=True) for k in self._scalar_fitted},
            "restarts": self.restarts_,
            "alternatives": json_compatible(getattr(self, "alternatives_", []), keep_non_finite=True),
            "versions": _package_versions(),
        }
        arrays = {f"state__{k}": v for k, v in self._state_arrays().items()}
        arrays["elbo_trace"] = self.elbo_trace_
        check_finite(arrays, path)  # a diverged fit is never saved as a result
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            buf = _io.BytesIO()
            np.savez_compressed(buf, **arrays)
            tmp.write_bytes(buf.getvalue())
        return path

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self._state)

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
        if meta["class"] not in _REGISTRY:
            raise NAMInputError(f"{path} holds a {meta['class']}, which this version does not know")
        target = _REGISTRY[meta["class"]]
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
        model = target(**params)
        for k, v in meta["fitted"].items():
            setattr(model, k, v)
        model.restarts_ = meta["restarts"]
        model.alternatives_ = meta.get("alternatives", [])
        model.versions_ = meta["versions"]
        model.elbo_trace_ = arrays.pop("elbo_trace")
        state = {k.removeprefix("state__"): v for k, v in arrays.items()}
        model._restore_state(state)
        return model


def select_best(paths, load=None) -> tuple[VariationalEstimator, Path]:
    """Load fits saved by separate restarts and return (the one with the largest ELBO, its path).

    All fits must be of the same class, fitted to the same data with the same hyperparameters
    (the seed, checkpoint and verbosity may differ); the full ELBO is then comparable across them.
    ``load`` (path -> model) replaces :meth:`VariationalEstimator.load`, e.g. to reuse fits
    loaded already.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise NAMInputError("select_best needs at least one saved fit")
    models = [(load or VariationalEstimator.load)(p) for p in paths]
    def hyperparameters(m):
        return {k: v for k, v in m.get_params().items() if k not in m._run_only_params}

    ref = hyperparameters(models[0])
    for m, p in zip(models[1:], paths[1:], strict=True):
        other = hyperparameters(m)
        if type(m) is not type(models[0]) or other != ref:
            raise NAMInputError(f"{p} was fitted with other settings than {paths[0]}; ELBOs are not comparable")
    best = max(range(len(models)), key=lambda i: models[i].elbo_)
    model = models[best]
    model.restarts_ = [r for m in models for r in m.restarts_]
    return model, paths[best]
