"""A --configfile that is not valid YAML: Snakemake stops before the workflow with its own
message, which does not name the file; python -m nam_core.check_config names file and line."""

import subprocess
import sys

from .conftest import ROOT, output_of, snakemake

SNAKEMAKE_MESSAGE = "Config file is not valid JSON or YAML"


def test_snakemake_refuses_it_and_the_checker_names_it(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("cohort: mine\nfit:\n\tK: 5\n")
    proc = snakemake(tmp_path, "-n", "--cores", 1, "--configfile", bad)
    assert proc.returncode != 0
    assert SNAKEMAKE_MESSAGE in output_of(proc), output_of(proc)[-2000:]
    assert not (tmp_path / "results").exists()
    check = subprocess.run([sys.executable, "-m", "nam_core.check_config", str(bad)], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert f"config file {bad} is not valid YAML at line 3, column 1" in check.stderr
    assert "replace the tab with spaces" in check.stderr
