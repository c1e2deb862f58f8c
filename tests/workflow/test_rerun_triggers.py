"""A finished run resumed after a change reruns what the change affects, and nothing else.

Snakemake reruns a job whose params (every setting a rule uses), input set, code or inputs'
modification times changed (its default --rerun-triggers). Each case changes one thing in a
copy of the small run and reads the dry run's plan (a few seconds each).
"""

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from .conftest import SMALL_CONFIG, output_of, planned_jobs, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture
def finished(small_run, tmp_path):
    """A copy of the small run's working directory, with a config to change."""
    for name in ("results", ".snakemake"):
        shutil.copytree(small_run["dir"] / name, tmp_path / name, symlinks=True)
    return tmp_path


def plan(workdir, **sections):
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    path = workdir / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # the summary records the config as is
    proc = snakemake(workdir, "-n", "--cores", 1, "--configfile", path)
    assert proc.returncode == 0, output_of(proc)[-3000:]
    return planned_jobs(proc)


def test_unchanged_plans_nothing(finished):
    assert plan(finished) == {}


@pytest.mark.parametrize(("section", "change", "reruns", "keeps"), [
    ("fit", {"K": 8}, {"fit_nam": 3, "select_best_fit": 1, "write_results": 1},
     {"preprocess_expression", "compute_genotype_pcs"}),
    ("fit", {"atoms": "gaussian"}, {"fit_nam": 3}, {"assemble_fit_inputs"}),
    ("fit", {"seeds": [0, 1, 2, 3]}, {"fit_nam": 1, "select_best_fit": 1}, {"preprocess_expression"}),
    ("expression", {"min_genes": 150}, {"preprocess_expression": 1, "fit_nam": 3},
     {"match_individuals", "compute_genotype_pcs", "make_demo_cohort"}),
    # the first rule checks n_pcs against the individuals, so everything after it reruns
    ("genotypes", {"n_pcs": 4}, {"match_individuals": 1, "compute_genotype_pcs": 1,
                                 "fit_nam": 3}, {"make_demo_cohort"}),
    ("demo", {"seed": 1}, {"make_demo_cohort": 1, "match_individuals": 1, "fit_nam": 3}, set()),
    ("markers", {"n_genes": 12}, {"find_markers": 1}, {"fit_nam", "write_results"}),
])
def test_a_changed_setting_reruns_the_rules_that_use_it(finished, section, change, reruns, keeps):
    jobs = plan(finished, **{section: change})
    for rule, count in reruns.items():
        assert jobs.get(rule) == count, (rule, jobs)
    assert not keeps & set(jobs), jobs


def test_a_changed_counts_file_reruns_everything_made_from_it(finished):
    counts = finished / "results" / "small" / "demo_cohort" / "counts.h5ad"
    later = time.time() + 60
    os.utime(counts, (later, later))  # the file replaced by a newer one
    jobs = plan(finished)
    for rule in ("match_individuals", "preprocess_expression", "assemble_fit_inputs",
                 "fit_nam", "write_results"):
        assert rule in jobs, jobs
    assert "make_demo_cohort" not in jobs


def test_your_counts_replaced_by_an_older_file_rerun_the_first_rule(tmp_path):
    """Snakemake's time check misses an input replaced by an older file (copied with its date);
    the size and time of your inputs, a param of the first rule, do not."""
    import anndata as ad

    from nam_core.synthetic.base import CohortSpec
    from nam_core.synthetic.demo import make_demo_cohort

    files = make_demo_cohort(tmp_path / "data", CohortSpec(
        n_individuals=30, n_ancestries=3, mean_cells=40, n_snps=2000, fst=0.05, seed=3))
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    cfg["cohort"], cfg["demo"] = "mine", {"enabled": False}
    cfg["inputs"] = {"bfile": str(files["bfile"]), "counts": str(files["counts"])}
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump(cfg))
    target = "results/mine/matching/individuals.tsv"
    done = snakemake(tmp_path, target, "--cores", 1, "--configfile", config)
    assert done.returncode == 0, output_of(done)[-3000:]
    assert planned_jobs(snakemake(tmp_path, target, "-n", "--cores", 1, "--configfile",
                                  config)) == {}
    counts = Path(files["counts"])
    adata = ad.read_h5ad(counts)
    adata[1:].copy().write_h5ad(counts)  # one cell fewer
    old = time.time() - 86400
    os.utime(counts, (old, old))  # older than every output
    proc = snakemake(tmp_path, target, "-n", "--cores", 1, "--configfile", config)
    assert planned_jobs(proc) == {"match_individuals": 1}, output_of(proc)[-3000:]
    assert "Params have changed" in output_of(proc) or "params" in output_of(proc).lower()
