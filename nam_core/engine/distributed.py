"""Data-parallel fits: the cells of each rank's individuals, statistics summed over ranks.

CAVI's cell pass (U1) is a sum over cells, and every global block reads only its sums (the
statistics of :class:`~nam_core.components.cells.CellStats`, ``docs/model.md`` section 5.1).
A fit over ``torch.distributed`` therefore gives each rank a contiguous block of individuals
(about the same number of cells on each), runs the cell pass on that block's cells only, and
sums the statistics over ranks with one all-reduce per pass. Every rank then holds the same
statistics and runs the same individual step (U2, a (J, K) softmax), global step and ELBO, so
the ranks stay in step without further messages, and the fit equals the one-process fit up to
the order of float64 additions.

Every rank reads the whole data set and runs the same seeded initialisation; only the passes
over the cells are divided. Launch with ``torchrun`` (or ``srun`` with the same environment
variables): :func:`init_from_environment` joins the process group (gloo on CPUs, NCCL on CUDA).
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist

from ..errors import NAMInputError

__all__ = ["Shard", "shard_bounds", "current_shard", "sum_over_ranks_", "init_from_environment",
           "leave_process_group", "is_main_rank"]


@dataclasses.dataclass(frozen=True)
class Shard:
    """A rank's block of cells: sorted cells ``start:stop`` (whole individuals)."""

    start: int
    stop: int


def shard_bounds(n_cells: torch.Tensor, world_size: int) -> list[tuple[int, int]]:
    """Cell ranges (start, stop) of ``world_size`` blocks of whole individuals.

    Individuals are taken in order (cells are sorted by individual); block r ends at the
    individual boundary nearest to r + 1 world_size-ths of the cells, so the blocks hold about
    the same number of cells. ``n_cells`` (J,) counts each individual's cells.
    """
    ends = torch.cumsum(n_cells.to(torch.float64).cpu(), 0)
    total = float(ends[-1]) if len(ends) else 0.0
    boundaries = [0]
    for r in range(1, world_size):
        target = total * r / world_size
        nearest = int(torch.argmin((ends - target).abs()))
        boundaries.append(max(boundaries[-1], int(ends[nearest])))
    boundaries.append(int(total))
    return list(zip(boundaries[:-1], boundaries[1:], strict=True))


def current_shard(n_cells: torch.Tensor) -> Shard:
    """The calling rank's :class:`Shard` of the cohort whose individuals hold ``n_cells`` (J,) cells.

    Raises NAMInputError when no process group is running.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise NAMInputError(
            "distributed=True needs a torch.distributed process group: launch the fit with "
            "torchrun (or srun) and call nam_core.engine.distributed.init_from_environment() first")
    start, stop = shard_bounds(n_cells, dist.get_world_size())[dist.get_rank()]
    return Shard(start, stop)


def sum_over_ranks_(*tensors: torch.Tensor | None) -> None:
    """Replace each tensor by its sum over the ranks, in place (one all-reduce per dtype).

    ``None`` entries are skipped; every rank must pass tensors of the same shapes and dtypes.
    """
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        if t is not None:
            by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def init_from_environment() -> int:
    """Join the process group that ``torchrun``/``srun`` describe in the environment.

    Uses NCCL when CUDA is available (each rank on GPU ``LOCAL_RANK``), else gloo. Returns the
    world size (1, joining nothing, when the environment names no group).
    """
    world_size = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")))
    if world_size <= 1:
        return 1
    if not dist.is_initialized():
        _environment_from_slurm()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return dist.get_world_size()


def _environment_from_slurm() -> None:
    """Set RANK, WORLD_SIZE and LOCAL_RANK from SLURM's variables when srun started the ranks."""
    for name, slurm in (("RANK", "SLURM_PROCID"), ("WORLD_SIZE", "SLURM_NTASKS"),
                        ("LOCAL_RANK", "SLURM_LOCALID")):
        if name not in os.environ and slurm in os.environ:
            os.environ[name] = os.environ[slurm]
    os.environ.setdefault("MASTER_PORT", "29500")
    if "MASTER_ADDR" not in os.environ:
        os.environ["MASTER_ADDR"] = os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1")


def is_main_rank() -> bool:
    """True outside a process group and on rank 0 (the rank that writes files and logs)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def leave_process_group() -> None:
    """Leave the process group, if any (its threads must stop before the interpreter exits)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
