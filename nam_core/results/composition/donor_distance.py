"""Do donors who are close genetically have similar cell-type compositions? A Mantel test.

Two donor x donor distance matrices are compared:

* composition: the Aitchison distance, i.e. the Euclidean distance between the centred
  log-ratio (CLR) transforms of each donor's cell-type counts, with a pseudo-count added to every
  count first (:data:`DEFAULT_PSEUDO_COUNT`, 0.5, as propeller's logit) so an absent type has a
  finite log;
* genetics: the Euclidean distance between the donors' genotype PCs.

The Mantel statistic is the correlation (Pearson, or Spearman on the ranks) of the J (J - 1) / 2
off-diagonal entries (Mantel 1967). Its null distribution comes from relabelling the donors of
the composition matrix (rows and columns together), optionally only within strata such as
sequencing pools; the p-value is one-sided (a positive association, as vegan's ``mantel``):
p = (1 + #{r_perm >= r}) / (1 + n_permutations). The partial Mantel test (Smouse et al. 1986,
as vegan's ``mantel.partial``) controls for a third distance, here 'same pool or not'.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import NAMInputError

__all__ = ["DEFAULT_PSEUDO_COUNT", "aitchison_distances", "clr", "composition_vs_genetics",
           "euclidean_distances", "mantel", "permute_within", "plot_composition_vs_genetics",
           "same_stratum_distances"]

logger = logging.getLogger(__name__)

#: Pseudo-count added to every cell count before the CLR (absent types get a finite log).
DEFAULT_PSEUDO_COUNT = 0.5


def clr(counts: np.ndarray, pseudo_count: float = DEFAULT_PSEUDO_COUNT) -> np.ndarray:
    """Centred log-ratio of each row: log(c + a) - mean over columns of log(c + a).

    Parameters
    ----------
    counts : array (J, L)
        Cells of each donor in each cell type (non-negative).
    pseudo_count : float
        a > 0, added to every count.

    Returns
    -------
    ndarray (J, L) float64; each row sums to 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if pseudo_count <= 0:
        raise NAMInputError(f"pseudo_count must be > 0, got {pseudo_count}")
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise NAMInputError("cell counts must be finite and non-negative")
    logs = np.log(counts + pseudo_count)
    return logs - logs.mean(axis=1, keepdims=True)


def euclidean_distances(values: np.ndarray) -> np.ndarray:
    """(J, J) Euclidean distances between the rows of ``values`` (J, d), float64."""
    values = np.asarray(values, dtype=np.float64)
    sq = (values**2).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * values @ values.T
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(np.maximum(d2, 0.0))


def aitchison_distances(counts: np.ndarray, pseudo_count: float = DEFAULT_PSEUDO_COUNT) -> np.ndarray:
    """(J, J) Aitchison distances between donors: Euclidean distances of their CLR rows."""
    return euclidean_distances(clr(counts, pseudo_count))


def same_stratum_distances(strata) -> np.ndarray:
    """(J, J) 0 where two donors share a stratum (e.g. a pool), 1 otherwise."""
    strata = np.asarray(strata)
    return (strata[:, None] != strata[None, :]).astype(np.float64)


