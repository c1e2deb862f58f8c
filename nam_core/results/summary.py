"""``results/<cohort>/summary.md``: what the run found, in plain words, read from its tables.

Every number in the summary is read from a table (or a log line) the workflow has already
written; nothing is recomputed. Each section names the file to read next. Tables that a run
does not write (an older or newer workflow, a run without the demo) are skipped, never guessed.

:func:`summary_markdown` builds the text from the results folder; :func:`write_summary` writes it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NAMInputError
from ..io import atomic_write_text, read_tsv

__all__ = ["summary_markdown", "write_summary", "log_warnings", "median_umis"]

logger = logging.getLogger(__name__)

#: Individuals assigned with a probability below this are counted as uncertain.
SURE = 0.9
#: Rows shown per table before "and N more".
MAX_ROWS = 12
_WARNING = re.compile(r"^\S+ \S+ WARNING (\S+): (.*)$")
_NUMBER = re.compile(r"-?\d[\d.e+-]*")
_MEDIAN_UMIS = re.compile(r"median UMIs per cell: ([0-9.,]+)")


def _read(folder: Path, name: str, required: bool = False) -> pd.DataFrame | None:
    """The TSV ``folder/name``, or None when it is absent and not ``required``."""
    path = folder / name
    if not path.exists():
        if required:
            raise NAMInputError(f"{path}: missing; the summary reads it (rerun the workflow)")
        return None
    return read_tsv(path)


def _pct(share: float) -> str:
    """A share (0-1) as a percentage with one decimal: 0.3021 -> '30.2%'."""
    return f"{100 * share:.1f}%"


def _pp(diff: float) -> str:
    """A difference of shares (0-1) in percentage points, signed: -0.133 -> '-13.3 pp'."""
    return f"{100 * diff:+.1f} pp"


def _p(value: float) -> str:
    """A p-value or FDR with two significant digits, '< 0.001' below 0.001."""
    if not np.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def _p_is(value: float) -> str:
    """'= 0.012' or '< 0.001', to follow a 'p'."""
    text = _p(value)
    return text if text.startswith("<") else f"= {text}"


def _n(value) -> str:
    """A count with thousands separators: 5389 -> '5,389'."""
    return f"{int(round(float(value))):,}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; at most MAX_ROWS rows, then a line saying how many were left out."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines += ["", f"... and {len(rows) - MAX_ROWS} more rows in the table."]
    return lines


def _section(title: str, body: list[str], read_next: str | None = None) -> list[str]:
    """A section: its heading, its lines and, when given, the files to read next."""
    lines = [f"## {title}", "", *body]
    return lines + ["", f"Read next: {read_next}."] if read_next else lines


def _called(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose ``called`` column is true (read as text or bool)."""
    return table[table["called"].astype(str).str.lower() == "true"]


def _from_a_library(match: re.Match) -> bool:
    """A Python warning raised inside an installed package (``site-packages``).

    Such as umap's note that TensorFlow is absent: about the library, not the run; it stays in
    the logs.
    """
    return match.group(1) == "py.warnings" and "site-packages" in match.group(2)


