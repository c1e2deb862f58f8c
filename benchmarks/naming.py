"""How cell types are named from a marker table, rule by rule, on cells whose type is known.

Each data set's true types serve as the clusters, so only the naming is measured: for every
rule, each true type gets the name of the best-scoring type of ``config/cell_type_markers.tsv``
(``nam_core.results.naming``: mean AUROC of the type's markers, cluster against the rest), and
the name is compared with the true type's name in the table's vocabulary. Rules:

- ``found3``: mean over the markers found among the genes, types with fewer than 3 found unscored;
- ``found2``: the same with 2;
- ``chance2``: 2 found needed, and the mean runs over all of the type's markers, those absent
  from the genes counting as chance (AUROC 0.5).

Data sets: scanpy's ``pbmc68k_reduced`` (700 real PBMCs, FACS ``bulk_labels``, its 765 genes,
log-normalised), the demo cohort's counts (six types drawn around pbmc68k profiles) and the
ten-type generator (``nam_core.synthetic.many_types``). True labels map to the table's names
with ``nam_core.synthetic.profiles.CELL_TYPE_MAP`` (CD34+ cells: HSPC). One row per (data set,
true type, rule): the name given, its score and marker count, the runner-up and the margin.
Written to ``--out`` and summarised per rule (true types named right).

    python benchmarks/naming.py --out benchmarks/results/naming.tsv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nam_core.results import naming as nm  # noqa: E402
from nam_core.results.auroc import cluster_auroc, rank_matrix  # noqa: E402
from nam_core.synthetic.profiles import CELL_TYPE_MAP  # noqa: E402

RULES = {"found3": (3, False), "found2": (2, False), "chance2": (2, True)}
TRUE_NAMES = {**CELL_TYPE_MAP, "CD34+": "HSPC"}


def _pbmc68k():
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    return pbmc.raw.X, list(pbmc.raw.var_names), pbmc.obs["bulk_labels"].astype(str).to_numpy()


def _demo():
    from nam_core.synthetic.demo import demo_anndata, draw_demo_cohort

    adata = demo_anndata(draw_demo_cohort())
    return adata.X, list(adata.var_names), adata.obs["cell_type"].astype(str).to_numpy()


def _many_types(n_cells=20_000, seed=0):
    from nam_core.synthetic.many_types import many_types_cells

    d = many_types_cells(n_cells=n_cells, seed=seed)
    return d.counts, list(d.genes), np.asarray(d.cell_type).astype(str)


DATA = {"pbmc68k": _pbmc68k, "demo": _demo, "many_types": _many_types}


def name_true_types(X, genes, truth, markers, min_markers, absent_as_chance) -> pd.DataFrame:
    """Names of each true type under one rule: name_clusters' table plus the true name."""
    present = [g for g in dict.fromkeys(markers["gene"]) if g in set(genes)]
    columns = pd.Index(genes).get_indexer(present)
    labels, codes = np.unique(truth, return_inverse=True)
    auroc = cluster_auroc(rank_matrix(X[:, columns]), codes, labels.size)
    scores, used = nm.score_cell_types(pd.DataFrame(auroc, index=labels, columns=present),
                                       markers, min_markers, absent_as_chance)
    named = nm.name_clusters(scores)
    found = used.set_index("cell_type")["n_found"]
    named["n_markers"] = named["cell_type"].map(found).fillna(0).astype(int)
    named["true_name"] = [TRUE_NAMES.get(t, t) for t in named["cluster"]]
    named["n_cells"] = np.bincount(codes)
    named["right"] = named["cell_type"] == named["true_name"]
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--markers", default=str(ROOT / "config" / "cell_type_markers.tsv"))
    parser.add_argument("--out", default="benchmarks/results/naming.tsv")
    args = parser.parse_args()
    markers = nm.read_marker_table(args.markers)
    rows = []
    for data in args.data:
        X, genes, truth = DATA[data]()
        for rule, (min_markers, chance) in RULES.items():
            named = name_true_types(X, genes, truth, markers, min_markers, chance)
            rows.append(named.assign(data=data, rule=rule))
    table = pd.concat(rows, ignore_index=True)
    table = table[["data", "rule", "cluster", "n_cells", "true_name", "cell_type", "score",
                   "n_markers", "second_type", "second_score", "margin", "right"]]
    table = table.rename(columns={"cluster": "true_type", "cell_type": "named"})
    with open(args.out, "w") as fh:
        fh.write("# python benchmarks/naming.py " + " ".join(sys.argv[1:]) + "\n")
        table.round(3).to_csv(fh, sep="\t", index=False)
    summary = table.groupby(["data", "rule"]).agg(
        types=("right", "size"), named_right=("right", "sum"),
        cells_named_right=("n_cells", lambda n: int(n[table.loc[n.index, "right"]].sum())),
        cells=("n_cells", "sum"))
    print(summary.to_string())
    wrong = table[~table["right"]]
    print(wrong[["data", "rule", "true_type", "named", "score", "n_markers", "second_type",
                 "margin"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
