"""One job of a simulation study: simulate one replicate, fit one method, score it, record it.

The job's spec comes from :func:`nam_core.study.design.job_spec`; its record is standard JSON
(:func:`write_run`, :func:`read_run`), read back by :mod:`nam_core.study.aggregation`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..io import atomic_path, json_compatible
from ..synthetic.simulate import simulate
from .design import describe_settings

__all__ = ["label_metrics", "read_run", "run_job", "write_run"]

logger = logging.getLogger(__name__)


def label_metrics(true: np.ndarray, pred: np.ndarray | None) -> dict:
    """ARI, NMI and occupied cluster counts of ``pred`` against ``true`` (NaN when pred is None)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    n_true = int(np.unique(true).size)
    if pred is None:
        return {"ari": math.nan, "nmi": math.nan, "n_occupied": math.nan, "n_true": n_true}
    pred = np.asarray(pred)
    if pred.shape != np.shape(true):
        raise NAMInputError(f"predicted labels have shape {pred.shape}, truth {np.shape(true)}")
    return {
        "ari": float(adjusted_rand_score(true, pred)),
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "n_occupied": int(np.unique(pred).size),
        "n_true": n_true,
    }


@contextlib.contextmanager
def _limited_threads(threads: int):
    """Torch, BLAS and OpenMP pools limited to ``threads`` inside; torch's count restored after.

    Several single-thread jobs share a machine's cores; torch's default (every core) makes them
    contend, which slowed the fits of this study tenfold on a loaded two-core machine.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (``getrusage`` maxrss), MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def run_job(spec: dict, threads: int = 1) -> dict:
    """Simulate one replicate, fit one method, score it.

    Parameters
    ----------
    spec : dict
        From :func:`nam_core.study.design.job_spec`.
    threads : int
        CPU threads for torch and the BLAS/OpenMP pools.

    Returns
    -------
    dict
        The spec plus ``data`` (J, N, true counts), ``metrics`` (level -> ari, nmi, n_occupied,
        n_true), ``elbo``, ``n_iter``, ``converged``, ``fit_seconds``, ``wall_seconds`` (simulate +
        fit + score), ``peak_rss_mib`` (the job process's maxrss, imports included),
        ``peak_gpu_mib`` (NaN off CUDA), ``software`` and ``threads``.
    """
    import torch

    from .. import __version__
    from .methods import fit_method

    start = time.perf_counter()
    gen, fit = spec["generator"], spec["fit"]
    logger.info("scenario %s replicate %d (seed %d): simulating %s", spec["scenario"],
                spec["replicate"], spec["seed"], describe_settings(gen))
    data = simulate(**gen, seed=spec["seed"])
    logger.info("%d individuals, %d cells; fitting %s", data.X.shape[0], data.Y.shape[0],
                spec["method"])
    cuda = torch.cuda.is_available() and fit["device"] != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with _limited_threads(int(threads)):
        res = fit_method(
            spec["method"], data.X, data.Y, data.group, settings=FitSettings.from_config(fit),
            seed=spec["seed"], oracle_K=gen["n_clusters"], oracle_L=gen["n_cell_types"],
        )
    metrics = {
        "individual": label_metrics(data.individual_labels, res.individual_labels),
        "cell": label_metrics(data.cell_labels, res.cell_labels),
    }
    if gen.get("conflicting"):
        metrics["composition"] = label_metrics(data.composition_labels, res.individual_labels)
    out = dict(spec)
    out.update(
        data={"J": int(data.X.shape[0]), "N": int(data.Y.shape[0]),
              "K_true": int(np.unique(data.individual_labels).size),
              "L_true": int(np.unique(data.cell_labels).size)},
        metrics=metrics,
        elbo=float(res.elbo),
        n_iter=int(res.n_iter),
        converged=getattr(res.model, "converged_", None),
        fit_seconds=float(res.seconds),
        wall_seconds=time.perf_counter() - start,
        peak_rss_mib=_peak_rss_mib(),
        peak_gpu_mib=torch.cuda.max_memory_allocated() / 2**20 if cuda else math.nan,
        threads=int(threads),
        software={"nam_core": __version__, "torch": torch.__version__,
                  "python": sys.version.split()[0]},
    )
    if out["converged"] is not None:
        out["converged"] = bool(out["converged"])
    logger.info(
        "%s: individual ARI %.3f, cell ARI %.3f, %d sweeps, %.2f s fit, peak RSS %.0f MiB",
        spec["method"], metrics["individual"]["ari"], metrics["cell"]["ari"], out["n_iter"],
        out["fit_seconds"], out["peak_rss_mib"],
    )
    return out


def write_run(result: dict, path: str | os.PathLike) -> None:
    """Write one job's result as standard JSON (NaN as null, infinity as "inf"), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_compatible(result), indent=1, allow_nan=False) + "\n")


def read_run(path: str | os.PathLike) -> dict:
    """Read a result of :func:`write_run`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NAMInputError(f"cannot read simulation run {path}: {err}") from err
