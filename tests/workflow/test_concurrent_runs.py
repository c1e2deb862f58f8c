"""Two runs started at once in the same folder: the second stops at once with Snakemake's lock
message, and the first finishes unaffected."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from nam_core.intermediates import intact_problem

from .conftest import SMALL_CONFIG, SNAKEFILE, output_of, snakemake

pytestmark = pytest.mark.slow

LOCK_MESSAGE = "Directory cannot be locked"
REFIT = ("--cores", "1", "--configfile", str(SMALL_CONFIG), "--forcerun", "fit_nam",
         "--until", "select_best_fit")


def test_the_second_run_is_refused_and_the_first_finishes(small_run, tmp_path):
    for name in ("results", ".snakemake"):
        shutil.copytree(small_run["dir"] / name, tmp_path / name, symlinks=True)
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    began = time.time()
    first = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                              *REFIT], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        locks = tmp_path / ".snakemake" / "locks"
        deadline = time.monotonic() + 120
        while not (locks.is_dir() and any(locks.iterdir())):
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the first run never locked the folder"
            time.sleep(0.2)
        start = time.monotonic()
        second = snakemake(tmp_path, *REFIT)
        refused_after = time.monotonic() - start
        assert first.poll() is None, "the first run ended before the second was tried"
    finally:
        text = first.communicate(timeout=600)[0]
    assert second.returncode != 0
    assert LOCK_MESSAGE in output_of(second), output_of(second)[-3000:]
    assert "Execute" not in output_of(second)  # no job of the second run started
    assert refused_after < 60
    assert first.returncode == 0, text[-3000:]
    best = tmp_path / "results" / "small" / "fit" / "best.npz"
    assert best.stat().st_mtime > began and intact_problem(best) is None  # refitted, whole
    assert not locks.exists() or not any(locks.iterdir()), "the first run released its locks"
