"""Input checks that run before any computation; each error names the input and the rows at fault."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping

import numpy as np
import torch

from .errors import NAMInputError

__all__ = [
    "as_matrix",
    "as_group_codes",
    "check_device_available",
    "resolve_device",
    "describe_device",
    "granted_gpus",
    "resolve_dtype",
    "check_int_at_least",
]

logger = logging.getLogger(__name__)

#: Variables by which a batch system or the user hands GPUs to a process, most specific first.
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE")


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
            raise NAMInputError(f"group must contain integer codes 0..J-1, got dtype {g.dtype}")
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


def granted_gpus(env: Mapping[str, str] | None = None) -> str | None:
    """``NAME=value`` of the first variable saying the process was given GPUs, else None.

    SLURM sets ``SLURM_JOB_GPUS``/``SLURM_STEP_GPUS`` and ``CUDA_VISIBLE_DEVICES`` in a job that
    asked for GPUs (``--gpus``, ``--gres=gpu``); empty values, ``-1`` and ``NoDevFiles`` mean none.
    """
    env = os.environ if env is None else env
    for name in GPU_VARIABLES:
        value = env.get(name, "").strip()
        none = {"-1", "NoDevFiles"} | ({"0"} if name == "SLURM_GPUS_ON_NODE" else set())
        if value and value not in none:
            return f"{name}={value}"
    return None


def describe_device(requested="auto", env: Mapping[str, str] | None = None) -> str:
    """Log and return the device a fit with ``device=requested`` runs on; warn on a lost GPU.

    A GPU is lost when the process was given one (:func:`granted_gpus`) or ``requested`` names
    CUDA, but torch sees none: typically a CPU build of torch (``torch.version.cuda`` is None)
    in a GPU job. The fit then runs on the CPU (``auto``) or fails (``cuda``, in
    :func:`resolve_device`), so the warning says which torch is installed and how to get a
    CUDA build.

    Parameters
    ----------
    requested : str or torch.device or None
        The ``device`` setting of the fit ("auto", "cpu", "cuda", "cuda:1").
    env : mapping, optional
        Environment to inspect (default ``os.environ``).

    Returns
    -------
    str
        E.g. ``"cuda:0 (NVIDIA H100, torch 2.13.0+cu128, CUDA 12.8)"`` or
        ``"cpu (torch 2.13.0+cpu, 2 threads)"``.
    """
    granted = granted_gpus(env)
    wants_cuda = str(requested).startswith("cuda")
    if (granted or wants_cuda) and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        reason = f"the job was given GPUs ({granted})" if granted else f"device={requested!r}"
        outcome = "fails" if wants_cuda else "runs on the CPU"
        message = (
            f"{reason} but torch {torch.__version__} ({build}) sees no CUDA device, so the fit "
            f"{outcome}; install a CUDA build of torch in this environment (README, 'On a SLURM "
            "cluster')"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        logger.warning(message)
    dev = resolve_device(requested)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        text = (f"cuda:{index} ({torch.cuda.get_device_name(index)}, torch {torch.__version__}, "
                f"CUDA {torch.version.cuda})")
    else:
        text = f"{dev} (torch {torch.__version__}, {torch.get_num_threads()} threads)"
    logger.info("fitting on %s", text)
    return text


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
