"""The documentation site builds with warnings as errors, and a broken internal link fails it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")
pytest.importorskip("sphinx_book_theme")


def _build(src: Path, out: Path) -> subprocess.CompletedProcess:
    """Run sphinx-build -W -n (as `make docs` does) on ``src`` into ``out``."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    return subprocess.run(
        [*cmd, str(src), str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def test_docs_build_without_warnings(tmp_path):
    """The site, its generated configuration reference and its API pages build cleanly."""
    run = _build(ROOT / "docs", tmp_path / "html")
    assert run.returncode == 0, run.stderr[-4000:]
    html = tmp_path / "html"
    for page in ("index", "tutorial", "guide", "configuration", "outputs", "validation",
                 "performance", "model", "api"):
        assert (html / f"{page}.html").is_file(), page
    config = (html / "configuration.html").read_text()
    assert "counts_layer" in config and "target_sum" in config
    assert "select_best" in (html / "api.html").read_text()


def test_broken_internal_link_fails_the_build(tmp_path):
    """A link to a heading that does not exist is an error, not a silent dead link."""
    src = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", src, ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(ROOT / "workflow" / "schemas", tmp_path / "workflow" / "schemas")
    (src / "tutorial.md").write_text(
        (src / "tutorial.md").read_text() + "\nSee [nowhere](#no-such-heading).\n"
    )
    run = _build(src, tmp_path / "html")
    assert run.returncode != 0
    assert "no-such-heading" in run.stderr
