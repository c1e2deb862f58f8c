"""A small, realistic demo cohort: PLINK genotypes plus single-cell UMI counts for the same people.

Individuals belong to ``n_ancestries`` populations. Their genotypes are Balding-Nichols draws
(:func:`nam_core.inputs.ancestry.balding_nichols_genotypes`) and their cell-type compositions depend on
their population, so both layers of NAM carry the population structure. Cells are drawn from a
gamma-Poisson (negative binomial) model around real immune cell-type expression profiles taken
from scanpy's bundled ``pbmc68k_reduced`` data set (no download), with log-normal library sizes,
a few synthetic mitochondrial genes and a small share of low-quality cells for QC to remove.

Files written by :func:`make_demo_cohort` (all atomically):

* ``genotypes.bed/.bim/.fam``: PLINK 1 binary, IID = FID = ``IND0001``...
* ``counts.h5ad``: raw counts (CSR float32), ``obs["individual"]``, ``obs["cell_type"]``.
* ``truth_individuals.tsv``: individual, ancestry.
* ``truth_cells.tsv``: cell (= obs name), individual, cell_type, low_quality.
* ``known_markers.tsv``: cell_type, gene, rank, log2_specificity.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NAMInputError
from ..io import atomic_path
from .ancestry import balding_nichols_genotypes

__all__ = [
    "CELL_TYPE_MAP",
    "BASE_COMPOSITION",
    "MT_GENES",
    "source_profiles",
    "known_markers",
    "draw_demo_cohort",
    "demo_anndata",
    "make_demo_cohort",
]

logger = logging.getLogger(__name__)

#: ``bulk_labels`` of pbmc68k_reduced merged into six well-separated types. ``CD34+`` (13 cells,
#: progenitors) is dropped as too small to give a stable mean profile.
CELL_TYPE_MAP: dict[str, str] = {
    "CD4+/CD25 T Reg": "CD4 T",
    "CD4+/CD45RO+ Memory": "CD4 T",
    "CD4+/CD45RA+/CD25- Naive T": "CD4 T",
    "CD8+ Cytotoxic T": "CD8 T",
    "CD8+/CD45RA+ Naive Cytotoxic": "CD8 T",
    "CD19+ B": "B",
    "CD56+ NK": "NK",
    "CD14+ Monocyte": "CD14 Monocyte",
    "Dendritic": "Dendritic",
}

#: Typical PBMC composition; each ancestry's mean composition is a perturbation of it.
BASE_COMPOSITION: dict[str, float] = {
    "CD4 T": 0.35,
    "CD8 T": 0.15,
    "B": 0.10,
    "NK": 0.10,
    "CD14 Monocyte": 0.20,
    "Dendritic": 0.10,
}

#: Synthetic mitochondrial genes and their relative weights within the mitochondrial fraction.
MT_GENES: dict[str, float] = {
    "MT-CO1": 0.25,
    "MT-CO2": 0.15,
    "MT-CO3": 0.15,
    "MT-ATP6": 0.15,
    "MT-CYB": 0.12,
    "MT-ND1": 0.08,
    "MT-ND2": 0.05,
    "MT-ND4": 0.05,
}

# Generator constants (documented here, recorded in ``uns["demo"]``).
_MEDIAN_LIBRARY = 3000.0  # median UMIs per healthy cell
_LIBRARY_SDLOG = 0.4  # log-normal spread of library sizes
_GENE_DISPERSION = 10.0  # gamma-Poisson shape: Var = mu + mu^2 / 10
_AMBIENT = 0.01  # share of every cell's profile drawn from the pooled (ambient) profile
_MT_BETA = (4.0, 96.0)  # mitochondrial fraction of healthy cells, mean 4 %
_LOW_QUALITY_RATE = 0.03  # share of low-quality cells (half damaged, half near-empty)
_CELLS_DISPERSION = 5.0  # negative-binomial dispersion of cells per individual
_MIN_CELLS = 20
_ANCESTRY_SPREAD = 0.6  # sd of the log-normal perturbation of BASE_COMPOSITION per ancestry
_MIN_COMPOSITION_TV = 0.15  # ancestry compositions redrawn until pairwise total variation >= this
_INDIVIDUAL_CONCENTRATION = 100.0  # omega_j ~ Dirichlet(100 * omega_ancestry)
_CHUNK_CELLS = 4096


@functools.lru_cache(maxsize=1)
def _cached_profiles() -> pd.DataFrame:
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    log_x = np.asarray(pbmc.raw.X.toarray(), dtype=np.float64)  # (700, 765) log1p(normalised)
    labels = pbmc.obs["bulk_labels"].astype(str).map(CELL_TYPE_MAP).to_numpy()
    keep = _purify_labels(log_x, labels)
    linear = np.expm1(log_x[keep])
    profiles = pd.DataFrame(linear, columns=pbmc.raw.var_names).groupby(labels[keep]).mean()
    profiles = profiles.div(profiles.sum(axis=1), axis=0)
    profiles.index.name = "cell_type"
    logger.debug("source profiles from %d of %d pbmc68k_reduced cells", keep.sum(), len(keep))
    return profiles.loc[list(BASE_COMPOSITION)]


def _purify_labels(log_x: np.ndarray, labels: np.ndarray, max_iter: int = 10) -> np.ndarray:
    """Keep cells whose nearest type centroid (Pearson correlation, log scale) is their own label.

    Parameters
    ----------
    log_x : ndarray (N, G)
        Log-normalised expression.
    labels : ndarray (N,) of object
        Merged type of each cell, None/NaN for dropped types.

    Returns
    -------
    keep : ndarray (N,) of bool
    """
    labelled = pd.notna(labels)
    keep = labelled.copy()
    centred = log_x - log_x.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    for _ in range(max_iter):
        types = sorted(set(labels[keep]))
        centroids = np.stack([log_x[keep & (labels == t)].mean(axis=0) for t in types])
        centroids -= centroids.mean(axis=1, keepdims=True)
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        nearest = np.asarray(types, dtype=object)[(centred @ centroids.T).argmax(axis=1)]
        new_keep = labelled & (nearest == labels)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return keep


def source_profiles() -> pd.DataFrame:
    """Mean expression profile of each demo cell type, from scanpy's bundled pbmc68k_reduced.

    ``bulk_labels`` are merged by :data:`CELL_TYPE_MAP`; cells whose expression is closer to
    another type's centroid than to their own label's are dropped (the bulk labels of this data
    set are noisy); per-type means are taken on the linear scale (``expm1`` of the log-normalised
    ``.raw``) and rescaled to sum to one.

    Returns
    -------
    profiles : DataFrame (n_types, n_genes)
        Relative expression rate of each gene (rows sum to 1), rows in the order of
        :data:`BASE_COMPOSITION`.
    """
    return _cached_profiles().copy()


def known_markers(
    profiles: pd.DataFrame,
    n_markers: int = 10,
    library_size: float = _MEDIAN_LIBRARY,
    min_mean_count: float = 0.5,
) -> pd.DataFrame:
    """The genes most specific to each cell type in ``profiles``: what DE should recover.

    A gene is a candidate for type t when t has its highest rate and a typical cell of type t
    has at least ``min_mean_count`` UMIs of it; candidates are ranked by
    log2((p_t + eps) / (mean_{u != t} p_u + eps)), eps = 0.05 UMI per ``library_size``.

    Parameters
    ----------
    profiles : DataFrame (n_types, n_genes)
        Rows sum to 1 (see :func:`source_profiles`).
    n_markers : int
        Markers per type (fewer when fewer genes qualify).
    library_size : float
        UMIs per cell used to turn rates into expected counts.
    min_mean_count : float
        Minimum expected UMIs per cell of the type.

    Returns
    -------
    DataFrame with columns cell_type, gene, rank (1 = most specific), log2_specificity.
    """
    p = profiles.to_numpy(dtype=np.float64)
    eps = 0.05 / library_size
    n_types = p.shape[0]
    rows = []
    for t, cell_type in enumerate(profiles.index):
        others = np.delete(p, t, axis=0).mean(axis=0)
        score = np.log2((p[t] + eps) / (others + eps))
        ok = (p.argmax(axis=0) == t) & (p[t] * library_size >= min_mean_count)
        if n_types == 1:
            ok = p[t] * library_size >= min_mean_count
        order = np.flatnonzero(ok)[np.argsort(-score[ok], kind="stable")][:n_markers]
        for rank, g in enumerate(order, start=1):
            rows.append((cell_type, profiles.columns[g], rank, float(score[g])))
    return pd.DataFrame(rows, columns=["cell_type", "gene", "rank", "log2_specificity"])


def _ancestry_labels(n_individuals: int, n_ancestries: int, rng: np.random.Generator) -> np.ndarray:
    """Unequal population sizes proportional to n_ancestries, ..., 2, 1, shuffled; each >= 2.

    Returns
    -------
    labels : ndarray (n_individuals,) of int in 0..n_ancestries-1
    """
    weights = np.arange(n_ancestries, 0, -1, dtype=np.float64)
    sizes = np.maximum(2, np.floor(n_individuals * weights / weights.sum()).astype(int))
    sizes[0] += n_individuals - sizes.sum()
    if sizes.min() < 2:  # only for very small cohorts: fall back to near-equal sizes
        sizes = np.full(n_ancestries, n_individuals // n_ancestries)
        sizes[: n_individuals % n_ancestries] += 1
    labels = np.repeat(np.arange(n_ancestries), sizes)
    return rng.permutation(labels)


def _ancestry_compositions(
    n_ancestries: int, base: np.ndarray, rng: np.random.Generator, max_tries: int = 1000
) -> np.ndarray:
    """Mean composition of each ancestry: ``base`` times a log-normal perturbation, renormalised.

    Redrawn until every pair differs by at least ``_MIN_COMPOSITION_TV`` in total variation
    (the most separated draw is kept if none qualifies in ``max_tries``).

    Returns
    -------
    omega : ndarray (n_ancestries, n_types), rows sum to 1
    """
    best, best_gap = None, -1.0
    for _ in range(max_tries):
        omega = base * np.exp(_ANCESTRY_SPREAD * rng.standard_normal((n_ancestries, base.size)))
        omega /= omega.sum(axis=1, keepdims=True)
        tv = 0.5 * np.abs(omega[:, None, :] - omega[None, :, :]).sum(axis=-1)
        gap = tv[np.triu_indices(n_ancestries, 1)].min() if n_ancestries > 1 else np.inf
        if gap > best_gap:
            best, best_gap = omega, gap
        if gap >= _MIN_COMPOSITION_TV:
            break
    return best


def _cells_per_individual(n: int, mean_cells: float, rng: np.random.Generator) -> np.ndarray:
    """Negative binomial (mean ``mean_cells``, dispersion 5) cell counts, at least 20 each."""
    prob = _CELLS_DISPERSION / (_CELLS_DISPERSION + mean_cells)
    return np.maximum(_MIN_CELLS, rng.negative_binomial(_CELLS_DISPERSION, prob, size=n))


def _cell_quality(
    n_cells: int, rng: np.random.Generator, library_sdlog: float = _LIBRARY_SDLOG
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Library size, mitochondrial fraction and low-quality flag of each cell.

    Healthy cells: log-normal library (median 3000 UMIs, sd ``library_sdlog`` of the natural
    log), MT fraction ~ Beta(4, 96). Low-quality
    cells (3 %): half damaged (MT fraction U(0.3, 0.6)), half near-empty (library U(100, 450)).

    Returns
    -------
    library : ndarray (n_cells,) of float, UMIs
    mt_fraction : ndarray (n_cells,) in [0, 1)
    low_quality : ndarray (n_cells,) of bool
    """
    library = _MEDIAN_LIBRARY * np.exp(library_sdlog * rng.standard_normal(n_cells))
    mt_fraction = rng.beta(*_MT_BETA, size=n_cells)
    kind = rng.random(n_cells)
    damaged = kind < _LOW_QUALITY_RATE / 2
    empty = (kind >= _LOW_QUALITY_RATE / 2) & (kind < _LOW_QUALITY_RATE)
    mt_fraction[damaged] = rng.uniform(0.3, 0.6, size=int(damaged.sum()))
    library[empty] = rng.uniform(100.0, 450.0, size=int(empty.sum()))
    return library, mt_fraction, damaged | empty


