"""The nested Dirichlet process (``docs/model.md`` section 9c) with the structured q(M | S).

Individual cluster k owns L cell atoms theta^y_{lk} (K x L atoms, none shared) and sticks u_{.k};
q(S_j = k) q(M_ji = l | S_j = k) = rho_jk phi_jilk. One local pass per sweep processes whole
individuals per chunk: phi and A_jik = logsumexp_l[E log omega_lk + E log N(y_ji | theta_lk)]
for the chunk's cells, then rho_j of its individuals (U2''), then the statistics weighted by
w_n,lk = rho_g(n)k phi_nlk, so phi (N x K x L) is never stored. The atoms are NAM's y-layer
machinery on K L components (flat index c = k L + l); sticks, concentrations and the optional
x layer are NAM's. The ELBO is NAM's term by term with T2, T4, H2 and T10/H8 over the K L atoms
(H2 = -sum_jk rho_jk sum_il phi log phi).
"""

from __future__ import annotations

import numpy as np
import torch

from ..components.cell_pass import cell_pass
from ..components.cells import (
    accumulate,
    atom_coefficients,
    chunk_log_densities,
    chunk_size,
    chunks,
    empty_stats,
    individual_spans,
    normalise_logits_,
)
from ..components.init import initial_cell_responsibilities, kmeans_individuals
from ..components.sticks import expected_weights
from ..engine.fitted import size_order
from .nested import NestedEstimator, NestedGlobals, NestedSpec

__all__ = ["NestedDP"]