def permute_within(strata, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of 0..J-1 that moves each index only within its stratum.

    Parameters
    ----------
    strata : array (J,) or None
        Stratum of each item (e.g. each donor's pool); None permutes freely.
    rng : numpy Generator

    Returns
    -------
    ndarray (J,) of int: ``values[perm]`` relabels items within strata.
    """
    if strata is None:
        raise NAMInputError("permute_within needs strata; use rng.permutation to permute freely")
    strata = np.asarray(strata)
    perm = np.arange(strata.size)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        perm[members] = members[rng.permutation(members.size)]
    return perm


def _upper(matrix: np.ndarray) -> np.ndarray:
    """The off-diagonal upper triangle of a square matrix, row by row."""
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def _ranked(matrix: np.ndarray) -> np.ndarray:
    """The matrix with its upper-triangle entries replaced by their ranks (ties averaged)."""
    out = np.zeros_like(matrix, dtype=np.float64)
    iu = np.triu_indices(matrix.shape[0], k=1)
    out[iu] = stats.rankdata(matrix[iu])
    return out + out.T


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else np.nan


class _PermutedCorrelation:
    """Pearson correlation of the upper triangle of x, donors relabelled, with a fixed vector.

    A relabelling moves the upper-triangle entries of x but keeps their mean and spread, so
    the correlation is sum(x_perm * W) with W the other distance's centred entries placed
    symmetrically (zero diagonal) and scaled by 1 / (2 sqrt(Sxx Sww)): one pass over the
    relabelled matrix, with no triangle extracted.
    """

    def __init__(self, vx: np.ndarray, vw: np.ndarray, n: int):
        sxx = float(((vx - vx.mean()) ** 2).sum())
        sww = float(((vw - vw.mean()) ** 2).sum())
        self.weights = np.zeros((n, n))
        self.weights[np.triu_indices(n, k=1)] = vw - vw.mean()
        self.weights += self.weights.T
        denom = np.sqrt(sxx * sww)
        self.weights *= 0.5 / denom if denom > 0 else np.nan

    def __call__(self, permuted: np.ndarray) -> float:
        """The correlation for x with rows and columns relabelled, (n, n)."""
        return float(np.vdot(permuted, self.weights))


def _partial(r_xy: float, r_xz: float, r_yz: float) -> float:
    return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2))


def _check_square(name: str, matrix: np.ndarray, n: int | None = None) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise NAMInputError(f"{name} must be a square distance matrix, got shape {matrix.shape}")
    if n is not None and matrix.shape[0] != n:
        raise NAMInputError(f"{name} has {matrix.shape[0]} rows, expected {n}")
    if not np.allclose(matrix, matrix.T) or not np.isfinite(matrix).all():
        raise NAMInputError(f"{name} must be finite and symmetric")
    return matrix


def mantel(
    x: np.ndarray,
    y: np.ndarray,
    method: str = "pearson",
    n_permutations: int = 999,
    seed: int = 0,
    strata=None,
    z: np.ndarray | None = None,
) -> dict:
    """Mantel test of two (J, J) distance matrices; partial on ``z`` when given.

    Parameters
    ----------
    x, y : array (J, J)
        Symmetric distance matrices of the same donors in the same order; ``x``'s donors are
        relabelled in the permutations.
    method : {"pearson", "spearman"}
        Spearman correlates the ranks of the off-diagonal entries.
    n_permutations : int
        Relabellings of the donors (>= 1).
    seed : int
        Seed of the permutations.
    strata : array (J,) or None
        Relabel donors only within the same stratum (e.g. pool); None: freely.
    z : array (J, J) or None
        A third distance to control for (partial Mantel: the correlation of x and y given z).

    Returns
    -------
    dict with r (the statistic), p (one-sided, greater, with the +1 correction), n_donors,
    n_permutations, method (``pearson``, ``spearman``, ``partial_pearson``...).
    """
    if method not in ("pearson", "spearman"):
        raise NAMInputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if n_permutations < 1:
        raise NAMInputError(f"n_permutations must be >= 1, got {n_permutations}")
    x = _check_square("x", x)
    n = x.shape[0]
    y = _check_square("y", y, n)
    if n < 3:
        raise NAMInputError(f"a Mantel test needs at least 3 donors, got {n}")
    if z is not None:
        z = _check_square("z", z, n)
    if method == "spearman":
        x, y = _ranked(x), _ranked(y)
        z = None if z is None else _ranked(z)
    iu = np.triu_indices(n, k=1)
    vx, vy = x[iu], y[iu]
    vz = None if z is None else z[iu]
    r_yz = None if z is None else _corr(vy, vz)
    r_xy = _corr(vx, vy)
    r = r_xy if vz is None else _partial(r_xy, _corr(vx, vz), r_yz)
    correlate_y = _PermutedCorrelation(vx, vy, n)
    correlate_z = None if vz is None else _PermutedCorrelation(vx, vz, n)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        perm = rng.permutation(n) if strata is None else permute_within(strata, rng)
        permuted = x.take(perm, axis=0).take(perm, axis=1)
        r_perm = correlate_y(permuted)
        null[i] = r_perm if vz is None else _partial(r_perm, correlate_z(permuted), r_yz)
    p = (1 + int(np.sum(null >= r - 1e-12))) / (1 + n_permutations) if np.isfinite(r) else np.nan
    return {"method": ("partial_" if z is not None else "") + method, "r": r, "p": p,
            "n_donors": n, "n_permutations": n_permutations}


def composition_vs_genetics(
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    pools: pd.Series | None = None,
    n_permutations: int = 999,
    seed: int = 0,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mantel tests of the donors' Aitchison composition distance against their PC distance.

    Parameters
    ----------
    counts : DataFrame
        Column ``individual`` and one column of cells per cell type (other columns named
        ``cluster`` are ignored); donors without cells are left out.
    pcs : DataFrame
        Column ``individual`` (or the index) and genotype PC columns ``PC<q>``.
    pools : Series or None
        Pool (or other donor stratum) of each donor, indexed by individual. Given, the partial
        Mantel tests control for 'same pool or not'.
    n_permutations, seed : int
        See :func:`mantel`.
    pseudo_count : float
        See :func:`clr`.

    Returns
    -------
    (table, pairs): table has one row per test (statistic ``mantel``, method, r, p, n_donors,
    n_permutations, pseudo_count); pairs has one row per donor pair (individual_a,
    individual_b, genetic_distance, composition_distance).
    """
    if "individual" not in counts.columns:
        raise NAMInputError(f"counts table lacks column 'individual'; has {list(counts.columns)}")
    type_cols = [c for c in counts.columns if c not in ("individual", "cluster")]
    if not type_cols:
        raise NAMInputError("counts table has no cell-type columns")
    counts = counts.loc[counts[type_cols].sum(axis=1) > 0]
    donors = counts["individual"].astype(str).to_numpy()
    if "individual" in pcs.columns:
        pcs = pcs.set_index(pcs["individual"].astype(str))
    pcs.index = pcs.index.astype(str)
    pc_cols = [c for c in pcs.columns if str(c).startswith("PC")]
    if not pc_cols:
        raise NAMInputError(f"genotype PC table has no PC columns; has {list(pcs.columns)}")
    missing = pd.Index(donors).difference(pcs.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} donors have no genotype PCs: {list(missing[:5])}")
    x = aitchison_distances(counts[type_cols].to_numpy(), pseudo_count)
    y = euclidean_distances(pcs.loc[donors, pc_cols].to_numpy(dtype=np.float64))
    tests = [("pearson", None), ("spearman", None)]
    z = None
    if pools is not None:
        pools = pools.copy()
        pools.index = pools.index.astype(str)
        lacking = pd.Index(donors).difference(pools.index)
        if len(lacking):
            raise NAMInputError(f"{len(lacking)} donors have no pool: {list(lacking[:5])}")
        z = same_stratum_distances(pools.loc[donors].astype(str).to_numpy())
        tests += [("pearson", z), ("spearman", z)]
    rows = [mantel(x, y, method, n_permutations, seed, z=zm) for method, zm in tests]
    for row in rows:
        logger.info("Mantel %s: r = %.3f, p = %.4g over %d donors (%d permutations)",
                    row["method"], row["r"], row["p"], row["n_donors"], n_permutations)
    table = pd.DataFrame(rows)
    table.insert(0, "statistic", "mantel")
    table["pseudo_count"] = pseudo_count
    iu = np.triu_indices(len(donors), k=1)
    pairs = pd.DataFrame({"individual_a": donors[iu[0]], "individual_b": donors[iu[1]],
                          "genetic_distance": y[iu], "composition_distance": x[iu]})
    return table, pairs


def plot_composition_vs_genetics(pairs: pd.DataFrame, table: pd.DataFrame):
    """Hexbin of every donor pair: genetic (PC) distance against Aitchison composition distance.

    Parameters
    ----------
    pairs : DataFrame
        ``genetic_distance`` and ``composition_distance`` per donor pair
        (:func:`composition_vs_genetics`).
    table : DataFrame
        The Mantel tests (method, r, p); the Pearson and Spearman ones go in the title.

    Returns
    -------
    matplotlib Figure (single column, paper style; save with ``figure_style.save_figure``).
    """
    import matplotlib.pyplot as plt

    from ..figure_style import SINGLE_COLUMN, paper_style

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # its font subsetting logs at INFO

    by_method = table.set_index("method")
    lines = []
    for method in ("pearson", "spearman", "partial_pearson", "partial_spearman"):
        if method in by_method.index:
            row = by_method.loc[method]
            label = method.replace("partial_", "partial ").replace("pearson", "Pearson").replace(
                "spearman", "Spearman")
            lines.append(f"{label} r = {row['r']:.3f}, p = {row['p']:.3g}")
    title = "Mantel: " + "; ".join(lines[:2]) + ("\n" + "; ".join(lines[2:]) if lines[2:] else "")
    with paper_style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.3, SINGLE_COLUMN * 1.1),
                               layout="constrained")
        hb = ax.hexbin(pairs["genetic_distance"], pairs["composition_distance"], gridsize=40,
                       mincnt=1, bins="log", cmap="viridis", linewidths=0.1)
        fig.colorbar(hb, ax=ax, label="donor pairs")
        ax.set_xlabel("Genetic distance (Euclidean, genotype PCs)")
        ax.set_ylabel("Composition distance (Aitchison, CLR of cell-type shares)")
        n = int(table["n_donors"].iloc[0]) if len(table) else 0
        ax.set_title(f"{title}\n{n} donors, {len(pairs)} pairs", fontsize=7)
    return fig
