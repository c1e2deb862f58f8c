"""One settings type from the config to the estimators: every fit option reaches every caller.

The workflow's fit rule and the simulation study both read their ``fit:`` block with
:meth:`FitSettings.from_config`, and every method of the registry is built from the same object
(``nam_core.study.methods``), so a new option is added here once.

The defaults are those of the workflow's config schema (``workflow/schemas/config.schema.yaml``,
``fit:``), which is their one source; ``tests/workflow/test_config.py`` holds the two together.
This module imports no torch, so the workflow reads it at parse time cheaply.
"""

from __future__ import annotations

import dataclasses

from ..errors import NAMInputError

__all__ = ["FitSettings"]


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """The options a user can give a fit (``config/config.yaml``, ``fit:``), with its defaults.

    Attributes
    ----------
    K, L : int
        Truncations of the individual clusters and of the cell atoms.
    n_init : int
        Restarts of one fit. Not in the config: the workflow runs one restart per seed job.
    max_iter : int
        Sweeps per restart at most.
    tol : float or None
        Relative ELBO change that stops a restart (None: 1e-8 in float64, 1e-6 in float32).
    init : str
        Initial responsibilities: kmeans, random or random_from_data.
    dtype, device : str
        Precision of the cell-level work; torch device ("auto", "cpu", "cuda[:i]").
    alpha, beta : float or None
        Fixed stick concentrations, or None for Gamma(s) / Gamma(r) hyperpriors.
    s, r : tuple of two floats
    trunc_v, trunc_u : str
        Truncation conventions of the two stick-breaking layers ("tsb" or "open").
    merge : bool
        Merge moves of individual clusters at each convergence.
    atoms : str
        Family of the cell atoms: "student_t" (default) or "gaussian". Student-t atoms with
        cell-atom merges recover the cell types best in ``benchmarks/cell_clusters.py``
        (README, "Cell clusters against Leiden").
    merge_atoms : bool
        Merge moves of cell atoms at each convergence (default on: without them a type split
        by the k-means start stays split).
    memory_budget_mb : int
        Working memory of one chunk of cells, MiB.
    checkpoint_every : int
        Sweeps between checkpoints of a fit that has a checkpoint path.
    coarse_fraction : float or None
        Coarse-to-fine restarts (``nam_core.models.coarse_to_fine``): every restart sees this share
        of each individual's cells (at least ``coarse_min_cells``), and the best restart is then
        refined on all cells. None: every restart sees all cells. Not an estimator option: the
        workflow's fit rules and ``fit_coarse_to_fine`` apply it.
    coarse_min_cells : int
        Cells per individual kept in the subsample at least (all it has when fewer).
    coarse_max_cells : int or None
        Cells of the subsample at most (the share is lowered to fit; ``coarse_min_cells``
        still holds): restarts then cost the same in a larger cohort. None: no cap.
    ranks : int
        Processes that share one fit (``NAM(distributed=True)`` over ``torch.distributed``,
        started by :func:`nam_core.fit_jobs.run_on_ranks`); 1 fits in the calling
        process. Not an estimator option.
    """

    K: int = 10
    L: int = 20
    n_init: int = 10
    max_iter: int = 1000
    tol: float | None = None
    init: str = "kmeans"
    dtype: str = "float32"
    device: str = "auto"
    alpha: float | None = None
    beta: float | None = None
    s: tuple[float, float] = (1.0, 1.0)
    r: tuple[float, float] = (1.0, 1.0)
    trunc_v: str = "tsb"
    trunc_u: str = "tsb"
    merge: bool = True
    atoms: str = "student_t"
    merge_atoms: bool = True
    memory_budget_mb: int = 256
    checkpoint_every: int = 10
    coarse_fraction: float | None = None
    coarse_min_cells: int = 20
    coarse_max_cells: int | None = None
    ranks: int = 1

    @classmethod
    def from_config(cls, block: dict, ignore: tuple[str, ...] = ()) -> FitSettings:
        """Settings from a config's ``fit:`` block; keys in ``ignore`` belong to the caller.

        Raises NAMInputError naming any unknown key.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - names - set(ignore))
        if unknown:
            raise NAMInputError(f"fit: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in block.items() if k in names}
        return cls(**values)

    def with_changes(self, **changes) -> FitSettings:
        """A copy with some settings replaced."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain values (for JSON and logs)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def run_options(self) -> dict:
        """Options every variational estimator takes (restarts, stopping, precision, memory)."""
        return {"n_init": self.n_init, "max_iter": self.max_iter, "tol": self.tol,
                "dtype": self.dtype, "device": self.device,
                "memory_budget": int(self.memory_budget_mb) * 2**20}

    def nested_options(self) -> dict:
        """Options of the stick-breaking nested models (NAM, CAM, fiSAN, nested DP).

        Truncations, initialisation, concentrations and their priors, with :meth:`run_options`.
        """
        return self.run_options() | {
            "K": self.K, "L": self.L, "init": self.init, "alpha": self.alpha, "beta": self.beta,
            "s": self.s, "r": self.r, "trunc_v": self.trunc_v, "trunc_u": self.trunc_u,
        }
