"""The cell-level pass: responsibilities and weighted statistics of all cells, in chunks.

Expected log densities of all cells under all atoms, U1 and the statistics of section 5 of
``docs/model.md``, evaluated as in its section 7.

Nothing of size N x L x p is materialised: for a chunk of cells the quadratic forms of (E6) are
one matrix product, either

* ``"direct"``: Z = Y_c B - b with B = [G_1 .. G_L] (p, L p), then squared and summed per atom
  (accurate; an (n_c, L p) intermediate), or
* ``"expanded"``: features phi(y) = [y_i y_j (i <= j), y, 1] (p(p+1)/2 + p + 1 columns) times a
  coefficient matrix W (F, L) that holds -P/2, P m and the constants of every atom: one GEMM
  with no large intermediate, about 3x fewer flops, but some cancellation (float32 production
  runs; float64 is exact to ~1e-12).

The same features give the M-step statistics in one GEMM: phi(Y_c)^T xi_c holds N_l, s_l and
the upper triangle of R_l = sum_n xi_nl y_n y_n^T. Chunk results are accumulated in float64.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .normal_wishart import LOG_2PI, NWExpectations, NWPosterior

__all__ = [
    "QUAD_MODES",
    "CellStats",
    "FeatureMap",
    "chunk_size",
    "CPU_CHUNK_BYTES",
    "atom_coefficients",
    "chunk_log_densities",
    "ChunkWorkspace",
    "chunk_responsibilities",
    "add_moments",
    "accumulate",
    "empty_stats",
    "chunks",
    "individual_spans",
    "flush_subnormals_",
    "normalise_logits_",
    "zero_bound",
]

QUAD_MODES = ("direct", "expanded")


def flush_subnormals_(x: torch.Tensor) -> torch.Tensor:
    """Set entries below the dtype's smallest normal number (``finfo.tiny``) to zero, in place.

    Responsibilities of far atoms underflow into the subnormal range (below 1.2e-38 in float32,
    2.2e-308 in float64). They change no sum at the working precision, but CPU arithmetic on
    subnormal operands is 10-100x slower, so every product they enter slows the sweep as a fit
    converges. Zeroing them here keeps the cell pass at its first sweeps' speed on every thread,
    whatever the caller's floating-point mode.
    """
    return torch.nn.functional.threshold_(x, torch.finfo(x.dtype).tiny, 0.0)


def zero_bound(dtype: torch.dtype, n_atoms: int) -> float:
    """Log-ratio to the row's largest logit below which a responsibility is set to zero.

    log ``finfo.tiny`` + log ``n_atoms`` + 1 (-82.4 in float32 with 50 atoms): a kept entry's
    exp is at least e L tiny, and after dividing by a row total of at most L it is still a
    normal number (no subnormal ever enters a product). What is dropped is below 1e-35 of its
    row in float32 (1e-305 in float64).
    """
    return math.log(torch.finfo(dtype).tiny) + math.log(max(n_atoms, 1)) + 1.0


def normalise_logits_(
    logits: torch.Tensor, out: torch.Tensor | None = None, dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``logits`` along ``dim`` (atoms); ``logits`` becomes log xi, in place.

    Entries more than :func:`zero_bound` below their row's largest get exact zeros. Their
    logits are clamped just under that bound before exponentiating: torch's CPU ``exp`` is
    10-100x slower on arguments whose result underflows, and on -inf, than on ordinary ones
    (``docs/performance.md``), and near convergence most cell logits of far atoms are there
    (``torch.logsumexp`` and ``torch.softmax`` exponentiate them as they are).

    Parameters
    ----------
    logits : tensor (n, L) (or (L, n) with ``dim=0``), finite; overwritten with log xi.
    out : tensor shaped as ``logits``, or None
        Where xi is written (a new tensor when None).
    dim : int
        The atoms' dimension.

    Returns
    -------
    xi : tensor shaped as ``logits``
    log_norm : tensor (n,)
        log sum_l exp(logit_nl), the rows' log normalisers (``torch.logsumexp``).
    """
    bound = zero_bound(logits.dtype, logits.shape[dim])
    top = logits.amax(dim=dim, keepdim=True)
    logits.sub_(top)
    xi = torch.empty_like(logits) if out is None else out
    torch.clamp(logits, min=bound - 1.0, out=xi)
    torch.nn.functional.threshold_(xi.exp_(), math.exp(bound), 0.0)
    log_total = xi.sum(dim=dim, keepdim=True)
    xi.div_(log_total)
    log_total.log_()
    logits.sub_(log_total)
    return xi, (top + log_total).squeeze(dim)