def _draw_counts(
    rates: np.ndarray,
    type_codes: np.ndarray,
    library: np.ndarray,
    mt_fraction: np.ndarray,
    rng: np.random.Generator,
    gene_dispersion: float = _GENE_DISPERSION,
) -> sp.csr_matrix:
    """Gamma-Poisson UMI counts, built in chunks of cells to bound memory.

    Parameters
    ----------
    rates : ndarray (n_types, n_genes)
        Nuclear profile of each type (rows sum to 1, ambient share included).
    type_codes : ndarray (N,) of int
    library, mt_fraction : ndarray (N,)
    gene_dispersion : float
        Gamma-Poisson shape theta: Var = mu + mu^2 / theta.

    Returns
    -------
    counts : csr_matrix (N, n_genes + len(MT_GENES)) of float32
    """
    mt_weights = np.fromiter(MT_GENES.values(), dtype=np.float64)
    mt_weights /= mt_weights.sum()
    blocks = []
    for start in range(0, type_codes.size, _CHUNK_CELLS):
        sl = slice(start, start + _CHUNK_CELLS)
        nuclear = (library[sl] * (1.0 - mt_fraction[sl]))[:, None] * rates[type_codes[sl]]
        mito = (library[sl] * mt_fraction[sl])[:, None] * mt_weights
        mu = np.hstack([nuclear, mito])
        lam = mu * rng.gamma(gene_dispersion, 1.0 / gene_dispersion, size=mu.shape)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    return sp.vstack(blocks, format="csr")


