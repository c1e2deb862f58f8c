"""Seeded corruption corpus: damage each input format at random and classify what the checks do.

Each case copies a tiny clean cohort (PLINK .bed/.bim/.fam, counts .h5ad), the small config and
a saved .npz fit, damages one file (byte flips, truncation, a line inserted or deleted; inside
the .h5ad, values of the X indices, indptr, data or an obs column), and runs the check that
reads it first: the workflow's first rule (validation of both inputs and the matching of
individuals) followed by the counts read and the genotype PCs computed as the next rules do,
the config loader with the config schema, or ``NAM.load``. Outcomes:

- ``named error``: a NAMInputError (or OSError) whose message names the damaged file;
- ``same result``: the check passes and its result equals the clean run's;
- ``changed result``: the check passes with a different result (a damaged .bed genotype, an
  edited ID: data a reader cannot tell from real data);
- ``internal error``: any other exception, or an error that does not name the file.

Usage: ``python benchmarks/fault_corpus.py [--cases 300] [--seed 0]``; prints the counts by
family and outcome, and exits 1 when any case is an internal error.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
os.environ.setdefault("OMP_NUM_THREADS", "1")

FAMILIES = ("bed", "bim", "fam", "h5ad", "config", "npz")
TINY = dict(n_individuals=30, n_ancestries=3, mean_cells=40, n_snps=500, fst=0.05, seed=3)


def build_clean(folder: Path) -> dict:
    """The clean inputs: a tiny demo cohort, the small config and a saved fit."""
    import torch

    from nam_core import NAM, simulate
    from nam_core.synthetic.base import CohortSpec
    from nam_core.synthetic.demo import make_demo_cohort

    torch.set_num_threads(1)
    paths = make_demo_cohort(folder / "cohort", CohortSpec(**TINY))
    config = folder / "config.yaml"
    shutil.copy(ROOT / ".test/config/config.yaml", config)
    data = simulate(J=12, n_clusters=2, q=2, p=3, n_cell_types=3, mean_cells=15, delta_x=3.0,
                    delta_y=5.0, eta=0.8, seed=0)
    fit = NAM(K=3, L=3, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False)
    fit.fit(data.X, data.Y, data.group).save(folder / "fit.npz")
    return {"bfile": Path(paths["bfile"]), "counts": Path(paths["counts"]), "config": config,
            "npz": folder / "fit.npz"}


# ----------------------------------------------------------------- damage
def damage_bytes(path: Path, rng: np.random.Generator) -> str:
    """Flip bytes, truncate, or insert / delete / duplicate a line of a file."""
    data = bytearray(path.read_bytes())
    kind = rng.choice(["flip", "truncate", "insert_line", "delete_line"])
    if kind == "flip" or not data:
        for _ in range(int(rng.integers(1, 5))):
            pos = int(rng.integers(len(data)))
            data[pos] ^= int(rng.integers(1, 256))
    elif kind == "truncate":
        data = data[: int(rng.integers(len(data)))]
    else:
        lines = bytes(data).split(b"\n")
        pos = int(rng.integers(len(lines)))
        if kind == "insert_line":
            lines.insert(pos, lines[int(rng.integers(len(lines)))])
        else:
            del lines[pos]
        data = bytearray(b"\n".join(lines))
    path.write_bytes(bytes(data))
    return str(kind)


def damage_h5ad(path: Path, rng: np.random.Generator) -> str:
    """Change values inside one HDF5 dataset of the .h5ad, or damage its bytes."""
    import h5py

    target = rng.choice(["X/indices", "X/indptr", "X/data", "obs", "bytes"])
    if target == "bytes":
        return "bytes " + damage_bytes(path, rng)
    with h5py.File(path, "r+") as f:
        if target == "obs":
            names = [k for k in f["obs"] if isinstance(f["obs"][k], h5py.Dataset)
                     and f["obs"][k].dtype.kind in "iuf"]
            if not names:
                return "obs (none numeric)"
            target = f"obs/{names[int(rng.integers(len(names)))]}"
        dset = f[target]
        values = dset[...]
        pos = rng.integers(values.size, size=int(rng.integers(1, 4)))
        if values.dtype.kind == "f":
            values.flat[pos] = rng.choice([np.nan, np.inf, -1.0, 0.5, 1e9])
        else:
            info = np.iinfo(values.dtype)
            values.flat[pos] = rng.choice([-1, 0, max(int(values.max()) + 1, 1),
                                           min(int(info.max), 2**31 - 1)])
        dset[...] = values
    return str(target)


# ----------------------------------------------------------------- checks
def check_inputs(bfile: Path, counts: Path, out: Path):
    """The first rule (both inputs validated, individuals matched), then the counts and the
    genotype PCs the next rules read: {"report", "X", "pcs"}."""
    match_script = __import__("match_individuals")
    from nam_core.inputs.expression import read_counts

    result = match_script.match(bfile, counts, out / "individuals.tsv", "individual",
                                max_lost_fraction=0.1, n_pcs=2)
    from nam_core.inputs.genotypes import compute_genotype_pcs

    X = read_counts(counts, "individual").X.tocsr()  # what preprocessing reads next
    X.sort_indices()
    pcs = compute_genotype_pcs(bfile, n_pcs=2)  # what the genotype rule computes next
    return {"report": result.report, "X": X, "pcs": np.asarray(pcs.scores)}


def check_config(path: Path):
    import jsonschema
    import yaml

    from nam_core.errors import NAMInputError
    from nam_core.io import read_yaml_config

    config = read_yaml_config(path)
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as err:
        where = "/".join(map(str, err.absolute_path))
        raise NAMInputError(f"config file {path}: {where}: {err.message}") from err
    return config


def check_npz(path: Path):
    from nam_core import NAM
    from nam_core.intermediates import read_intermediate

    fit = read_intermediate(path, NAM.load, "fit_nam")
    return {k: np.asarray(v) for k, v in fit._state_arrays().items()}


def same(a, b) -> bool:
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    if isinstance(a, dict) and "X" in a:
        return (a["report"].equals(b["report"]) and a["X"].shape == b["X"].shape
                and (a["X"] != b["X"]).nnz == 0 and a["pcs"].shape == b["pcs"].shape
                and np.array_equal(a["pcs"], b["pcs"]))
    if isinstance(a, dict) and a and isinstance(next(iter(a.values())), np.ndarray):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    return a == b


def run_case(family: str, clean: dict, work: Path, rng: np.random.Generator):
    """(what was damaged, the result or the exception) of one case in a fresh copy."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    bfile, counts = work / "geno", work / "counts.h5ad"
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{clean['bfile']}.{ext}", f"{bfile}.{ext}")
    shutil.copy(clean["counts"], counts)
    config, npz = work / "config.yaml", work / "fit.npz"
    shutil.copy(clean["config"], config)
    shutil.copy(clean["npz"], npz)
    target = {"bed": Path(f"{bfile}.bed"), "bim": Path(f"{bfile}.bim"),
              "fam": Path(f"{bfile}.fam"), "h5ad": counts, "config": config, "npz": npz}[family]
    what = damage_h5ad(target, rng) if family == "h5ad" else damage_bytes(target, rng)
    try:
        if family == "config":
            result = check_config(config)
        elif family == "npz":
            result = check_npz(npz)
        else:
            result = check_inputs(bfile, counts, work / "out")
    except Exception as err:  # classified below
        return target, what, err
    return target, what, result


