"""An input file the user cannot read stops the run before any job, naming the config key.

Root reads every file whatever its permissions, so the checks run as user ``nobody`` (setpriv);
they skip where that is not possible, or where ``nobody`` cannot read this checkout.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT, SNAKEFILE

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(args, cwd):
    """Run ``args`` as nobody in ``cwd`` (home and caches inside it)."""
    env = {**os.environ, "HOME": str(cwd), "XDG_CACHE_HOME": str(cwd / ".cache"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([*NOBODY, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture
def shared_folder(tmp_path_factory):
    """A folder nobody can enter and write, with readable PLINK files and unreadable counts."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to act as another user")
    probe = as_nobody(["test", "-r", SNAKEFILE], Path("/"))
    if probe.returncode:
        pytest.skip(f"user nobody cannot read this checkout ({ROOT})")
    folder = Path(subprocess.run(["mktemp", "-d", "-p", "/tmp"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    folder.chmod(0o777)
    for ext in ("bed", "bim", "fam"):
        (folder / f"g.{ext}").write_text("")
        (folder / f"g.{ext}").chmod(0o644)
    (folder / "c.h5ad").write_text("")
    (folder / "c.h5ad").chmod(0o000)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_unreadable_files_are_named_with_their_keys(shared_folder):
    code = textwrap.dedent(f"""
        from nam_core.folders import check_readable, unreadable_inputs
        paths = {{"inputs.counts": "{shared_folder}/c.h5ad",
                  "inputs.bfile (.bed)": "{shared_folder}/g.bed",
                  "inputs.donor_covariates": "{shared_folder}/absent.tsv"}}
        assert list(unreadable_inputs(paths)) == ["inputs.counts"], unreadable_inputs(paths)
        check_readable(paths)
    """)
    done = as_nobody([sys.executable, "-c", code], shared_folder)
    assert done.returncode != 0
    assert (f"1 input file cannot be read by user nobody (inputs.counts: {shared_folder}/c.h5ad)"
            in done.stderr), done.stderr[-2000:]


def test_the_workflow_stops_before_any_job(shared_folder):
    config = shared_folder / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        cohort: mine
        demo: {{enabled: false}}
        inputs: {{bfile: {shared_folder}/g, counts: {shared_folder}/c.h5ad, counts_layer: null,
                  individual_column: donor_id}}
    """))
    done = as_nobody([sys.executable, "-m", "snakemake", "--snakefile", SNAKEFILE, "--cores", 1,
                      "--configfile", config], shared_folder)
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert "cannot be read by user nobody (inputs.counts:" in text, text[-3000:]
    assert "no job was started" in text
    assert "Building DAG" not in text and not (shared_folder / "results").exists()