def _write_plink(genotypes: np.ndarray, iids: list[str], bfile: Path) -> None:
    """Write a (J, P) minor-allele-count matrix as PLINK 1 binary files ``bfile``.bed/.bim/.fam.

    FID = IID, parents 0, sex 0, phenotype -9; SNPs rs1.. on chromosome 1 at 1 kb spacing,
    alleles A (a0) / G (a1); stored values are read back by ``pandas_plink.read_plink1_bin``
    unchanged (counts of a1).
    """
    from pandas_plink import write_plink1_bin
    from xarray import DataArray

    n_snps = genotypes.shape[1]
    data = DataArray(
        genotypes.astype(np.float32),
        dims=["sample", "variant"],
        coords={
            "sample": iids,
            "fid": ("sample", iids),
            "iid": ("sample", iids),
            "father": ("sample", ["0"] * len(iids)),
            "mother": ("sample", ["0"] * len(iids)),
            "gender": ("sample", ["0"] * len(iids)),
            "trait": ("sample", ["-9"] * len(iids)),
            "variant": [f"variant{s}" for s in range(n_snps)],
            "snp": ("variant", [f"rs{s + 1}" for s in range(n_snps)]),
            "chrom": ("variant", ["1"] * n_snps),
            "cm": ("variant", np.zeros(n_snps)),
            "pos": ("variant", 1000 * np.arange(1, n_snps + 1)),
            "a0": ("variant", ["A"] * n_snps),
            "a1": ("variant", ["G"] * n_snps),
        },
    )
    bed, bim, fam = (bfile.with_name(bfile.name + ext) for ext in (".bed", ".bim", ".fam"))
    with atomic_path(bed) as tmp_bed, atomic_path(bim) as tmp_bim, atomic_path(fam) as tmp_fam:
        write_plink1_bin(data, tmp_bed, tmp_bim, tmp_fam, verbose=False)


