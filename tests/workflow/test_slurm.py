"""profiles/slurm on a real single-node SLURM cluster: every job of a small DAG runs under SLURM.

Needs root and the Debian packages slurm-wlm and munge (``.ci/run`` installs them); skipped
without them, except in CI (``CI=true``, or ``NAM_REQUIRE_SLURM=1`` as ``.ci/run`` sets), where
that is a failure. Starts its own munged, slurmctld and slurmd (``slurm_cluster.py``), without
accounting, and stops them also when the run fails. Most of its time is Snakemake starting
inside each of the 6 jobs and the plugin's status polling.
"""

import importlib.util
import os
import re

import pytest
import yaml

from .conftest import ROOT, SMALL_CONFIG, output_of, planned_jobs, snakemake
from .slurm_cluster import PARTITION, missing_programs, slurm_cluster

COHORT = "slurm"
TARGET = f"results/{COHORT}/fit/restarts/seed0.npz"  # 6 jobs: demo cohort to one NAM fit


def _unavailable() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root to start munged, slurmctld and slurmd"
    if missing_programs():
        return (f"{', '.join(missing_programs())} not installed "
                "(apt-get install slurm-wlm munge)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')"
    return None


@pytest.fixture
def cluster(tmp_path):
    reason = _unavailable()
    if reason:
        if (os.environ.get("CI", "").lower() in ("true", "1")
                or os.environ.get("NAM_REQUIRE_SLURM") == "1"):
            pytest.fail(f"CI must run the SLURM test: {reason}")
        pytest.skip(reason)
    root = tmp_path / "slurm"
    root.mkdir()
    with slurm_cluster(root) as running:
        yield running


def test_profile_from_profiles_slurm(tmp_path, cluster, monkeypatch):
    """The profile as shipped, with shorter waits: no account, squeue status, no accounting."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile |= {
        "latency-wait": 5,  # one node: outputs are there when the job ends
        "slurm-init-seconds-before-status-checks": 2,
        "slurm-logdir": str(tmp_path / "slurm_logs"),
        "retries": 0,
    }
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile/config.yaml").write_text(yaml.safe_dump(profile))
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    config["cohort"] = COHORT
    config["demo"] |= {"n_individuals": 30, "mean_cells": 20, "n_snps": 1000}
    config["fit"]["seeds"] = [0]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    workdir.mkdir()
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))  # for Snakemake's sbatch and squeue
    args = (TARGET, "--profile", tmp_path / "profile", "--configfile", tmp_path / "config.yaml")
    # A limit, not a target: polling sacct without accounting hung for 11 minutes.
    proc = snakemake(workdir, *args, timeout=600)
    log = output_of(proc)
    planned = planned_jobs(proc)  # the "Job stats" table the run prints first
    assert proc.returncode == 0, f"{log[-4000:]}\n{cluster.logs()}"
    assert (workdir / TARGET).is_file()

    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
    jobs = cluster.finished_jobs()
    assert sum(planned.values()) == len(submitted) == len(jobs) == 6, (planned, submitted, jobs)
    assert {job["JobId"] for job in jobs} == submitted
    for job in jobs:
        assert job["JobState"] == "COMPLETED" and job["Partition"] == PARTITION, job
        assert job["WorkDir"] == str(workdir) and job["Account"] == "", job
    assert "Falling back to 'sacct'" not in log
    fit_log = (workdir / f"results/{COHORT}/logs/fit_nam/seed0.log").read_text()
    assert "fitting on cpu (torch" in fit_log  # the node has no GPU; the job says what it used
