"""Every benchmark runs as documented: ``python benchmarks/<name>.py --help`` exits 0 and prints usage.

Run as a script from another directory, without PYTHONPATH, as a user would.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the benchmark scripts (helper modules such as sweep_log.py have no ``__main__``)
BENCHMARKS = sorted(
    p for p in (ROOT / "benchmarks").glob("*.py") if '__name__ == "__main__"' in p.read_text()
)


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_help(script, tmp_path):
    """--help exits 0 with a usage line, without running the benchmark."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout.lower()


def test_case_help_documents_its_inputs():
    """``python -m nam_core.case --help`` names what the input and output files hold."""
    run = subprocess.run(
        [sys.executable, "-m", "nam_core.case", "--help"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for word in ("input", "output", "rho0", "xi0", "elbo_trace"):
        assert word in run.stdout, word
