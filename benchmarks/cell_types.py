"""Cell types as groups of NAM's atoms against the true types, with Leiden on the same PCs.

For each data set and number of PCs, one NAM fit; its atoms are grouped by each criterion of
``nam_core.results.atom_grouping`` (dip, PAGA, entropy); Leiden at resolutions 0.5 and 1.0 runs
on the same PCs. One row per (data set, PCs, method): cell ARI, groups holding >= 1 % of the
cells against the true number of types, the share of each close pair's cells put in one group
(many-types data set), grouping seconds and peak memory (MB, tracemalloc). Data sets: the demo
cohort, the realistic cohort (> 50,000 cells), the ten-type generator
(``nam_core.synthetic.many_types``; log-normalised or analytic Pearson residuals, optionally
with the log library size regressed out of the PCs) and scanpy's ``pbmc68k_reduced`` (its PCs,
FACS ``bulk_labels``). The generated data sets without individuals get cells spread at random
over 50 individuals with random genotype PCs, so NAM can fit them. The case ``fit_inputs`` reads
a workflow run's ``fit/inputs.npz`` (its expression PCs, genotype PCs and individuals) and the
cohort's ``truth_cells.tsv``: the 1.27M-cell generated cohort of ``benchmarks/bench_scale.py``.
Fewer PCs than the file holds take its first PCs (PCA components are nested). The case
``workflow_cells`` refits nothing: it scores the atoms (obs ``nam_cell_cluster``) and types (obs
``nam_cell_group``) that a finished workflow run wrote to ``cells.h5ad`` (``--cells-h5ad``), and
runs Leiden on the PCs that run was fitted on (obsm ``X_pca``, all of them; ``--pcs`` is ignored):
at a million cells the run's own fit is the one to score, and a second fit would double the cost.

NAM is fitted with the workflow's settings, read from a config file's ``fit`` block (the demo
config by default: Student-t atoms, atom merges, one restart per seed, the best ELBO kept).

Example::

    OMP_NUM_THREADS=1 python benchmarks/cell_types.py --cases pbmc68k many_types --pcs 10 20
    OMP_NUM_THREADS=1 python benchmarks/cell_types.py --cases fit_inputs --pcs 10 20 \
        --fit-inputs WORKDIR/results/scale1270000/fit/inputs.npz \
        --truth WORKDIR/cohort/truth_cells.tsv --fit-config config/onek1k.yaml
    OMP_NUM_THREADS=2 python benchmarks/cell_types.py --cases workflow_cells \
        --cells-h5ad WORKDIR/results/scale1270000_pools75/cells.h5ad \
        --truth WORKDIR/cohort/truth_cells.tsv
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.results.atom_grouping import CRITERIA
from nam_core.results.cell_types import group_atoms
from nam_core.results.leiden import leiden_labels, n_large_clusters
from nam_core.study.cell_clusters import draw_case
from nam_core.study.methods import fit_method
from nam_core.synthetic.many_types import CLOSE_PAIRS, many_types_cells

CASES = ["demo", "realistic", "many_types", "many_types_pearson", "many_types_regressed", "pbmc68k",
         "fit_inputs"]
# The workflow's preprocessing options on the demo and realistic cohorts
# (nam_core.study.cell_clusters.CASES: expression.normalisation, expression.regress_library).
CASES += ["demo_pearson", "realistic_pearson", "realistic_regressed"]
CASES += ["workflow_cells"]


def _regress_library(pcs, library):
    """PCs with the log library size regressed out (least squares with intercept)."""
    design = np.column_stack([np.ones(len(pcs)), np.log(library)])
    beta, *_ = np.linalg.lstsq(design, pcs, rcond=None)
    return pcs - design @ beta + beta[0]


def _many_types(n_pcs, variant, n_cells, seed):
    import anndata as ad
    import scanpy as sc

    d = many_types_cells(n_cells=n_cells, seed=seed)
    adata = ad.AnnData(d.counts.astype(np.float32))
    if variant == "pearson":
        sc.experimental.pp.normalize_pearson_residuals(adata)
    else:
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=n_pcs, random_state=seed)
    pcs = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    if variant == "regressed":
        pcs = _regress_library(pcs, np.asarray(d.counts.sum(1)).ravel() + 1.0)
    return pcs, d.cell_type


def _pbmc68k(n_pcs):
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    return np.asarray(pbmc.obsm["X_pca"][:, :n_pcs], dtype=np.float64), \
        pbmc.obs["bulk_labels"].astype(str).to_numpy()


def _fit_inputs(n_pcs, path, truth_path):
    """A workflow's fit inputs, its first ``n_pcs`` expression PCs, and the cells' true types."""
    from nam_core.inputs.fit_inputs import read_fit_inputs

    inputs = read_fit_inputs(path)
    types = _true_types(truth_path, inputs.cells)
    if n_pcs > inputs.y.shape[1]:
        raise SystemExit(f"{path} holds {inputs.y.shape[1]} PCs; asked for {n_pcs}")
    return (np.ascontiguousarray(inputs.y[:, :n_pcs], dtype=np.float64), types,
            inputs.x, inputs.group)


def _true_types(truth_path, cells):
    """True type of each of ``cells`` (N,) from a cohort's truth_cells.tsv; exits on a gap."""
    truth = pd.read_csv(truth_path, sep="\t", usecols=["cell", "cell_type"], dtype=str)
    types = truth.set_index("cell")["cell_type"].reindex(np.asarray(cells).astype(str))
    if types.isna().any():
        raise SystemExit(f"{truth_path}: no true type for {int(types.isna().sum())} fitted cells")
    return types.to_numpy()


