"""Match the individuals of the genotype files to the individuals named by the cells.

NAM needs one individual index j shared by the genotype vectors x_j and the cells' ``group``
(docs/model.md, section 1). Individuals with genotypes but no cells can still be clustered by
genotype alone; cells whose individual has no genotypes cannot be placed and are dropped (or
the run fails, by policy).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = ["MatchResult", "match_individuals", "near_misses", "normalise_ids"]

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
        ``n_cells`` (int), ``status`` in {"matched", "no_cells", "no_calls", "no_genotype"} and
        ``action`` in {"kept", "dropped"} ("no_calls": in the .fam, but every genotype call
        missing; such individuals are dropped with their cells). Genotyped individuals first (genotype order), then the others.
    """

    individuals: list[str]
    cell_mask: np.ndarray
    group: np.ndarray
    report: pd.DataFrame


_DIGITS = re.compile(r"\d+")


def _canonical(name: str) -> str:
    """A form of an ID that ignores Unicode form, case, whitespace, zero padding and ".0"."""
    text = "".join(unicodedata.normalize("NFKC", name).casefold().split())
    text = re.sub(r"(?<=\d)\.0+$", "", text)
    return _DIGITS.sub(lambda m: str(int(m.group())), text)


def _difference(a: str, b: str) -> str:
    """Name what separates two IDs with the same canonical form."""
    if unicodedata.normalize("NFKC", a) == unicodedata.normalize("NFKC", b):
        return "Unicode normalisation"
    if "".join(a.split()) == "".join(b.split()):
        return "whitespace"
    if a.casefold() == b.casefold():
        return "case"
    if re.sub(r"\.0+$", "", a) == re.sub(r"\.0+$", "", b):
        return "integer vs float ('1' vs '1.0')"
    if _DIGITS.sub(lambda m: str(int(m.group())), a) == _DIGITS.sub(
        lambda m: str(int(m.group())), b
    ):
        return "zero padding ('01' vs '1')"
    return "case, padding or float formatting"


def near_misses(cell_ids: Sequence[str], genotype_ids: Sequence[str]) -> pd.DataFrame:
    """Pairs of unmatched IDs that differ only in form: the likely cause of a lost individual.

    Parameters
    ----------
    cell_ids : sequence of str
        Individuals of the cells that found no genotype.
    genotype_ids : sequence of str
        Genotyped individuals that found no cells.

    Returns
    -------
    DataFrame
        Columns ``cells_id``, ``genotype_id`` and ``difference`` (zero padding, integer vs
        float, whitespace, case or Unicode normalisation); one row per cell ID that has a
        near-miss, in the order given.
    """
    by_key = {}
    for gid in genotype_ids:
        by_key.setdefault(_canonical(str(gid)), str(gid))
    rows = [
        (str(cid), by_key[key], _difference(str(cid), by_key[key]))
        for cid in cell_ids
        if (key := _canonical(str(cid))) in by_key
    ]
    return pd.DataFrame(rows, columns=["cells_id", "genotype_id", "difference"])


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
    geno: np.ndarray, cell_counts: pd.Series, keep_no_cells: bool, uncalled: set[str]
) -> pd.DataFrame:
    """Per-individual matching table (see :class:`MatchResult`)."""
    n_cells = cell_counts.reindex(geno, fill_value=0).to_numpy()
    no_calls = np.isin(geno, list(uncalled))
    genotyped = pd.DataFrame({"individual": geno, "in_genotypes": True, "n_cells": n_cells})
    genotyped["status"] = np.where(
        no_calls, "no_calls", np.where(n_cells > 0, "matched", "no_cells")
    )
    genotyped["action"] = np.where(
        ~no_calls & ((n_cells > 0) | keep_no_cells), "kept", "dropped"
    )
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