class FeatureMap:
    """phi(y) = [y_i y_j for i <= j, y, 1] and its inverse map to (N, s, R) for dimension p."""

    def __init__(self, p: int, device: torch.device):
        self.p = p
        iu = torch.triu_indices(p, p, device=device)
        self.rows, self.cols = iu[0], iu[1]
        self.n_quad = int(self.rows.numel())
        self.n_features = self.n_quad + p + 1

    def __call__(self, Y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Features of a chunk Y (n, p), stored transposed: shape (F, n), same dtype as Y.

        The (F, n) layout makes every block of products a contiguous write. ``out`` (>= F, >= n)
        is a reusable buffer (its first F rows and n columns are returned).
        """
        n, p = Y.shape
        Yt = Y.T.contiguous()
        if out is None:
            out = torch.empty((self.n_features, n), dtype=Y.dtype, device=Y.device)
        out = out[: self.n_features, :n]
        start = 0
        for i in range(p):  # row i of the upper triangle: y_i * y_j for j >= i
            torch.mul(Yt[i : i + 1], Yt[i:], out=out[start : start + p - i])
            start += p - i
        out[self.n_quad : self.n_quad + p] = Yt
        out[-1] = 1.0
        return out

    def unpack(self, F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split phi^T xi (F, L) into counts (L,), sums (L, p) and second moments (L, p, p)."""
        L = F.shape[1]
        counts = F[-1]
        sums = F[self.n_quad : self.n_quad + self.p].T.contiguous()
        R = torch.zeros((L, self.p, self.p), dtype=F.dtype, device=F.device)
        R[:, self.rows, self.cols] = F[: self.n_quad].T
        R[:, self.cols, self.rows] = F[: self.n_quad].T
        return counts, sums, R


@dataclasses.dataclass
class CellStats:
    """Statistics of q(M) accumulated over all cells, float64 (section 5.1).

    Attributes
    ----------
    per_individual : Tensor (J, L)
        N-bar_jl = sum_i xi_jil.
    counts : Tensor (L,)
        N_l.
    sums : Tensor (L, p)
        s_l = sum_n xi_nl y_n.
    second_moments : Tensor (L, p, p)
        R_l = sum_n xi_nl y_n y_n^T.
    neg_entropy : Tensor ()
        sum_{n,l} xi_nl log xi_nl (= -H2).
    weighted_counts, log_scale_sums, scale_entropy : Tensor (L,) or None
        Student-t atoms only (``nam_core.components.student_t``): N~_l = sum xi E w,
        S_l = sum xi E log w, and -sum xi E log q(w) of this pass's q(w). ``sums`` and
        ``second_moments`` are then w-weighted. All add up when atoms merge.
    """

    per_individual: torch.Tensor
    counts: torch.Tensor
    sums: torch.Tensor
    second_moments: torch.Tensor
    neg_entropy: torch.Tensor
    weighted_counts: torch.Tensor | None = None
    log_scale_sums: torch.Tensor | None = None
    scale_entropy: torch.Tensor | None = None


class ChunkWorkspace:
    """Buffers reused by every chunk of every sweep.

    Fresh multi-megabyte tensors are page-faulted in on every allocation on the CPU; reusing
    them makes the element-wise work of a chunk several times faster. With ``indicator_rows``
    r > 0 the features get r more rows and the coefficients r more rows, for
    :func:`chunk_responsibilities_with_indicators`.
    """

    def __init__(self, fmap: FeatureMap, n_atoms: int, chunk: int, dtype, device, indicator_rows: int = 0):
        self.indicator_rows, self.n_atoms = indicator_rows, n_atoms
        rows = fmap.n_features + indicator_rows
        self.features = torch.empty((rows, chunk), dtype=dtype, device=device)
        self.coef = torch.empty((rows, n_atoms), dtype=dtype, device=device)
        self.logits = torch.empty((chunk, n_atoms), dtype=dtype, device=device)
        self.xi = torch.empty((chunk, n_atoms), dtype=dtype, device=device)
        self.mix = torch.empty((chunk, n_atoms), dtype=dtype, device=device)
        self.densities = torch.empty(n_atoms * chunk, dtype=dtype, device=device)

    def by_atom(self, buffer: torch.Tensor, n: int) -> torch.Tensor:
        """The first L n entries of one of the buffers as a contiguous (L, n) array."""
        return buffer.view(-1)[: self.n_atoms * n].view(self.n_atoms, n)


def chunk_responsibilities(
    ws: ChunkWorkspace,
    Y_c: torch.Tensor,
    phi_c: torch.Tensor,
    coef: dict[str, torch.Tensor],
    quad: str,
    mix: torch.Tensor,
    group_c: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """U1 for a chunk: xi (n_c, L) and sum xi log xi, from logits E^y + mix[g(n)].

    ``mix`` (J, L) is the per-individual term sum_k rho_jk E log omega_lk. The returned xi is a
    view of the workspace, valid until the next chunk.
    """
    n = Y_c.shape[0]
    mix_c = torch.index_select(mix, 0, group_c, out=ws.mix[:n])
    logits = ws.logits[:n]
    torch.add(chunk_log_densities(Y_c, phi_c, coef, quad), mix_c, out=logits)
    xi, _ = normalise_logits_(logits, out=ws.xi[:n])  # logits become log xi
    return xi, torch.vdot(xi.reshape(-1), logits.reshape(-1))


#: On the CPU, the bytes of a chunk's working arrays at most: about a last-level cache (32 MiB
#: here), so the element-wise work on (chunk x atoms) arrays runs from cache, not memory
#: (``benchmarks/chunk_cells.py``; a GPU takes chunks as large as ``memory_budget`` allows).
CPU_CHUNK_BYTES = 32 * 2**20


def chunk_size(
    n_cells: int, n_atoms: int, p: int, n_features: int, itemsize: int, memory_budget: int, quad: str,
    cache_bytes: int | None = None,
) -> int:
    """Cells per chunk so that the chunk's working arrays stay within ``memory_budget`` bytes.

    And within ``cache_bytes`` when given (:data:`CPU_CHUNK_BYTES` on the CPU).
    """
    per_cell = itemsize * (n_features + 5 * n_atoms + p + (n_atoms * p if quad == "direct" else 0))
    per_cell += 8 * n_atoms  # float64 copy of xi for the per-individual sums
    budget = memory_budget if cache_bytes is None else min(memory_budget, cache_bytes)
    return int(max(256, min(n_cells, budget // per_cell)))


def atom_coefficients(
    post: NWPosterior, ex: NWExpectations, fmap: FeatureMap, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Per-atom quantities for :func:`chunk_log_densities`, computed in float64 then cast.

    Returns a dict with ``const`` (L,) = (E log|Lambda| - p log 2 pi - p / t) / 2, and
    ``B`` (p, L p), ``b`` (L p,) for the direct mode, ``W`` (F, L) for the expanded mode.
    """
    L, p = post.mean.shape
    const = 0.5 * (ex.logdet_precision - p * LOG_2PI - p / post.mean_precision)
    G = ex.precision_chol  # (L, p, p), c D = G G^T
    B = G.permute(1, 0, 2).reshape(p, L * p)
    b = torch.einsum("lp,lpq->lq", post.mean, G).reshape(L * p)
    P = G @ G.transpose(-1, -2)
    Pm = torch.einsum("lpq,lq->lp", P, post.mean)
    off_diag = (fmap.rows != fmap.cols).to(P.dtype)
    W = torch.empty((fmap.n_features, L), dtype=torch.float64, device=P.device)
    W[: fmap.n_quad] = (-0.5 * (1.0 + off_diag))[:, None] * P[:, fmap.rows, fmap.cols].T
    W[fmap.n_quad : fmap.n_quad + p] = Pm.T
    W[-1] = const - 0.5 * (post.mean * Pm).sum(-1)
    return {"const": const.to(dtype), "B": B.to(dtype), "b": b.to(dtype), "W": W.to(dtype)}


def chunk_log_densities(
    Y_c: torch.Tensor, phi_c: torch.Tensor | None, coef: dict[str, torch.Tensor], quad: str
) -> torch.Tensor:
    """E log N(y_n | theta_l) for a chunk (E6), shape (n_c, L), in the chunk's dtype.

    ``phi_c`` are the chunk's transposed features (F, n_c) (used by the expanded mode only).
    """
    if quad == "expanded":  # W^T phi (atoms x cells) is the faster product
        return (coef["W"].T @ phi_c).T.contiguous()
    L = coef["const"].shape[0]
    Z = torch.addmm(coef["b"], Y_c, coef["B"], beta=-1.0)  # Y B - b
    Z.square_()
    quad_form = Z.view(Y_c.shape[0], L, -1).sum(-1)
    return coef["const"] - 0.5 * quad_form


def add_moments(stats: CellStats, fmap: FeatureMap, moments: torch.Tensor) -> None:
    """Add summed phi^T xi (F, L) to the counts, sums and second moments of ``stats``."""
    counts, sums, R = fmap.unpack(moments)
    stats.counts += counts
    stats.sums += sums
    stats.second_moments += R


def accumulate(
    stats: CellStats,
    fmap: FeatureMap,
    phi_c: torch.Tensor,
    xi_c: torch.Tensor,
    group_c: torch.Tensor,
    neg_entropy_c: torch.Tensor,
) -> None:
    """Add a chunk's contribution (responsibilities xi_c (n_c, L)) to ``stats`` in place.

    ``phi_c`` are the chunk's transposed features (F, n_c). Sums within a chunk run in the
    chunk's dtype, across chunks in float64.
    """
    add_moments(stats, fmap, (phi_c @ xi_c).to(torch.float64))
    per_individual = torch.zeros(stats.per_individual.shape, dtype=xi_c.dtype, device=xi_c.device)
    per_individual.index_add_(0, group_c, xi_c)
    stats.per_individual += per_individual.to(torch.float64)
    stats.neg_entropy += neg_entropy_c.to(torch.float64)


def empty_stats(J: int, L: int, p: int, device: torch.device) -> CellStats:
    """Zeroed :class:`CellStats`."""
    f64 = dict(dtype=torch.float64, device=device)
    return CellStats(
        torch.zeros((J, L), **f64),
        torch.zeros(L, **f64),
        torch.zeros((L, p), **f64),
        torch.zeros((L, p, p), **f64),
        torch.zeros((), **f64),
    )


def chunks(n: int, size: int):
    """Slices covering range(n) in steps of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))



def individual_spans(n_cells: torch.Tensor, max_cells: int) -> list[tuple[int, int, int, int]]:
    """Chunks of whole individuals: (first cell, end cell, first individual, end individual).

    Consecutive individuals are grouped while the chunk holds at most ``max_cells`` cells (an
    individual with more cells gets a chunk of its own). Cells must be sorted by individual.
    """
    counts = [int(c) for c in n_cells.tolist()]
    spans, c0, j0, size = [], 0, 0, 0
    for j, n in enumerate(counts):
        if size and size + n > max_cells:
            spans.append((c0, c0 + size, j0, j))
            c0, j0, size = c0 + size, j, 0
        size += n
    spans.append((c0, c0 + size, j0, len(counts)))
    return spans
