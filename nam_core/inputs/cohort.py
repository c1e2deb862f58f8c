"""Match the individuals of the genotype files to the individuals named by the cells.

NAM needs one individual index j shared by the genotype vectors x_j and the cells' ``group``
(docs/model.md, section 1). Individuals with genotypes but no cells can still be clustered by
genotype alone; cells whose individual has no genotypes cannot be placed and are dropped (or
the run fails, by policy).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = ["MatchResult", "match_individuals", "normalise_ids"]

logger = logging.getLogger(__name__)

_INDIVIDUAL_POLICIES = ("keep", "drop", "fail")
_CELL_POLICIES = ("drop", "fail")
_N_SHOWN = 10


@dataclasses.dataclass
class MatchResult:
    """Individuals and cells kept after matching genotypes to cells.

    Attributes
    ----------
    individuals : list of str (J,)
        Kept IIDs, in genotype (.fam) order; row j of the genotype matrix X is ``individuals[j]``.
    cell_mask : ndarray (N_in,) of bool
        Cells kept, over the input cells.
    group : ndarray (N_kept,) of int64
        Index 0..J-1 into ``individuals`` of each kept cell (cells in input order).
    report : DataFrame
        One row per individual seen on either side: ``individual``, ``in_genotypes`` (bool),
        ``n_cells`` (int), ``status`` in {"matched", "no_cells", "no_genotype"} and ``action``
        in {"kept", "dropped"}. Genotyped individuals first (genotype order), then the others.
    """

    individuals: list[str]
    cell_mask: np.ndarray
    group: np.ndarray
    report: pd.DataFrame


def _shown(names: Sequence[str], limit: int = _N_SHOWN) -> str:
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    return f"{shown} (and {len(names) - limit} more)" if len(names) > limit else shown


def normalise_ids(values, what: str, source: str) -> np.ndarray:
    """Individual IDs as an array of str without surrounding spaces; missing values are an error.

    The one rule by which every step compares IIDs of the ``.fam`` with the cells' individual
    column: ``" 7 "``, ``7`` and ``"7"`` are the same individual.

    Parameters
    ----------
    values : sequence (n,)
        IDs as read (str, int or object).
    what, source : str
        What the IDs are and the file they come from, named in the error.

    Returns
    -------
    ndarray (n,) of str
    """
    series = pd.Series(np.asarray(values, dtype=object))
    missing = series.isna().to_numpy()
    if missing.any():
        raise NAMInputError(
            f"{what} in {source!r}: {int(missing.sum())} missing individual IDs "
            f"(e.g. positions {np.flatnonzero(missing)[:_N_SHOWN].tolist()})"
        )
    return series.astype(str).str.strip().to_numpy()


def _check_policies(individuals_without_cells: str, cells_without_genotype: str) -> None:
    if individuals_without_cells not in _INDIVIDUAL_POLICIES:
        raise NAMInputError(
            f"individuals_without_cells must be one of {_INDIVIDUAL_POLICIES}, "
            f"got {individuals_without_cells!r}"
        )
    if cells_without_genotype not in _CELL_POLICIES:
        raise NAMInputError(
            f"cells_without_genotype must be one of {_CELL_POLICIES}, "
            f"got {cells_without_genotype!r}"
        )


def _build_report(
    geno: np.ndarray, cell_counts: pd.Series, keep_no_cells: bool
) -> pd.DataFrame:
    """Per-individual matching table (see :class:`MatchResult`)."""
    n_cells = cell_counts.reindex(geno, fill_value=0).to_numpy()
    genotyped = pd.DataFrame({"individual": geno, "in_genotypes": True, "n_cells": n_cells})
    genotyped["status"] = np.where(n_cells > 0, "matched", "no_cells")
    genotyped["action"] = np.where((n_cells > 0) | keep_no_cells, "kept", "dropped")
    extra = cell_counts[~cell_counts.index.isin(geno)]
    ungenotyped = pd.DataFrame(
        {
            "individual": extra.index.to_numpy(dtype=str),
            "in_genotypes": False,
            "n_cells": extra.to_numpy(),
            "status": "no_genotype",
            "action": "dropped",
        }
    )
    report = pd.concat([genotyped, ungenotyped], ignore_index=True)
    report["n_cells"] = report["n_cells"].astype(np.int64)
    report["in_genotypes"] = report["in_genotypes"].astype(bool)
    return report


def match_individuals(
    genotype_ids,
    cell_individuals,
    *,
    genotype_source,
    cells_source,
    individuals_without_cells: str = "keep",
    cells_without_genotype: str = "drop",
) -> MatchResult:
    """Match genotyped individuals (.fam IIDs) to the individual column of the cells.

    Parameters
    ----------
    genotype_ids : sequence of str (J_geno,)
        IIDs in genotype-file order; must be unique.
    cell_individuals : sequence (N,)
        Individual of each cell (compared as stripped strings).
    genotype_source, cells_source : str or Path
        Files the two sides came from, named in messages.
    individuals_without_cells : {"keep", "drop", "fail"}
        Genotyped individuals with no cells: kept (NAM clusters them by genotype alone),
        dropped, or an error.
    cells_without_genotype : {"drop", "fail"}
        Cells whose individual is not genotyped: dropped, or an error.

    Returns
    -------
    MatchResult

    Raises
    ------
    NAMInputError
        Unknown policy, duplicated or missing IDs, no individual in common (the message names
        both files and shows example IDs from each), or a "fail" policy that is triggered (the
        message names the first individuals at fault and their count).
    """
    _check_policies(individuals_without_cells, cells_without_genotype)
    geno = normalise_ids(genotype_ids, "genotype IDs", str(genotype_source))
    cells = normalise_ids(cell_individuals, "cell individuals", str(cells_source))
    dup = pd.Index(geno)[pd.Index(geno).duplicated()].unique()
    if len(dup):
        raise NAMInputError(
            f"genotype file {str(genotype_source)!r} lists {len(dup)} individuals more than "
            f"once: {_shown(dup)}"
        )
    cell_counts = pd.Series(cells).value_counts(sort=False)
    in_both = cell_counts.index.isin(geno)
    if not in_both.any():
        raise NAMInputError(
            f"no individual is in both the genotypes {str(genotype_source)!r} "
            f"({len(geno)} individuals, e.g. {_shown(geno[:5], 5)}) and the cells "
            f"{str(cells_source)!r} ({len(cell_counts)} individuals, e.g. "
            f"{_shown(cell_counts.index[:5], 5)}); check that both use the same IDs (the .fam "
            f"IID column, without FID prefixes or padding)"
        )

    report = _build_report(geno, cell_counts, individuals_without_cells == "keep")
    no_cells = report.loc[report["status"] == "no_cells", "individual"].tolist()
    no_geno = report.loc[report["status"] == "no_genotype", "individual"].tolist()
    if no_cells and individuals_without_cells == "fail":
        raise NAMInputError(
            f"{len(no_cells)} individuals of {str(genotype_source)!r} have no cells in "
            f"{str(cells_source)!r}: {_shown(no_cells)}"
        )
    if no_geno and cells_without_genotype == "fail":
        n_bad = int(report.loc[report["status"] == "no_genotype", "n_cells"].sum())
        raise NAMInputError(
            f"{n_bad} cells of {str(cells_source)!r} belong to {len(no_geno)} individuals "
            f"missing from {str(genotype_source)!r}: {_shown(no_geno)}"
        )
    _log_dropped(report, no_cells, no_geno, individuals_without_cells)

    kept = report.loc[report["in_genotypes"] & (report["action"] == "kept"), "individual"]
    individuals = kept.tolist()
    index = pd.Index(individuals)
    codes = index.get_indexer(cells)
    cell_mask = codes >= 0
    result = MatchResult(
        individuals=individuals,
        cell_mask=cell_mask,
        group=codes[cell_mask].astype(np.int64),
        report=report,
    )
    logger.info(
        "matched %d individuals (%d with cells) and %d of %d cells",
        len(individuals), int((report["status"] == "matched").sum()), int(cell_mask.sum()),
        cell_mask.size,
    )
    return result


def _log_dropped(
    report: pd.DataFrame, no_cells: list[str], no_geno: list[str], policy: str
) -> None:
    if no_cells:
        verb = "kept (genotype only)" if policy == "keep" else "dropped"
        logger.warning(
            "%d genotyped individuals have no cells, %s: %s", len(no_cells), verb,
            ", ".join(no_cells),
        )
    if no_geno:
        rows = report[report["status"] == "no_genotype"]
        logger.warning(
            "dropped %d cells of %d individuals without genotypes: %s",
            int(rows["n_cells"].sum()), len(no_geno),
            ", ".join(f"{i} ({n} cells)" for i, n in rows[["individual", "n_cells"]].to_numpy()),
        )
