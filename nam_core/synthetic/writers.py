"""Files of a synthetic cohort: the PLINK fileset of its genotypes and its truth tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path

__all__ = ["write_plink", "write_tables"]


def write_plink(genotypes: np.ndarray, iids: list[str], bfile: Path) -> None:
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


def write_tables(tables: dict[str, pd.DataFrame], paths: dict[str, Path]) -> None:
    """Write each table of ``tables`` to ``paths[name]`` as a TSV without index, atomically."""
    for key, table in tables.items():
        with atomic_path(paths[key]) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
