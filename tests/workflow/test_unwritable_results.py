"""A results folder that cannot be written stops the run before any job, naming the folder.

Root may write anywhere, so the folders are made immutable (chattr +i) or mounted read-only
(a tmpfs); the tests skip where neither is allowed. Each run stops at parse time (seconds).
"""

import subprocess
from pathlib import Path

import pytest

from nam_core.errors import NAMInputError
from nam_core.folders import check_writable, unwritable_folders

from .conftest import SMALL_CONFIG, output_of, snakemake


def immutable(path: Path):
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"chattr +i is not allowed here: {done.stderr.decode().strip()}")


@pytest.fixture
def locked_results(tmp_path):
    """results/small/fit made immutable inside an otherwise writable results/small."""
    fit = tmp_path / "results" / "small" / "fit"
    fit.mkdir(parents=True)
    immutable(fit)
    yield tmp_path, fit
    subprocess.run(["chattr", "-i", str(fit)], check=False)


def test_a_missing_results_folder_in_a_writable_place_is_fine(tmp_path):
    assert unwritable_folders(tmp_path / "results" / "small") == []
    check_writable(tmp_path / "results" / "small")
    assert not (tmp_path / "results").exists()  # the check creates nothing


def test_an_immutable_subfolder_is_named(locked_results):
    workdir, fit = locked_results
    assert unwritable_folders(workdir / "results" / "small") == [fit]
    with pytest.raises(NAMInputError, match=rf"1 folder not writable \({fit}\)"):
        check_writable(workdir / "results" / "small")


def test_the_workflow_stops_before_any_job(locked_results):
    workdir, fit = locked_results
    proc = snakemake(workdir, "--cores", 1, "--configfile", SMALL_CONFIG)
    assert proc.returncode != 0
    text = output_of(proc)
    assert f"the results folder results/small/ cannot be written: 1 folder not writable ({fit})" \
        in text, text[-3000:]
    assert "no job was started" in text
    assert "Building DAG" not in text and "Execute" not in text


def test_a_read_only_mount_is_named(tmp_path):
    mount = tmp_path / "results"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with pytest.raises(NAMInputError, match=r"not writable .*on a read-only file system"):
            check_writable(mount / "small")
    finally:
        subprocess.run(["umount", str(mount)], check=False)
