"""Agreement of nam_core's genotype PCs with ``plink2 --pca``, printed as numbers.

The cohort of tests/nam_core/inputs/test_genotypes.py::test_matches_plink2_pca (150 individuals of 3
Balding-Nichols populations, 5,000 SNPs, seed 1), with and without 1% missing calls. Prints, per
missing rate, numpy's and pandas-plink's versions, |r| of PC1-PC3 against plink2's and the
largest relative eigenvalue difference, so two software stacks can be compared line by line.

Usage: python benchmarks/plink2_agreement.py   (needs plink2 on the PATH)
"""

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# The cohort generator and PLINK writer of the tests, importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nam_core.inputs.genotypes import compute_genotype_pcs  # noqa: E402
from tests.nam_core.inputs.test_genotypes import structured_genotypes, write_bfile  # noqa: E402


def agreement(tmp: Path, missing_rate: float) -> tuple[list[float], float, int, int]:
    """|r| of PC1-3, max relative eigenvalue difference, SNPs used (nam_core, plink2)."""
    genotypes = structured_genotypes(50, 5000, fst=0.05, missing_rate=missing_rate, seed=1)
    bfile = write_bfile(tmp / f"cohort{missing_rate}", genotypes)
    out = tmp / f"plink2_{missing_rate}"
    subprocess.run(["plink2", "--bfile", str(bfile), "--pca", "3", "--maf", "0.01", "--geno",
                    "0.05", "--out", str(out), "--threads", "1", "--memory", "1024"],
                   check=True, capture_output=True)
    eigenvec = pd.read_csv(f"{out}.eigenvec", sep="\t")
    eigenval = np.loadtxt(f"{out}.eigenval")
    used = int(re.search(r"(\d+) variants remaining after main filters",
                         Path(f"{out}.log").read_text())[1])
    res = compute_genotype_pcs(bfile, n_pcs=3, min_maf=0.01, max_missing=0.05, chunk_snps=1500)
    corr = [abs(np.corrcoef(res.scores[f"PC{k}"], eigenvec[f"PC{k}"])[0, 1]) for k in (1, 2, 3)]
    rel = float(np.max(np.abs(res.eigenvalues - eigenval) / eigenval))
    return corr, rel, res.n_snps_used, used


def main(argv: list[str] | None = None) -> None:
    """Print the agreement table; the only option is --help."""
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Needs plink2 on the PATH."
    ).parse_args(argv)
    if shutil.which("plink2") is None:
        raise SystemExit("plink2 is not on the PATH (apt-get install plink2)")
    versions = {p: importlib.metadata.version(p) for p in ("numpy", "pandas")}
    for name in ("pandas-plink-ng", "pandas-plink"):
        try:
            versions[name] = importlib.metadata.version(name)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    print(" ".join(f"{k}=={v}" for k, v in versions.items()))
    print("missing_rate\t|r| PC1\t|r| PC2\t|r| PC3\tmax rel eigenvalue diff\tSNPs nam_core\tplink2")
    with tempfile.TemporaryDirectory() as tmp:
        for missing_rate in (0.0, 0.01):
            corr, rel, ours, theirs = agreement(Path(tmp), missing_rate)
            print(f"{missing_rate}\t" + "\t".join(f"{c:.10f}" for c in corr)
                  + f"\t{rel:.3e}\t{ours}\t{theirs}")


if __name__ == "__main__":
    main()
