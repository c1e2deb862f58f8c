"""Cells of ten PBMC types, some of them close, for testing how atoms are grouped into types.

No model in this repository was tuned on this generator. The ten types are the unmerged
``bulk_labels`` of scanpy's bundled ``pbmc68k_reduced`` (no download), so close pairs come from
real cells: naive vs memory CD4 T (and regulatory T), naive vs cytotoxic CD8 T. Each type's
profile is the mean of its labelled cells on the linear scale (labels kept as given: their
noise makes close types closer, not further). Counts are negative binomial around
``library x profile`` with a dispersion (gamma shape) per type spread geometrically from 2 to 20
and shuffled by the seed; library sizes are log-normal, with a per-type shift (sd 0.3) on top of
the per-cell spread (sd 0.5) around :data:`~nam_core.synthetic.cohort_parts.MEDIAN_LIBRARY`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .cohort_parts import MEDIAN_LIBRARY

__all__ = ["CLOSE_PAIRS", "ManyTypesCells", "fine_profiles", "many_types_cells"]

#: Pairs of types whose profiles are close: merging them is the risk of grouping atoms.
CLOSE_PAIRS: tuple[tuple[str, str], ...] = (
    ("CD4+/CD45RA+/CD25- Naive T", "CD4+/CD45RO+ Memory"),
    ("CD4+/CD45RO+ Memory", "CD4+/CD25 T Reg"),
    ("CD8+/CD45RA+ Naive Cytotoxic", "CD8+ Cytotoxic T"),
)
DISPERSION_RANGE = (2.0, 20.0)  # NB gamma shape, smallest and largest over the types
TYPE_LIBRARY_SD = 0.3  # sd of the per-type shift of log library size
CELL_LIBRARY_SD = 0.5  # sd of the per-cell log library size
_CHUNK_CELLS = 4096


@dataclasses.dataclass
class ManyTypesCells:
    """Cells drawn by :func:`many_types_cells`.

    counts: csr (n_cells, n_genes) int32; cell_type: (n_cells,) str; library: (n_cells,)
    expected UMIs; dispersion: NB gamma shape per type; genes: gene names.
    """

    counts: sp.csr_matrix
    cell_type: np.ndarray
    library: np.ndarray
    dispersion: dict[str, float]
    genes: list[str]


@functools.lru_cache(maxsize=1)
def _fine_profiles() -> tuple[pd.DataFrame, pd.Series]:
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    linear = np.expm1(np.asarray(pbmc.raw.X.toarray(), dtype=np.float64))
    labels = pbmc.obs["bulk_labels"].astype(str).to_numpy()
    profiles = pd.DataFrame(linear, columns=pbmc.raw.var_names).groupby(labels).mean()
    profiles = profiles.div(profiles.sum(axis=1), axis=0)
    freq = pd.Series(labels).value_counts(normalize=True).reindex(profiles.index)
    return profiles, freq


def fine_profiles() -> tuple[pd.DataFrame, pd.Series]:
    """Profiles (n_types, n_genes; rows sum to 1) and label frequencies of the ten bulk labels."""
    profiles, freq = _fine_profiles()
    return profiles.copy(), freq.copy()


def many_types_cells(n_cells: int = 20_000, seed: int = 0) -> ManyTypesCells:
    """Draw ``n_cells`` cells of the ten types.

    The composition is half the pbmc68k_reduced label frequencies, half uniform, so every type
    holds at least 5% of the cells. Memory: the counts are drawn in chunks of 4096 cells.
    """
    rng = np.random.default_rng(seed)
    profiles, freq = fine_profiles()
    types = profiles.index.to_numpy()
    weights = 0.5 * freq.to_numpy() + 0.5 / len(types)
    dispersion = np.geomspace(*DISPERSION_RANGE, len(types))[rng.permutation(len(types))]
    type_shift = rng.normal(0.0, TYPE_LIBRARY_SD, len(types))
    codes = np.sort(rng.choice(len(types), n_cells, p=weights / weights.sum()))
    library = MEDIAN_LIBRARY * np.exp(type_shift[codes] + rng.normal(0, CELL_LIBRARY_SD, n_cells))
    rates = profiles.to_numpy()
    blocks = []
    for start in range(0, n_cells, _CHUNK_CELLS):
        sl = slice(start, min(start + _CHUNK_CELLS, n_cells))
        mu = library[sl, None] * rates[codes[sl]]
        shape = dispersion[codes[sl]][:, None]
        lam = rng.gamma(shape, mu / shape)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.int32)))
    return ManyTypesCells(
        counts=sp.vstack(blocks, format="csr"),
        cell_type=types[codes].astype(str),
        library=library,
        dispersion=dict(zip(types, dispersion.tolist(), strict=True)),
        genes=list(profiles.columns),
    )