def classify(target: Path, outcome, clean_result) -> str:
    from nam_core.errors import NAMInputError

    if isinstance(outcome, BaseException):
        named = target.name in str(outcome)
        if isinstance(outcome, (NAMInputError, OSError)) and named:
            return "named error"
        return "internal error"
    return "same result" if same(outcome, clean_result) else "changed result"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300, help="cases in all (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the damage (default 0)")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                        help="formats to damage (default: all)")
    parser.add_argument("--show", type=int, default=5,
                        help="internal errors shown with their traceback (default 5)")
    parser.add_argument("--verbose", action="store_true", help="name each changed-result case")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    counts = run_corpus(args.cases, args.seed, args.families, args.show, args.verbose)
    outcomes = ("named error", "same result", "changed result", "internal error")
    print(f"{'family':8s}" + "".join(f"{o:>16s}" for o in outcomes))
    for family in args.families:
        print(f"{family:8s}" + "".join(f"{counts[family][o]:16d}" for o in outcomes))
    total = {o: sum(counts[f][o] for f in args.families) for o in outcomes}
    print(f"{'total':8s}" + "".join(f"{total[o]:16d}" for o in outcomes))
    return int(total["internal error"] > 0)


def run_corpus(n_cases: int, seed: int, families, show: int = 0, verbose: bool = False) -> dict:
    """Counts {family: {outcome: n}} of ``n_cases`` seeded cases spread over ``families``."""
    import warnings

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(seed)
    counts = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clean = build_clean(tmp / "clean")
        clean_results = {"inputs": check_inputs(clean["bfile"], clean["counts"], tmp / "o"),
                         "config": check_config(clean["config"]),
                         "npz": check_npz(clean["npz"])}
        for case in range(n_cases):
            family = families[case % len(families)]
            target, what, outcome = run_case(family, clean, tmp / "case", rng)
            key = family if family in ("config", "npz") else "inputs"
            label = classify(target, outcome, clean_results[key])
            counts[family][label] += 1
            if label == "changed result" and verbose:
                print(f"--- case {case}: {family} {what}: changed result", file=sys.stderr)
            if label == "internal error" and show > 0:
                show -= 1
                print(f"--- case {case}: {family} {what}: internal error", file=sys.stderr)
                traceback.print_exception(outcome, file=sys.stderr, limit=-3)
    return counts


if __name__ == "__main__":
    sys.exit(main())
