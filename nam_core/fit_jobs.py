"""The workflow's two fits, one restart and the refinement, in one process or over ranks.

:func:`fit_restart` is one NAM restart (on the coarse subsample when ``coarse_fraction`` is
set) and :func:`refine_best` refines the best coarse restart on all cells. With
``settings.ranks`` above 1, :func:`run_on_ranks` runs the fit over that many
``torch.distributed`` ranks on this machine (``torchrun``; ``NAM(distributed=True)``): every
rank reads the inputs, the passes over the cells are divided between them, and rank 0 writes
the fit. Each rank runs ``python -m nam_core.fit_jobs JOB.json`` (:func:`write_job`);
started by ``srun --ntasks N`` instead, the same command takes its rank and world size from
SLURM's variables, so one fit can span nodes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .engine.distributed import init_from_environment, is_main_rank, leave_process_group
from .engine.settings import FitSettings
from .errors import NAMInputError
from .inputs.fit_inputs import read_fit_inputs
from .models.coarse_to_fine import coarse_cells, merge_atoms_of_best, refine_on_all_cells
from .models.nam import NAM
from .models.registry import build_estimator

__all__ = ["fit_restart", "refine_best", "run_on_ranks", "rank_command", "write_job"]

logger = logging.getLogger(__name__)
RANK_ERROR = "NAM error on rank"  # how a rank's failure line starts (the launcher quotes it)


def _coarse_cells(inputs, settings: FitSettings):
    """The cells (y, group) of every coarse restart: all of them without ``coarse_fraction``."""
    return coarse_cells(inputs.y, inputs.group, settings.coarse_fraction, settings.coarse_min_cells,
                        max_cells=settings.coarse_max_cells)


def fit_restart(inputs, settings: FitSettings, seed: int, checkpoint=None,
                distributed: bool = False) -> NAM:
    """One NAM restart (``n_init=1``) with ``seed`` on the fit inputs.

    With ``settings.coarse_fraction`` set, on the coarse subsample (the same for every seed) and
    without atom merges: :func:`refine_best` runs them on the chosen restart only.
    """
    settings = settings.with_changes(n_init=1)
    if settings.coarse_fraction is not None:
        settings = settings.with_changes(merge_atoms=False)
    model = build_estimator("nam", settings, seed=seed, verbose=True, checkpoint=checkpoint,
                            distributed=distributed)
    y, group = _coarse_cells(inputs, settings)
    return model.fit(inputs.x, y, group)


def refine_best(coarse: NAM, inputs, settings: FitSettings, checkpoint=None,
                distributed: bool = False) -> NAM:
    """The best coarse restart refined on all cells (:func:`refine_on_all_cells`).

    With atom merges set, they first run on the restart's own coarse cells
    (:func:`merge_atoms_of_best`; the restarts ran without them).
    """
    params = build_estimator("nam", settings, verbose=True, checkpoint=checkpoint,
                             distributed=distributed).get_params()
    if settings.coarse_fraction is not None and settings.merge_atoms:
        y, group = _coarse_cells(inputs, settings)
        logger.info("atom merges on the chosen restart (seed %d), on its coarse cells",
                    coarse.seed_)
        coarse = merge_atoms_of_best(coarse, inputs.x, y, group, **{**params, "checkpoint": None})
    return refine_on_all_cells(coarse, inputs.x, inputs.y, inputs.group, **params)


def rank_command(n_ranks: int, job_file: str) -> list[str]:
    """The command that runs ``job_file`` over ``n_ranks`` ranks on this machine (torchrun)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={n_ranks}", "-m", "nam_core.fit_jobs", job_file]


def write_job(path, task: str, settings: FitSettings, inputs, out, seed: int = 0, coarse=None) -> str:
    """Write the JSON job that :func:`rank_command` runs (``task``: "restart" or "refine")."""
    job = {"task": task, "settings": settings.as_dict(), "inputs": str(inputs), "out": str(out),
           "seed": int(seed), "coarse": None if coarse is None else str(coarse)}
    Path(path).write_text(json.dumps(job))
    return str(path)


def run_on_ranks(task: str, settings: FitSettings, inputs: str, out: str, seed: int = 0,
                 coarse: str | None = None) -> None:
    """Run a fit (``task`` "restart" or "refine") over ``settings.ranks`` local ranks.

    Each rank runs with one thread; their log lines come to this process's log. When a rank
    fails, raises NAMInputError quoting each failed rank's error (else the last lines of the
    output); ``out`` is then not written.
    """
    with tempfile.TemporaryDirectory(prefix="nam_ranks_") as folder:
        job_file = write_job(os.path.join(folder, "job.json"), task, settings, inputs, out, seed, coarse)
        command = rank_command(settings.ranks, job_file)
        logger.info("fit over %d ranks: %s", settings.ranks, " ".join(command))
        package_root = str(Path(__file__).resolve().parents[1])  # nam_core importable by the ranks
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
        tail: list[str] = []
        errors: list[str] = []
        for line in proc.stdout:
            logger.info("%s", line.rstrip())
            tail = (tail + [line.rstrip()])[-20:]
            if line.startswith(RANK_ERROR):
                errors.append(line.rstrip())
        if proc.wait():
            raise NAMInputError(f"the fit over {settings.ranks} ranks failed (exit {proc.returncode}):\n"
                                + "\n".join(errors or tail))


def _run_job(job: dict) -> None:
    """One rank's part of a job written by :func:`run_on_ranks`."""
    distributed = init_from_environment() > 1
    logging.basicConfig(level=logging.INFO if is_main_rank() else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        settings = FitSettings.from_config(job["settings"])
        inputs = read_fit_inputs(job["inputs"])
        if job["task"] == "restart":
            model = fit_restart(inputs, settings, job["seed"], distributed=distributed)
        elif job["task"] == "refine":
            model = refine_best(NAM.load(job["coarse"]), inputs, settings, distributed=distributed)
        else:
            raise NAMInputError(f"unknown fit task {job['task']!r}; known: restart, refine")
        if is_main_rank():
            model.save(job["out"])
    except Exception as error:
        print(f"{RANK_ERROR} {os.environ.get('RANK', '?')}: {type(error).__name__}: {error}", flush=True)
        raise
    finally:
        leave_process_group()


if __name__ == "__main__":  # one rank (threads: OMP_NUM_THREADS); alone, a one-process fit
    _run_job(json.loads(Path(sys.argv[1]).read_text()))
