"""Sequencing pools against NAM, CAM and Leiden: pools off, on without correction, on corrected.

A cohort of donors of three ancestries (six PBMC cell types, gamma-Poisson counts) is drawn
without pools and with ``--n-pools`` pools (each a log-normal shift of sd ``--shift-sd`` on every
gene and on the library), pool either independent of ancestry or confounded with it (90 % of the
donors in pools reserved for their ancestry). The counts are preprocessed as the workflow does,
with the settings of ``--config`` (``expression:``; with pools, ``batch_key: pool``, so the
PCs are corrected by :func:`nam_core.inputs.batch.correct_pcs`: log library regressed out, then
Harmony), and every method is fitted on the uncorrected and on the corrected PCs with the
config's ``fit:`` settings (``--n-init`` restarts). Written to ``--out`` (TSV, one row per fit,
after every fit) and printed:

- ``individual_ari``: individual clusters against ancestry;
- ``individual_vs_pool_ari``: individual clusters against each donor's pool (a donor is
  sequenced in one pool: its majority pool), as the workflow's log check computes it
  (:func:`nam_core.results.pools.warn_if_clusters_follow_batches`),
  ``individual_vs_pool_homogeneity``, how well the donor's pool predicts its cluster beyond
  chance (the same check), and ``pool_warning``, whether that check warns;
- ``individual_group_ari``, ``n_individual_groups``: the individual groups
  (:func:`nam_core.results.individual_groups.group_individual_clusters` on the cell types that
  :func:`nam_core.results.cell_types.group_atoms` makes of the fit's cell clusters, as the
  workflow does; ``type_shares`` of ``benchmarks/individual_groups.py``) against ancestry;
- ``cell_ari``: cell clusters against the cell types, ``n_cell_clusters``, and
  ``atoms_one_pool``: cell clusters (of >= 0.5 % of the cells) more than half of whose cells
  come from one pool.

The methods are run method by method over the scenarios, in the order given, so a run cut short
loses the last method's last scenarios.

    nice -n 10 python benchmarks/pools.py --out benchmarks/results/pools_300donors.tsv
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
import yaml
from individual_groups import type_shares  # benchmarks/individual_groups.py
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.inputs.expression import preprocess
from nam_core.io import atomic_write_text
from nam_core.results.individual_groups import group_individual_clusters
from nam_core.results.pools import warn_if_clusters_follow_batches
from nam_core.study.methods import fit_method
from nam_core.synthetic.base import CohortSpec, genotype_pcs
from nam_core.synthetic.demo import demo_anndata, draw_demo_cohort

logger = logging.getLogger("benchmarks.pools")

PREPROCESS_KEYS = ("min_genes", "min_cells", "min_counts", "max_pct_mt", "n_top_genes",
                   "target_sum", "n_pcs", "seed")


def _scenario(spec: CohortSpec, expression: dict, n_genotype_pcs: int) -> dict:
    """One cohort, preprocessed as the workflow does (corrected for ``pool`` when it has pools).

    Returns a dict: ``pcs`` ({"uncorrected": (N, p)} and, with pools, "corrected"), ``group``
    (N,) donor of each cell, ``types`` (N,), ``ancestry`` (J,), ``donor_pool`` (J,), ``cell_pool``
    (N,), ``X`` (J, q) genotype PCs, ``harmony_seconds``.
    """
    cohort = draw_demo_cohort(spec)
    options = {k: expression[k] for k in PREPROCESS_KEYS if k in expression}
    batch_key = "pool" if spec.n_pools else None
    adata = preprocess(demo_anndata(cohort), batch_key=batch_key,
                       harmony=expression.get("harmony"), **options)
    index = {iid: j for j, iid in enumerate(cohort["iids"])}
    group = adata.obs["individual"].astype(str).map(index).to_numpy(dtype=np.int64)
    pools = cohort["pools"]
    donor_pool = pools.pool if pools is not None else np.zeros(spec.n_individuals, dtype=int)
    if batch_key:
        pcs = {"uncorrected": adata.obsm["X_pca_uncorrected"], "corrected": adata.obsm["X_pca"]}
        seconds = adata.uns["preprocess"]["batch_correction"].get("seconds", np.nan)
    else:
        pcs, seconds = {"uncorrected": adata.obsm["X_pca"]}, np.nan
    return {
        "pcs": {k: np.asarray(v, dtype=np.float64) for k, v in pcs.items()},
        "group": group, "types": adata.obs["cell_type"].astype(str).to_numpy(),
        "ancestry": cohort["ancestry"], "donor_pool": donor_pool,
        "cell_pool": donor_pool[group],
        "X": genotype_pcs(cohort["genotypes"].astype(np.float64), n_genotype_pcs),
        "harmony_seconds": seconds, "n_pools": spec.n_pools,
    }


def atoms_mostly_one_pool(cell_labels: np.ndarray, cell_pool: np.ndarray,
                          min_share: float = 0.005) -> int:
    """Cell clusters holding >= ``min_share`` of the cells of which one pool holds over half."""
    table = pd.crosstab(np.asarray(cell_labels), np.asarray(cell_pool)).to_numpy()
    sizes = table.sum(1)
    large = sizes >= min_share * sizes.sum()
    return int(np.sum(table[large].max(1) > 0.5 * sizes[large]))


def individual_groups(data: dict, Y: np.ndarray, ind, cells) -> np.ndarray:
    """Each donor's individual group (J,), from its cluster, genotype PCs and cell-type shares."""
    shares = type_shares(Y, cells, data["group"], len(data["ancestry"]))
    clusters = np.array([f"I{k}" for k in np.asarray(ind)])
    return group_individual_clusters(data["X"], clusters, shares).groups_of(clusters)


