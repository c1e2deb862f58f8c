"""Figures of the composition analysis: posterior bars, forest plot, co-clustering, named UMAP.

Same conventions as :mod:`nam_core.results.figure_style` (journal sizes, 7-8 pt text, PNG + PDF through
:func:`~nam_core.results.figure_style.save_figure`). Cell clusters are labelled ``"C3 B"`` (cluster and
its cell-type name) wherever a names mapping is given.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import NAMInputError
from .figure_style import DOUBLE_COLUMN, SINGLE_COLUMN, cluster_colors, paper_style
from .labels import cluster_number
from .naming import display_labels
from .plots import plot_umap, plot_umap_panels

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
    rows = sorted(wide.index, key=cluster_number)
    cols = sorted(wide.columns, key=cluster_number)
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


def _contrast_order(contrasts) -> list[str]:
    """"I<k> vs rest" contrasts first, then the pairs, each in cluster order ("all" left out)."""
    def key(contrast: str):
        a, _, b = contrast.partition(" vs ")
        rest = b == "rest"
        return (0 if rest else 1, cluster_number(a), 0 if rest else cluster_number(b))
    return sorted((c for c in set(contrasts) if " vs " in c), key=key)


def _forest_panel(ax, df: pd.DataFrame, lim: float, null_log_ratio: float | None,
                  propeller: pd.DataFrame | None) -> None:
    """One contrast's rows (cell clusters, top to bottom): null band, interval, point, mark."""
    y = np.arange(len(df))
    if null_log_ratio and "prop_b" in df:
        # |log(a / b)| < r  <=>  a - b within b (exp(-r) - 1) .. b (exp(r) - 1)
        low = df["prop_b"].to_numpy() * np.expm1(-null_log_ratio)
        high = df["prop_b"].to_numpy() * np.expm1(null_log_ratio)
        ax.barh(y, high - low, left=low, height=0.7, color="0.88", lw=0, zorder=1)
    called = (df["called"].astype(str).str.lower() == "true").to_numpy() if "called" in df \
        else df["fdr"].to_numpy() < 0.05
    ax.axvline(0, color="0.6", lw=0.5, zorder=1)
    ax.hlines(y, df["lower"], df["upper"], color="black", lw=0.8, zorder=2)
    ax.scatter(df["effect"][called], y[called], s=12, color="black", zorder=3)
    ax.scatter(df["effect"][~called], y[~called], s=12, facecolor="white", edgecolor="black",
               zorder=3)
    if propeller is not None:
        marks = propeller.set_index("cell_cluster")["fdr"].reindex(df.index) < 0.05
        for i in np.flatnonzero(marks.to_numpy()):
            # beside the panel, never on a point
            ax.text(1.02, i, "*", ha="left", va="center", fontsize=8,
                    transform=ax.get_yaxis_transform(), clip_on=False)
    ax.set_xlim(-lim, lim)
    ax.set_xticks([-_tick_step(lim), 0, _tick_step(lim)])  # none at the ends, where panels meet


def _propeller_legend(propeller: pd.DataFrame | None, contrasts: list) -> str:
    """The title's note on the ``*`` marks: which contrasts the propeller-style table tests."""
    if propeller is None:
        return ""
    every = set(contrasts) <= set(propeller["contrast"])
    return "; *: propeller FDR < 0.05" + ("" if every else " (pairs only)")


def _tick_step(lim: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above 0.6 lim: ticks well inside (-lim, lim)."""
    power = 10 ** np.floor(np.log10(0.6 * lim))
    return float(max(m * power for m in (1, 2, 5) if m * power <= 0.6 * lim))


def plot_differences_forest(
    differences: pd.DataFrame, propeller: pd.DataFrame | None = None, names: dict | None = None,
    null_log_ratio: float | None = None,
) -> Figure:
    """Forest plot of the differences in composition, one panel per contrast.

    Each individual cluster against the rest (first row), then each pair of clusters.

    Parameters
    ----------
    differences : DataFrame
        ``composition/differences.tsv``: contrast, cell_cluster, effect, lower, upper, fdr
        (and called, prop_b when present).
    propeller : DataFrame or None
        ``composition/propeller.tsv``; its FDR is marked beside each row when given.
    names : dict or None
        Cell-type name of each cell cluster.
    null_log_ratio : float or None
        The null band: an effect is null while |log(share a / share b)| is below it; drawn per
        row as the grey bar of differences it allows (needs prop_b).

    Marks: filled circle for a called difference (``called``, else FDR < 0.05), open circle
    otherwise; ``*`` right of the panel when the propeller-style FDR < 0.05 too (that table has
    no "vs rest" rows when there are three or more groups).
    """
    contrasts = _contrast_order(differences["contrast"])
    if not contrasts:
        raise NAMInputError("no contrast to plot (fewer than two individual clusters)")
    shown = differences[differences["contrast"].isin(contrasts)]
    cols = sorted(shown["cell_cluster"].unique(), key=cluster_number)
    labels = display_labels(cols, names)
    lim = float(np.nanmax(np.abs(shown[["lower", "upper"]].to_numpy()))) * 1.15 or 1.0
    n_rest = sum(c.endswith(" vs rest") for c in contrasts)
    ncols = min(len(contrasts), max(n_rest, 3), 4)
    nrows = int(np.ceil(len(contrasts) / ncols))
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, sharey=True, sharex=True, squeeze=False,
                                 figsize=(min(DOUBLE_COLUMN, 1.4 + 1.5 * ncols),
                                          0.5 + nrows * (0.55 + 0.2 * len(cols))))
        for ax, contrast in zip(axes.flat, contrasts, strict=False):  # spare panels hidden
            df = shown[shown["contrast"] == contrast].set_index("cell_cluster").reindex(cols)
            pr = None if propeller is None else propeller[propeller["contrast"] == contrast]
            _forest_panel(ax, df, lim, null_log_ratio, pr)
            ax.set_title(contrast)
        for ax in axes.flat[len(contrasts):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("Difference in share")
        axes[0, 0].set_yticks(np.arange(len(cols)), labels)
        axes[0, 0].invert_yaxis()
        fig.suptitle("Differences in composition: 95% intervals; filled: called; grey: null band"
                     + _propeller_legend(propeller, contrasts), fontsize=7)
        fig.tight_layout(w_pad=1.5)
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
