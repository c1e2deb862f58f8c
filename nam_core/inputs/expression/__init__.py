"""Single-cell expression: raw counts read and validated, then QC, normalisation, HVGs and PCs.

:mod:`.reading` reads and checks an .h5ad of raw counts; :mod:`.qc` computes the QC metrics,
filters, normalisation and highly variable genes block by block; :mod:`.pca` the exact
standardised PCA; :mod:`.pipeline` chains them into :func:`preprocess` (in memory) and
:func:`preprocess_h5ad` (file to file, through a writer of :mod:`.sinks`). The UMAP of the
preprocessed cells is a tool: :func:`nam_core.results.umap.add_umap`.
"""

from .pca import standardised_pca
from .pipeline import preprocess, preprocess_h5ad
from .qc import MT_PREFIX
from .reading import read_cell_table, read_counts

__all__ = [
    "MT_PREFIX", "preprocess", "preprocess_h5ad", "read_cell_table", "read_counts",
    "standardised_pca",
]
