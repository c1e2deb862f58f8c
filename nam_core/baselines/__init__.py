"""Baselines of ``docs/model.md`` section 9 on the NAM engine, and a registry of methods by name."""

from .cam import CAM
from .dpmix import DPMixture
from .fisan import FiSAN
from .hdp import HDP
from .ndp import NestedDP
from .registry import METHODS, MethodResult, fit_method
from .two_stage import TwoStage

__all__ = ["CAM", "DPMixture", "FiSAN", "HDP", "NestedDP", "TwoStage", "METHODS", "MethodResult", "fit_method"]
