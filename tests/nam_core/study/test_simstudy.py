"""The simulation study's library: scenario expansion, one tiny job, aggregation, checks, plots."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from nam_core import NAMInputError
from nam_core.study import aggregation, design, job, simplots


def _study(**extra):
    study = {
        "seed": 10,
        "replicates": 2,
        "methods": ["nam", "cam"],
        "fit": {"K": 5, "L": 6, "n_init": 1, "max_iter": 30, "dtype": "float64", "device": "cpu"},
        "generator": {"J": 40, "mean_cells": 20},
        "scenarios": {
            "A": {"description": "both"},
            "B": {"params": {"eta": 0.0}},
            "C": {"params": {"delta_x": 0.0}, "replicates": 1},
        },
        "sweeps": {
            "dx": {"base": "A", "parameter": "delta_x", "values": [0, 1.5, 3]},
            "eta": {"base": "A", "parameter": "eta", "values": [0.25, 0.0], "replicates": 3},
        },
    }
    study.update(extra)
    return study


def test_scenarios_resolve_every_parameter_and_reuse_equal_points():
    scen = design.expand_scenarios(_study())
    # named first, then only the new sweep points: dx 0 is C, dx 3 is A, eta 0 is B
    assert list(scen) == ["A", "B", "C", "dx_1.5", "eta_0.25"]
    assert set(scen["A"]["params"]) == set(design.GENERATOR_KEYS)
    assert scen["A"]["params"]["J"] == 40 and scen["A"]["params"]["q"] == 5  # generator, default
    assert scen["B"]["params"]["eta"] == 0.0 and scen["B"]["params"]["J"] == 40
    assert scen["C"]["replicates"] == 1 and scen["A"]["replicates"] == 2
    assert scen["eta_0.25"]["replicates"] == 3
    assert ("dx", 0) in scen["C"]["sweeps"] and ("dx", 3) in scen["A"]["sweeps"]
    assert ("eta", 0.0) in scen["B"]["sweeps"]
    sweeps = design.sweeps(_study())
    assert sweeps["dx"]["points"] == [(0, "C"), (1.5, "dx_1.5"), (3, "A")]
    assert sweeps["eta"]["points"] == [(0.0, "B"), (0.25, "eta_0.25")]


def test_jobs_and_specs():
    study = _study()
    jobs = design.jobs(study)
    assert len(jobs) == (2 + 2 + 1 + 2 + 3) * 2
    assert ("C", 0, "nam") in jobs and ("C", 1, "nam") not in jobs
    spec = design.job_spec(study, "B", 1, "cam")
    assert spec["seed"] == 11 and spec["method"] == "cam" and spec["generator"]["eta"] == 0.0
    assert spec["fit"] == study["fit"]
    with pytest.raises(NAMInputError, match="unknown scenario"):
        design.job_spec(study, "Z", 0, "nam")
    with pytest.raises(NAMInputError, match="not in the study"):
        design.job_spec(study, "A", 0, "ndp")


def test_bad_parameters_and_sweep_bases_are_named():
    with pytest.raises(NAMInputError, match="scenario A: unknown generator parameter.*deltax"):
        design.expand_scenarios(_study(scenarios={"A": {"params": {"deltax": 1}}}))
    with pytest.raises(NAMInputError, match="base scenario 'Q'"):
        design.expand_scenarios(_study(sweeps={"s": {"base": "Q", "parameter": "eta",
                                                       "values": [0.1]}}))


def test_describe_settings_names_the_generative_settings():
    params = design.expand_scenarios(_study())["A"]["params"]
    text = design.describe_settings(params, _study()["fit"], skip=["eta"])
    assert "J = 40" in text and "kappa = inf" in text and "K* = 4" in text
    assert "eta" not in text and "F_ST" not in text and "K = 5, L = 6" in text


def test_label_metrics():
    m = job.label_metrics(np.array([0, 0, 1, 1]), np.array([5, 5, 3, 3]))
    assert m == {"ari": 1.0, "nmi": 1.0, "n_occupied": 2, "n_true": 2}
    none = job.label_metrics(np.array([0, 1]), None)
    assert math.isnan(none["ari"]) and math.isnan(none["nmi"]) and none["n_true"] == 2


@pytest.mark.parametrize("method", ["nam", "dpmix_x"])
def test_one_tiny_job_writes_its_metrics_and_parameters(tmp_path, method):
    study = _study(methods=["nam", "dpmix_x"])
    spec = design.job_spec(study, "A", 0, method)
    threads = torch.get_num_threads()
    result = job.run_job(spec, threads=1)
    assert torch.get_num_threads() == threads  # restored after the job
    path = tmp_path / "run.json"
    job.write_run(result, path)
    raw = json.loads(path.read_text())  # standard JSON: no NaN or Infinity tokens
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert raw["generator"]["kappa"] == "inf" and raw["seed"] == 10
    assert raw["data"]["J"] == 40 and raw["data"]["N"] >= 40 * 20
    ind = raw["metrics"]["individual"]
    assert -1 <= ind["ari"] <= 1 and 0 <= ind["nmi"] <= 1 and ind["n_true"] == 4
    if method == "nam":
        assert raw["metrics"]["cell"]["ari"] > 0.5 and raw["n_iter"] >= 1
        assert math.isfinite(raw["elbo"]) and isinstance(raw["converged"], bool)
    else:
        assert raw["metrics"]["cell"]["ari"] is None  # no cell labels: NaN, written as null
    assert raw["fit_seconds"] > 0 and raw["wall_seconds"] >= raw["fit_seconds"]
    assert raw["peak_rss_mib"] > 10 and raw["peak_gpu_mib"] is None
    df = aggregation.tidy_metrics([job.read_run(path)])
    assert list(df["level"]) == ["cell", "individual"]
    assert math.isinf(df["kappa"].iloc[0])


def test_conflicting_scenario_scores_the_composition_partition():
    study = _study(methods=["kmeans_oracle"],
                   scenarios={"D": {"params": {"conflicting": True}}}, sweeps={})
    result = job.run_job(design.job_spec(study, "D", 0, "kmeans_oracle"))
    assert set(result["metrics"]) == {"individual", "cell", "composition"}


def _synthetic_runs(values):
    """Runs with given ARI per (scenario, method, level) list over replicates."""
    runs = []
    for (scenario, method), levels in values.items():
        n_rep = len(next(iter(levels.values())))
        for r in range(n_rep):
            metrics = {}
            for level in ("individual", "cell"):
                ari = levels.get(level, [None] * n_rep)[r]
                metrics[level] = {"ari": ari, "nmi": ari, "n_occupied": 4, "n_true": 4}
            runs.append({
                "scenario": scenario, "replicate": r, "seed": r, "method": method,
                "generator": {"J": 100, "mean_cells": 10 * (1 + (scenario == "big")),
                              "eta": 0.8, "kappa": "inf"},
                "fit": {"K": 5, "L": 6},
                "data": {"J": 100, "N": 1000 * (1 + 9 * (scenario == "big")) + r},
                "metrics": metrics, "elbo": -1.0, "n_iter": 10, "converged": True,
                "fit_seconds": 0.1 * (1 + r) * (1 + 9 * (scenario == "big")),
                "wall_seconds": 1.0, "peak_rss_mib": 100.0, "peak_gpu_mib": None,
            })
    return runs


PASSING = {
    ("A", "nam"): {"individual": [0.9, 0.95, 1.0], "cell": [0.97, 0.98, 0.99]},
    ("A", "cam"): {"individual": [0.9, 0.96, 1.0], "cell": [0.98, 0.99, 1.0]},
    ("A", "dpmix_x"): {"individual": [0.2, 0.3, 0.4]},
    ("A", "dpmix_y"): {"cell": [0.5, 0.99, 1.0]},
    ("B", "nam"): {"individual": [0.9, 0.8, 0.7], "cell": [0.9, 0.9, 0.9]},
    ("B", "cam"): {"individual": [0.0, 0.1, 0.3], "cell": [0.9, 0.9, 0.9]},
    ("B", "dpmix_x"): {"individual": [0.9, 0.9, 0.9]},  # uses genotype: not compared in B
    ("B", "dpmix_y"): {"cell": [0.9, 0.9, 0.9]},  # no individual labels: not compared
    ("C", "nam"): {"individual": [0.5, 0.6, 0.7], "cell": [0.9, 0.9, 0.9]},
    ("C", "cam"): {"individual": [0.55, 0.64, 0.7], "cell": [0.9, 0.9, 0.9]},
}
CHECKS = {"genotype_only": "B", "margin_genotype_only": 0.5, "genotype_uninformative": "C",
          "tol_genotype_uninformative": 0.05, "both_informative": "A",
          "tol_both_informative": 0.02, "exclude": []}


def test_tidy_table_and_summary():
    df = aggregation.tidy_metrics(_synthetic_runs(PASSING))
    assert len(df) == 10 * 3 * 2
    s = aggregation.summarise(df)
    row = s[(s.scenario == "A") & (s.method == "nam") & (s.level == "individual")].iloc[0]
    assert row["ari_median"] == 0.95 and row["n"] == 3
    assert row["ari_q25"] == pytest.approx(0.925) and row["ari_iqr"] == pytest.approx(0.05)
    nolab = s[(s.scenario == "A") & (s.method == "dpmix_x") & (s.level == "cell")].iloc[0]
    assert nolab["n"] == 0 and math.isnan(nolab["ari_median"])


def test_checks_pass_on_passing_metrics():
    table = aggregation.run_checks(aggregation.summarise(aggregation.tidy_metrics(_synthetic_runs(PASSING))),
                                CHECKS)
    assert set(table["status"]) == {"pass"}
    b = table[table.check == "genotype_only"]
    assert list(b["method"]) == ["cam"]  # dpmix_x sees genotype; dpmix_y has no individual labels
    assert b["difference"].iloc[0] == pytest.approx(0.7)
    a = table[table.check == "both_informative"]
    assert set(zip(a.level, a.method, strict=True)) == {
        ("individual", "cam"), ("individual", "dpmix_x"), ("cell", "cam"), ("cell", "dpmix_y")}


@pytest.mark.parametrize("change, failing", [
    ({("B", "cam"): {"individual": [0.4, 0.45, 0.5], "cell": [0.9] * 3}}, "genotype_only"),
    ({("C", "cam"): {"individual": [0.7, 0.7, 0.7], "cell": [0.9] * 3}}, "genotype_uninformative"),
    ({("C", "nam"): {"individual": [0.9, 0.9, 0.9], "cell": [0.9] * 3}}, "genotype_uninformative"),
    ({("A", "nam"): {"individual": [0.9, 0.95, 1.0], "cell": [0.9, 0.95, 0.96]}},
     "both_informative"),
])
def test_checks_fail_where_they_should(change, failing):
    table = aggregation.run_checks(
        aggregation.summarise(aggregation.tidy_metrics(_synthetic_runs({**PASSING, **change}))), CHECKS)
    assert set(table[table.status == "fail"]["check"]) == {failing}


def test_checks_report_missing_and_exclusions():
    runs = {k: v for k, v in PASSING.items() if k != ("C", "cam")}
    table = aggregation.run_checks(aggregation.summarise(aggregation.tidy_metrics(_synthetic_runs(runs))),
                                {**CHECKS, "exclude": ["dpmix_y"]})
    assert table[table.check == "genotype_uninformative"]["status"].tolist() == ["missing"]
    assert "dpmix_y" not in set(table["method"])
    skipped = aggregation.run_checks(aggregation.summarise(aggregation.tidy_metrics(_synthetic_runs(runs))),
                                  {**CHECKS, "genotype_only": None, "genotype_uninformative": None,
                                   "both_informative": None})
    assert skipped.empty


def test_aggregate_writes_three_tables(tmp_path):
    paths = []
    for i, run in enumerate(_synthetic_runs(PASSING)):
        paths.append(tmp_path / "runs" / f"{i}.json")
        job.write_run(run, paths[-1])
    out = [tmp_path / f"{n}.tsv" for n in ("metrics", "summary", "checks")]
    aggregation.aggregate(paths, *out, CHECKS)
    metrics = pd.read_csv(out[0], sep="\t")
    assert len(metrics) == 60 and metrics["ari"].isna().sum() == 3 * 4
    assert pd.read_csv(out[2], sep="\t")["status"].eq("pass").all()
    with pytest.raises(NAMInputError, match="no simulation runs"):
        aggregation.aggregate([], *out, CHECKS)


def test_figures_are_written(tmp_path):
    runs = _synthetic_runs({**PASSING, ("big", "nam"): {"individual": [0.5, 0.6],
                                                       "cell": [0.7, 0.8]}})
    df = aggregation.tidy_metrics(runs)
    simplots.plot_boxes(df, "A", tmp_path / "a.png", tmp_path / "a.pdf")
    simplots.plot_sweep(df, "eta", [(0.0, "B"), (0.8, "A")], tmp_path / "s.png", tmp_path / "s.pdf")
    simplots.plot_runtime(df, tmp_path / "r.png", tmp_path / "r.pdf")
    simplots.plot_boxes(df, "none", tmp_path / "n.png", tmp_path / "n.pdf")  # placeholder
    for name in ("a", "s", "r", "n"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert simplots.method_order(["cam", "zzz", "nam"]) == ["nam", "cam", "zzz"]
