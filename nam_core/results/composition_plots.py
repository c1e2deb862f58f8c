"""Figures of the composition analysis: posterior bars, forest plot, co-clustering, named UMAP.

Same conventions as :mod:`nam_core.results.plots` (journal sizes, 7-8 pt text, PNG + PDF through
:func:`~nam_core.results.plots.save_figure`). Cell clusters are labelled ``"C3 B"`` (cluster and
its cell-type name) wherever a names mapping is given.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import NAMInputError
from .naming import display_labels
from .plots import (
    DOUBLE_COLUMN,
    SINGLE_COLUMN,
    _cluster_number,
    cluster_colors,
    paper_style,
    plot_umap,
    plot_umap_panels,
)

__all__ = [
    "plot_composition_posterior",
    "plot_differences_forest",
    "plot_coclustering",
    "plot_named_umap",
    "plot_typed_umap",
]


def plot_composition_posterior(posterior: pd.DataFrame, names: dict | None = None) -> Figure:
    """Stacked bars of each individual cluster's composition, with 95% interval whiskers.

    Parameters
    ----------
    posterior : DataFrame
        ``composition/posterior.tsv``: individual_cluster, cell_cluster, mean, lower, upper.
    names : dict or None
        Cell-type name of each cell cluster.
    """
    if posterior.empty:
        raise NAMInputError("the composition posterior table is empty")
    wide = posterior.pivot(index="individual_cluster", columns="cell_cluster", values="mean")
    lower = posterior.pivot(index="individual_cluster", columns="cell_cluster", values="lower")
    upper = posterior.pivot(index="individual_cluster", columns="cell_cluster", values="upper")
    rows = sorted(wide.index, key=_cluster_number)
    cols = sorted(wide.columns, key=_cluster_number)
    wide, lower, upper = (t.loc[rows, cols] for t in (wide, lower, upper))
    colors = cluster_colors(cols)
    labels = dict(zip(cols, display_labels(cols, names), strict=True))
    with paper_style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.3, 0.9 + 0.35 * len(rows) + 0.1 * len(cols)))
        left = np.zeros(len(rows))
        y = np.arange(len(rows))
        for c in cols:
            width = wide[c].to_numpy()
            ax.barh(y, width, left=left, color=colors[c], label=labels[c], height=0.7,
                    edgecolor="white", linewidth=0.3)
            end = left + width
            ax.errorbar(end, y, xerr=[end - (left + lower[c].to_numpy()),
                                      (left + upper[c].to_numpy()) - end],
                        fmt="none", ecolor="black", elinewidth=0.5, capsize=1.2)
            left = end
        ax.set_yticks(y, rows)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.0)
        ax.set_xlabel("Share of cells (posterior mean; whiskers: 95% credible interval)")
        ax.set_ylabel("NAM individual cluster")
        ax.legend(title="Cell cluster", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title("Composition of each individual cluster under q(u)")
        fig.tight_layout()
    return fig


def plot_differences_forest(
    differences: pd.DataFrame, propeller: pd.DataFrame | None = None, names: dict | None = None
) -> Figure:
    """Forest plot of the differences in composition, one panel per "cluster vs rest" contrast.

    Parameters
    ----------
    differences : DataFrame
        ``composition/differences.tsv``: contrast, cell_cluster, effect, lower, upper, fdr.
    propeller : DataFrame or None
        ``composition/propeller.tsv``; its FDR is marked beside each row when given.
    names : dict or None
        Cell-type name of each cell cluster.

    Marks: filled circle for Bayesian FDR < 0.05, open circle otherwise; ``*`` at the right end
    when the propeller-style FDR < 0.05 too.
    """
    rest = differences[differences["contrast"].str.endswith(" vs rest")]
    if rest.empty:
        raise NAMInputError("no 'vs rest' contrast to plot (fewer than two individual clusters)")
    contrasts = sorted(rest["contrast"].unique(), key=_cluster_number)
    cols = sorted(rest["cell_cluster"].unique(), key=_cluster_number)
    labels = display_labels(cols, names)
    lim = float(np.nanmax(np.abs(rest[["lower", "upper"]].to_numpy()))) * 1.15 or 1.0
    with paper_style():
        fig, axes = plt.subplots(1, len(contrasts), sharey=True, squeeze=False,
                                 figsize=(min(DOUBLE_COLUMN, 1.0 + 1.6 * len(contrasts)),
                                          0.8 + 0.22 * len(cols)))
        for ax, contrast in zip(axes[0], contrasts, strict=True):
            df = rest[rest["contrast"] == contrast].set_index("cell_cluster").loc[cols]
            y = np.arange(len(cols))
            called = df["fdr"].to_numpy() < 0.05
            ax.axvline(0, color="0.6", lw=0.5)
            ax.hlines(y, df["lower"], df["upper"], color="black", lw=0.8)
            ax.scatter(df["effect"][called], y[called], s=12, color="black", zorder=3)
            ax.scatter(df["effect"][~called], y[~called], s=12, facecolor="white",
                       edgecolor="black", zorder=3)
            if propeller is not None:
                pr = propeller[propeller["contrast"] == contrast].set_index("cell_cluster")
                for i, c in enumerate(cols):
                    if c in pr.index and pr.loc[c, "fdr"] < 0.05:
                        ax.text(lim * 0.98, i, "*", ha="right", va="center", fontsize=8)
            ax.set_xlim(-lim, lim)
            ax.set_title(contrast)
            ax.set_xlabel("Difference in share")
        axes[0, 0].set_yticks(np.arange(len(cols)), labels)
        axes[0, 0].invert_yaxis()
        fig.suptitle("Differences in composition (95% CI; filled: Bayesian FDR < 0.05; "
                     "*: propeller FDR < 0.05)", fontsize=7)
        fig.tight_layout()
    return fig


def plot_coclustering(matrix: np.ndarray, order: np.ndarray, clusters) -> Figure:
    """Heatmap of the co-clustering probabilities, individuals in ``order``, with a cluster bar.

    Parameters
    ----------
    matrix : array (J, J)
        P(S_j = S_j') under q.
    order : array (J,)
        Display order (e.g. :func:`~nam_core.results.partition.coclustering_order`).
    clusters : array (J,) of str
        NAM individual cluster of each individual (the colour bar).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    clusters = np.asarray(clusters, dtype=str)
    if matrix.shape != (clusters.size, clusters.size):
        raise NAMInputError(f"co-clustering matrix {matrix.shape} for {clusters.size} individuals")
    colors = cluster_colors(clusters)
    with paper_style():
        fig = plt.figure(figsize=(SINGLE_COLUMN * 1.2, SINGLE_COLUMN * 1.1))
        bar = fig.add_axes([0.08, 0.1, 0.03, 0.78])
        ax = fig.add_axes([0.12, 0.1, 0.7, 0.78])
        cax = fig.add_axes([0.85, 0.1, 0.03, 0.78])
        image = ax.imshow(matrix[np.ix_(order, order)], vmin=0, vmax=1, cmap="magma_r",
                          interpolation="nearest", aspect="auto")
        rgb = np.asarray([colors[c] for c in clusters[order]])[:, None, :]
        bar.imshow(rgb, aspect="auto", interpolation="nearest")
        for a in (ax, bar):
            a.set_xticks([])
            a.set_yticks([])
        bar.set_ylabel(f"{clusters.size} individuals (clustered)")
        ax.set_title("Co-clustering probability of individuals under q")
        fig.colorbar(image, cax=cax).set_label("P(same individual cluster)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in colors]
        ax.legend(handles, list(colors), title="Cluster", loc="upper left",
                  bbox_to_anchor=(0.0, -0.01), ncol=min(6, len(colors)), frameon=False)
    return fig


def plot_named_umap(umap: np.ndarray, clusters, names: dict | None) -> Figure:
    """UMAP coloured by cell cluster, each labelled with its cell-type name (``"C3 B"``)."""
    labels = display_labels(np.asarray(clusters, dtype=str), names)
    n_named = len({v for v in (names or {}).values() if v != "unassigned"})
    return plot_umap(umap, labels, title=f"{len(labels):,} cells, {len(set(labels))} NAM cell "
                                         f"clusters ({n_named} cell types named by markers)")


def plot_typed_umap(umap: np.ndarray, groups, type_names: dict, atoms, atom_names: dict | None
                    ) -> Figure:
    """UMAP by cell type (left, ``"T2 B"``) and by NAM cell atom, the types' sub-states (right).

    umap (N, 2); groups, atoms (N,) str: each cell's type (``T<g>``) and atom (``C<l>``).
    """
    types = display_labels(np.asarray(groups, dtype=str), type_names)
    atoms = display_labels(np.asarray(atoms, dtype=str), atom_names)
    return plot_umap_panels(umap, [
        (types, f"{len(types):,} cells, {len(set(types))} cell types", "Cell type"),
        (atoms, f"{len(set(atoms))} NAM cell atoms (sub-states)", "Cell atom"),
    ])
