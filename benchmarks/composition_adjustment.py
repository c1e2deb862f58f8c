"""False calls of the composition tests with donor covariates, unadjusted and adjusted.

Simulated donors in three individual clusters with identical cell-type proportions (every test
is a null). Each donor has an age and a pool (6 pools); in scenario ``independent`` neither
is related to the cluster, in scenario ``confounded`` the clusters differ in mean age (35, 50,
65 years) and the share of the first cell type rises with age (logit slope 0.04 per year). For
each replicate the propeller-style tests, the Bayesian bootstrap differences and the genotype
association (on two random PCs) run without and with the covariates; the table gives the share
of tests called at FDR < 0.05 and of p-values below 0.05, and a Kolmogorov-Smirnov test of the
p-values' uniformity.

    python benchmarks/composition_adjustment.py --replicates 100
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from scipy import stats

from nam_core.results import composition as comp

OMEGA = np.array([0.4, 0.25, 0.15, 0.12, 0.08])


def cohort(rng, scenario: str, n: int = 90, cells: int = 300):
    """counts (individual, cluster, T1..T5), covariates (individual, age, pool), PCs."""
    cluster = np.repeat(["I1", "I2", "I3"], n // 3)
    if scenario == "confounded":
        age = np.repeat([35.0, 50.0, 65.0], n // 3) + rng.normal(0, 8, n)
    else:
        age = rng.normal(50, 12, n)
    rows = []
    for j in range(n):
        w = rng.dirichlet(60 * OMEGA)
        if scenario == "confounded":
            logit = np.log(w[0] / (1 - w[0])) + 0.04 * (age[j] - 50)
            p1 = 1 / (1 + np.exp(-logit))
            w = np.concatenate([[p1], w[1:] / w[1:].sum() * (1 - p1)])
        rows.append(rng.multinomial(cells, w))
    counts = pd.DataFrame(rows, columns=[f"T{i + 1}" for i in range(len(OMEGA))])
    counts.insert(0, "cluster", cluster)
    counts.insert(0, "individual", [f"D{j}" for j in range(n)])
    covariates = pd.DataFrame({"individual": counts["individual"], "age": age,
                               "pool": rng.choice([f"P{i}" for i in range(6)], n)})
    pcs = pd.DataFrame({"individual": counts["individual"], "PC1": rng.normal(size=n),
                        "PC2": rng.normal(size=n)})
    return counts, covariates, pcs


def one_replicate(seed: int, scenario: str, n_draws: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    counts, covariates, pcs = cohort(rng, scenario)
    rows = []
    for adjusted in (False, True):
        cov = comp.Covariates(covariates, {"age": "numeric", "pool": "categorical"}) \
            if adjusted else None
        propeller = comp.propeller_test(counts, covariates=cov)
        boot = comp.bootstrap_compositions(counts, n_draws=n_draws, seed=seed, covariates=cov)
        differences = comp.posterior_differences(boot, boot["sizes"])
        genotype = comp.genotype_association(counts, pcs, "inverse_normal", covariates=cov)
        genotype = genotype[genotype["term"].isin(["PC1", "PC2"])]
        for test, table, p in (("propeller", propeller, propeller["p_value"]),
                               ("bootstrap", differences, None),
                               ("genotype_pcs", genotype, genotype["p"])):
            rows.append({"seed": seed, "scenario": scenario, "adjusted": adjusted, "test": test,
                         "tests": len(table), "calls": int(table["called"].sum()),
                         "p": [] if p is None else list(p)})
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    out = []
    frame = pd.DataFrame(rows)
    for (scenario, test, adjusted), block in frame.groupby(["scenario", "test", "adjusted"]):
        p = np.concatenate([np.asarray(v, dtype=float) for v in block["p"]])
        out.append({"scenario": scenario, "test": test, "adjusted": adjusted,
                    "tests": int(block["tests"].sum()), "calls": int(block["calls"].sum()),
                    "call_rate": round(block["calls"].sum() / block["tests"].sum(), 4),
                    "p_below_0.05": round(float((p < 0.05).mean()), 4) if p.size else None,
                    "ks_p": round(float(stats.kstest(p, "uniform").pvalue), 4) if p.size else None})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--n-draws", type=int, default=1000)
    args = parser.parse_args()
    rows = [row for scenario in ("independent", "confounded")
            for seed in range(args.replicates)
            for row in one_replicate(seed, scenario, args.n_draws)]
    table = summarise(rows)
    print(table.to_string(index=False))
    print(json.dumps({"replicates": args.replicates, "n_draws": args.n_draws}))


if __name__ == "__main__":
    main()
