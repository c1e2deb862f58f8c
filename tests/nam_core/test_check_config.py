"""python -m nam_core.check_config names the file, the line or the key of a bad config."""

import subprocess
import sys
from pathlib import Path

import pytest

from nam_core.check_config import check_config, main
from nam_core.errors import NAMInputError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_the_shipped_configs_are_valid():
    for name in ("config/config.yaml", ".test/config/config.yaml"):
        assert check_config(ROOT / name)["cohort"]


@pytest.mark.parametrize(("text", "words"), [
    ("cohort: x\nfit:\n\tK: 5\n", r"mine.yaml is not valid YAML at line 3, column 1: .*YAML does "
                                  r"not allow tabs for indentation"),
    ("cohort: x\nfit: [1, 2\n", r"mine.yaml is not valid YAML at line 3"),
    ("fit:\n  K: -3\n", r"mine.yaml: fit.K: -3 is less than the minimum of 1"),
    ("fit:\n  KK: 3\n", r"mine.yaml: fit: Additional properties are not allowed \('KK'"),
])
def test_a_bad_file_is_named_with_the_line_or_key(tmp_path, text, words):
    with pytest.raises(NAMInputError, match=words):
        check_config(write(tmp_path, text))


def test_the_command_exits_1_and_names_each_bad_file(tmp_path, capsys):
    bad = write(tmp_path, "fit:\n\tK: 5\n")
    assert main([str(ROOT / ".test/config/config.yaml"), str(bad)]) == 1
    out = capsys.readouterr()
    assert "config.yaml: valid" in out.out
    assert f"ERROR: config file {bad} is not valid YAML at line 2" in out.err


def test_it_runs_as_a_module(tmp_path):
    bad = write(tmp_path, "fit:\n\tK: 5\n")
    proc = subprocess.run([sys.executable, "-m", "nam_core.check_config", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "replace the tab with spaces" in proc.stderr