def _validate(n_individuals, n_ancestries, mean_cells, n_snps, fst, library_sdlog=0.4,
              gene_dispersion=10.0) -> None:
    if n_ancestries < 1:
        raise NAMInputError(f"n_ancestries must be >= 1, got {n_ancestries}")
    if n_individuals < 2 * n_ancestries:
        raise NAMInputError(
            f"n_individuals ({n_individuals}) must be at least 2 per ancestry ({n_ancestries})"
        )
    if mean_cells <= 0:
        raise NAMInputError(f"mean_cells must be positive, got {mean_cells}")
    if n_snps < 1:
        raise NAMInputError(f"n_snps must be >= 1, got {n_snps}")
    if not 0.0 < fst < 1.0:
        raise NAMInputError(f"fst must lie in (0, 1), got {fst}")
    if library_sdlog < 0:
        raise NAMInputError(f"library_sdlog must be >= 0, got {library_sdlog}")
    if gene_dispersion <= 0:
        raise NAMInputError(f"gene_dispersion must be positive, got {gene_dispersion}")


def draw_demo_cohort(
    n_individuals: int = 200,
    n_ancestries: int = 3,
    mean_cells: float = 100,
    n_snps: int = 20_000,
    fst: float = 0.05,
    seed: int = 0,
    library_sdlog: float = _LIBRARY_SDLOG,
    gene_dispersion: float = _GENE_DISPERSION,
) -> dict:
    """Draw a demo cohort in memory (what :func:`make_demo_cohort` writes).

    Parameters are those of :func:`make_demo_cohort`.

    Returns
    -------
    dict with ``iids`` (J,) list of str, ``ancestry`` (J,) int, ``genotypes`` (J, n_snps) minor
    allele counts, ``group`` (N,) int, ``type_codes`` (N,) int, ``types`` (n_types,) str,
    ``n_cells`` (J,) int, ``library`` (N,) UMIs, ``low_quality`` (N,) bool, ``counts``
    csr_matrix (N, n_genes) float32, ``genes`` list of str and ``profiles`` (DataFrame).
    """
    _validate(n_individuals, n_ancestries, mean_cells, n_snps, fst, library_sdlog, gene_dispersion)
    rng = np.random.default_rng(seed)
    width = max(4, len(str(n_individuals)))
    iids = [f"IND{j + 1:0{width}d}" for j in range(n_individuals)]
    ancestry = _ancestry_labels(n_individuals, n_ancestries, rng)
    genotypes, _ = balding_nichols_genotypes(ancestry, n_snps, fst, rng)

    profiles = source_profiles()
    types = profiles.index.to_numpy()
    base = np.array([BASE_COMPOSITION[t] for t in types])
    omega_ancestry = _ancestry_compositions(n_ancestries, base, rng)
    omega = rng.gamma(_INDIVIDUAL_CONCENTRATION * omega_ancestry[ancestry])  # Dirichlet draws
    omega /= omega.sum(axis=1, keepdims=True)  # (J, T)
    n_cells = _cells_per_individual(n_individuals, mean_cells, rng)
    group = np.repeat(np.arange(n_individuals), n_cells)
    type_codes = np.concatenate(
        [rng.choice(types.size, size=n, p=w) for n, w in zip(n_cells, omega, strict=True)]
    )
    library, mt_fraction, low_quality = _cell_quality(group.size, rng, library_sdlog)
    p = profiles.to_numpy(dtype=np.float64)
    rates = (1.0 - _AMBIENT) * p + _AMBIENT * p.mean(axis=0)
    counts = _draw_counts(rates, type_codes, library, mt_fraction, rng, gene_dispersion)
    return {
        "iids": iids, "ancestry": ancestry, "genotypes": genotypes, "group": group,
        "type_codes": type_codes, "types": types, "n_cells": n_cells, "library": library,
        "low_quality": low_quality, "counts": counts,
        "genes": [*profiles.columns, *MT_GENES], "profiles": profiles,
    }


