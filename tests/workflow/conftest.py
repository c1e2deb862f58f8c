import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
SMALL_CONFIG = ROOT / ".test/config/config.yaml"  # the small demo the catalog and CI run


def snakemake(workdir, *args, timeout=900) -> subprocess.CompletedProcess:
    """Run the workflow's Snakefile with ``args`` in ``workdir``; stdout and stderr together."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), *map(str, args)]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def output_of(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs of each rule in a dry run's "Job stats" table ({} when there is nothing to do)."""
    lines = output_of(proc).splitlines()
    if "Job stats:" not in lines:
        return {}
    jobs = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The whole DAG on the small demo config, run once for real (about a minute on 2 cores)."""
    workdir = tmp_path_factory.mktemp("small_run")
    start = time.perf_counter()
    proc = snakemake(workdir, "--cores", 2, "--configfile", SMALL_CONFIG)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, output_of(proc)[-5000:]
    return {"dir": workdir, "results": workdir / "results" / "small", "proc": proc,
            "seconds": seconds}