def score_workflow_run(cells_path, truth_path, seed):
    """Rows for a finished run: its atoms and types as written, and Leiden on its PCs."""
    from nam_core.inputs.h5ad import read_annotations

    adata = read_annotations(cells_path)  # obs and obsm only, no X
    pcs = np.asarray(adata.obsm["X_pca"], dtype=np.float32)
    truth = _true_types(truth_path, adata.obs_names)
    base = {"case": "workflow_cells", "pcs": pcs.shape[1], "N": len(pcs)}
    rows = [{**base, "method": method, **score(truth, adata.obs[column].astype(str).to_numpy())}
            for method, column in (("nam_atoms", "nam_cell_cluster"),
                                   ("nam_types[workflow]", "nam_cell_group"))]
    t0 = time.perf_counter()
    for res_, lab in leiden_labels(pcs, resolutions=(0.5, 1.0), seed=seed).items():
        rows.append({**base, "method": f"leiden_{res_}", **score(truth, np.asarray(lab).astype(str)),
                     "seconds": round(time.perf_counter() - t0, 2)})
        print(rows[-1], flush=True)
    return rows


def load(case, n_pcs, seed, n_cells, paths=None):
    """(pcs (N, p), true labels (N,), genotype PCs (J, q), individual of each cell (N,))."""
    if case == "fit_inputs":
        return _fit_inputs(n_pcs, *paths)
    if case in ("demo_pearson", "realistic_pearson", "realistic_regressed"):
        data = draw_case(case, seed=seed, n_pcs=n_pcs)
        return data.Y, np.asarray(data.cell_labels).astype(str), data.X, data.group
    if case in ("demo", "realistic"):
        name = {"demo": f"demo_pcs{n_pcs}", "realistic": "realistic"}[case]
        data = draw_case(name, seed=seed, n_pcs=n_pcs) if case == "realistic" else draw_case(name, seed=seed)
        return data.Y, np.asarray(data.cell_labels).astype(str), data.X, data.group
    if case.startswith("many_types"):
        pcs, truth = _many_types(n_pcs, case.removeprefix("many_types").lstrip("_"), n_cells, seed)
    else:
        pcs, truth = _pbmc68k(n_pcs)
    rng = np.random.default_rng(seed)
    return pcs, truth, rng.normal(size=(50, 5)), rng.integers(0, 50, len(pcs))


