"""Initial responsibilities (``docs/model.md`` section 8): k-means, random, random_from_data.

All draws use an explicit ``torch.Generator`` so that a seed fixes the result.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import NAMInputError
from ..validation import as_matrix
from .cells import chunks

__all__ = [
    "INIT_METHODS",
    "X_BLOCK_WEIGHTS",
    "kmeans",
    "one_hot",
    "random_responsibilities",
    "seed_responsibilities",
    "initial_cell_responsibilities",
    "checked_init_resp",
    "kmeans_individuals",
]

INIT_METHODS = ("kmeans", "random", "random_from_data", "resp")


def _sq_dist_to(Z: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    return ((Z - centre) ** 2).sum(1)


def _nearest(Z: torch.Tensor, centres: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
    """Index of the nearest centre for every row of Z (n, d), shape (n,)."""
    c_norm = (centres**2).sum(1)
    out = torch.empty(Z.shape[0], dtype=torch.long, device=Z.device)
    for sl in chunks(Z.shape[0], chunk):
        d2 = c_norm[None, :] - 2.0 * Z[sl] @ centres.T
        out[sl] = d2.argmin(1)
    return out


def _kmeans_pp(Z: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: k rows of Z chosen with probability proportional to D^2."""
    n = Z.shape[0]
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centres = [Z[first]]
    d2 = _sq_dist_to(Z, Z[first])
    for _ in range(1, k):
        total = d2.sum()
        if not total > 0:  # fewer distinct points than centres
            idx = int(torch.randint(n, (1,), generator=gen, device="cpu"))
        else:
            probs = (d2 / total).to(torch.float64).cpu()
            idx = int(torch.multinomial(probs, 1, generator=gen))
        centres.append(Z[idx])
        d2 = torch.minimum(d2, _sq_dist_to(Z, Z[idx]))
    return torch.stack(centres)


def kmeans(
    Z: torch.Tensor,
    k: int,
    gen: torch.Generator,
    max_iter: int = 30,
    sample_size: int = 100_000,
) -> torch.Tensor:
    """Hard k-means labels for every row of Z (n, d), shape (n,).

    k-means++ seeding then Lloyd iterations on a random subsample of at most ``sample_size`` rows;
    every row is then assigned to its nearest centre. Empty clusters keep their centre.
    """
    n = Z.shape[0]
    k = min(k, n)
    if n > sample_size:
        sample = torch.randperm(n, generator=gen, device="cpu")[:sample_size].to(Z.device)
        Zs = Z[sample]
    else:
        Zs = Z
    centres = _kmeans_pp(Zs, k, gen)
    labels = _nearest(Zs, centres)
    for _ in range(max_iter):
        sums = torch.zeros_like(centres).index_add_(0, labels, Zs)
        counts = torch.bincount(labels, minlength=k).to(Zs.dtype)
        occupied = counts > 0
        centres = torch.where(occupied[:, None], sums / counts.clamp(min=1)[:, None], centres)
        new_labels = _nearest(Zs, centres)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return _nearest(Z, centres)


