"""The hierarchical Dirichlet process (``docs/model.md`` section 9d), Wang-Paisley-Blei truncation.

Global sticks B'_l ~ Beta(1, gamma) over L shared Normal-Wishart atoms; per individual j, T
tables with sticks pi'_jt ~ Beta(1, alpha0), each table t choosing an atom c_jt ~ Cat(B), each
cell a table z_ji ~ Cat(pi_j). q: zeta_jit = q(z_ji = t) (stored, N x T), varphi_jtl =
q(c_jt = l) (J, T, L), Beta factors for pi' and B', NW atoms, optional Gamma factors for gamma
and alpha0. The local step runs, per chunk of whole individuals, ``local_rounds`` rounds of
(zeta, varphi, pi' sticks), each an exact coordinate update; then the globals. The HDP does not
cluster individuals: ``individual_labels_`` come from the two-stage rule of 9d (a DP mixture, or
k-means, of the expected atom weights w_jl = sum_t E[pi_jt] varphi_jtl).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..components.cells import (
    CellStats,
    accumulate,
    atom_coefficients,
    chunk_log_densities,
    chunk_size,
    empty_stats,
    individual_spans,
    normalise_logits_,
)
from ..components.init import kmeans, one_hot, random_responsibilities
from ..components.normal_wishart import NWAtoms
from ..components.sticks import (
    Concentration,
    StickWeights,
    expected_log_weights,
    expected_weights,
    n_random_sticks,
    stick_elbo,
    update_sticks,
)
from ..engine.data import prepare_cohort
from ..engine.estimator import VariationalEstimator
from ..engine.fitted import size_order
from ..engine.run import Run
from ..errors import NAMInputError
from ..validation import check_int_at_least
from .two_stage import individual_features

__all__ = ["HDP"]

LOCAL_STEPS = ("zeta", "varphi", "sticks")


class HDPRun(Run):
    """One CAVI run of the HDP.

    Components: the shared atoms (``atoms_y``), the global sticks B' with gamma
    (``weights_B``), and per individual the table sticks pi' with alpha0 and the local factors
    zeta, varphi.
    """

    def __init__(self, model: HDP, data):
        d = self.data = data
        self.dtype = d.dtype
        self.L, self.T = model.L, model.T
        self.n_T = n_random_sticks(self.T, model.trunc)
        self.atoms_y = NWAtoms("atoms_y", d.prior_y, "y")
        self.B = StickWeights("weights_B", self.L, model.trunc, Concentration(tuple(model.r), model.gamma))
        self.alpha0 = Concentration(tuple(model.s), model.alpha0)
        self.rounds, self.init = model.local_rounds, model.init
        itemsize = torch.finfo(d.dtype).bits // 8
        max_cells = chunk_size(d.N, self.T * self.L, d.p, d.fmap.n_features, itemsize,
                               model.memory_budget, d.quad)
        self.spans = individual_spans(d.n_cells, max_cells)

    def initialise(self, gen: torch.Generator, seed: int) -> None:
        """Local factors from k-means (or random), the table sticks, then the globals."""
        self._initialise_local(self.init, gen)
        self.local_pass(("sticks",))
        self.global_step()

    def _initialise_local(self, init: str, gen: torch.Generator) -> None:
        """9d: varphi one-hot on each individual's T most frequent k-means atoms, zeta from them."""
        d, L, T = self.data, self.L, self.T
        if init == "random":
            self.zeta = random_responsibilities(d.N, T, gen, d.dtype, d.device)
            self.varphi = random_responsibilities(d.J * T, L, gen, torch.float64, d.device).view(d.J, T, L)
            return
        labels = kmeans(d.Y, L, gen)
        counts = torch.zeros((d.J, L), dtype=torch.float64, device=d.device)
        counts.index_put_((d.group, labels), torch.ones_like(labels, dtype=torch.float64), accumulate=True)
        top = torch.argsort(-counts, dim=1, stable=True)[:, :T]  # (J, min(T, L))
        if top.shape[1] < T:  # more tables than atoms: repeat the most frequent ones
            top = top[:, torch.arange(T, device=d.device) % top.shape[1]]
        self.varphi = one_hot(top.reshape(-1), L, torch.float64).view(d.J, T, L)
        match = (top.index_select(0, d.group) == labels[:, None]).to(d.dtype)  # (N, T)
        first = match * (torch.cumsum(match, 1) == 1)
        unmatched = first.sum(1, keepdim=True) == 0
        self.zeta = torch.where(unmatched, torch.full_like(first, 1.0 / T), first)

    # ------------------------------------------------------------ local step
    def local_pass(self, steps=LOCAL_STEPS, rounds: int = 1, want_labels: bool = False):
        """Run ``rounds`` rounds of the given local ``steps`` per chunk, then refresh the statistics.

        ``steps=("sticks",)`` or ``()`` recompute only the statistics (and sticks) of the stored
        zeta and varphi. With ``want_labels`` returns the argmax atom of r_jil = sum_t zeta varphi
        and its value per cell (sorted order).
        """
        d, L, T = self.data, self.L, self.T
        need_density = "zeta" in steps or "varphi" in steps
        if need_density:
            coef = atom_coefficients(self.atoms_y.post, self.atoms_y.ex, d.fmap, d.dtype)
            elog_B = self.B.expected_log().to(d.dtype)
        if "sticks" in steps and not hasattr(self, "a"):
            self.a = torch.ones((self.n_T, d.J), dtype=torch.float64, device=d.device)
            self.b = torch.ones((self.n_T, d.J), dtype=torch.float64, device=d.device)
        stats = empty_stats(d.J, L, d.p, d.device)
        table_counts = torch.zeros((d.J, T), dtype=torch.float64, device=d.device)
        if want_labels:
            labels = torch.empty(d.N, dtype=torch.long, device=d.device)
            proba = torch.empty(d.N, dtype=d.dtype, device=d.device)
        for c0, c1, j0, j1 in self.spans:
            sl, n_c, J_c = slice(c0, c1), c1 - c0, j1 - j0
            feats, g = d.features(sl), d.group[sl] - j0
            E = chunk_log_densities(d.Y[sl], feats, coef, d.quad) if need_density else None
            zeta, varphi = self.zeta[sl], self.varphi[j0:j1].to(d.dtype)
            for _ in range(rounds if steps else 1):
                if "zeta" in steps:
                    elog_pi = expected_log_weights(self.a[:, j0:j1], self.b[:, j0:j1], T).T.to(d.dtype)
                    logits = elog_pi.index_select(0, g) + torch.einsum("ntl,nl->nt", varphi.index_select(0, g), E)
                    zeta, _ = normalise_logits_(logits)
                if "varphi" in steps:
                    S = torch.zeros((J_c, T * L), dtype=d.dtype, device=d.device)
                    S.index_add_(0, g, (zeta[:, :, None] * E[:, None, :]).reshape(n_c, T * L))
                    varphi, _ = normalise_logits_((elog_B + S.view(J_c, T, L)).view(J_c * T, L))
                    varphi = varphi.view(J_c, T, L)
                if "sticks" in steps:
                    nz = torch.zeros((J_c, T), dtype=torch.float64, device=d.device)
                    nz.index_add_(0, g, zeta.to(torch.float64))
                    self.a[:, j0:j1], self.b[:, j0:j1] = update_sticks(nz.T, self.n_T, self.alpha0.mean)
            self.zeta[sl] = zeta
            self.varphi[j0:j1] = varphi.to(torch.float64)
            r = torch.einsum("nt,ntl->nl", zeta, varphi.index_select(0, g))
            accumulate(stats, d.fmap, feats, r, d.group[sl], torch.special.xlogy(zeta, zeta).sum())
            table_counts[j0:j1].index_add_(0, g, zeta.to(torch.float64))
            if want_labels:
                proba[sl], labels[sl] = r.max(1)
        self.stats, self.table_counts = stats, table_counts
        if want_labels:
            return labels, proba
        return None

    def update_zeta(self) -> None:
        """q(z): zeta at the current varphi, sticks and atoms."""
        self.local_pass(("zeta",))

    def update_varphi(self) -> None:
        """q(c): varphi at the current zeta, B' and atoms."""
        self.local_pass(("varphi",))

    def update_tables(self) -> None:
        """q(pi'): a_jt = 1 + sum_i zeta_jit, b_jt = E[alpha0] + sum_i sum_{s>t} zeta_jis."""
        self.local_pass(("sticks",))

    def update_local(self) -> None:
        """``local_rounds`` rounds of (zeta, varphi, pi') per chunk of individuals: one pass."""
        self.local_pass(LOCAL_STEPS, self.rounds)

    def local_step(self) -> None:
        """The local step (:meth:`update_local`)."""
        self.update_local()

    # ------------------------------------------------------------ global step
    def update_atoms_y(self) -> None:
        """NW update with cell weights r_jil = sum_t zeta_jit varphi_jtl."""
        s = self.stats
        self.atoms_y.update(s.counts, s.sums, s.second_moments)

    def update_B(self) -> None:
        """q(B'): g1 = 1 + sum_jt varphi_jtl, g2 = E[gamma] + sum_jt sum_{r>l} varphi_jtr."""
        self.B.update(self.varphi.sum((0, 1)))

    def update_gamma(self) -> None:
        """q(gamma) (random gamma only)."""
        self.B.update_concentration()

    def update_alpha0(self) -> None:
        """q(alpha0) (random alpha0 only)."""
        self.alpha0.update(self.b, self.a)

    GLOBAL_BLOCKS = ("update_atoms_y", "update_B", "update_gamma", "update_alpha0")
    BLOCKS = ("update_zeta", "update_varphi", "update_tables") + GLOBAL_BLOCKS
    SWEEP_BLOCKS = ("update_local",) + GLOBAL_BLOCKS

    def global_step(self) -> None:
        """Atoms, global sticks and both concentrations."""
        for block in self.GLOBAL_BLOCKS:
            getattr(self, block)()

    # ------------------------------------------------------------ ELBO
    def elbo_terms(self) -> dict[str, float]:
        """Every term of the HDP's ELBO (9d), float64."""
        s, T = self.stats, self.T
        elog_pi = expected_log_weights(self.a, self.b, T).T  # (J, T)
        weights_B = self.B.elbo_terms()
        terms = {
            "atoms_y_loglik": self.atoms_y.loglik(s.counts, s.sums, s.second_moments),
            "assign_cells": (self.table_counts * elog_pi).sum(),
            "assign_tables": (self.varphi * self.B.expected_log()).sum(),
            "entropy_cells": -s.neg_entropy,
            "entropy_tables": -torch.special.xlogy(self.varphi, self.varphi).sum(),
            "weights_tables": stick_elbo(self.a, self.b, self.alpha0.expected_log, self.alpha0.mean),
            "weights_B": weights_B["weights_B"],
            "weights_tables_concentration": self.alpha0.elbo(),
            "weights_B_concentration": weights_B["weights_B_concentration"],
            "atoms_y": self.atoms_y.prior_term(),
        }
        return {k: float(v) for k, v in terms.items()}

    def state(self) -> dict:
        """Local and global factors and the statistics."""
        return {
            "zeta": self.zeta, "varphi": self.varphi, "a": self.a, "b": self.b,
            "alpha0": {"shape": self.alpha0.shape, "rate": self.alpha0.rate},
            "stats": {f.name: getattr(self.stats, f.name) for f in dataclasses.fields(CellStats)},
            "table_counts": self.table_counts, "atoms_y": self.atoms_y.state(), "weights_B": self.B.state(),
        }

    def load_state(self, state: dict) -> None:
        """Return to a :meth:`state` snapshot (zeta is updated in place, so it is copied)."""
        self.zeta, self.varphi = state["zeta"].clone(), state["varphi"].clone()
        self.a, self.b = state["a"].clone(), state["b"].clone()
        self.alpha0.shape, self.alpha0.rate = float(state["alpha0"]["shape"]), float(state["alpha0"]["rate"])
        stats = dict(state["stats"])
        stats["neg_entropy"] = torch.as_tensor(stats["neg_entropy"], dtype=torch.float64, device=self.data.device)
        self.stats, self.table_counts = CellStats(**stats), state["table_counts"]
        self.atoms_y.load_state(state["atoms_y"])
        self.B.load_state(state["weights_B"])

    def occupied_summary(self) -> str:
        """Atoms with expected size > 0.5, for the log."""
        return f"-/{int((self.stats.counts > 0.5).sum())}"

    def atom_weights(self) -> torch.Tensor:
        """w_jl = sum_t E[pi_jt] varphi_jtl, shape (J, L)."""
        pi = expected_weights(self.a, self.b, self.T).T  # (J, T)
        return torch.einsum("jt,jtl->jl", pi, self.varphi)