def _check_losses(
    report: pd.DataFrame, max_lost_fraction: float | None, genotype_source, cells_source
) -> None:
    """Raise when too many individuals with cells, or cells, are lost; else summarise losses.

    The shares are over the individuals named by the cells and over all cells; genotyped
    individuals without cells are not counted (a genotyped biobank is often larger than the
    sequenced cohort), but their IDs are searched for near-misses of the lost ones.
    """
    with_cells = report[report["n_cells"] > 0]
    lost = with_cells[with_cells["status"].isin(["no_genotype", "no_calls"])]
    if lost.empty:
        return
    share_ind = len(lost) / len(with_cells)
    share_cells = lost["n_cells"].sum() / with_cells["n_cells"].sum()
    misses = near_misses(
        lost.loc[lost["status"] == "no_genotype", "individual"],
        report.loc[report["status"] == "no_cells", "individual"],
    )
    hint = ""
    if len(misses):
        kinds = ", ".join(misses["difference"].unique())
        pairs = _shown([f"{a} ~ {b}" for a, b in misses[["cells_id", "genotype_id"]].to_numpy()])
        hint = (
            f"; {len(misses)} of them nearly match a genotyped individual without cells "
            f"({kinds}), cells ~ genotypes: {pairs}: write the IDs the same way in both files"
        )
    summary = (
        f"{len(lost)} of the {len(with_cells)} individuals of the cells in "
        f"{str(cells_source)!r} ({share_ind:.1%}), with {int(lost['n_cells'].sum())} of "
        f"{int(with_cells['n_cells'].sum())} cells ({share_cells:.1%}), have no usable "
        f"genotypes in {str(genotype_source)!r}: {_shown(lost['individual'].tolist())}{hint}"
    )
    if max_lost_fraction is not None and max(share_ind, share_cells) > max_lost_fraction:
        raise NAMInputError(
            f"{summary}. This is more than matching.max_lost_fraction = {max_lost_fraction:g} "
            "allows; fix the IDs, or raise the threshold if the loss is real"
        )
    logger.warning("%s; dropped", summary)


def match_individuals(
    genotype_ids,
    cell_individuals,
    *,
    genotype_source,
    cells_source,
    individuals_without_cells: str = "keep",
    cells_without_genotype: str = "drop",
    uncalled: Sequence[str] = (),
    max_lost_fraction: float | None = None,
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
    uncalled : sequence of str
        Genotyped IIDs with every genotype call missing: treated as not genotyped (status
        ``no_calls``, dropped with their cells), as their genotype PCs would be the centre.
    max_lost_fraction : float or None
        Largest share of the cells' individuals, or of the cells, that may be lost for want of
        genotypes (None: no limit). Above it the match fails, naming near-misses (IDs that
        differ only by zero padding, "1" vs "1.0", whitespace, case or Unicode form); below it
        a warning summarises the loss.

    Returns
    -------
    MatchResult

    Raises
    ------
    NAMInputError
        Unknown policy, duplicated or missing IDs, no individual in common (the message names
        both files and shows example IDs from each), a "fail" policy that is triggered (the
        message names the first individuals at fault and their count), or a loss above
        ``max_lost_fraction``.
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
        misses = near_misses(cell_counts.index, geno)
        hint = ""
        if len(misses):
            hint = (
                f"; {len(misses)} of the cells' individuals differ from a .fam IID only by "
                f"{', '.join(misses['difference'].unique())}, e.g. "
                + _shown([f"{a} ~ {b}" for a, b in misses[["cells_id", "genotype_id"]].to_numpy()], 5)
            )
        raise NAMInputError(
            f"no individual is in both the genotypes {str(genotype_source)!r} "
            f"({len(geno)} individuals, e.g. {_shown(geno[:5], 5)}) and the cells "
            f"{str(cells_source)!r} ({len(cell_counts)} individuals, e.g. "
            f"{_shown(cell_counts.index[:5], 5)}); check that both use the same IDs (the .fam "
            f"IID column, without FID prefixes or padding){hint}"
        )

    report = _build_report(
        geno, cell_counts, individuals_without_cells == "keep", {str(u) for u in uncalled}
    )
    no_cells = report.loc[report["status"] == "no_cells", "individual"].tolist()
    no_geno = report.loc[report["status"].isin(["no_genotype", "no_calls"])
                         & (report["n_cells"] > 0), "individual"].tolist()
    if no_cells and individuals_without_cells == "fail":
        raise NAMInputError(
            f"{len(no_cells)} individuals of {str(genotype_source)!r} have no cells in "
            f"{str(cells_source)!r}: {_shown(no_cells)}"
        )
    if no_geno and cells_without_genotype == "fail":
        n_bad = int(report.loc[report["individual"].isin(no_geno), "n_cells"].sum())
        raise NAMInputError(
            f"{n_bad} cells of {str(cells_source)!r} belong to {len(no_geno)} individuals "
            f"missing from {str(genotype_source)!r}: {_shown(no_geno)}"
        )
    _check_losses(report, max_lost_fraction, genotype_source, cells_source)
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
        rows = report[report["individual"].isin(no_geno)]
        logger.info(
            "dropped %d cells of %d individuals without genotypes: %s",
            int(rows["n_cells"].sum()), len(no_geno),
            ", ".join(f"{i} ({n} cells)" for i, n in rows[["individual", "n_cells"]].to_numpy()),
        )
