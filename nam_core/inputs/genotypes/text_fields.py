"""Line count and field-count check of a whitespace-separated text file, in blocks.

Numpy works on whole blocks (a PLINK .bim can be GBs: one Python call per block, not per line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["count_lines_and_check_fields"]

_NEWLINE = 10
_BLANKS = (9, 32, 13)  # tab, space, carriage return


def _field_starts(block: np.ndarray, after_blank: bool) -> np.ndarray:
    """True where a field begins, shape (len(block),), bool.

    A field begins at a non-blank byte after a blank, a newline or, for the block's first byte,
    where ``after_blank`` (the state carried over from the previous block).
    """
    blank = np.isin(block, _BLANKS) | (block == _NEWLINE)
    before = np.empty_like(blank)
    before[0] = after_blank
    before[1:] = blank[:-1]
    return ~blank & before


def count_lines_and_check_fields(
    path: str | Path, expected: int, block_bytes: int = 1 << 24
) -> tuple[int, tuple[int, int] | None]:
    """Number of lines of ``path`` and the first line whose field count is not ``expected``.

    Parameters
    ----------
    path : str or path
        A text file, fields separated by tabs or spaces.
    expected : int
        Fields every line must hold.
    block_bytes : int
        Bytes read at a time (memory in use is a few times this).

    Returns
    -------
    (int, (int, int) or None)
        The line count (a last line without a newline counts), and (1-based line number, its
        field count) of the first line with a wrong count, or None if every line is right.
    """
    n_lines, fields_so_far, after_blank, last = 0, 0, True, b"\n"
    with open(path, "rb") as handle:
        while raw := handle.read(block_bytes):
            block = np.frombuffer(raw, dtype=np.uint8)
            starts = np.cumsum(_field_starts(block, after_blank), dtype=np.int64)
            ends = np.flatnonzero(block == _NEWLINE)
            if ends.size:
                totals = starts[ends]
                counts = np.diff(totals, prepend=0)
                counts[0] += fields_so_far
                bad = np.flatnonzero(counts != expected)
                if bad.size:
                    return n_lines + ends.size, (n_lines + int(bad[0]) + 1, int(counts[bad[0]]))
                fields_so_far = int(starts[-1] - totals[-1])
            else:
                fields_so_far += int(starts[-1])
            n_lines += ends.size
            after_blank = bool(block[-1] in _BLANKS or block[-1] == _NEWLINE)
            last = raw[-1:]
    if last != b"\n":
        n_lines += 1
        if fields_so_far != expected:
            return n_lines, (n_lines, fields_so_far)
    return n_lines, None
