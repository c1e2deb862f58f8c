"""Text layout of figures: find text that overlaps, and move labels apart.

Bounding boxes come from matplotlib's renderer (``Text.get_window_extent`` after a draw), in
display pixels, so the check sees the figure exactly as it is saved.
"""

from __future__ import annotations

import itertools

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["drawn_texts", "overlapping_texts", "separate_labels"]


def _drawn_tick_labels(axis) -> list[Text]:
    """Tick labels that the axis draws: those of ticks inside its view interval."""
    if not axis.get_visible():  # e.g. the shared x axis of a twinx
        return []
    ticks = axis._update_ticks()  # the ticks draw() uses (get_ticklabels also lists others)
    return [label for tick in ticks for label in (tick.label1, tick.label2)
            if label.get_visible()]


def drawn_texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text that ``fig`` draws.

    Titles, axis labels, tick labels in view, texts, annotations, legend entries and titles, and
    figure texts.
    """
    texts: list[Text] = list(fig.texts)
    if getattr(fig, "_suptitle", None) is not None:
        texts.append(fig._suptitle)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += _drawn_tick_labels(ax.xaxis) + _drawn_tick_labels(ax.yaxis) + ax.texts
        texts += [child for child in ax.get_children() if isinstance(child, Text)]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            texts += [*legend.get_texts(), legend.get_title()]
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    unique = list(dict.fromkeys(texts))
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _box(text: Text, renderer, shrink: float) -> Bbox:
    """The text's bounding box in display pixels, shrunk by ``shrink`` px on each side."""
    box = text.get_window_extent(renderer)
    return Bbox.from_extents(box.x0 + shrink, box.y0 + shrink, box.x1 - shrink, box.y1 - shrink)


def overlapping_texts(fig: Figure, shrink: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` whose bounding boxes overlap (after a draw), as their strings.

    ``shrink`` (px) forgives boxes that only touch. An empty list means no text runs into another.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [_box(t, renderer, shrink) for t in texts]
    return [(a.get_text(), b.get_text())
            for (a, box_a), (b, box_b) in itertools.combinations(zip(texts, boxes, strict=True), 2)
            if box_a.overlaps(box_b)]


def separate_labels(fig: Figure, labels: list[Text], max_steps: int = 12) -> None:
    """Move ``labels`` (texts placed in data coordinates) vertically until none overlaps another.

    Labels are placed in order; each one that overlaps an already placed label is moved up or
    down by steps of its own height (alternating, growing) to the first free position.
    """
    if len(labels) < 2:
        return
    fig.draw_without_rendering()  # the layout, without painting a million points
    renderer = fig.canvas.get_renderer()
    placed: list[Bbox] = []
    for label in labels:
        box = label.get_window_extent(renderer)
        x, y = label.get_position()
        to_data = label.get_transform().inverted()
        start = label.get_transform().transform((x, y))
        for step in range(max_steps + 1):
            offset = (step + 1) // 2 * (1 if step % 2 else -1) * box.height * 1.05
            moved = box.translated(0, offset)
            if not any(moved.overlaps(other) for other in placed):
                label.set_position(to_data.transform((start[0], start[1] + offset)))
                placed.append(moved)
                break
        else:
            placed.append(box)
