"""Bad configs fail at config load; a damaged intermediate is rebuilt; a killed run recovers.

The config cases are dry runs (a few seconds each); the recovery cases copy the small run's
results (tests/workflow/conftest.py) and run Snakemake for real on the copy.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nam_core.intermediates import intact_problem

from .conftest import SMALL_CONFIG, SNAKEFILE, output_of, planned_jobs, snakemake


def config_file(tmp_path, **sections):
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def placeholder_inputs(tmp_path):
    for name in ("g.bed", "g.bim", "g.fam", "c.h5ad"):
        (tmp_path / name).write_bytes(b"")
    return {"bfile": str(tmp_path / "g"), "counts": str(tmp_path / "c.h5ad")}


@pytest.mark.parametrize(("case", "words"), [
    ("demo_and_inputs", ["demo.enabled is true but inputs.bfile and inputs.counts is set"]),
    ("one_input_only", ["demo.enabled is null but inputs.counts is not set"]),
    ("device_index", ["fit.device is 'cuda:7' but this machine sees"]),
    ("pcs_above_hvgs", ["expression.n_pcs (600) exceeds expression.n_top_genes (500)"]),
])
def test_bad_config_fails_at_config_load(tmp_path, case, words):
    files = placeholder_inputs(tmp_path)
    sections = {
        "demo_and_inputs": {"demo": {"enabled": True}, "inputs": files},
        "one_input_only": {"demo": {"enabled": None}, "inputs": {"bfile": files["bfile"]}},
        "device_index": {"fit": {"device": "cuda:7"}},
        "pcs_above_hvgs": {"expression": {"n_pcs": 600}},
    }[case]
    proc = snakemake(tmp_path, "-n", "--cores", 1, "--configfile", config_file(tmp_path, **sections))
    assert proc.returncode != 0
    for word in words:
        assert word in output_of(proc), output_of(proc)[-2000:]
    assert "Building DAG" not in output_of(proc)  # before any job is planned
    assert not (tmp_path / "results").exists()


def test_cohort_config_without_demo_switch_analyses_the_cohort_and_says_so(tmp_path):
    files = placeholder_inputs(tmp_path)
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    del cfg["demo"]
    cfg["cohort"], cfg["inputs"] = "mine", files
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--cores", 1, "--configfile", path)
    assert proc.returncode == 0, output_of(proc)[-2000:]
    assert f"NAM: analysing cohort 'mine': genotypes {files['bfile']}" in output_of(proc)
    assert "make_demo_cohort" not in planned_jobs(proc)


@pytest.fixture
def finished_copy(small_run, tmp_path):
    """A copy of the small run's finished working directory (results and .snakemake)."""
    for name in ("results", ".snakemake"):
        shutil.copytree(small_run["dir"] / name, tmp_path / name, symlinks=True)
    return tmp_path, tmp_path / "results" / "small"


