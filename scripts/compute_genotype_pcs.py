import pandas as pd
from _common import logged, write_tsv

from nam_core.inputs.genotypes import compute_genotype_pcs


def compute(path_bfile, path_pcs, path_eigenvalues, n_pcs, min_maf, max_missing, chunk_snps):
    """Genotype PCs of every .fam individual (TSV) and their eigenvalues (TSV)."""
    result = compute_genotype_pcs(
        path_bfile, n_pcs=n_pcs, min_maf=min_maf, max_missing=max_missing, chunk_snps=chunk_snps
    )
    eigen = pd.DataFrame(
        {
            "pc": result.scores.columns,
            "eigenvalue": result.eigenvalues,
            "explained_variance_ratio": result.explained_variance_ratio,
            "n_snps_used": result.n_snps_used,
            "n_snps_total": result.n_snps_total,
        }
    )
    write_tsv(result.scores, path_pcs, index=True)
    write_tsv(eigen, path_eigenvalues)
    return result


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        p = snakemake.params
        compute(
            p.bfile,
            snakemake.output.pcs,
            snakemake.output.eigenvalues,
            p.n_pcs,
            p.min_maf,
            p.max_missing,
            p.chunk_snps,
        )
