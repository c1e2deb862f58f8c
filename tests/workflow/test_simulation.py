"""The simulation study as workflow rules: schema, lint, dry runs, and the small study for real.

The real run (``config/simulation.yaml``: scenarios A, B, C, 3 replicates, 7 methods, 63 fits)
takes about 2.5 minutes on 2 cores; its checks.tsv must contain the three checks of the study.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SMK = ROOT / "workflow" / "simulation.smk"
SMALL = ROOT / "config" / "simulation.yaml"
PAPER = ROOT / "config" / "simulation_paper.yaml"
EXPLORE = ROOT / "config" / "simulation_explore.yaml"
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/simulation.schema.yaml").read_text())


def run_smk(workdir, configfile, *args, timeout=1200) -> subprocess.CompletedProcess:
    """``snakemake -s workflow/simulation.smk --configfile <configfile> <args>`` in ``workdir``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SMK), "--configfile", str(configfile),
           *map(str, args)]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def text(proc) -> str:
    return proc.stdout + proc.stderr


def job_counts(proc) -> dict[str, int]:
    lines = text(proc).splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


# ------------------------------------------------------------------ schema and configs (fast)
def _walk(schema, path="simulation"):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from _walk(sub, f"{path}.{key}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(extra, f"{path}.<name>")


def test_schema_describes_every_key_with_a_default():
    assert SCHEMA["additionalProperties"] is False
    keys = list(_walk(SCHEMA))
    assert len(keys) > 30, "walk finds the schema's keys"
    for path, sub in keys:
        assert sub.get("description"), f"{path} has no description"
        if path.startswith("simulation.sweeps.<name>.") and path.split(".")[-1] in (
                "base", "parameter", "values"):
            continue  # required keys of a sweep: no default by design
        assert "default" in sub, f"{path} has no default"
        if sub.get("type") == "object":  # closed, or a map of named entries with closed entries
            extra = sub.get("additionalProperties")
            assert extra is False or ("propertyNames" in sub
                                      and extra.get("additionalProperties") is False), path
    overrides = SCHEMA["$defs"]["overrides"]
    assert overrides["additionalProperties"] is False
    assert set(overrides["properties"]) == set(SCHEMA["properties"]["generator"]["properties"])
    assert all("default" not in s for s in overrides["properties"].values())  # no silent resets


@pytest.mark.parametrize("path", [SMALL, EXPLORE, PAPER], ids=lambda p: p.name)
def test_configs_validate(path):
    config = yaml.safe_load(path.read_text())
    assert set(config) == {"simulation"}
    jsonschema.Draft202012Validator(SCHEMA).validate(config["simulation"])


def test_paper_config_is_the_full_study():
    from nam_core.study import design
    from nam_core.study.methods import METHODS

    study = yaml.safe_load(PAPER.read_text())["simulation"]
    assert study["replicates"] == 30 and set(study["methods"]) == set(METHODS)
    scen = design.expand_scenarios(study)
    assert {"A", "B", "C", "D", "E_kappa50", "E_kappa200", "G_counts"} <= set(scen)
    assert sum(n.startswith("F_") for n in scen) == 4
    assert max(s["params"]["J"] * s["params"]["mean_cells"] for s in scen.values()) == 1.3e6
    sweeps = design.sweeps(study)
    assert {k: v["parameter"] for k, v in sweeps.items()} == {
        "delta_x": "delta_x", "eta": "eta", "mean_cells": "mean_cells"}
    assert [v for v, _ in sweeps["delta_x"]["points"]] == [0, 1, 2, 3, 4]
    assert dict(sweeps["delta_x"]["points"])[0] == "C"  # reused, not rerun
    assert all(s["replicates"] == 30 for s in scen.values())


def test_lint(tmp_path):
    proc = run_smk(tmp_path, SMALL, "--lint")
    assert proc.returncode == 0, text(proc)[-3000:]


def test_paper_study_dry_run(tmp_path):
    proc = run_smk(tmp_path, PAPER, "--dry-run", "--quiet", "rules")
    assert proc.returncode == 0, text(proc)[-3000:]
    counts = job_counts(proc)
    assert counts["simulate_and_fit"] == 20 * 30 * 11  # 11 named scenarios + 9 new sweep points
    assert counts["plot_simulation_ari"] == 11 and counts["plot_simulation_sweep"] == 3
    assert counts["aggregate_simulation"] == 1 and counts["plot_simulation_runtime"] == 1


def test_misspelt_key_fails_before_any_job(tmp_path):
    config = yaml.safe_load(SMALL.read_text())
    config["simulation"]["generator"]["delta_X"] = 2.0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_smk(tmp_path, path, "--dry-run")
    assert proc.returncode != 0 and "delta_X" in text(proc)


# ------------------------------------------------------------------ the small study, for real
@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("simulation")
    proc = run_smk(workdir, SMALL, "--cores", 2)
    assert proc.returncode == 0, text(proc)[-5000:]
    report = run_smk(workdir, SMALL, "--report", "report.html")
    assert report.returncode == 0, text(report)[-3000:]
    return workdir


@pytest.mark.slow
def test_small_study_writes_every_output(small_study):
    out = small_study / "results" / "simulation"
    study = yaml.safe_load(SMALL.read_text())["simulation"]
    n_runs = 3 * study["replicates"] * len(study["methods"])
    runs = sorted((out / "runs").glob("*/*/*.json"))
    assert len(runs) == n_runs
    run = json.loads((out / "runs" / "B" / "2" / "nam.json").read_text())
    assert run["seed"] == 2 and run["generator"]["eta"] == 0.0 and run["generator"]["J"] == 200
    for key in ("elbo", "n_iter", "fit_seconds", "wall_seconds", "peak_rss_mib", "fit"):
        assert key in run
    assert set(run["metrics"]) == {"individual", "cell"}
    assert set(run["metrics"]["cell"]) == {"ari", "nmi", "n_occupied", "n_true"}
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert len(metrics) == 2 * n_runs
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert len(summary) == 3 * len(study["methods"]) * 2
    for name in ("ari_A", "ari_B", "ari_C", "runtime_vs_cells"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (out / "figures" / f"{name}.pdf").exists()
    logs = sorted((out / "logs").rglob("*.log"))
    assert len(logs) >= n_runs  # one per simulate_and_fit job, and the aggregation's
    for path in logs:
        assert path.stat().st_size > 0, f"{path} is empty"
    assert (out / "benchmarks" / "simulate_and_fit" / "A" / "0" / "nam.tsv").exists()
    html = (small_study / "report.html").read_text()
    assert "Generative settings" in html and "mean cells = 20" in html


@pytest.mark.slow
def test_a_sweep_runs_and_is_plotted(tmp_path):
    """A tiny study with a sweep: the sweep rule, its figure and its caption in the report."""
    study = {
        "replicates": 1, "methods": ["cam", "dpmix_x"],
        "fit": {"K": 5, "L": 10, "n_init": 1},
        "generator": {"J": 40, "mean_cells": 20},
        "scenarios": {"A": {"description": "tiny"}},
        "sweeps": {"eta": {"base": "A", "parameter": "eta", "values": [0.0, 0.8],
                           "description": "composition distinctness"}},
        "checks": {"genotype_only": None, "genotype_uninformative": None,
                   "both_informative": None},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"simulation": study}))
    proc = run_smk(tmp_path, path, "--cores", 2)
    assert proc.returncode == 0, text(proc)[-5000:]
    out = tmp_path / "results" / "simulation"
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["A", "eta_0"]  # 0.8 is A
    assert (out / "figures" / "sweep_eta.png").stat().st_size > 10_000
    assert pd.read_csv(out / "checks.tsv", sep="\t").empty
    report = run_smk(tmp_path, path, "--report", "report.html")
    assert report.returncode == 0, text(report)[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert "composition distinctness" in html and "every other generator parameter" in html


@pytest.mark.slow
@pytest.mark.parametrize("check", ["genotype_only", "genotype_uninformative", "both_informative"])
def test_check_holds(small_study, check):
    table = pd.read_csv(small_study / "results" / "simulation" / "checks.tsv", sep="\t")
    rows = table[table["check"] == check]
    assert len(rows) > 0
    failing = rows[rows["status"] != "pass"]
    assert failing.empty, "\n" + failing.to_string()
