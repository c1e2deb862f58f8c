"""Input checks that run before any computation; each error names the input and the rows at fault."""

from __future__ import annotations

import os

import numpy as np
import torch

from .errors import NAMInputError

__all__ = [
    "as_matrix", "as_group_codes", "check_device_available", "resolve_device", "resolve_dtype",
    "check_int_at_least",
]


def _row_list(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (f" and {rows.size - limit} more" if rows.size > limit else "")


def as_matrix(A, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """``A`` as a 2-D float64 array; NAMInputError for non-numeric, wrong rank or non-finite rows."""
    if isinstance(A, torch.Tensor):
        A = A.detach().cpu().numpy()
    try:
        arr = np.asarray(A)
    except Exception as exc:  # ragged lists and the like
        raise NAMInputError(f"{name} cannot be read as a numeric matrix: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise NAMInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise NAMInputError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise NAMInputError(f"{name} must be 2-dimensional (rows x features), got shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise NAMInputError(f"{name} is empty (0 rows)")
    if arr.shape[1] == 0:
        raise NAMInputError(f"{name} has 0 columns")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr).all(1)
    if bad.any():
        raise NAMInputError(
            f"{name} has NaN or infinite values in {int(bad.sum())} rows: {_row_list(np.flatnonzero(bad))}"
        )
    return arr


def as_group_codes(group, n_cells: int, n_groups: int | None) -> np.ndarray:
    """Group codes as an int64 array (N,); NAMInputError for wrong length or codes out of range."""
    if isinstance(group, torch.Tensor):
        group = group.detach().cpu().numpy()
    g = np.asarray(group)
    if g.ndim != 1 or g.shape[0] != n_cells:
        raise NAMInputError(f"group must have shape ({n_cells},) (one code per cell), got {g.shape}")
    if not np.issubdtype(g.dtype, np.integer):
        if np.issubdtype(g.dtype, np.floating) and np.all(np.isfinite(g)) and np.all(g == np.round(g)):
            g = g.astype(np.int64)
        else:
            raise NAMInputError(f"group must hold integer codes 0..J-1, got dtype {g.dtype}")
    g = g.astype(np.int64, copy=False)
    upper = n_groups if n_groups is not None else (int(g.max()) + 1 if g.size else 0)
    bad = (g < 0) | (g >= upper)
    if bad.any():
        raise NAMInputError(
            f"group codes must lie in 0..{upper - 1} (J = {upper} individuals); "
            f"{int(bad.sum())} cells are out of range, e.g. cells {_row_list(np.flatnonzero(bad), 5)} "
            f"with codes {_row_list(g[bad], 5)}"
        )
    return g


def check_device_available(device, key: str = "device") -> torch.device:
    """``device`` as a torch.device, after checking that this process can use it.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"`` (``"auto"`` is resolved by
        :func:`resolve_device`).
    key : str
        Name of the setting, in messages (``"fit.device"`` for the workflow's config).

    Returns
    -------
    torch.device

    Raises
    ------
    NAMInputError
        Naming ``key``, for a string torch does not parse, a device type other than cpu and
        cuda, CUDA without a visible device, or an index past the visible devices (the message
        lists them and ``CUDA_VISIBLE_DEVICES``).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise NAMInputError(f"{key} must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise NAMInputError(f"{key} must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r}")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        seen = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        if count == 0:
            raise NAMInputError(
                f"{key} is {str(device)!r} but this machine sees no CUDA device{seen}; "
                "use 'auto' (a GPU when there is one) or 'cpu'"
            )
        if dev.index is not None and dev.index >= count:
            raise NAMInputError(
                f"{key} is {str(device)!r} but this machine sees {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}{seen}"
            )
    return dev


def resolve_device(device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; anything else is checked by check_device_available."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device_available(device)


def resolve_dtype(dtype) -> torch.dtype:
    """'float32'/'float64' (or the numpy/torch types) as a torch dtype."""
    table = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, torch.dtype):
        key = str(dtype).replace("torch.", "")
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = str(dtype)
    if key not in table:
        raise NAMInputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return table[key]


def check_int_at_least(value, name: str, minimum: int) -> int:
    """``value`` as an int >= minimum, else NAMInputError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NAMInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
