"""The look shared by every figure: journal sizes, paper rcParams, cluster colours and order, saving.

Figures are sized for a journal page (single column 89 mm, double column 183 mm) with 7-8 pt
text; :func:`save_figure` writes PNG at 300 dpi and a vector PDF, each atomically.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import atomic_path
from .labels import cluster_number

__all__ = [
    "SINGLE_COLUMN",
    "DOUBLE_COLUMN",
    "paper_style",
    "save_figure",
    "sorted_clusters",
    "cluster_colors",
    "legend_outside",
]

logger = logging.getLogger(__name__)

MM = 1 / 25.4
SINGLE_COLUMN = 89 * MM
"""Width of a single-column figure, inches."""
DOUBLE_COLUMN = 183 * MM
"""Width of a double-column figure, inches."""

PAPER_RC = {
    "font.size": 7,
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.title_fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # TrueType: text stays editable in Illustrator/Inkscape
    "ps.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Temporarily apply the paper rcParams (font sizes, line widths, embedded fonts)."""
    with matplotlib.rc_context(PAPER_RC):
        yield


def save_figure(fig: Figure, path_png, path_pdf, dpi: int = 300) -> None:
    """Write ``fig`` as PNG (``dpi``) and PDF, each atomically, then close it."""
    try:
        with paper_style():
            for path in (path_png, path_pdf):
                with atomic_path(Path(path)) as tmp:
                    fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip("."))
    finally:
        plt.close(fig)
    logger.info("wrote %s and %s", path_png, path_pdf)


def sorted_clusters(names) -> list[str]:
    """Distinct cluster names in number order ("C2" before "C10")."""
    return sorted(set(map(str, names)), key=lambda n: (cluster_number(n), n))


def cluster_colors(names: Sequence[str]) -> dict[str, tuple]:
    """A distinct colour for each cluster name, stable for a given sorted set of names.

    tab10 for up to 10 clusters, tab20 up to 20, then tab20 + tab20b + tab20c (60 colours),
    cycled beyond that.
    """
    names = sorted_clusters(names)
    if len(names) <= 10:
        palette = list(plt.get_cmap("tab10").colors)
    elif len(names) <= 20:
        palette = list(plt.get_cmap("tab20").colors)
    else:
        palette = [c for cmap in ("tab20", "tab20b", "tab20c") for c in plt.get_cmap(cmap).colors]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def legend_outside(ax, colors: dict, counts: pd.Series, title: str, max_rows: int = 20) -> None:
    """A legend right of ``ax``: one marker per name in ``colors``, with its count; columns of ``max_rows``."""
    handles = [
        plt.Line2D([], [], ls="", marker="o", ms=4, color=colors[name],
                   label=f"{name} ({counts.get(name, 0):,})")
        for name in colors
    ]
    ax.legend(
        handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
        frameon=False, ncol=max(1, int(np.ceil(len(handles) / max_rows))), handletextpad=0.2,
        borderaxespad=0.0, columnspacing=0.8,
    )
