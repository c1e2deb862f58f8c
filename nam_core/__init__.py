"""nam_core: the Nested Atoms Model (NAM) and its baselines, with a PyTorch CAVI engine.

See ``docs/model.md`` for the model, its variational updates and its ELBO.
"""

from .errors import NAMInputError
from .simulate import SimulatedData, simulate

__version__ = "0.1.0"

__all__ = ["NAMInputError", "SimulatedData", "simulate", "__version__"]
