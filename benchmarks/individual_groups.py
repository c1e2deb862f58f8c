"""Individual groups against NAM's individual clusters on the simulation design's generators.

Each case draws a cohort with :func:`nam_core.synthetic.simulate.simulate` (seeds ``--seeds``),
fits NAM with the workflow's ``fit:`` settings of ``--config`` (``--n-init`` restarts, CPU), groups
its cell atoms into types (:func:`nam_core.results.cell_types.group_atoms`, the workflow's
default) and its individual clusters into groups
(:func:`nam_core.results.individual_groups.group_individual_clusters`, the config's thresholds).
Both partitions of the individuals are scored against the true clusters (ARI); a grouping that
joins clusters the truth keeps apart loses ARI here. The cases span what the thresholds must
tell apart:

- ``default``: clusters that differ in genotype and in composition (delta_x 3, eta 0.8);
- ``composition_only``: genotype centres 0.5 apart, so only composition separates the clusters;
- ``weak_composition``: eta 0.3, so clusters differ little in composition;
- ``snp``: Balding-Nichols genotypes (fst 0.01) reduced to PCs;
- ``conflicting``: genotype and composition clusters drawn independently (scored against the
  genotype clusters and, ``composition_ari``, against the composition clusters).

Written to ``--out`` (TSV, a row per case and seed, after every row) and printed.

    OMP_NUM_THREADS=1 python benchmarks/individual_groups.py --out benchmarks/results/individual_groups.tsv
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.io import atomic_write_text
from nam_core.results.cell_types import group_atoms
from nam_core.results.individual_groups import group_individual_clusters
from nam_core.study.methods import fit_method
from nam_core.synthetic.simulate import simulate

COMMON = dict(J=200, n_clusters=4, q=5, p=10, n_cell_types=8, mean_cells=100)
CASES = {
    "default": {},
    "composition_only": dict(delta_x=0.5),
    "weak_composition": dict(eta=0.3),
    "snp": dict(genotype_model="snp"),
    "conflicting": dict(conflicting=True),
}


def type_shares(Y: np.ndarray, cells: np.ndarray, group: np.ndarray, J: int) -> np.ndarray:
    """Each individual's share of its cells in each cell type (J, T), types from the atoms."""
    atoms = np.asarray(cells).astype(str)
    names, codes = np.unique(group_atoms(Y, atoms).cell_groups(atoms), return_inverse=True)
    counts = np.zeros((J, len(names)))
    np.add.at(counts, (group, codes), 1.0)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


def run_case(name: str, seed: int, settings: FitSettings, thresholds: dict) -> dict:
    """One row: the cluster and group ARIs of one drawn cohort."""
    data = simulate(**COMMON, **CASES[name], seed=seed)
    t0 = time.perf_counter()
    res = fit_method("nam", data.X, data.Y, data.group, settings=settings, seed=seed)
    clusters = np.array([f"I{k}" for k in res.individual_labels])
    shares = type_shares(data.Y, res.cell_labels, data.group, len(clusters))
    groups = group_individual_clusters(data.X, clusters, shares, **thresholds).groups_of(clusters)
    return {
        "case": name, "seed": seed,
        "cluster_ari": adjusted_rand_score(data.individual_labels, clusters),
        "group_ari": adjusted_rand_score(data.individual_labels, groups),
        "cluster_composition_ari": adjusted_rand_score(data.composition_labels, clusters),
        "group_composition_ari": adjusted_rand_score(data.composition_labels, groups),
        "n_clusters": len(np.unique(clusters)), "n_groups": len(np.unique(groups)),
        "n_true": len(np.unique(data.individual_labels)),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-init", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/individual_groups.tsv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with open(args.config) as f:
        config = yaml.safe_load(f)
    settings = FitSettings.from_config(config["fit"], ignore=("seeds",)).with_changes(
        n_init=args.n_init, device="cpu")
    thresholds = config["individual_groups"]
    rows = []
    for name in args.cases:
        for seed in args.seeds:
            rows.append(run_case(name, seed, settings, thresholds))
            table = pd.DataFrame(rows).to_csv(sep="\t", index=False, float_format="%.3f")
            os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
            atomic_write_text(args.out, f"# python benchmarks/individual_groups.py "
                                        f"{' '.join(sys.argv[1:] if argv is None else argv)}\n" + table)
            print("\t".join(str(round(v, 3) if isinstance(v, float) else v)
                            for v in rows[-1].values()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
