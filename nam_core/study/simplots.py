"""Figures of the simulation study (``docs/model.md`` section 10), from the tidy metrics table.

Each function takes the table written by :func:`nam_core.study.aggregation.aggregate` (one row per
scenario, replicate, method and level) and writes one figure as PNG and PDF, atomically. The
matplotlib backend is left to the caller (the workflow's script picks Agg).
"""

from __future__ import annotations

import logging
import os

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from ..io import atomic_path
from .methods import METHODS

__all__ = ["method_order", "plot_boxes", "plot_runtime", "plot_sweep"]

logger = logging.getLogger(__name__)

_LEVEL_TITLES = {"individual": "individuals (S)", "cell": "cells (M)"}
_COLOURS = dict(zip(METHODS, plt.get_cmap("tab10").colors, strict=False))
_COLOURS["nam"] = (0.0, 0.0, 0.0)
_MARKERS = dict(zip(METHODS, "o^sDvP*Xh", strict=False))
_LABELS = {
    "nam": "NAM", "cam": "CAM", "fisan": "fiSAN", "ndp": "nDP", "hdp": "HDP",
    "dpmix_x": "DP mix (x)", "dpmix_y": "DP mix (y)", "two_stage": "two-stage",
    "kmeans_oracle": "k-means (true K*, L*)",
}

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
                     "legend.fontsize": 8, "pdf.fonttype": 42})


def method_order(methods) -> list[str]:
    """Methods in registry order (NAM first), unknown names last in their given order."""
    methods = list(dict.fromkeys(methods))
    known = [m for m in METHODS if m in methods]
    return known + [m for m in methods if m not in known]


def _label(method: str) -> str:
    return _LABELS.get(method, method)


def _save(fig, path_png: str | os.PathLike, path_pdf: str | os.PathLike) -> None:
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # its font subsetting logs at INFO
    with atomic_path(path_png) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
    with atomic_path(path_pdf) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    logger.info("wrote %s and %s", path_png, path_pdf)


def _placeholder(text: str, path_png, path_pdf) -> None:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    _save(fig, path_png, path_pdf)


def plot_boxes(metrics: pd.DataFrame, scenario: str, path_png, path_pdf,
               title: str | None = None) -> None:
    """Box plots of ARI by method, individual level left and cell level right, for one scenario.

    Each replicate is a dot over its method's box; methods without labels at a level show
    "no labels" in that panel.
    """
    df = metrics[metrics["scenario"] == scenario]
    logger.info("box plots of scenario %s: %d runs", scenario,
                len(df.drop_duplicates(["replicate", "method"])))
    if df.empty:
        _placeholder(f"scenario {scenario}: no runs", path_png, path_pdf)
        return
    methods = method_order(df["method"])
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.25 * len(methods) + 3), 4.2), sharey=True)
    for ax, level in zip(axes, ("individual", "cell"), strict=True):
        for i, m in enumerate(methods):
            vals = df[(df["method"] == m) & (df["level"] == level)]["ari"].dropna().to_numpy()
            if vals.size == 0:
                ax.text(i, 0.5, "no labels", rotation=90, ha="center", va="center",
                        color="0.5", fontsize=8)
                continue
            ax.boxplot(vals, positions=[i], widths=0.6, showfliers=False,
                       medianprops={"color": _COLOURS.get(m, "C0"), "linewidth": 2},
                       boxprops={"color": "0.3"}, whiskerprops={"color": "0.3"},
                       capprops={"color": "0.3"})
            ax.scatter(i + rng.uniform(-0.15, 0.15, vals.size), vals, s=12, alpha=0.7,
                       color=_COLOURS.get(m, "C0"), zorder=3)
        ax.set_xticks(range(len(methods)), [_label(m) for m in methods], rotation=40,
                      ha="right")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_title(_LEVEL_TITLES[level])
        ax.axhline(0, color="0.8", linewidth=0.8, zorder=0)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("adjusted Rand index")
    axes[0].set_ylim(min(-0.1, float(np.nanmin(df["ari"])) - 0.05) if df["ari"].notna().any()
                     else -0.1, 1.05)
    n = int(df["replicate"].nunique())
    fig.suptitle(title or f"Scenario {scenario} ({n} replicates)")
    fig.tight_layout()
    _save(fig, path_png, path_pdf)