def pair_merge_rates(truth, labels):
    """For each close pair present: the share of the pair's cells whose group is the majority
    group of the other type (0: kept apart, 1: merged)."""
    out = {}
    for a, b in CLOSE_PAIRS:
        if a in truth and b in truth:
            la, lb = labels[truth == a], labels[truth == b]
            major_b = pd.Series(lb).mode().iloc[0]
            major_a = pd.Series(la).mode().iloc[0]
            out[f"merged[{a.split('/')[-1]}|{b.split('/')[-1]}]"] = round(
                float(((la == major_b).sum() + (lb == major_a).sum()) / (len(la) + len(lb))), 3)
    return out


def score(truth, labels):
    return {"ari": round(float(adjusted_rand_score(truth, labels)), 4),
            "n_groups_1pct": n_large_clusters(labels), "n_types": int(np.unique(truth).size),
            **pair_merge_rates(truth, np.asarray(labels))}


def run(case, n_pcs, settings, seed, n_cells, paths=None, criteria=tuple(CRITERIA)):
    pcs, truth, X, group = load(case, n_pcs, seed, n_cells, paths)
    base = {"case": case, "pcs": n_pcs, "N": len(pcs)}
    res = fit_method("nam", X, pcs, group, settings=settings, seed=seed)
    atoms = np.asarray(res.cell_labels).astype(str)
    rows = [{**base, "method": "nam_atoms", **score(truth, atoms), "seconds": res.seconds}]
    for criterion in criteria:
        tracemalloc.start()
        t0 = time.perf_counter()
        ct = group_atoms(pcs, atoms, criterion=criterion, seed=seed)
        secs = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append({**base, "method": f"nam_types[{criterion}]",
                     **score(truth, ct.cell_groups(atoms)), "seconds": round(secs, 2),
                     "peak_mb": round(peak, 1)})
    t0 = time.perf_counter()
    for res_, lab in leiden_labels(pcs, resolutions=(0.5, 1.0), seed=seed).items():
        rows.append({**base, "method": f"leiden_{res_}", **score(truth, np.asarray(lab).astype(str)),
                     "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def fit_settings(config_path, n_init=None):
    """The workflow's fit settings from a config file's ``fit`` block, on the CPU; restarts:
    ``n_init`` or one per seed of the block."""
    from nam_core.io import read_yaml_config

    block = read_yaml_config(config_path).get("fit", {})
    restarts = n_init or len(block.get("seeds", [0]))
    return dataclasses.replace(FitSettings.from_config(block, ignore=("seeds",)),
                               n_init=restarts, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    parser.add_argument("--pcs", nargs="+", type=int, default=[10, 20])
    parser.add_argument("--fit-config", default="config/config.yaml",
                        help="config file whose fit block sets NAM (its seeds: the restarts)")
    parser.add_argument("--n-init", type=int, default=None,
                        help="restarts of each NAM fit (default: the config's number of seeds)")
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=list(CRITERIA),
                        help="grouping criteria to score (PAGA builds a kNN graph: slow)")
    parser.add_argument("--fit-inputs", help="fit/inputs.npz of a workflow run (case fit_inputs)")
    parser.add_argument("--cells-h5ad", help="cells.h5ad of a finished run (case workflow_cells)")
    parser.add_argument("--truth",
                        help="truth_cells.tsv of that cohort (cases fit_inputs, workflow_cells)")
    parser.add_argument("--n-cells", type=int, default=20_000, help="cells of the ten-type data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/cell_types.tsv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    settings = fit_settings(args.fit_config, args.n_init)
    print(f"NAM settings: {settings}", flush=True)
    rows = []
    for case in args.cases:
        for n_pcs in ([None] if case == "workflow_cells" else args.pcs):
            rows += (score_workflow_run(args.cells_h5ad, args.truth, args.seed)
                     if case == "workflow_cells" else
                     run(case, n_pcs, settings, args.seed, args.n_cells,
                         (args.fit_inputs, args.truth), args.criteria))
            table = pd.DataFrame(rows)
            print(table.tail(6).to_string(index=False), flush=True)
            with open(args.out, "w") as fh:
                fh.write("# " + " ".join(["python benchmarks/cell_types.py",
                                          *__import__("sys").argv[1:]]) + "\n")
                table.to_csv(fh, sep="\t", index=False)


if __name__ == "__main__":
    main()
