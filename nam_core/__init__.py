"""nam_core: the Nested Atoms Model (NAM) and its baselines, with a PyTorch CAVI engine.

See ``docs/model.md`` for the model, its variational updates and its ELBO.
"""

from .engine.estimator import ConvergenceWarning, ELBODecreaseError, select_best
from .errors import NAMInputError
from .models.nam import NAM
from .synthetic.simulate import SimulatedData, simulate

__version__ = "0.1.0"

__all__ = [
    "NAM",
    "select_best",
    "ConvergenceWarning",
    "ELBODecreaseError",
    "NAMInputError", "SimulatedData", "simulate", "__version__"]
