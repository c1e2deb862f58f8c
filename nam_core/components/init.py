"""Initial responsibilities (``docs/model.md`` section 8): k-means, random, random_from_data.

All draws use an explicit ``torch.Generator`` so that a seed fixes the result.
"""

from __future__ import annotations

import torch

from .cells import chunks

__all__ = ["INIT_METHODS", "kmeans", "one_hot", "random_responsibilities", "seed_responsibilities"]

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
