"""nam_core: the Nested Atoms Model (NAM) and its baselines, with a PyTorch CAVI engine.

See ``docs/model.md`` for the model, its variational updates and its ELBO.

The package face is lazy (PEP 562): ``import nam_core`` or a light submodule
(``nam_core.io``, ``nam_core.engine.settings``) loads no torch; the names below are imported
from their modules on first use.
"""

from __future__ import annotations

import importlib

from .errors import NAMInputError

__version__ = "0.1.0"

#: module (relative to this package) -> the public names it gives the package face
_EXPORTS = {
    ".engine.estimator": ("ConvergenceWarning", "ELBODecreaseError", "select_best"),
    ".models.nam": ("NAM",),
    ".synthetic.base": ("SimulatedData",),
    ".synthetic.simulate": ("simulate",),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "NAM",
    "select_best",
    "ConvergenceWarning",
    "ELBODecreaseError",
    "NAMInputError", "SimulatedData", "simulate", "__version__"]


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562)."""
    if name not in _SOURCE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCE))