def demo_anndata(cohort: dict) -> ad.AnnData:
    """The raw-count AnnData of a drawn cohort (:func:`draw_demo_cohort`).

    Returns
    -------
    AnnData (N, n_genes): CSR float32 counts; ``obs`` individual, cell_type, low_quality, indexed
    by cell name ``<IID>_C0001``...
    """
    iids, types = cohort["iids"], cohort["types"]
    cell_names = [
        f"{iid}_C{i + 1:04d}" for iid, n in zip(iids, cohort["n_cells"], strict=True)
        for i in range(n)
    ]
    obs = pd.DataFrame(
        {
            "individual": pd.Categorical(np.asarray(iids)[cohort["group"]], categories=iids),
            "cell_type": pd.Categorical(types[cohort["type_codes"]], categories=list(types)),
            "low_quality": cohort["low_quality"],
        },
        index=pd.Index(cell_names, name="cell"),
    )
    var = pd.DataFrame(index=pd.Index(cohort["genes"], name="gene"))
    return ad.AnnData(X=cohort["counts"], obs=obs, var=var)


def make_demo_cohort(
    out_dir,
    n_individuals: int = 200,
    n_ancestries: int = 3,
    mean_cells: float = 100,
    n_snps: int = 20_000,
    fst: float = 0.05,
    seed: int = 0,
    library_sdlog: float = _LIBRARY_SDLOG,
    gene_dispersion: float = _GENE_DISPERSION,
) -> dict[str, Path]:
    """Write a demo cohort (genotypes, UMI counts and truth tables) to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    n_individuals : int
        Individuals J; IIDs ``IND0001``... (FID = IID).
    n_ancestries : int
        Populations; sizes proportional to n_ancestries, ..., 1 (at least 2 each).
    mean_cells : float
        Mean cells per individual (negative binomial, dispersion 5, at least 20).
    n_snps : int
        SNPs P in the PLINK files.
    fst : float
        Balding-Nichols fixation index between populations.
    seed : int
        Seed of every random draw; the same seed writes identical files.
    library_sdlog : float
        Standard deviation of the natural log of healthy cells' library sizes (log-normal).
    gene_dispersion : float
        Negative-binomial (gamma-Poisson) shape theta of every gene's counts:
        Var = mu + mu^2 / theta; smaller is noisier.

    Returns
    -------
    dict with keys ``bfile`` (PLINK prefix, no extension), ``counts``, ``truth_individuals``,
    ``truth_cells``, ``known_markers``, each a Path.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    logger.info(
        "demo cohort: %d individuals, %d ancestries, ~%g cells each, %d SNPs, Fst %g, seed %d, "
        "library sdlog %g, gene dispersion %g", n_individuals, n_ancestries, mean_cells, n_snps,
        fst, seed, library_sdlog, gene_dispersion,
    )
    cohort = draw_demo_cohort(
        n_individuals, n_ancestries, mean_cells, n_snps, fst, seed, library_sdlog, gene_dispersion
    )
    out.mkdir(parents=True, exist_ok=True)
    iids, ancestry, profiles = cohort["iids"], cohort["ancestry"], cohort["profiles"]
    adata = demo_anndata(cohort)
    adata.uns["demo"] = {
        "n_individuals": n_individuals, "n_ancestries": n_ancestries, "mean_cells": mean_cells,
        "n_snps": n_snps, "fst": fst, "seed": seed, "median_library": _MEDIAN_LIBRARY,
        "gene_dispersion": gene_dispersion, "low_quality_rate": _LOW_QUALITY_RATE,
        "library_sdlog": library_sdlog,
    }

    paths = {
        "bfile": out / "genotypes",
        "counts": out / "counts.h5ad",
        "truth_individuals": out / "truth_individuals.tsv",
        "truth_cells": out / "truth_cells.tsv",
        "known_markers": out / "known_markers.tsv",
    }
    _write_plink(cohort["genotypes"], iids, paths["bfile"])
    with atomic_path(paths["counts"]) as tmp:
        adata.write_h5ad(tmp, compression="lzf")
    truth_ind = pd.DataFrame({"individual": iids, "ancestry": ancestry})
    truth_cells = adata.obs.reset_index()[["cell", "individual", "cell_type", "low_quality"]]
    for key, table in (
        ("truth_individuals", truth_ind),
        ("truth_cells", truth_cells),
        ("known_markers", known_markers(profiles)),
    ):
        with atomic_path(paths[key]) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
    logger.info(
        "demo cohort written to %s in %.1f s: %d cells (%d low quality), %d genes, %s cells per "
        "ancestry", out, time.perf_counter() - t0, cohort["group"].size,
        int(cohort["low_quality"].sum()), adata.n_vars,
        np.bincount(ancestry[cohort["group"]], minlength=n_ancestries).tolist(),
    )
    return paths
