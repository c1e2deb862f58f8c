"""summary.md is read from the result tables; manifest.json lists what a run read and wrote."""

import hashlib
import json

import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.results.manifest import config_sha256, file_sha256, run_manifest, write_manifest
from nam_core.results.summary import log_warnings, median_umis, summary_markdown, write_summary


def _tsv(folder, name, rows):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


@pytest.fixture
def results(tmp_path):
    """A results folder with the tables the summary reads: two individual clusters, two types."""
    _tsv(tmp_path, "individuals.tsv", {
        "individual": ["A", "B", "C", "D", "E"], "cluster": ["I1", "I1", "I1", "I2", "I2"],
        "probability": [1.0, 0.99, 0.6, 1.0, 0.95], "n_cells": [10, 20, 30, 40, 50]})
    _tsv(tmp_path, "cell_types/type_names.tsv", {
        "group": ["T1", "T2"], "n_cells": [90, 60], "share": [0.6, 0.4],
        "cell_type": ["CD4 T", "NK"], "assigned": [True, False],
        "markers": ["IL7R,CD3E", ""]})
    _tsv(tmp_path, "cell_types/groups.tsv", {"atom": ["C1", "C2", "C3"],
                                             "group": ["T1", "T1", "T2"]})
    _tsv(tmp_path, "composition/differences.tsv", {
        "contrast": ["I1 vs I2", "I1 vs I2"], "group_a": ["I1", "I1"], "group_b": ["I2", "I2"],
        "cell_type": ["CD4 T", "NK"], "prop_a": [0.7, 0.3], "prop_b": [0.5, 0.5],
        "effect": [0.2, -0.004], "lower": [0.15, -0.02], "upper": [0.25, 0.01],
        "fdr": [0.0001, 0.6], "called": [True, False]})
    _tsv(tmp_path, "composition/genotype_association.tsv", {
        "cell_type": ["CD4 T", "NK", "CD4 T"], "term": ["all", "all", "PC1"],
        "share_of": ["all_cells"] * 3, "t": [30.0, 1.0, 5.0], "p": [1e-6, 0.4, 1e-5], "fdr": [2e-6, 0.4, 2e-5],
        "r2": [0.41, 0.01, 0.41], "called": [True, False, True]})
    _tsv(tmp_path, "composition/mantel.tsv", {"method": ["pearson"], "r": [0.4123],
                                              "p": [0.0005], "n_donors": [5]})
    logs = tmp_path / "logs"
    (logs / "fit").mkdir(parents=True)
    (logs / "match.log").write_text(
        "2026-01-01 10:00:00,000 INFO nam_core.inputs: median UMIs per cell: 2974 (before QC)\n")
    (logs / "fit" / "seed0.log").write_text(
        "2026-01-01 10:00:01,000 WARNING nam_core.engine: ELBO decreased at sweep 8: -1.5\n"
        "2026-01-01 10:00:02,000 WARNING nam_core.engine: ELBO decreased at sweep 9: -2.5\n"
        "2026-01-01 10:00:03,000 WARNING nam_core.results.pools: clusters follow the pools\n")
    return tmp_path


def test_summary_reads_every_section_from_the_tables(results):
    text = summary_markdown(results, "tiny")
    assert text.startswith("# NAM results: cohort tiny")
    assert "**5 individuals**" in text and "**150 cells**" in text
    assert "Median UMIs per cell before QC: 2,974" in text
    assert "| I1 | 3 | 60 | 2 of 3 |" in text and "| I2 | 2 | 90 | 2 of 2 |" in text
    assert "1 individuals are assigned with probability below 0.9 (lowest 0.60)" in text
    assert "| T1 | CD4 T | 90 | 60.0% | C1, C2 | IL7R, CD3E |" in text
    assert "not named (best: NK)" in text and "Cell types without a name: T2" in text
    assert "1 of 2 contrasts" in text
    assert "| I1 vs I2 | CD4 T | 70.0% | 50.0% | +20.0 pp | +15.0 pp to +25.0 pp | < 0.001 |" \
        in text
    assert "-0.4 pp" not in text  # uncalled rows are not listed
    assert "share of 1 of 2 cell types follows the genotype" in text
    assert "| CD4 T | 41.0% | 30.0 | < 0.001 |" in text
    assert "pearson r = 0.41, p < 0.001" in text
    assert "clusters follow the pools (`logs/fit/seed0.log`)" in text
    assert "2 such lines in the logs" in text  # per-sweep messages grouped
    assert "Checks against the demo" not in text  # no demo tables in this folder
    for name in ("individuals.tsv", "composition/differences.tsv", "cell_types/type_names.tsv",
                 "composition/genotype_association.tsv"):
        assert f"`{name}`" in text  # each section names the file to read next