class NDPRun(NestedGlobals):
    """One CAVI run of the nested DP: the family's globals over K L atoms, its own local step."""

    def __init__(self, spec: NestedSpec, data, memory_budget: int):
        super().__init__(spec, data, spec.K * spec.L)
        d = data
        itemsize = torch.finfo(d.dtype).bits // 8
        max_cells = chunk_size(d.N, self.K * self.L, d.p, d.fmap.n_features, itemsize, memory_budget, d.quad)
        self.spans = individual_spans(d.n_cells, max_cells)
        self.A: torch.Tensor | None = None
        self._elog_x = None

    def initialise(self, gen: torch.Generator, seed: int) -> None:
        """Initial xi0 (N, L) as for NAM (materialised once so both uses see the same draws)."""
        spec, d = self.spec, self.data
        xi_fn, rho0 = initial_cell_responsibilities(spec.init, d, self.L, self.K, gen, spec.init_resp)
        xi0 = torch.cat([xi_fn(sl) for sl in chunks(d.N, d.chunk)])
        if rho0 is None:  # k-means of the individuals on their N-bar under xi0
            stats = cell_pass(d, self.L, resp_fn=lambda sl: xi0[sl]).stats
            rho0 = kmeans_individuals(stats.per_individual, d, self.K, gen, seed)
        self.rho = rho0
        self.stats, self.A = self.local_pass(lambda j0, j1, A: rho0[j0:j1], given_phi=xi0)
        self.initialise_globals()

    # ------------------------------------------------------------ the local pass (U1'', U2'')
    def local_pass(self, rho_fn, given_phi=None, want_labels=False):
        """Compute phi for every cell, rho from ``rho_fn(j0, j1, A_sums)``, and the weighted statistics.

        Parameters
        ----------
        rho_fn : callable (j0, j1, Tensor (j1 - j0, K) or None) -> Tensor (j1 - j0, K)
            q(S) of the chunk's individuals given sum_i A_jik (None when phi is given).
        given_phi : Tensor (N, L) or None
            Use phi_nlk = given_phi[n, l] for every k (initialisation) instead of U1''.
        want_labels : bool
            Also return, per cell (sorted order), the flat atom k L + l of the pair
            (argmax_k rho_jk, argmax_l phi_jilk) and phi at that atom.

        Returns
        -------
        stats : CellStats over the K L atoms (weights rho_g(n)k phi_nlk)
        A : Tensor (J, K)
            sum_i A_jik (zeros when phi is given).
        """
        d, K, L = self.data, self.K, self.L
        stats = empty_stats(d.J, K * L, d.p, d.device)
        A_all = torch.zeros((d.J, K), dtype=torch.float64, device=d.device)
        new_rho = torch.empty((d.J, K), dtype=torch.float64, device=d.device)
        if given_phi is None:
            coef = atom_coefficients(self.atoms_y.post, self.atoms_y.ex, d.fmap, d.dtype)
            elog_omega = self.omega.expected_log().T.reshape(K * L).to(d.dtype)  # flat k L + l
        if want_labels:
            labels = torch.empty(d.N, dtype=torch.long, device=d.device)
            proba = torch.empty(d.N, dtype=d.dtype, device=d.device)
        for c0, c1, j0, j1 in self.spans:
            sl = slice(c0, c1)
            n_c = c1 - c0
            feats, g = d.features(sl), d.group[sl] - j0
            if given_phi is None:
                log_phi = chunk_log_densities(d.Y[sl], feats, coef, d.quad) + elog_omega
                phi, A = normalise_logits_(log_phi.view(n_c * K, L))  # log_phi in place
                phi, log_phi, A = phi.view(n_c, K, L), log_phi.view(n_c, K, L), A.view(n_c, K)
                A_ind = torch.zeros((j1 - j0, K), dtype=torch.float64, device=d.device)
                A_ind.index_add_(0, g, A.to(torch.float64))
                A_all[j0:j1] = A_ind
            else:
                phi = given_phi[sl][:, None, :].expand(n_c, K, L)
                log_phi = torch.log(phi.clamp(min=torch.finfo(phi.dtype).tiny))
                A_ind = None
            rho_c = rho_fn(j0, j1, A_ind)
            new_rho[j0:j1] = rho_c
            w = rho_c.to(d.dtype).index_select(0, g)[:, :, None] * phi  # (n_c, K, L)
            neg_entropy = (w * log_phi).sum()
            accumulate(stats, d.fmap, feats, w.reshape(n_c, K * L), d.group[sl], neg_entropy)
            if want_labels:
                k_hat = rho_c.argmax(1).index_select(0, g)
                phi_k = phi[torch.arange(n_c, device=d.device), k_hat]  # (n_c, L)
                proba[sl], l_hat = phi_k.max(1)
                labels[sl] = k_hat * L + l_hat
        self.rho = new_rho
        if want_labels:
            return stats, A_all, labels, proba
        return stats, A_all

    def _rho_from(self, A_sums: torch.Tensor, j0: int, j1: int) -> torch.Tensor:
        logits = self.pi.expected_log()[None, :] + A_sums
        if self.use_x:
            logits = logits + self._elog_x[j0:j1]
        return torch.softmax(logits, dim=1)

    # ------------------------------------------------------------ blocks
    def update_cells(self) -> None:
        """U1'': phi at the current globals, rho unchanged (statistics re-weighted)."""
        rho = self.rho
        self.stats, self.A = self.local_pass(lambda j0, j1, A: rho[j0:j1])

    def update_individuals(self) -> None:
        """U2'' from sum_i A_jik of the last local pass (call right after update_cells)."""
        self._elog_x = self.elog_x() if self.use_x else None
        rho = self._rho_from(self.A, 0, self.data.J)
        self.stats, self.A = self.local_pass(lambda j0, j1, A: rho[j0:j1])

    def update_local(self) -> None:
        """U1'' then U2'' in one pass over whole individuals (the production local step)."""
        self._elog_x = self.elog_x() if self.use_x else None
        self.stats, self.A = self.local_pass(lambda j0, j1, A: self._rho_from(A, j0, j1))

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q_lk = sum_j rho_jk sum_i phi_jilk, shape (L, K)."""
        return self.stats.counts.view(self.K, self.L).T

    def local_step(self) -> None:
        """The fused local pass (9c's order)."""
        self.update_local()

    BLOCKS = ("update_cells", "update_individuals") + NestedGlobals.GLOBAL_BLOCKS
    SWEEP_BLOCKS = ("update_local",) + NestedGlobals.GLOBAL_BLOCKS

    def state(self) -> dict:
        """The family's state and sum_i A_jik."""
        return super().state() | {"A": self.A}

    def load_state(self, state: dict) -> None:
        """Return to a :meth:`state` snapshot."""
        super().load_state(state)
        self.A = state["A"]


class NestedDP(NestedEstimator):
    """Nested Dirichlet process (Rodriguez, Dunson & Gelfand 2008) with cluster-specific atoms.

    Parameters
    ----------
    K, L : int
        Truncations: individual clusters, and cell atoms per cluster (K L atoms in all).
    use_x : bool
        Add NAM's genotype layer ("nDP with x"); default False, fitted with ``fit(None, Y, group)``.
    **kwargs
        NAM's other parameters. ``memory_budget`` bounds a chunk's K L-wide arrays; a chunk
        always holds whole individuals.

    Attributes
    ----------
    rho_, individual_labels_, weights_, individual_cluster_sizes_ : as NAM's
    cell_labels_ : ndarray (N,)
        The pair (individual cluster label, atom) of each cell, coded 0.. by decreasing size.
    cell_pairs_ : ndarray (N, 2)
        (individual cluster label, atom stick index within the cluster) of each cell.
    cell_label_proba_ : ndarray (N,)
        phi at that atom.
    m_y_, t_y_, c_y_, D_inv_y_ : ndarrays (K, L, p), (K, L), (K, L), (K, L, p, p)
        q(theta^y_lk), clusters in label order, atoms in stick order.
    atom_sizes_ : ndarray (K, L)
        Expected cells per atom.
    cell_weights_ : ndarray (L, K)
        E[omega_lk], atoms in stick order, clusters in label order.
    """

    _param_names = NestedEstimator._param_names

    def __init__(self, K: int = 20, L: int = 50, use_x: bool = False, **kwargs):
        super().__init__(K=K, L=L, use_x=use_x, **kwargs)

    def _new_run(self, data) -> NDPRun:
        return NDPRun(self._spec(), data, self.memory_budget)

    def _fitted_state(self, run: NDPRun, data) -> dict[str, np.ndarray]:
        d = run.data
        run._elog_x = run.elog_x() if run.use_x else None
        rho = run.rho
        stats, _, labels, proba = run.local_pass(lambda j0, j1, A: rho[j0:j1], want_labels=True)
        state = {
            "rho": rho, "cell_atom": d.to_input_order(labels),
            "cell_proba": d.to_input_order(proba).to(torch.float64), "atom_sizes": stats.counts,
        } | run.fitted_globals()
        return {k: v.detach().cpu().numpy() for k, v in state.items()}

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        self._state = state
        K = state["rho"].shape[1]
        L = state["atom_sizes"].size // K
        rank = self._restore_individuals(state)
        order = self.individual_order_
        code = state["cell_atom"]
        self.cell_pairs_ = np.stack([rank[code // L], code % L], 1)
        flat = self.cell_pairs_[:, 0] * L + self.cell_pairs_[:, 1]
        uniq, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
        self.cell_labels_ = size_order(counts)[1][inv]
        self.cell_label_proba_ = state["cell_proba"]
        self.n_cell_clusters_ = int(uniq.size)
        self.atom_sizes_ = state["atom_sizes"].reshape(K, L)[order]
        self.n_cell_clusters_expected_ = int((self.atom_sizes_ > 0.5).sum())
        for name in ("m", "t", "c", "D_inv"):
            arr = state[f"{name}_y"]
            setattr(self, f"{name}_y_", arr.reshape(K, L, *arr.shape[1:])[order])
        omega = expected_weights(torch.as_tensor(state["a_u"]), torch.as_tensor(state["b_u"]), L).numpy()
        self.cell_weights_ = omega[:, order]
