"""The models: NAM and the baselines of ``docs/model.md`` section 9."""

from .cam import CAM
from .dpmix import DPMixture
from .fisan import FiSAN
from .hdp import HDP
from .nam import NAM
from .ndp import NestedDP
from .two_stage import TwoStage

__all__ = ["NAM", "CAM", "DPMixture", "FiSAN", "HDP", "NestedDP", "TwoStage"]