def score(data: dict, Y: np.ndarray, ind, cells) -> dict:
    """The columns of one fit's row (see the module docstring); NaN where they do not apply."""
    row = {"individual_ari": np.nan, "individual_vs_pool_ari": np.nan,
           "individual_vs_pool_homogeneity": np.nan, "pool_warning": "",
           "n_individual_clusters": np.nan, "individual_group_ari": np.nan,
           "n_individual_groups": np.nan}
    if ind is not None:
        row["individual_ari"] = adjusted_rand_score(data["ancestry"], ind)
        row["n_individual_clusters"] = len(np.unique(ind))
        groups = individual_groups(data, Y, ind, cells)
        row["individual_group_ari"] = adjusted_rand_score(data["ancestry"], groups)
        row["n_individual_groups"] = len(np.unique(groups))
        if data["n_pools"]:
            check = warn_if_clusters_follow_batches(ind, data["group"], data["cell_pool"], "pool")
            row["individual_vs_pool_ari"] = check.ari
            row["individual_vs_pool_homogeneity"] = check.homogeneity
            row["pool_warning"] = "yes" if check.warned else "no"
    row["cell_ari"] = adjusted_rand_score(data["types"], cells)
    row["n_cell_clusters"] = len(np.unique(cells))
    row["atoms_one_pool"] = (atoms_mostly_one_pool(cells, data["cell_pool"])
                             if data["n_pools"] else np.nan)
    return row


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml",
                        help="its fit: and expression: blocks are used")
    parser.add_argument("--n-individuals", type=int, default=300)
    parser.add_argument("--mean-cells", type=float, default=162,
                        help="cells drawn per donor on average (QC then drops about 6 %%)")
    parser.add_argument("--n-pools", type=int, default=24)
    parser.add_argument("--shift-sd", type=float, default=0.3)
    parser.add_argument("--confounding", type=float, default=0.9,
                        help="share of donors in their ancestry's pools (confounded scenario)")
    parser.add_argument("--n-pcs", type=int, default=None,
                        help="expression PCs (default: the config's expression.n_pcs)")
    parser.add_argument("--methods", default="nam,leiden_0.5,leiden_1.0,cam",
                        help="comma-separated, run in this order")
    parser.add_argument("--scenarios", default="no_pools,pools_independent,pools_confounded")
    parser.add_argument("--skip", default="",
                        help="comma-separated method:scenario pairs not run, e.g. cam:pools_confounded")
    parser.add_argument("--n-init", type=int, default=1, help="restarts of NAM (seeds seed, seed+1, ...)")
    parser.add_argument("--n-init-cam", type=int, default=None,
                        help="restarts of the other models, e.g. CAM (default: --n-init)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="sweeps per restart at most (default: the config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/pools.tsv")
    return parser


def main(argv=None) -> int:
    """Run every scenario and write the table."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s: %(message)s")
    torch.set_num_threads(1)
    with open(args.config) as f:
        config = yaml.safe_load(f)
    expression = dict(config["expression"])
    if args.n_pcs is not None:
        expression["n_pcs"] = args.n_pcs
    changes = {"n_init": args.n_init, "device": "cpu"}
    if args.max_iter is not None:
        changes["max_iter"] = args.max_iter
    settings = FitSettings.from_config(config["fit"], ignore=("seeds",)).with_changes(**changes)
    base = dict(n_individuals=args.n_individuals, n_ancestries=3, mean_cells=args.mean_cells,
                n_snps=2000, seed=args.seed)
    pooled = dict(n_pools=args.n_pools, pool_shift_sd=args.shift_sd)
    specs = {
        "no_pools": CohortSpec(**base),
        "pools_independent": CohortSpec(**base, **pooled),
        "pools_confounded": CohortSpec(**base, **pooled, pool_confounding=args.confounding),
    }
    scenarios = args.scenarios.split(",")
    skip = set(filter(None, args.skip.split(",")))
    data = {}
    for name in scenarios:
        t0 = time.perf_counter()
        data[name] = _scenario(specs[name], expression, config["genotypes"]["n_pcs"])
        print(f"# {name}: {len(data[name]['group'])} cells, preprocessed in "
              f"{time.perf_counter() - t0:.0f} s (Harmony {data[name]['harmony_seconds']} s)",
              flush=True)
    rows = []
    for method in args.methods.split(","):
        for name in scenarios:
            if f"{method}:{name}" in skip:
                continue
            n_init = args.n_init if method == "nam" else (args.n_init_cam or args.n_init)
            for correction, Y in data[name]["pcs"].items():
                t0 = time.perf_counter()
                res = fit_method(method, data[name]["X"], Y, data[name]["group"],
                                 settings=settings.with_changes(n_init=n_init), seed=args.seed)
                row = {"scenario": name, "correction": correction, "method": method,
                       "n_cells": Y.shape[0], "n_init": n_init if res.model else np.nan,
                       **score(data[name], Y, res.individual_labels, res.cell_labels),
                       "seconds": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                _write(rows, args.out)  # after every row: a cut-short run keeps what it did
                print("\t".join(str(round(v, 3) if isinstance(v, float) else v)
                                for v in row.values()), flush=True)
    return 0


def _write(rows: list[dict], path: str) -> None:
    """The table so far, headed by the command that made it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    table = pd.DataFrame(rows).to_csv(sep="\t", index=False, float_format="%.3f")
    atomic_write_text(path, f"# python {' '.join(sys.argv)}\n{table}")


if __name__ == "__main__":
    raise SystemExit(main())
