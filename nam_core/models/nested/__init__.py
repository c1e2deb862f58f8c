"""The nested-atoms family's run, composed from components (``docs/model.md`` sections 4-8).

* :mod:`~nam_core.models.nested.spec`: :class:`NestedSpec`, what a run needs from its
  estimator, and the cell-atom families;
* :mod:`~nam_core.models.nested.globals`: :class:`NestedGlobals`, the global factors U3-U8
  and the ELBO that NAM, CAM, fiSAN, the DP mixtures and the nested DP share;
* :mod:`~nam_core.models.nested.run`: :class:`NestedAtomsRun`, the shared-atoms local step
  (U1, U2); the nested DP adds its own (``models/ndp.py``);
* :mod:`~nam_core.models.nested.merges`: merge moves of individual clusters and of cell atoms;
* :mod:`~nam_core.models.nested.estimator`: the estimator faces (hyperparameters, fitted
  state, prediction).
"""

from .estimator import NestedAtomsEstimator, NestedEstimator
from .globals import NestedGlobals
from .merges import CellAtomMerges, IndividualMerges, refit_with_cells_held
from .run import NestedAtomsRun
from .spec import ATOM_FAMILIES, NestedSpec, cell_atoms

__all__ = [
    "ATOM_FAMILIES", "NestedSpec", "cell_atoms", "NestedGlobals", "NestedAtomsRun",
    "IndividualMerges", "CellAtomMerges", "refit_with_cells_held", "NestedEstimator",
    "NestedAtomsEstimator",
]