def log_warnings(logs: Path) -> list[tuple[str, str, int]]:
    """Distinct WARNING messages of the logs under ``logs``: (first log, message, count).

    Python warnings raised inside installed libraries are left out (:func:`_from_a_library`).

    Messages that differ only in their numbers (one per sweep, per restart) are one entry, with
    the first message as the example and the number of times it was logged.
    """
    found: dict[str, list] = {}
    for path in sorted(Path(logs).rglob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = _WARNING.match(line)
            if match and not _from_a_library(match):
                key = _NUMBER.sub("#", match.group(2))
                entry = found.setdefault(
                    key, [str(path.relative_to(Path(logs).parent)), match.group(2), 0])
                entry[2] += 1
    return [tuple(entry) for entry in found.values()]


def median_umis(logs: Path) -> float | None:
    """Median UMIs per cell before QC, as the first rule logs it (None when not logged)."""
    for path in sorted(Path(logs).glob("*.log")):
        match = _MEDIAN_UMIS.search(path.read_text(errors="replace"))
        if match:
            return float(match.group(1).replace(",", ""))
    return None


def _cohort(folder: Path, individuals: pd.DataFrame) -> list[str]:
    """The cohort in numbers: donors, cells, median UMIs, donors dropped in matching."""
    cells = individuals["n_cells"].astype(float)
    lines = [f"- **{len(individuals):,} individuals** with genotypes were analysed, with "
             f"**{_n(cells.sum())} cells** after QC (median {_n(cells.median())} cells per "
             f"individual, range {_n(cells.min())}-{_n(cells.max())})."]
    umis = median_umis(folder / "logs")
    if umis is not None:
        lines.append(f"- Median UMIs per cell before QC: {_n(umis)} (set `expression.target_sum` "
                     "near it).")
    matching = _read(folder, "matching/individuals.tsv")
    if matching is not None and "action" in matching:
        dropped = matching[matching["action"].astype(str) != "kept"]
        lines.append(f"- Matching genotypes to cells: {len(dropped)} individuals dropped"
                     + (f" ({', '.join(dropped['individual'].astype(str)[:5])}"
                        f"{', ...' if len(dropped) > 5 else ''})." if len(dropped) else "."))
    return _section("The cohort in numbers", lines, "`individuals.tsv` (one row per individual), "
                    "`matching/individuals.tsv` (who was kept)")


def _individual_clusters(folder: Path, individuals: pd.DataFrame) -> list[str]:
    """The individual clusters, their sizes and how sure each assignment is."""
    sizes = individuals.groupby("cluster").agg(n=("individual", "size"),
                                               cells=("n_cells", "sum"),
                                               sure=("probability", lambda p: (p >= SURE).sum()))
    sizes = sizes.loc[sorted(sizes.index, key=lambda c: int(str(c).lstrip("I") or 0))]
    lines = [f"NAM found **{len(sizes)} individual clusters**:", ""]
    lines += _table(["cluster", "individuals", "cells", f"assigned with probability >= {SURE}"],
                    [[str(c), _n(r.n), _n(r.cells), f"{_n(r.sure)} of {_n(r.n)}"]
                     for c, r in sizes.iterrows()])
    unsure = individuals[individuals["probability"] < SURE]
    lines += ["", f"- {len(unsure)} individuals are assigned with probability below {SURE}"
              + (f" (lowest {individuals['probability'].min():.2f})." if len(unsure) else ".")]
    lines += _individual_groups(folder)
    alternatives = _read(folder, "fit/alternatives.tsv")
    if alternatives is not None and "near_tie" in alternatives:
        near = alternatives[alternatives["near_tie"].astype(str).str.lower() == "true"]
        if "accepted" in near:
            near = near[near["accepted"].astype(str).str.lower() != "true"]
        lines.append(f"- {len(near)} alternative partitions of the merge search came within "
                     "the near-tie margin (`partition.near_tie_nats`) of the chosen one"
                     + (": the number of clusters is uncertain." if len(near) else "."))
    return _section("Individual clusters (genotype and composition together)", lines,
                    "`individuals.tsv` (columns `cluster`, `probability`), "
                    "`individual_groups/groups.tsv`, `fit/alternatives.tsv`, "
                    "`figures/genotype_pcs.png`")


def _individual_groups(folder: Path) -> list[str]:
    """A line on the clusters that the individual groups join, if any."""
    groups = _read(folder, "individual_groups/groups.tsv")
    if groups is None:
        return []
    names = groups["group"].astype(str).unique()
    joined = [name for name in names if "+" in name]
    if not joined:
        return ["- No two clusters are joined into one individual group: each differs from the "
                "others in genotype or in cell-type shares (`individual_groups/groups.tsv`)."]
    return [f"- **{len(names)} individual groups**: {', '.join(joined)}. The clusters of one group have "
            "the same genotype and the same cell-type shares and differ only in how their cells "
            "split between atoms of one type, as a sequencing pool effect can make them; "
            "read the groups for genetics (`individual_groups/individuals.tsv`); the "
            "composition tests compare the groups."]


def _cell_types(folder: Path) -> list[str]:
    """The cell types (groups of atoms), their sizes and shares, and unnamed types."""
    types = _read(folder, "cell_types/type_names.tsv", required=True)
    atoms = _read(folder, "cell_types/groups.tsv")
    members = ({} if atoms is None else
               atoms.groupby("group")["atom"].agg(lambda a: ", ".join(map(str, a))).to_dict())
    evidence = (types["markers"].fillna("").astype(str).str.replace(",", ", ")
                if "markers" in types else pd.Series("", index=types.index))
    rows = [[str(r.group), str(r.cell_type) if str(r.assigned).lower() == "true"
             else f"not named (best: {r.cell_type})", _n(r.n_cells), _pct(r.share),
             members.get(r.group, ""), evidence.loc[i]]
            for i, r in zip(types.index, types.itertuples(), strict=True)]
    lines = [f"{len(types)} cell types (groups of NAM's cell atoms), named from marker genes:", ""]
    lines += _table(["type", "name", "cells", "share of cells", "atoms", "markers behind the name"],
                    rows)
    return _section("Cell types", lines, "`cell_types/type_names.tsv` (scores and runner-up "
                    "names), `cell_types/markers.tsv`, `figures/marker_dotplot.png`, "
                    "`figures/umap_cell_types.png`")


def _differences(folder: Path) -> list[str]:
    """Called composition differences between individual clusters, largest first."""
    title = "Composition differences between individual clusters"
    diffs = _read(folder, "composition/differences.tsv")
    if diffs is None:
        return _section(title, ["No composition differences table in this run."])
    called = _called(diffs)
    called = called.reindex(called["effect"].abs().sort_values(ascending=False).index)
    lines = [f"{len(called)} of {len(diffs)} contrasts of a cell type's share are called "
             "(FDR < 0.05 and outside the null band); largest first:", ""]
    lines += _table(["contrast", "cell type", "share in a", "share in b", "difference",
                     "95% interval", "FDR"],
                    [[r.contrast, str(r.cell_type), _pct(r.prop_a), _pct(r.prop_b), _pp(r.effect),
                      f"{_pp(r.lower)} to {_pp(r.upper)}", _p(r.fdr)]
                     for r in called.itertuples()])
    propeller = _read(folder, "composition/propeller.tsv")
    if propeller is not None:
        lines += ["", f"The propeller-style test of individual proportions calls "
                  f"{len(_called(propeller))} of {len(propeller)} rows "
                  "(`composition/propeller.tsv`)."]
    for name in ("composition/traits.tsv", "composition/donors.tsv"):
        extra = _read(folder, name)
        if extra is not None:
            count = f", {len(_called(extra))} called" if "called" in extra else ""
            lines += ["", f"`{name}`: {len(extra)} rows{count}."]
    return _section(title, lines, "`composition/differences.tsv`, "
                    "`figures/composition_differences.png`, `composition/posterior.tsv`")


def _genotype(folder: Path) -> list[str]:
    """Cell types whose share follows the genotype PCs (omnibus test), strongest first."""
    table = _read(folder, "composition/genotype_association.tsv")
    if table is None:
        return _section("Genotype associations", ["No genotype association table in this run."])
    omnibus = table[table["term"].astype(str) == "all"]
    if "share_of" in omnibus.columns:  # shares of all cells; lineage shares are in the table
        omnibus = omnibus[omnibus["share_of"].astype(str) == "all_cells"]
    omnibus = omnibus.sort_values("p")
    called = _called(omnibus)
    lines = [f"The share of {len(called)} of {len(omnibus)} cell types follows the genotype "
             "PCs (all PCs together, FDR < 0.05):", ""]
    lines += _table(["cell type", "variance explained (R²)", "F", "FDR"],
                    [[str(r.cell_type), _pct(r.r2), f"{r.t:.1f}", _p(r.fdr)]
                     for r in called.itertuples()])
    mantel = _read(folder, "composition/mantel.tsv")
    if mantel is not None and {"method", "r", "p"} <= set(mantel.columns):
        tests = "; ".join(f"{r.method} r = {r.r:.2f}, p {_p_is(r.p)}" for r in mantel.itertuples())
        lines += ["", "Donors close genetically have similar compositions? Mantel tests of "
                  f"composition distance against genetic distance: {tests} "
                  "(`composition/mantel.tsv`, `figures/composition_vs_genetic_distance.png`)."]
    return _section("Genotype associations", lines,
                    "`composition/genotype_association.tsv` (one row per PC as well)")


def _demo_checks(folder: Path) -> list[str]:
    """The demo's scores against its known truth, when the run is the demo."""
    rows = []
    for name in ("evaluation.tsv", "composition/demo_check.tsv"):
        table = _read(folder, name)
        if table is None:
            continue
        for _, r in table[table["threshold"].notna()].iterrows():
            ok = str(r["pass"]).lower() == "true"
            rows.append([f"`{name}`", str(r["metric"]), f"{float(r['value']):.3g}",
                         f"{float(r['threshold']):.3g}", "pass" if ok else "**fail**"])
    if not rows:
        return []
    return _section("Checks against the demo's truth",
                    _table(["file", "check", "value", "threshold", "result"], rows))


def _warnings(folder: Path) -> list[str]:
    """Warnings of the logs and results that need a look."""
    lines = []
    found = log_warnings(folder / "logs")
    types = _read(folder, "cell_types/type_names.tsv")
    unnamed = ([] if types is None else
               types.loc[types["assigned"].astype(str).str.lower() != "true", "group"].tolist())
    if unnamed:
        lines.append(f"- Cell types without a name: {', '.join(map(str, unnamed))}; look at their "
                     "markers (`cell_types/markers.tsv`) or set `naming.overrides`.")
    lines += [f"- {message} (`{log}`" + (f"; {count} such lines in the logs)"
                                          if count > 1 else ")")
              for log, message, count in found[:MAX_ROWS]]
    if len(found) > MAX_ROWS:
        lines.append(f"- ... and {len(found) - MAX_ROWS} more warnings in `logs/`.")
    return _section("Warnings", lines or ["No warnings in the logs."])


def summary_markdown(folder: str | Path, cohort: str) -> str:
    """The summary of the run whose results are in ``folder`` (``results/<cohort>``), as Markdown.

    Reads ``individuals.tsv`` and ``cell_types/type_names.tsv`` (required) and, when present,
    the composition tables, ``fit/alternatives.tsv``, the demo checks and the logs.
    """
    folder = Path(folder)
    individuals = _read(folder, "individuals.tsv", required=True)
    sections = [
        [f"# NAM results: cohort {cohort}", "",
         "Written by the workflow from the tables in this folder; each section names the file "
         "to read next. Shares are of a cluster's cells; differences are in percentage points "
         "(pp)."],
        _cohort(folder, individuals),
        _individual_clusters(folder, individuals),
        _cell_types(folder),
        _differences(folder),
        _genotype(folder),
        _demo_checks(folder),
        _warnings(folder),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def write_summary(folder: str | Path, cohort: str, path: str | Path) -> str:
    """Write :func:`summary_markdown` to ``path`` atomically; return the text."""
    text = summary_markdown(folder, cohort)
    atomic_write_text(path, text)
    logger.info("wrote %s: %d lines", path, text.count("\n"))
    return text
