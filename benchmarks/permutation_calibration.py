"""Calibration of the composition ANOVA on null cohorts with pools: permutations within pools.

Each of ``--n-datasets`` null cohorts has donors of ``--n-clusters`` genotype clusters (the
individual clusters a test compares) sequenced in ``--n-pools`` pools, assigned with
:func:`nam_core.synthetic.pools.assign_pools` (``--confounding``: the share of donors put in
their cluster's own pools). Cell-type shares do not depend on the cluster; each pool shifts
every type's log share by a normal draw of sd ``--pool-shift-sd`` (a technical pool effect), and
each donor's share is Dirichlet(``--kappa`` x its pool's share) with negative-binomial cells.

Per cohort and cell type, three p-values of 'the types' shares differ between clusters':

* ``within_pool``: :func:`~nam_core.results.composition.permutation.permutation_anova` with the
  pool as stratum (labels relabelled within pools, shares centred within pools);
* ``free``: the same without strata (labels relabelled over all donors);
* ``parametric``: the F-test of the propeller-style ANOVA (``propeller_test``, contrast all).

Every null hypothesis holds, so a calibrated test gives uniform p-values. The
Kolmogorov-Smirnov test against U(0, 1) uses one p-value per cohort (the first cell type; the
types of one cohort are not independent); the share of p <= 0.05 is given over every type.
The first line of ``--out`` is the command.

Example (as in docs/pools.md)::

    OMP_NUM_THREADS=1 python benchmarks/permutation_calibration.py --n-datasets 200 \\
        --out benchmarks/results/permutation_calibration.tsv
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nam_core.results.composition import propeller_test
from nam_core.results.composition.permutation import permutation_anova
from nam_core.synthetic.pools import assign_pools

TESTS = ("within_pool", "free", "parametric")


def null_cohort(rng: np.random.Generator, args) -> tuple[pd.DataFrame, pd.Series]:
    """Cells per donor and type (individual, cluster, C1..) and each donor's pool."""
    J, L = args.n_individuals, args.n_types
    clusters = rng.permutation(np.arange(J) % args.n_clusters)
    pool = assign_pools(clusters, args.n_pools, args.confounding, rng)
    base = rng.dirichlet(np.full(L, 5.0))
    shifted = base * np.exp(rng.normal(0.0, args.pool_shift_sd, size=(args.n_pools, L)))
    shifted /= shifted.sum(axis=1, keepdims=True)
    shares = np.array([rng.dirichlet(args.kappa * shifted[p]) for p in pool])
    cells = rng.negative_binomial(5, 5 / (5 + args.mean_cells), size=J) + 20
    counts = np.array([rng.multinomial(n, s) for n, s in zip(cells, shares, strict=True)])
    table = pd.DataFrame(counts, columns=[f"C{i + 1}" for i in range(L)])
    table.insert(0, "cluster", [f"I{k + 1}" for k in clusters])
    table.insert(0, "individual", [f"D{j}" for j in range(J)])
    return table, pd.Series([f"P{p}" for p in pool], index=table["individual"])


def one_cohort(seed: int, args) -> pd.DataFrame:
    """The p-values of every test and type on one null cohort (long: test, cell_cluster, p)."""
    rng = np.random.default_rng(seed)
    counts, pools = null_cohort(rng, args)
    within = permutation_anova(counts, pools, args.n_permutations, seed, min_mean_cells=0)
    free = permutation_anova(counts, None, args.n_permutations, seed, min_mean_cells=0)
    para = propeller_test(counts, min_mean_cells=0).query("contrast == 'all'")
    frames = [pd.DataFrame({"test": name, "cell_cluster": t["cell_cluster"].to_numpy(),
                            "p": t[col].to_numpy()})
              for name, t, col in (("within_pool", within, "p_perm"), ("free", free, "p_perm"),
                                   ("parametric", para, "p_value"))]
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dataset", seed)
    return out


def summarise(pvalues: pd.DataFrame) -> pd.DataFrame:
    """Per test: KS of the first type's p over cohorts against U(0,1), and the share p <= 0.05."""
    rows = []
    for name in TESTS:
        sub = pvalues[pvalues["test"] == name]
        first = sub[sub["cell_cluster"] == "C1"]["p"].to_numpy()
        ks = stats.kstest(first, "uniform")
        rows.append({"test": name, "n_datasets": len(first), "ks_statistic": ks.statistic,
                     "ks_p": ks.pvalue, "rate_p_le_0.05_first_type": np.mean(first <= 0.05),
                     "rate_p_le_0.05_all_types": np.mean(sub["p"].to_numpy() <= 0.05),
                     "n_tests_all_types": len(sub)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-datasets", type=int, default=200)
    parser.add_argument("--n-permutations", type=int, default=999)
    parser.add_argument("--n-individuals", type=int, default=120)
    parser.add_argument("--n-clusters", type=int, default=3)
    parser.add_argument("--n-pools", type=int, default=12)
    parser.add_argument("--confounding", type=float, default=0.5,
                        help="share of donors in their cluster's own pools (0: independent)")
    parser.add_argument("--pool-shift-sd", type=float, default=0.3)
    parser.add_argument("--n-types", type=int, default=6)
    parser.add_argument("--mean-cells", type=float, default=150.0)
    parser.add_argument("--kappa", type=float, default=100.0)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="TSV of the summary (first line: the command)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pvalues = pd.concat([one_cohort(s, args) for s in
                         range(args.first_seed, args.first_seed + args.n_datasets)],
                        ignore_index=True)
    summary = summarise(pvalues)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(summary.to_string(index=False))
    print(json.dumps({"settings": {k: (str(v) if isinstance(v, Path) else v)
                                   for k, v in vars(args).items()}}))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/permutation_calibration.py",
                                                               *sys.argv[1:]])
        with open(args.out, "w") as handle:
            handle.write(f"# {command}\n")
            summary.to_csv(handle, sep="\t", index=False, float_format="%.4g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
