"""The data-parallel fit: two gloo ranks on the CPU give the one-process fit."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nam_core import NAM, simulate
from nam_core.engine.distributed import shard_bounds
from nam_core.engine.settings import FitSettings
from nam_core.errors import NAMInputError
from nam_core.fit_jobs import fit_restart, refine_best, run_on_ranks, write_job
from nam_core.inputs.fit_inputs import FitInputs, write_fit_inputs

SETTINGS = dict(K=5, n_init=2, seed=0, dtype="float64", max_iter=300, tol=1e-6, merge=True,
                merge_atoms=True, verbose=False)
# Both restarts of each converge and merge individual clusters; the Gaussian fit also merges
# two cell atoms (its restart with seed 1), so every all-reduce of a merge search is used.
ATOMS = {"student_t": dict(atoms="student_t", L=8), "gaussian": dict(atoms="gaussian", L=12)}


def _data():
    d = simulate(J=40, n_clusters=2, q=2, p=4, seed=1)
    return d.X, d.Y, d.group


def _write_inputs(path) -> FitInputs:
    """The test data as the workflow's fit-inputs file at ``path``; returns what it holds."""
    X, Y, group = _data()
    inputs = FitInputs(x=X, y=Y, group=group, individuals=np.array([f"D{j}" for j in range(len(X))]),
                       cells=np.array([f"c{n}" for n in range(len(Y))]))
    write_fit_inputs(path, inputs)
    return inputs


def _fit_on_rank(rank: int, world_size: int, init_file: str, out: str, atoms: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    try:
        model = NAM(**SETTINGS, **ATOMS[atoms], distributed=True).fit(*_data())
        np.savez(f"{out}{rank}.npz", elbo=model.elbo_, trace=model.elbo_trace_,
                 individuals=model.individual_labels_, cells=model.cell_labels_,
                 n_iter=model.n_iter_, merges=[r["merges"] + r["atom_merges"] for r in model.restarts_])
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("atoms", sorted(ATOMS))
def test_two_ranks_equal_one_process(tmp_path, atoms):
    single = NAM(**SETTINGS, **ATOMS[atoms]).fit(*_data())
    mp.spawn(_fit_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "rank"), atoms), nprocs=2)
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        assert int(got["n_iter"]) == single.n_iter_
        assert got["merges"].tolist() == [r["merges"] + r["atom_merges"] for r in single.restarts_]
        np.testing.assert_allclose(got["trace"], single.elbo_trace_, rtol=1e-10, atol=0)
        assert abs(float(got["elbo"]) - single.elbo_) <= 1e-10 * abs(single.elbo_)
        np.testing.assert_array_equal(got["individuals"], single.individual_labels_)
        np.testing.assert_array_equal(got["cells"], single.cell_labels_)


def test_shards_are_whole_individuals_of_about_equal_cells():
    n_cells = torch.tensor([5.0, 1.0, 1.0, 1.0, 4.0, 4.0])
    assert shard_bounds(n_cells, 1) == [(0, 16)]
    assert shard_bounds(n_cells, 2) == [(0, 8), (8, 16)]
    three = shard_bounds(n_cells, 3)
    assert three[0][0] == 0 and three[-1][1] == 16
    assert all(a[1] == b[0] for a, b in zip(three[:-1], three[1:], strict=True))


def test_distributed_without_a_process_group_says_how_to_launch():
    with pytest.raises(NAMInputError, match="torchrun"):
        NAM(K=3, L=4, n_init=1, seed=0, distributed=True, verbose=False).fit(*_data())


def test_distributed_refuses_a_checkpoint(tmp_path):
    with pytest.raises(NAMInputError, match="checkpoint"):
        NAM(K=3, L=4, n_init=1, seed=0, distributed=True, checkpoint=tmp_path / "c.npz").fit(*_data())


def test_the_workflow_fits_over_two_ranks_equal_one_process(tmp_path):
    """A coarse restart and its refinement, each run by torchrun over 2 ranks as the fit rules do."""
    path = tmp_path / "inputs.npz"
    inputs = _write_inputs(path)
    settings = FitSettings(K=5, L=8, dtype="float64", max_iter=300, tol=1e-6, coarse_fraction=0.5,
                           memory_budget_mb=1)
    one = fit_restart(inputs, settings, seed=3)
    run_on_ranks("restart", settings.with_changes(ranks=2), path, tmp_path / "coarse.npz", seed=3)
    coarse = NAM.load(tmp_path / "coarse.npz")
    assert abs(coarse.elbo_ - one.elbo_) <= 1e-10 * abs(one.elbo_)
    np.testing.assert_array_equal(coarse.cell_labels_, one.cell_labels_)
    refined = refine_best(one, inputs, settings)
    run_on_ranks("refine", settings.with_changes(ranks=2), path, tmp_path / "best.npz",
                 coarse=tmp_path / "coarse.npz")
    best = NAM.load(tmp_path / "best.npz")
    assert abs(best.elbo_ - refined.elbo_) <= 1e-10 * abs(refined.elbo_)
    np.testing.assert_array_equal(best.individual_labels_, refined.individual_labels_)
    np.testing.assert_array_equal(best.cell_labels_, refined.cell_labels_)


def test_a_failing_rank_reports_its_last_lines(tmp_path):
    with pytest.raises(NAMInputError, match="failed.*\nNAM error on rank [01]: .*missing.npz"):
        run_on_ranks("restart", FitSettings(ranks=2), tmp_path / "missing.npz", tmp_path / "fit.npz")
    assert not (tmp_path / "fit.npz").exists()


def test_ranks_started_as_srun_starts_them_join_from_slurm_variables(tmp_path):
    """Two processes with SLURM_PROCID/SLURM_NTASKS (what srun sets) and no torchrun variables."""
    import socket
    import subprocess
    import sys

    inputs = _write_inputs(tmp_path / "inputs.npz")
    settings = FitSettings(K=5, L=8, dtype="float64", max_iter=300, tol=1e-6)
    job = write_job(tmp_path / "job.json", "restart", settings, tmp_path / "inputs.npz",
                    tmp_path / "fit.npz", seed=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clean = {k: v for k, v in os.environ.items()
             if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    procs = [subprocess.Popen([sys.executable, "-m", "nam_core.fit_jobs", job], env={
        **clean, "SLURM_PROCID": str(r), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(r),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
        for r in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    one = fit_restart(inputs, settings, seed=2)
    got = NAM.load(tmp_path / "fit.npz")
    assert abs(got.elbo_ - one.elbo_) <= 1e-10 * abs(one.elbo_)
    np.testing.assert_array_equal(got.cell_labels_, one.cell_labels_)
