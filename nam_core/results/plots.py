"""Paper-ready figures of a NAM analysis (matplotlib; PNG at 300 dpi and vector PDF).

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` sized for a journal page
(single column 89 mm, double column 183 mm) with 7-8 pt text, so it stays legible when printed at
that size; :func:`~nam_core.results.figure_style.save_figure` writes it as PNG and PDF atomically.
Scatter plots of many points
are rasterised inside the PDF so the file stays small.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import NAMInputError
from .figure_style import (
    DOUBLE_COLUMN,
    SINGLE_COLUMN,
    cluster_colors,
    legend_outside,
    paper_style,
    sorted_clusters,
)
from .layout import separate_labels

__all__ = [
    "plot_scree",
    "plot_genotype_pcs",
    "plot_umap",
    "plot_composition_heatmap",
    "dotplot_stats",
    "plot_marker_dotplot",
    "plot_elbo_traces",
]

logger = logging.getLogger(__name__)

def plot_scree(explained_variance_ratio, n_snps_used: int | None = None) -> Figure:
    """Scree plot: share of genotype variance carried by each PC (bars) and its running sum.

    Parameters
    ----------
    explained_variance_ratio : array (q,)
        Share of the total standardised-genotype variance of each PC.
    n_snps_used : int, optional
        Shown in the title.
    """
    ratio = np.asarray(explained_variance_ratio, dtype=np.float64)
    pcs = np.arange(1, ratio.size + 1)
    with paper_style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN, 0.7 * SINGLE_COLUMN))
        ax.bar(pcs, 100 * ratio, color="0.35", width=0.7, label="per PC")
        ax.set_xlabel("Genotype principal component")
        ax.set_ylabel("Variance explained (%)")
        ax.set_xticks(pcs)
        twin = ax.twinx()
        twin.plot(pcs, 100 * np.cumsum(ratio), "o-", color="tab:red", ms=2.5, label="cumulative")
        twin.set_ylabel("Cumulative (%)", color="tab:red")
        twin.tick_params(axis="y", colors="tab:red")
        twin.spines["right"].set_visible(True)
        twin.set_ylim(0, max(1.0, 100 * ratio.sum()) * 1.1)
        title = "Genotype scree plot"
        if n_snps_used is not None:
            title += f" ({n_snps_used:,} SNPs)"
        ax.set_title(title)
        fig.tight_layout()
    return fig


def plot_genotype_pcs(
    pcs: pd.DataFrame, clusters, explained_variance_ratio=None, x: str = "PC1", y: str = "PC2"
) -> Figure:
    """Genotype PC ``x`` against PC ``y``, one point per individual coloured by its NAM cluster.

    Parameters
    ----------
    pcs : DataFrame (J, q)
        Genotype PCs with columns ``x`` and ``y``.
    clusters : array (J,) of str
        NAM individual cluster of each individual.
    explained_variance_ratio : array (q,), optional
        Shown in the axis labels.
    """
    for col in (x, y):
        if col not in pcs.columns:
            raise NAMInputError(f"genotype PC column {col!r} missing; have {list(pcs.columns)}")
    clusters = np.asarray(clusters, dtype=str)
    colors = cluster_colors(clusters)
    counts = pd.Series(clusters).value_counts()
    with paper_style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN, 0.8 * SINGLE_COLUMN))
        for name, color in colors.items():
            sel = clusters == name
            ax.scatter(pcs[x].to_numpy()[sel], pcs[y].to_numpy()[sel], s=6, color=color,
                       lw=0.2, edgecolor="white", rasterized=sel.sum() > 2000)
        labels = [x, y]
        if explained_variance_ratio is not None:
            ratio = np.asarray(explained_variance_ratio)
            labels = [f"{c} ({100 * ratio[int(c[2:]) - 1]:.1f} %)" for c in (x, y)]
        ax.set_xlabel(f"Genotype {labels[0]}")
        ax.set_ylabel(f"Genotype {labels[1]}")
        ax.set_title(f"{len(clusters):,} individuals, {len(colors)} NAM clusters")
        legend_outside(ax, colors, counts, "Individual cluster")
        fig.tight_layout()
    return fig


#: UMAPs with more clusters than this label each on the cells with its short id only.
SHORT_LABELS_ABOVE = 8
#: Cells drawn in a UMAP panel at most, a seeded sample: about the pixels of a panel at 300 dpi
#: (3.5 x 3.5 inches), so more cells only overdraw; positions of labels and counts use all cells.
MAX_DRAWN_CELLS = 1_000_000


def _checked_umap(umap: np.ndarray, clusters) -> tuple[np.ndarray, np.ndarray]:
    umap = np.asarray(umap, dtype=np.float64)
    clusters = np.asarray(clusters, dtype=str)
    if umap.ndim != 2 or umap.shape[1] != 2 or umap.shape[0] != clusters.size:
        raise NAMInputError(f"UMAP of shape {umap.shape} for {clusters.size} cells; expected (N, 2)")
    return umap, clusters


def _umap_panel(ax, umap: np.ndarray, clusters: np.ndarray, title: str, legend: str) -> None:
    """One UMAP panel: cells coloured by ``clusters`` (N,), each labelled at its median."""
    colors = cluster_colors(clusters)
    counts = pd.Series(clusters).value_counts()
    size = float(np.clip(3000 / max(clusters.size, 1), 0.2, 4.0))
    # a random order (no cluster always on top), at most MAX_DRAWN_CELLS of it
    order = np.random.default_rng(0).permutation(clusters.size)[:MAX_DRAWN_CELLS]
    codes = pd.Categorical(clusters, categories=list(colors)).codes
    rgb = np.asarray(list(colors.values()))[codes]
    ax.scatter(umap[order, 0], umap[order, 1], s=size, lw=0, c=rgb[order], rasterized=True)
    labels = []
    for name in colors:
        med = np.median(umap[clusters == name], axis=0)
        # many clusters: the short id ("T3") on the cells, its name in the legend
        text = name.split(" ")[0] if len(colors) > SHORT_LABELS_ABOVE else name
        labels.append(ax.text(med[0], med[1], text, fontsize=7, weight="bold", ha="center",
                              va="center", bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                                 "ec": "none", "alpha": 0.7}))
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title)
    legend_outside(ax, colors, counts, legend)
    return labels


def plot_umap(umap: np.ndarray, clusters, title: str | None = None) -> Figure:
    """UMAP of the cells coloured by NAM cell cluster, each cluster labelled at its median.

    Parameters
    ----------
    umap : array (N, 2)
    clusters : array (N,) of str
        NAM cell cluster of each cell.
    """
    umap, clusters = _checked_umap(umap, clusters)
    with paper_style():
        fig, ax = plt.subplots(figsize=(0.75 * DOUBLE_COLUMN, 0.55 * DOUBLE_COLUMN))
        n = len(set(clusters))
        labels = _umap_panel(ax, umap, clusters,
                             title or f"{clusters.size:,} cells, {n} NAM cell clusters",
                             "Cell cluster")
        fig.tight_layout()
        separate_labels(fig, labels)
    return fig


def plot_umap_panels(umap: np.ndarray, panels: Sequence[tuple]) -> Figure:
    """UMAP panels side by side, one per ``(labels (N,), title, legend title)``."""
    checked = [(_checked_umap(umap, labels)[1], title, legend) for labels, title, legend in panels]
    umap = _checked_umap(umap, checked[0][0])[0]
    with paper_style():
        fig, axes = plt.subplots(1, len(checked), squeeze=False,
                                 figsize=(1.3 * DOUBLE_COLUMN, 0.55 * DOUBLE_COLUMN))
        placed = [_umap_panel(ax, umap, labels, title, legend)
                  for ax, (labels, title, legend) in zip(axes[0], checked, strict=True)]
        fig.tight_layout()
        for labels in placed:
            separate_labels(fig, labels)
    return fig


def plot_composition_heatmap(by_cluster: pd.DataFrame, level: str = "cell cluster") -> Figure:
    """Heatmap of the mean cell-cluster proportions (columns) of each individual cluster (rows).

    Parameters
    ----------
    by_cluster : DataFrame
        ``composition/by_individual_cluster.tsv``: columns cluster, n_individuals, n_cells, then
        one column per cell cluster (``C<l>``) or cell type holding a mean proportion.
    level : str
        What the columns are ("cell cluster", "cell type"), for the title and axis.
    """
    cell_cols = [c for c in by_cluster.columns if c not in ("cluster", "n_individuals", "n_cells")]
    if not cell_cols:
        raise NAMInputError("composition table has no cell-cluster columns")
    values = 100 * by_cluster[cell_cols].to_numpy(dtype=np.float64)  # percent, as the cells
    rows = [f"{c} (n={n})" for c, n in zip(by_cluster["cluster"], by_cluster["n_individuals"],
                                              strict=True)]
    longest = max(len(str(c)) for c in cell_cols)
    width = min(DOUBLE_COLUMN, max(SINGLE_COLUMN, 1.6 + 0.32 * len(cell_cols)))
    height = 1.1 + 0.28 * max(len(rows), 3) + 0.055 * longest  # rotated column labels
    top = max(float(np.nanmax(values)), 1e-9)
    with paper_style():
        fig, ax = plt.subplots(figsize=(width, height))
        image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=top)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=5.5,
                        color="white" if v < 0.6 * top else "black")
        ax.set_xticks(range(len(cell_cols)), cell_cols, rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel(f"NAM {level}")
        ax.set_ylabel("NAM individual cluster")
        for spine in ax.spines.values():
            spine.set_visible(False)
        # a bar of fixed width (0.12 in) beside the cells, whatever the figure's size
        cax = ax.inset_axes([1.03, 0.0, 0.12 / width / 0.8, 1.0])
        bar = fig.colorbar(image, cax=cax)
        bar.locator = MaxNLocator(nbins=4)
        bar.update_ticks()
        bar.set_label("% of cells")
        bar.outline.set_linewidth(0.4)
        ax.set_title(f"{level[0].upper()}{level[1:]} composition (% of cells)")
        fig.tight_layout()
    return fig


def dotplot_stats(X, clusters, genes: Sequence[str], var_names) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Share of cells expressing each gene and its mean expression, per cluster.

    Parameters
    ----------
    X : (N, G) sparse or dense
        Log-normalised expression.
    clusters : array (N,) of str
    genes : sequence of str
        Genes to summarise (must be in ``var_names``).
    var_names : sequence of str (G,)

    Returns
    -------
    fraction, mean : DataFrame (clusters, genes)
        Clusters in numeric order.
    """
    index = pd.Index(np.asarray(var_names, dtype=str))
    cols = index.get_indexer(list(genes))
    if (cols < 0).any():
        missing = [g for g, c in zip(genes, cols, strict=True) if c < 0]
        raise NAMInputError(f"marker genes not in the expression data: {missing[:10]}")
    sub = X[:, cols]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    clusters = np.asarray(clusters, dtype=str)
    names = sorted_clusters(clusters)
    fraction = np.stack([(sub[clusters == c] > 0).mean(axis=0) for c in names])
    mean = np.stack([sub[clusters == c].mean(axis=0) for c in names])
    genes = list(genes)
    return (pd.DataFrame(fraction, index=names, columns=genes),
            pd.DataFrame(mean, index=names, columns=genes))


