"""No text runs into other text in the figures, on a 6-type demo and on a 14-type cohort.

Each figure is drawn with the Agg renderer and every drawn text's bounding box
(``Text.get_window_extent``) is checked against every other's.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from nam_core.results.composition_plots import (  # noqa: E402
    plot_coclustering,
    plot_composition_posterior,
    plot_differences_forest,
    plot_typed_umap,
)
from nam_core.results.layout import overlapping_texts  # noqa: E402
from nam_core.results.plots import (  # noqa: E402
    plot_composition_heatmap,
    plot_elbo_traces,
    plot_genotype_pcs,
    plot_marker_dotplot,
    plot_scree,
)

DEMO = ["CD4 T", "CD14 Monocyte", "CD8 T", "Dendritic", "NK", "B"]
# the 14 labels of the OneK1K cohort (Yazar et al. 2022, Fig. 1)
ONEK1K = ["CD4 NC", "CD4 ET", "CD4 SOX4", "CD8 NC", "CD8 ET", "CD8 S100B", "NK", "NK R",
          "B IN", "B Mem", "Plasma", "Mono C", "Mono NC", "DC"]


@pytest.fixture(params=[DEMO, ONEK1K], ids=["6 types", "14 types"])
def types(request):
    return {f"T{i + 1}": name for i, name in enumerate(request.param)}


def _shares(n_rows, n_types, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_types), size=n_rows)


def _no_overlap(fig):
    pairs = overlapping_texts(fig)
    plt.close(fig)
    assert pairs == [], pairs


def test_the_check_finds_overlapping_text():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "CD14 Monocyte")
    ax.text(0.52, 0.5, "CD16 Monocyte")
    assert overlapping_texts(fig) == [("CD14 Monocyte", "CD16 Monocyte")]
    plt.close(fig)


def test_composition_heatmap(types):
    values = _shares(4, len(types))
    table = pd.DataFrame(values, columns=[f"{t} {n}" for t, n in types.items()])
    table.insert(0, "cluster", [f"I{i + 1}" for i in range(4)])
    table.insert(1, "n_individuals", [101, 66, 33, 9])
    table.insert(2, "n_cells", [9276, 5556, 3004, 700])
    _no_overlap(plot_composition_heatmap(table, level="cell type"))


def _pairwise(contrasts, types, rng):
    rows = []
    for contrast in contrasts:
        for cluster, name in types.items():
            effect = rng.normal(0, 0.1)
            rows.append({"contrast": contrast, "cell_cluster": cluster, "cell_type": name,
                         "effect": effect, "lower": effect - 0.03, "upper": effect + 0.03,
                         "fdr": rng.uniform(0, 0.1)})
    return pd.DataFrame(rows)


def test_forest_plot(types):
    rng = np.random.default_rng(1)
    contrasts = ["I1 vs rest", "I2 vs rest", "I3 vs rest", "I1 vs I2", "I1 vs I3", "I2 vs I3"]
    differences = _pairwise(contrasts, types, rng)
    differences.loc[0, ["effect", "upper"]] = [0.33, 0.36]  # a point at the panel's right end
    propeller = differences.assign(fdr=0.01)
    _no_overlap(plot_differences_forest(differences, propeller, names=types))


def test_marker_dotplot(types):
    # one gene per type (shared markers dropped) is the tightest bracket labels get
    for per_type in (1, 3):
        genes = [(t, f"GENE{i}{k}") for i, t in enumerate(types) for k in range(per_type)]
        labels = [f"{t} {n}" for t, n in types.items()]
        shape = (len(labels), len(genes))
        fraction = pd.DataFrame(_shares(*shape), index=labels, columns=[g for _, g in genes])
        _no_overlap(plot_marker_dotplot(fraction, fraction * 3, genes, "Cell type"))


def test_umap_labels(types):
    rng = np.random.default_rng(2)
    n = len(types)
    # types in two tight rows, as T-cell and NK subsets sit in a real UMAP
    centres = np.column_stack([np.arange(n) % 7 * 1.2, np.arange(n) // 7 * 0.8])
    groups = np.repeat(list(types), 200)
    umap = np.repeat(centres, 200, axis=0) + rng.normal(0, 0.25, (groups.size, 2))
    atoms = np.char.replace(groups.astype(str), "T", "C")
    atom_names = {a.replace("T", "C"): name for a, name in types.items()}
    _no_overlap(plot_typed_umap(umap, groups, types, atoms, atom_names))


def test_composition_posterior(types):
    rows = []
    for i, shares in enumerate(_shares(3, len(types))):
        for cluster, share in zip(types, shares, strict=True):
            rows.append({"individual_cluster": f"I{i + 1}", "cell_cluster": cluster,
                         "mean": share, "lower": share * 0.9, "upper": share * 1.1})
    _no_overlap(plot_composition_posterior(pd.DataFrame(rows), names=types))


def test_elbo_traces():
    sweeps = np.arange(1, 120)
    traces = pd.concat([pd.DataFrame({"seed": seed, "sweep": sweeps,
                                      "elbo": -1.2e5 - 4e3 * np.exp(-sweeps / 20) - 50 * seed})
                        for seed in range(8)])
    _no_overlap(plot_elbo_traces(traces, best_seed=0))


@pytest.mark.parametrize("k", [3, 14])
def test_genotype_and_coclustering_figures(k):
    rng = np.random.default_rng(3)
    clusters = np.array([f"I{i % k + 1}" for i in range(200)])
    pcs = pd.DataFrame(rng.normal(size=(200, 5)), columns=[f"PC{i}" for i in range(1, 6)])
    pcs.insert(0, "individual", [f"IND{i:04d}" for i in range(200)])
    ratio = np.sort(rng.dirichlet(np.ones(20)))[::-1]
    _no_overlap(plot_scree(ratio, n_snps_used=123456))
    _no_overlap(plot_genotype_pcs(pcs, clusters, ratio))
    same = (clusters[:, None] == clusters[None, :]).astype(float)
    _no_overlap(plot_coclustering(same, np.argsort(clusters, kind="stable"), clusters))
