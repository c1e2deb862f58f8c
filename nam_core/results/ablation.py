"""Ablation: NAM against CAM (no genotype layer) and a DP mixture on y, same inputs.

:func:`ablation_model` builds the two baselines from NAM's settings through their public
estimators; :func:`compare_fits` reports the adjusted Rand index between the models' cell
clusters and between NAM's and CAM's individual clusters, and the genotype homogeneity of each
individual partition (:func:`~nam_core.results.partition.genotype_homogeneity`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ..engine.settings import FitSettings
from ..errors import NAMInputError
from ..models.registry import build_estimator
from .partition import genotype_homogeneity

__all__ = ["ABLATION_MODELS", "ablation_model", "compare_fits"]

ABLATION_MODELS = ("cam", "dpmix_y")

def ablation_model(name: str, settings: dict, seed: int):
    """An unfitted CAM or DP mixture on y with NAM's settings (one restart, ``seed``).

    Parameters
    ----------
    name : {"cam", "dpmix_y"}
    settings : dict
        The workflow's fit block (:class:`~nam_core.engine.settings.FitSettings`), so the
        baselines get every option that applies to them, as in the simulation study.
    seed : int
    """
    if name not in ABLATION_MODELS:
        raise NAMInputError(f"ablation model must be one of {ABLATION_MODELS}, got {name!r}")
    fit = FitSettings.from_config(settings, ignore=("seeds",)).with_changes(n_init=1)
    return build_estimator(name, fit, seed=seed)


def compare_fits(nam, cam, dpmix, pcs) -> pd.DataFrame:
    """Between-model ARIs and genotype homogeneity of the individual partitions.

    Parameters
    ----------
    nam, cam : fitted NAM, CAM
    dpmix : fitted DPMixture on y
    pcs : array (J, q)
        Genotype PCs of the fitted individuals, in the fit's order.

    Returns
    -------
    DataFrame with columns metric, value, description.
    """
    pcs = np.asarray(pcs, dtype=np.float64)
    rows = [
        ("ari_cells_nam_cam", adjusted_rand_score(nam.cell_labels_, cam.cell_labels_),
         "ARI of the cell clusters, NAM vs CAM"),
        ("ari_cells_nam_dpmix_y", adjusted_rand_score(nam.cell_labels_, dpmix.labels_),
         "ARI of the cell clusters, NAM vs DP mixture on y"),
        ("ari_cells_cam_dpmix_y", adjusted_rand_score(cam.cell_labels_, dpmix.labels_),
         "ARI of the cell clusters, CAM vs DP mixture on y"),
        ("ari_individuals_nam_cam",
         adjusted_rand_score(nam.individual_labels_, cam.individual_labels_),
         "ARI of the individual clusters, NAM vs CAM"),
        ("genotype_homogeneity_nam", genotype_homogeneity(pcs, nam.individual_labels_),
         "share of genotype-PC variance explained by NAM's individual clusters"),
        ("genotype_homogeneity_cam", genotype_homogeneity(pcs, cam.individual_labels_),
         "share of genotype-PC variance explained by CAM's individual clusters"),
        ("n_individual_clusters_nam", nam.n_individual_clusters_, "occupied"),
        ("n_individual_clusters_cam", cam.n_individual_clusters_, "occupied"),
        ("n_cell_clusters_nam", nam.n_cell_clusters_, "occupied"),
        ("n_cell_clusters_cam", cam.n_cell_clusters_, "occupied"),
        ("n_cell_clusters_dpmix_y", int(np.unique(dpmix.labels_).size), "occupied"),
    ]
    return pd.DataFrame([(m, float(v), d) for m, v, d in rows],
                        columns=["metric", "value", "description"])