def plot_marker_dotplot(
    fraction: pd.DataFrame, mean: pd.DataFrame, gene_groups: Sequence[tuple[str, str]],
    level: str = "NAM cell cluster",
) -> Figure:
    """Dot plot of marker genes: dot size = share of cells expressing, colour = scaled mean.

    Parameters
    ----------
    fraction, mean : DataFrame (clusters, genes)
        From :func:`dotplot_stats`; a gene may appear once only.
    gene_groups : sequence of (cluster, gene)
        Genes in plotting order, each with the cluster it marks (bracketed above the plot).
    level : str
        What the rows are (y-axis label): "NAM cell cluster" or "Cell type".
    """
    genes = [g for _, g in gene_groups]
    clusters = list(fraction.index)
    frac = fraction.loc[clusters, genes].to_numpy()
    avg = mean.loc[clusters, genes].to_numpy()
    span = avg.max(axis=0) - avg.min(axis=0)
    scaled = (avg - avg.min(axis=0)) / np.where(span > 0, span, 1.0)
    width = min(DOUBLE_COLUMN, max(SINGLE_COLUMN, 1.6 + 0.13 * len(genes)))
    height = 1.3 + 0.17 * len(clusters)
    with paper_style():
        fig, ax = plt.subplots(figsize=(width, height))
        yy, xx = np.meshgrid(np.arange(len(clusters)), np.arange(len(genes)), indexing="ij")
        points = ax.scatter(xx.ravel(), yy.ravel(), s=40 * frac.ravel(), c=scaled.ravel(),
                            cmap="Reds", vmin=0, vmax=1, edgecolor="0.3", lw=0.2)
        ax.set_xticks(range(len(genes)), genes, rotation=90, fontstyle="italic")
        ax.set_yticks(range(len(clusters)), clusters)
        ax.set_xlim(-0.6, len(genes) - 0.4)
        ax.set_ylim(len(clusters) - 0.5, -0.5)
        ax.set_ylabel(level)
        runs = [(cluster, len(list(run)))
                for cluster, run in itertools.groupby(c for c, _ in gene_groups)]
        # a label wider than its bracket (6 pt characters about 3.6 pt wide) stands upright
        slot = (width - 1.6) / max(len(genes), 1) * 72  # points per gene, about
        upright = any(3.6 * len(cluster) > 0.9 * slot * n for cluster, n in runs)
        start = 0
        for cluster, n in runs:
            stop = start + n - 1
            ax.annotate("", xy=(start - 0.3, -0.75), xytext=(stop + 0.3, -0.75),
                        xycoords="data", annotation_clip=False,
                        arrowprops={"arrowstyle": "-", "lw": 0.6})
            ax.text((start + stop) / 2, -0.95, cluster, ha="center", va="bottom",
                    fontsize=6, clip_on=False, rotation=90 if upright else 0)
            start = stop + 1
        bar = fig.colorbar(points, ax=ax, fraction=0.03, pad=0.01, aspect=15)
        bar.set_label("Mean expression\n(scaled per gene)")
        bar.outline.set_linewidth(0.4)
        for share in (0.25, 0.5, 0.75, 1.0):
            ax.scatter([], [], s=40 * share, c="0.5", edgecolor="0.3", lw=0.2,
                       label=f"{100 * share:.0f} %")
        ax.legend(title="Cells expressing", loc="upper left", bbox_to_anchor=(1.1, -0.05),
                  frameon=False, labelspacing=0.6, borderaxespad=0)
        fig.tight_layout()
    return fig


