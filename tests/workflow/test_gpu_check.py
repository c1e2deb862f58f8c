"""The prepared GPU check says clearly when there is no GPU, and checks nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_without_a_gpu_says_so_and_exits_2(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the full check runs instead")
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path))
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    last_line = done.stdout.strip().splitlines()[-1]
    assert last_line.startswith("gpu_check: NO GPU"), last_line
    assert "nothing was checked" in last_line
