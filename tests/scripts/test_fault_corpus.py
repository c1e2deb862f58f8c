"""The seeded corruption corpus (benchmarks/fault_corpus.py): no case may end in an internal
error; a small subset runs by default, the full 300 cases behind the slow marker."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fault_corpus.py"


def _corpus():
    spec = importlib.util.spec_from_file_location("fault_corpus", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(counts, n_cases):
    assert sum(sum(c.values()) for c in counts.values()) == n_cases
    internal = {family: c["internal error"] for family, c in counts.items()}
    assert sum(internal.values()) == 0, internal
    assert sum(c["named error"] for c in counts.values()) > n_cases // 2


def test_fault_corpus_subset():
    corpus = _corpus()
    _check(corpus.run_corpus(24, seed=7, families=list(corpus.FAMILIES)), 24)


@pytest.mark.long
def test_fault_corpus_full():
    corpus = _corpus()
    _check(corpus.run_corpus(300, seed=0, families=list(corpus.FAMILIES)), 300)