def test_joined_individual_clusters_are_named_in_the_summary(results):
    assert "individual group" not in summary_markdown(results, "tiny")  # no table, no line
    _tsv(results, "individual_groups/groups.tsv", {"cluster": ["I1", "I2"], "group": ["I1+I2", "I1+I2"]})
    assert "**1 individual groups**: I1+I2." in summary_markdown(results, "tiny")
    _tsv(results, "individual_groups/groups.tsv", {"cluster": ["I1", "I2"], "group": ["I1", "I2"]})
    assert "No two clusters are joined into one individual group" in summary_markdown(results, "tiny")


def test_optional_tables_are_skipped_and_required_ones_named(results):
    (results / "composition" / "genotype_association.tsv").unlink()
    assert "No genotype association table in this run." in summary_markdown(results, "tiny")
    (results / "individuals.tsv").unlink()
    with pytest.raises(NAMInputError, match="individuals.tsv: missing"):
        summary_markdown(results, "tiny")


def test_log_helpers(results):
    assert median_umis(results / "logs") == 2974
    warnings = log_warnings(results / "logs")
    assert [count for _, _, count in warnings] == [2, 1]
    assert warnings[0][0] == "logs/fit/seed0.log"
    assert median_umis(results / "nowhere") is None


def test_manifest_hashes_inputs_and_outputs(results, tmp_path_factory):
    path = write_summary(results, "tiny", results / "summary.md")
    assert path.startswith("# NAM")
    data = tmp_path_factory.mktemp("data") / "cohort.fam"
    data.write_bytes(b"F1 A 0 0 0 -9\n")
    bench = results / "benchmarks" / "fit" / "seed0.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t300.25\n")
    config = {"cohort": "tiny", "fit": {"seeds": [0, 1]}}
    manifest = run_manifest(results, config, {"fam": str(data)}, "9.9",
                            exclude=[results / "manifest.json", results / "logs" / "match.log"])
    outputs = {entry["path"]: entry for entry in manifest["outputs"]}
    assert "summary.md" in outputs and "logs/match.log" not in outputs
    assert outputs["individuals.tsv"]["sha256"] == hashlib.sha256(
        (results / "individuals.tsv").read_bytes()).hexdigest()
    assert manifest["inputs"] == [{"name": "fam", "path": str(data), "bytes": 14,
                                   "sha256": file_sha256(data)}]
    assert manifest["steps"] == [{"step": "fit/seed0", "seconds": 12.5, "max_rss_mb": 300.2}]
    assert manifest["started"] < manifest["written"]
    assert manifest["config_sha256"] == config_sha256({"fit": {"seeds": [0, 1]},
                                                       "cohort": "tiny"})
    assert manifest["config_sha256"] != config_sha256({"cohort": "tiny", "fit": {"seeds": [1]}})
    assert manifest["nam_version"] == "9.9" and "numpy" in manifest["versions"]
    write_manifest(results / "manifest.json", manifest)
    assert json.loads((results / "manifest.json").read_text())["cohort"] == "tiny"


def test_library_warnings_stay_out_of_the_summary(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "compute_umap.log").write_text(
        "2026-12-05 14:16:36,622 WARNING py.warnings: /x/.venv/lib/python3.11/site-packages/umap/"
        "__init__.py:9: ImportWarning: Tensorflow not installed\n"
        "2026-12-05 14:16:37,000 WARNING py.warnings: /repo/nam_core/results/umap.py:3: "
        "UserWarning: few cells\n"
        "2026-12-05 14:16:38,000 WARNING nam_core.results.pools: the clusters follow pool\n")
    messages = [message for _, message, _ in log_warnings(logs)]
    assert messages == ["/repo/nam_core/results/umap.py:3: UserWarning: few cells",
                        "the clusters follow pool"]