def one_hot(labels: torch.Tensor, n_components: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot matrix (n, n_components) of integer labels."""
    out = torch.zeros((labels.shape[0], n_components), dtype=dtype, device=labels.device)
    out[torch.arange(labels.shape[0], device=labels.device), labels] = 1.0
    return out


def random_responsibilities(
    n: int, n_components: int, gen: torch.Generator, dtype: torch.dtype, device
) -> torch.Tensor:
    """Rows drawn from a flat Dirichlet (normalised standard exponentials), shape (n, n_components)."""
    e = -torch.log(torch.rand((n, n_components), generator=gen, dtype=torch.float64))
    return (e / e.sum(1, keepdim=True)).to(dtype=dtype, device=device)


def seed_responsibilities(
    n: int, n_components: int, gen: torch.Generator, dtype: torch.dtype, device
) -> torch.Tensor:
    """scikit-learn's ``random_from_data``: n_components random rows one-hot, all others zero."""
    k = min(n, n_components)
    rows = torch.randperm(n, generator=gen)[:k]
    out = torch.zeros((n, n_components), dtype=dtype, device=device)
    out[rows.to(device), torch.arange(k, device=device)] = 1.0
    return out


def checked_init_resp(init_resp, data, L: int, K: int):
    """Given responsibilities validated: (xi0 as a function of a slice of sorted cells, rho0).

    Parameters
    ----------
    init_resp : pair (xi0, rho0 (J, K)), cells in input order
        xi0 is (N, L) responsibilities, or (N,) integer atoms in 0..L-1 (one-hot rows, made a
        chunk at a time: 8 bytes a cell instead of 8 L). With K = 1, rho0 may be None (every
        individual in the one cluster).
    data : CohortData
    L, K : int

    Returns
    -------
    xi_fn : callable (slice -> Tensor (n_c, L) in the working dtype)
    rho0 : Tensor (J, K) float64
    """
    try:
        xi0, rho0 = init_resp
    except (TypeError, ValueError) as exc:
        raise NAMInputError("init_resp must be a pair (xi0 (N, L) or (N,), rho0 (J, K))") from exc
    rho0 = np.ones((data.J, 1)) if rho0 is None and K == 1 else as_matrix(rho0, "init_resp rho0")
    _check_nonnegative_shape("rho0", rho0, (data.J, K))
    rho_t = torch.as_tensor(rho0, device=data.device)
    if np.ndim(xi0) == 1:
        labels = _checked_atom_labels(np.asarray(xi0), data.N, L)
        labels_t = torch.as_tensor(labels, device=data.device)[data.order]
        return (lambda sl: one_hot(labels_t[sl], L, data.dtype)), rho_t
    xi0 = as_matrix(xi0, "init_resp xi0")
    _check_nonnegative_shape("xi0", xi0, (data.N, L))
    xi_t = torch.as_tensor(xi0, device=data.device)[data.order].to(data.dtype)
    return (lambda sl: xi_t[sl]), rho_t


def _check_nonnegative_shape(name: str, arr: np.ndarray, shape: tuple) -> None:
    if arr.shape != shape:
        raise NAMInputError(f"init_resp {name} has shape {arr.shape}, expected {shape}")
    if (arr < 0).any():
        raise NAMInputError(f"init_resp {name} has negative entries")


def _checked_atom_labels(labels: np.ndarray, N: int, L: int) -> np.ndarray:
    """``labels`` (N,) as int64 when every entry is an integer atom in 0..L-1."""
    if labels.shape != (N,):
        raise NAMInputError(f"init_resp xi0 has shape {labels.shape}, expected ({N},) or ({N}, {L})")
    if not np.issubdtype(labels.dtype, np.integer):
        raise NAMInputError(f"init_resp xi0 as labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= L):
        raise NAMInputError(f"init_resp xi0 labels must lie in 0..{L - 1}, got {labels.min()}..{labels.max()}")
    return labels.astype(np.int64, copy=False)


def initial_cell_responsibilities(init: str, data, L: int, K: int, gen: torch.Generator, init_resp=None):
    """Initial q(M) as a function of a slice of cells, and q(S) where the method fixes it.

    Returns
    -------
    xi_fn : callable (slice -> Tensor (n_c, L))
    rho0 : Tensor (J, K) float64, or None (then the caller starts q(S) by
        :func:`kmeans_individuals`).
    """
    d = data
    if init == "kmeans":
        labels = kmeans(d.Y, L, gen)
        return (lambda sl: one_hot(labels[sl], L, d.dtype)), None
    if init == "random":
        rho0 = random_responsibilities(d.J, K, gen, torch.float64, d.device)
        return (lambda sl: random_responsibilities(sl.stop - sl.start, L, gen, d.dtype, d.device)), rho0
    if init == "random_from_data":
        seeds = torch.randperm(d.N, generator=gen)[: min(L, d.N)].to(d.device)
        rho0 = torch.zeros((d.J, K), dtype=torch.float64, device=d.device)
        ind = torch.randperm(d.J, generator=gen)[: min(K, d.J)].to(d.device)
        rho0[ind, torch.arange(ind.numel(), device=d.device)] = 1.0

        def seed_rows(sl):
            out = torch.zeros((sl.stop - sl.start, L), dtype=d.dtype, device=d.device)
            inside = (seeds >= sl.start) & (seeds < sl.stop)
            out[seeds[inside] - sl.start, torch.nonzero(inside)[:, 0]] = 1.0
            return out

        return seed_rows, rho0
    return checked_init_resp(init_resp, d, L, K)


#: Weight of the x block in the k-means of the individuals, cycling with the restart's seed.
X_BLOCK_WEIGHTS = (0.5, 1.0, 0.0)


def _standardise_block(A: torch.Tensor) -> torch.Tensor:
    """Columns standardised, then the block scaled to unit total variance.

    Scaling each block by 1/sqrt(columns) gives the composition block (L columns) and the x
    block (q columns) equal weight in the k-means of the individuals.
    """
    sd = A.std(0, unbiased=False)
    Z = (A - A.mean(0)) / torch.where(sd > 0, sd, torch.ones_like(sd))
    return Z / max(1.0, float((sd > 0).sum())) ** 0.5


def kmeans_individuals(per_individual: torch.Tensor, data, K: int, gen: torch.Generator, seed: int) -> torch.Tensor:
    """q(S) start: k-means of the individuals on [composition, x], with min(K, J) centres.

    Both blocks are standardised per column and scaled to unit total variance; the x block
    then gets weight w and the composition block 1 - w, with w cycling with the seed over
    :data:`X_BLOCK_WEIGHTS` (balanced, x only, composition only). Either layer alone may carry
    the cluster signal (scenarios B and C of the simulation design); restarts over consecutive
    seeds try all three and the ELBO picks.

    Parameters
    ----------
    per_individual : Tensor (J, L)
        Expected cells of each individual on each atom.
    data : CohortData
        ``data.X`` is None for models without the genotype layer.

    Returns
    -------
    Tensor (J, K) float64, one-hot.
    """
    d = data
    has_cells = d.n_cells > 0
    comp = torch.where(
        has_cells[:, None], per_individual / d.n_cells.clamp(min=1)[:, None],
        per_individual[has_cells].sum(0) / d.N,
    )
    feats = _standardise_block(comp)
    if d.X is not None:
        w = X_BLOCK_WEIGHTS[seed % len(X_BLOCK_WEIGHTS)]
        feats = torch.cat([(1.0 - w) ** 0.5 * feats, w**0.5 * _standardise_block(d.X)], 1)
    labels = kmeans(feats, min(K, d.J), gen)
    return one_hot(labels, K, torch.float64)