@pytest.mark.slow
def test_truncated_fit_inputs_is_rebuilt_not_trusted(finished_copy):
    """fit/inputs.npz cut in half, its mtime left older than everything (mtime says nothing)."""
    workdir, res = finished_copy
    inputs, best = res / "fit" / "inputs.npz", res / "fit" / "best.npz"
    before = best.stat().st_mtime
    data = inputs.read_bytes()
    inputs.write_bytes(data[: len(data) // 2])
    os.utime(inputs, (before - 3600, before - 3600))
    plan = snakemake(workdir, "-n", "--cores", 2, "--configfile", SMALL_CONFIG)
    assert "results/small/fit/inputs.npz is not a complete .npz" in output_of(plan)
    jobs = planned_jobs(plan)
    assert jobs["assemble_fit_inputs"] == 1 and jobs["fit_nam"] == 3, output_of(plan)[-3000:]
    assert jobs["select_best_fit"] == 1 and "compute_genotype_pcs" not in jobs
    proc = snakemake(workdir, "--cores", 2, "--configfile", SMALL_CONFIG, timeout=600)
    text = output_of(proc)
    assert proc.returncode == 0, text[-3000:]
    assert "Nothing to be done" not in text
    assert best.stat().st_mtime > before and inputs.read_bytes()[:2] == b"PK"
    again = snakemake(workdir, "-n", "--cores", 2, "--configfile", SMALL_CONFIG)
    assert planned_jobs(again) == {}, output_of(again)[-3000:]


@pytest.mark.slow
def test_sigkill_mid_run_then_unlock_and_rerun(finished_copy):
    """Kill -9 Snakemake and its jobs while write_results runs; recover as the README says."""
    workdir, res = finished_copy
    (res / "individuals.tsv").unlink()  # a final output of write_results: it and what follows rerun
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--cores", "1",
           "--configfile", str(SMALL_CONFIG)]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log = res / "logs" / "write_results.log"
    while time.time() < started + 120 and not (log.exists() and log.stat().st_mtime > started):
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    clustered = res / "fit" / "cell_annotations.h5ad"
    assert not clustered.exists() or intact_problem(clustered) is None
    # the README's recovery: --rerun-incomplete for the jobs that were running, --unlock for
    # the lock the killed run left (Snakemake reports them in either order)
    flags, hints = [], []
    for _ in range(3):
        again = snakemake(workdir, "--cores", 2, *flags, "--configfile", SMALL_CONFIG,
                          timeout=600)
        text = output_of(again)
        if again.returncode == 0:
            break
        if "IncompleteFilesException" in text and "--rerun-incomplete" not in flags:
            hints.append("--rerun-incomplete")
            flags.append("--rerun-incomplete")
        elif "Directory cannot be locked" in text:
            hints.append("--unlock")
            unlock = snakemake(workdir, "--unlock", "--configfile", SMALL_CONFIG)
            assert unlock.returncode == 0, output_of(unlock)
        else:
            pytest.fail(text[-3000:])
    assert again.returncode == 0 and hints, (hints, output_of(again)[-3000:])
    outputs = [p for p in res.rglob("*") if p.is_file() and not p.name.startswith(".")
               and p.suffix in (".npz", ".h5ad", ".tsv", ".png", ".pdf")]
    assert (res / "cells.h5ad") in outputs
    assert [p for p in outputs if intact_problem(p)] == []


def _processes_in(folder: Path | None) -> list[int]:
    """PIDs of live (not zombie) processes working in ``folder`` (any folder when None)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(proc / "cwd") if folder is not None else None
        except (OSError, IndexError):
            continue
        if state != "Z" and (folder is None or cwd == str(folder)):
            pids.append(int(proc.name))
    return pids


@pytest.mark.long
def test_jobs_end_when_snakemake_alone_is_sigkilled_during_the_fit(finished_copy):
    """SIGKILL to the Snakemake process only (not its jobs): the fit jobs end within seconds,
    leaving no partial fit and no temporary file."""
    workdir, res = finished_copy
    restarts = res / "fit" / "restarts"
    shutil.rmtree(res / "fit" / "checkpoints", ignore_errors=True)
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    # restarts are intermediates: deleting them reruns nothing, so force the fit
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--cores", "2",
           "--forcerun", "fit_nam", "--configfile", str(SMALL_CONFIG)]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    logs = res / "logs" / "fit_nam"
    while time.time() < started + 180 and not any(
        log.stat().st_mtime > started for log in logs.glob("seed*.log")
    ):
        time.sleep(0.1)
    time.sleep(2.0)
    jobs = _processes_in(workdir)
    jobs = [pid for pid in jobs if pid != proc.pid]
    assert jobs, "the fit jobs were running when Snakemake was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and [pid for pid in jobs if pid in _processes_in(None)]:
        time.sleep(0.2)
    alive = [pid for pid in jobs if pid in _processes_in(None)]
    for pid in alive:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "job processes outlived the killed Snakemake by 10 s"
    assert [p for p in restarts.glob("seed*.npz") if intact_problem(p)] == []
    assert list(res.rglob(".seed*.npz*")) == [], "temporary files are removed"