def plot_elbo_traces(traces: pd.DataFrame, best_seed: int) -> Figure:
    """ELBO per sweep of every restart (left) and the final ELBO of each (right).

    Parameters
    ----------
    traces : DataFrame
        Columns seed, sweep, elbo (one row per sweep of each restart).
    best_seed : int
        Seed of the restart kept (drawn in black).
    """
    seeds = sorted(traces["seed"].unique())
    finals = traces.sort_values("sweep").groupby("seed")["elbo"].last().reindex(seeds)
    palette = plt.get_cmap("tab10").colors
    with paper_style():
        fig, (ax, ax2) = plt.subplots(
            1, 2, figsize=(DOUBLE_COLUMN, 0.35 * DOUBLE_COLUMN), width_ratios=[2.2, 1]
        )
        for i, seed in enumerate(seeds):
            df = traces[traces["seed"] == seed].sort_values("sweep")
            best = seed == best_seed
            ax.plot(df["sweep"], df["elbo"], lw=1.2 if best else 0.8,
                    color="black" if best else palette[i % 10], zorder=3 if best else 2,
                    label=f"seed {seed}" + (" (kept)" if best else ""))
        # the first sweeps are far below the end: zoom on the last 90 % of the range
        low = float(np.quantile(traces["elbo"], 0.1))
        high = float(traces["elbo"].max())
        pad = 0.05 * max(high - low, abs(high) * 1e-6)
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel("Sweep")
        ax.set_ylabel("ELBO")
        ax.set_title("ELBO of each restart")
        ax.legend(frameon=False, ncol=1 + len(seeds) // 8, loc="lower right")
        ax2.scatter(range(len(seeds)), finals.to_numpy() - finals.max(), s=12,
                    c=["black" if s == best_seed else palette[i % 10] for i, s in enumerate(seeds)])
        ax2.axhline(0, color="0.6", lw=0.5, ls="--")
        ax2.set_xticks(range(len(seeds)), [str(s) for s in seeds])
        ax2.set_xlabel("Seed")
        ax2.set_ylabel("Final ELBO minus best")
        ax2.set_title("Final ELBO")
        fig.tight_layout(w_pad=2.0)
    return fig
