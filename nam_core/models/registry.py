"""Models by name, each built from one :class:`~nam_core.engine.settings.FitSettings`.

The workflow (NAM and its ablations) and the simulation study build every estimator
here, so every fit option reaches every caller.
"""

from __future__ import annotations

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from .cam import CAM
from .dpmix import DPMixture
from .fisan import FiSAN
from .hdp import HDP
from .nam import NAM
from .ndp import NestedDP
from .two_stage import TwoStage

__all__ = ["MODELS", "build_estimator"]


def _mixture(s: FitSettings, layer: str) -> dict:
    """Settings of a DP mixture of one layer (the cell settings on y, the individual ones on x).

    The mixtures keep scikit-learn's "open" truncation, which makes them comparable with it.
    """
    if layer == "y":
        return s.run_options() | {"n_components": s.L, "concentration": s.beta,
                                  "concentration_prior": s.r, "init": s.init, "atoms": s.atoms}
    return s.run_options() | {"n_components": s.K, "concentration": s.alpha,
                              "concentration_prior": s.s, "init": s.init}


def _shared_atoms(s: FitSettings) -> dict:
    """Options of the shared-atoms models beyond ``nested_options`` (atoms, merges, checkpoints)."""
    return {"atoms": s.atoms, "merge": s.merge, "merge_atoms": s.merge_atoms,
            "checkpoint_every": s.checkpoint_every}


MODELS = {
    "nam": lambda s, **kw: NAM(**s.nested_options(), **_shared_atoms(s), **kw),
    "cam": lambda s, **kw: CAM(**s.nested_options(), **_shared_atoms(s), **kw),
    "fisan": lambda s, **kw: FiSAN(**{k: v for k, v in s.nested_options().items() if k not in ("beta", "r", "trunc_u")},
                                   **_shared_atoms(s), **kw),
    "ndp": lambda s, **kw: NestedDP(**s.nested_options(), **kw),
    # the HDP's concentrations (tables, global sticks) are not NAM's: only truncations and run options
    "hdp": lambda s, **kw: HDP(K=s.K, L=s.L, **s.run_options(), **kw),
    "dpmix_x": lambda s, **kw: DPMixture("x", **_mixture(s, "x"), **kw),
    "dpmix_y": lambda s, **kw: DPMixture("y", **_mixture(s, "y"), **kw),
    "two_stage": lambda s, **kw: TwoStage(K=s.K, L=s.L, **{k: v for k, v in s.run_options().items()
                                                           if k != "memory_budget"}, **kw),
}


def build_estimator(name: str, settings: FitSettings, **extra):
    """The estimator ``name`` (a key of :data:`MODELS`) with the settings that apply to it.

    ``extra`` holds per-call options (``seed``, ``verbose``, ``checkpoint`` for NAM, CAM, fiSAN).
    """
    if name not in MODELS:
        raise NAMInputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](settings, **extra)
