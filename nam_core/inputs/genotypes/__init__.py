"""Genotypes: PLINK 1 filesets and their principal components.

:mod:`.plink` reads and validates a fileset, :mod:`.pcs` computes its PCs streamed in blocks of
SNPs, and :mod:`.snps` filters and standardises the SNPs of a block for both.
"""

from .pcs import GenotypePCs, compute_genotype_pcs
from .plink import BedScan, PlinkSummary, read_fam, scan_bed, validate_plink

__all__ = [
    "BedScan", "GenotypePCs", "PlinkSummary", "compute_genotype_pcs", "read_fam", "scan_bed",
    "validate_plink",
]