def plot_sweep(metrics: pd.DataFrame, parameter: str, points: list[tuple[float, str]],
               path_png, path_pdf, title: str | None = None) -> None:
    """Median ARI (bars: interquartile range) against a swept parameter, one line per method.

    Parameters
    ----------
    metrics : DataFrame
        Tidy metrics.
    parameter : str
        Name of the swept generator parameter (the x axis).
    points : list of (value, scenario)
        The sweep's points, as from :func:`nam_core.study.design.sweeps`.
    """
    scen_value = {s: v for v, s in points}
    df = metrics[metrics["scenario"].isin(scen_value)].copy()
    logger.info("sweep of %s over %s: %d rows", parameter,
                ", ".join(f"{v:g} ({s})" for v, s in points), len(df))
    if df.empty:
        _placeholder(f"sweep of {parameter}: no runs", path_png, path_pdf)
        return
    df["value"] = df["scenario"].map(scen_value).astype(float)
    stats = (df.groupby(["method", "level", "value"])["ari"]
             .quantile([0.25, 0.5, 0.75]).unstack().reset_index())
    methods = method_order(df["method"])
    values = sorted(scen_value.values())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, level in zip(axes, ("individual", "cell"), strict=True):
        for m in methods:
            s = stats[(stats["method"] == m) & (stats["level"] == level)].dropna(subset=[0.5])
            if s.empty:
                continue
            s = s.sort_values("value")
            ax.errorbar(s["value"], s[0.5], yerr=[s[0.5] - s[0.25], s[0.75] - s[0.5]],
                        color=_COLOURS.get(m, "C0"), marker=_MARKERS.get(m, "o"), markersize=5,
                        capsize=2, linewidth=2.2 if m == "nam" else 1.2, label=_label(m))
        ax.set_title(_LEVEL_TITLES[level])
        ax.set_xlabel(parameter)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        if len(values) > 1 and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("adjusted Rand index (median, IQR)")
    handles, labels = axes[0].get_legend_handles_labels()
    h2, l2 = axes[1].get_legend_handles_labels()
    for h, lab in zip(h2, l2, strict=True):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(title or f"ARI against {parameter}")
    fig.tight_layout()
    _save(fig, path_png, path_pdf)


def plot_runtime(metrics: pd.DataFrame, path_png, path_pdf, title: str | None = None) -> None:
    """Fit wall time against the number of cells, log-log, every run a dot, one colour per method.

    A line joins each method's median (cells, time) per data size (J, mean cells), in order of
    cells; when the study spans less than a factor 3 in cells, the axis is widened to show that.
    """
    runs = metrics.drop_duplicates(["scenario", "replicate", "method"])
    runs = runs[(runs["fit_seconds"] > 0) & (runs["n_cells"] > 0)]
    logger.info("run time of %d runs, %d to %d cells", len(runs),
                runs["n_cells"].min() if len(runs) else 0, runs["n_cells"].max() if len(runs) else 0)
    if runs.empty:
        _placeholder("no runs with a positive fit time", path_png, path_pdf)
        return
    size = [c for c in ("J", "mean_cells") if c in runs.columns] or ["scenario"]
    fig, ax = plt.subplots(figsize=(7, 5))
    for m in method_order(runs["method"]):
        r = runs[runs["method"] == m]
        ax.scatter(r["n_cells"], r["fit_seconds"], s=10, alpha=0.45,
                   color=_COLOURS.get(m, "C0"), marker=_MARKERS.get(m, "o"))
        med = r.groupby(size)[["n_cells", "fit_seconds"]].median().sort_values("n_cells")
        ax.plot(med["n_cells"], med["fit_seconds"], color=_COLOURS.get(m, "C0"),
                marker=_MARKERS.get(m, "o"), markersize=7, linewidth=2.2 if m == "nam" else 1.2,
                label=_label(m))
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = float(runs["n_cells"].min()), float(runs["n_cells"].max())
    if hi / lo < 3:
        ax.set_xlim(lo / 3, hi * 3)
        ax.text(0.02, 0.98, "cells vary little in this study; the scale scenarios (F) span N",
                transform=ax.transAxes, va="top", fontsize=8, color="0.4")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("cells N")
    ax.set_ylabel("fit wall time (s)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title(title or "Fit time against cells")
    fig.tight_layout()
    _save(fig, path_png, path_pdf)