class HDP(VariationalEstimator):
    """HDP mixture of Normal-Wishart atoms with the Wang-Paisley-Blei truncation (section 9d).

    Parameters
    ----------
    K : int
        Truncation of the second-stage DP mixture of the individuals (``individual_clustering``).
    L : int
        Global truncation (shared atoms).
    T : int
        Tables per individual.
    gamma, alpha0 : float or None
        Fixed global / individual concentrations; None: random with Gamma(r) / Gamma(s).
    s, r : tuple of two floats
        Gamma hyperpriors of alpha0 and gamma.
    trunc : {"tsb", "open"}
        Truncation convention of both stick layers.
    local_rounds : int
        Rounds of (zeta, varphi, pi') per chunk in one local step.
    individual_clustering : {"dpmix", "kmeans"}
        Second stage on w_jl (standardised, 3 principal components, as :class:`TwoStage`).
    init : {"kmeans", "random"}
    n_init, max_iter, tol, seed, device, dtype, prior_y, memory_budget, quad, cache_features,
    check_monotone, verbose
        As for :class:`~nam_core.NAM`.

    Attributes
    ----------
    cell_labels_ : ndarray (N,)
        argmax_l r_jil, atoms in label order (largest first).
    atom_weights_ : ndarray (J, L)
        w_jl, atoms in label order.
    individual_labels_ : ndarray (J,)
        From the second stage.
    varphi_ : ndarray (J, T, L); a_, b_ : ndarray (n_T, J); g1_, g2_ : ndarray (n_B,)
        Local and global variational parameters (atoms of ``varphi_`` in stick order).
    m_y_, t_y_, c_y_, D_inv_y_ : q(theta) in label order.
    """

    _param_names = (
        "K", "L", "T", "gamma", "alpha0", "s", "r", "trunc", "local_rounds",
        "individual_clustering", "n_init", "max_iter", "tol", "init", "seed", "device", "dtype",
        "prior_y", "memory_budget", "quad", "cache_features", "check_monotone", "verbose",
    )

    def __init__(self, K=20, L=50, T=20, gamma=None, alpha0=None, s=(1.0, 1.0), r=(1.0, 1.0),
                 trunc="tsb", local_rounds=1, individual_clustering="dpmix", n_init=10,
                 max_iter=1000, tol=None, init="kmeans", seed=None, device="auto", dtype="float32",
                 prior_y=None, memory_budget=2**28, quad="auto", cache_features="auto",
                 check_monotone=True, verbose=True):
        self.K, self.L, self.T = K, L, T
        self.gamma, self.alpha0, self.s, self.r = gamma, alpha0, s, r
        self.trunc, self.local_rounds = trunc, local_rounds
        self.individual_clustering = individual_clustering
        self.n_init, self.max_iter, self.tol, self.init, self.seed = n_init, max_iter, tol, init, seed
        self.device, self.dtype, self.prior_y = device, dtype, prior_y
        self.memory_budget, self.quad, self.cache_features = memory_budget, quad, cache_features
        self.check_monotone, self.verbose = check_monotone, verbose

    def _validate_params(self) -> None:
        check_int_at_least(self.K, "K", 1)
        check_int_at_least(self.L, "L", 1)
        self._validate_run_options()
        n_random_sticks(2, self.trunc)
        Concentration(tuple(self.s), self.alpha0).validate("alpha0")
        Concentration(tuple(self.r), self.gamma).validate("gamma")
        if self.init not in ("kmeans", "random"):
            raise NAMInputError(f"HDP init must be 'kmeans' or 'random', got {self.init!r}")
        if not (isinstance(self.T, int) and self.T >= 1) or not (isinstance(self.local_rounds, int) and self.local_rounds >= 1):
            raise NAMInputError(f"T and local_rounds must be integers >= 1, got {self.T!r}, {self.local_rounds!r}")
        if self.individual_clustering not in ("dpmix", "kmeans"):
            raise NAMInputError(f"individual_clustering must be 'dpmix' or 'kmeans', got {self.individual_clustering!r}")

    def _prepare(self, X, Y, group):
        return prepare_cohort(
            X, Y, group, use_x=False, prior_x=None, prior_y=self.prior_y, n_atoms=self.L,
            device=self.device, dtype=self.dtype, memory_budget=self.memory_budget, quad=self.quad,
            cache_features=self.cache_features, label="HDP",
        )

    def _new_run(self, data) -> HDPRun:
        return HDPRun(self, data)

    def _fitted_state(self, run: HDPRun, data) -> dict[str, np.ndarray]:
        d = run.data
        labels, proba = run.local_pass((), want_labels=True)
        weights = run.atom_weights().cpu().numpy()
        feats = individual_features(weights, None, 3)
        if self.individual_clustering == "dpmix":
            from .dpmix import DPMixture

            ind = DPMixture("x", self.K, n_init=self.n_init, seed=self.seed_, device="cpu",
                            dtype="float64", verbose=False).fit(feats).labels_
        else:
            from sklearn.cluster import KMeans

            ind = KMeans(n_clusters=min(self.K, d.J), n_init=self.n_init, random_state=self.seed_).fit_predict(feats)
        state = {
            "cell_atom": d.to_input_order(labels), "cell_proba": d.to_input_order(proba).to(torch.float64),
            "atom_sizes": run.stats.counts, "atom_weights": torch.as_tensor(weights),
            "individual_labels": torch.as_tensor(np.asarray(ind)),
            "m_y": run.atoms_y.post.mean + d.y_shift, "t_y": run.atoms_y.post.mean_precision,
            "c_y": run.atoms_y.post.dof, "D_inv_y": run.atoms_y.post.scale_inv, "varphi": run.varphi,
            "a": run.a, "b": run.b, "g1": run.B.a, "g2": run.B.b,
            "alpha0_hat": torch.tensor([run.alpha0.shape, run.alpha0.rate]),
            "gamma_hat": torch.tensor([run.B.concentration.shape, run.B.concentration.rate]),
        }
        return {k: v.detach().cpu().numpy() for k, v in state.items()}

    def _restore_state(self, state: dict[str, np.ndarray]) -> None:
        self._state = state
        self.cell_order_, rank = size_order(state["atom_sizes"])
        order = self.cell_order_
        self.cell_labels_ = rank[state["cell_atom"]]
        self.cell_label_proba_ = state["cell_proba"]
        self.cell_cluster_sizes_ = state["atom_sizes"][order]
        self.n_cell_clusters_ = int(np.unique(self.cell_labels_).size)
        self.n_cell_clusters_expected_ = int((state["atom_sizes"] > 0.5).sum())
        self.atom_weights_ = state["atom_weights"][:, order]
        self.individual_labels_ = state["individual_labels"]
        for name in ("m", "t", "c", "D_inv"):
            setattr(self, f"{name}_y_", state[f"{name}_y"][order])
        for key in ("varphi", "a", "b", "g1", "g2", "alpha0_hat", "gamma_hat"):
            setattr(self, key + "_", state[key])
