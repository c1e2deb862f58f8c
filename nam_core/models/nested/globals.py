"""Global factors U3-U8 and the ELBO shared by the nested-atoms family (``docs/model.md`` 5.2, 6).

:class:`NestedGlobals` holds what NAM, CAM, fiSAN, the DP mixtures and the nested DP share:
the cell atoms (``atoms_y``), the optional genotype atoms (``atoms_x``), the individual-cluster
weights (``weights_pi``), the cell weights of each individual cluster (``weights_omega``:
sticks, or fiSAN's Dirichlet), their global blocks U3-U8, the ELBO and snapshots. A subclass
adds the local step (:class:`~nam_core.models.nested.run.NestedAtomsRun`, ``models/ndp.py``).
"""

from __future__ import annotations

import dataclasses

import torch

from ...components.cells import CellStats
from ...components.dirichlet import DirichletWeights
from ...components.normal_wishart import NWAtoms, NWPosterior
from ...components.sticks import Concentration, StickWeights
from ...components.student_t import StudentTAtoms
from ...engine.run import Run
from .spec import NestedSpec, cell_atoms

__all__ = ["NestedGlobals"]


class NestedGlobals(Run):
    """Global factors U3-U8 and the ELBO of the nested-atoms family.

    Subclasses provide the local step, which sets ``rho`` (J, K) and ``stats``
    (:class:`~nam_core.components.cells.CellStats` over ``n_atoms`` atoms), and
    :meth:`cluster_atom_counts` (L, K).
    """

    def __init__(self, spec: NestedSpec, data, n_atoms: int):
        self.spec, self.data, self.dtype = spec, data, data.dtype
        self.K, self.L = spec.K, spec.L
        self.use_x = data.X is not None
        self.atoms_y = cell_atoms(spec, data, n_atoms)
        self.atoms_x = NWAtoms("atoms_x", data.prior_x, "x") if self.use_x else None
        self.pi = StickWeights("weights_pi", spec.K, spec.trunc_v, Concentration(tuple(spec.s), spec.alpha))
        if spec.dirichlet_b is None:
            self.omega = StickWeights("weights_omega", spec.L, spec.trunc_u,
                                      Concentration(tuple(spec.r), spec.beta))
        else:
            self.omega = DirichletWeights("weights_omega", spec.L, spec.dirichlet_b)
        self.n_atoms = n_atoms
        self.rho: torch.Tensor | None = None
        self.stats: CellStats | None = None

    # ------------------------------------------------------------ expectations (section 4)
    def elog_x(self) -> torch.Tensor:
        """E log N(x_j | theta^x_k) (J, K) (E6)."""
        return self.atoms_x.expected_log_density(self.data.X)

    def cluster_atom_counts(self) -> torch.Tensor:
        """Q (L, K): expected cells of atom l in individual cluster k."""
        raise NotImplementedError

    # ------------------------------------------------------------ global blocks (section 5.2)
    def update_atoms_y(self) -> None:
        """U3: q(theta^y) from the cell statistics."""
        self.atoms_y.update_from_stats(self.stats)

    def update_dof_y(self) -> None:
        """U3': the degrees of freedom of Student-t cell atoms (nothing for Gaussian atoms)."""
        self.atoms_y.update_dof(self.stats)

    def update_atoms_x(self) -> None:
        """U4: q(theta^x) with weights rho."""
        if not self.use_x:
            return
        X, rho = self.data.X, self.rho
        self.atoms_x.update(rho.sum(0), rho.T @ X, torch.einsum("jk,ja,jb->kab", rho, X, X))

    def update_u(self) -> None:
        """U5 (U5' for Dirichlet weights): q(omega) from Q."""
        self.omega.update(self.cluster_atom_counts())

    def update_v(self) -> None:
        """U6: q(v)."""
        self.pi.update(self.rho.sum(0))

    def update_beta(self) -> None:
        """U7: q(beta) (random beta only; nothing for Dirichlet weights)."""
        self.omega.update_concentration()

    def update_alpha(self) -> None:
        """U8: q(alpha) (random alpha only)."""
        self.pi.update_concentration()

    GLOBAL_BLOCKS = ("update_atoms_y", "update_dof_y", "update_atoms_x", "update_u", "update_v",
                     "update_beta", "update_alpha")
    #: the blocks that depend on q(S) alone (refitted after a merge of individual clusters)
    INDIVIDUAL_BLOCKS = GLOBAL_BLOCKS[2:]

    def initialise_globals(self) -> None:
        """Concentrations at their priors, then U3-U8 once (section 5.4)."""
        self.pi.concentration.reset()
        if isinstance(self.omega, StickWeights):
            self.omega.concentration.reset()
        self.global_step()

    def global_step(self) -> None:
        """U3-U8."""
        for block in self.GLOBAL_BLOCKS:
            getattr(self, block)()

    # ------------------------------------------------------------ ELBO (section 6)
    #: terms of the individual-level layer (the x part of the DP-mixture identity, section 9e)
    X_PART = ("atoms_x_loglik", "assign_individuals", "entropy_individuals", "weights_pi",
              "weights_pi_concentration", "atoms_x")

    def elbo_terms(self) -> dict[str, float]:
        """Every term of the ELBO at the current state, float64, named by component.

        ``docs/model.md`` section 6 maps the names to T1-T10 and H1-H8.
        """
        s = self.stats
        elog_pi, elog_omega = self.pi.expected_log(), self.omega.expected_log()
        weights_pi, weights_omega = self.pi.elbo_terms(), self.omega.elbo_terms()
        terms = {
            "atoms_y_loglik": self.atoms_y.loglik_from_stats(s),
            **self.atoms_y.extra_terms(s),
            "assign_individuals": (self.rho * elog_pi).sum(),
            "assign_cells": (self.cluster_atom_counts() * elog_omega).sum(),
            "entropy_individuals": -torch.special.xlogy(self.rho, self.rho).sum(),
            "entropy_cells": -s.neg_entropy,
            "weights_pi": weights_pi["weights_pi"],
            **weights_omega,
            "weights_pi_concentration": weights_pi["weights_pi_concentration"],
        }
        if "weights_omega_concentration" in terms:  # keep T5..T8's order in the sum
            terms["weights_omega_concentration"] = terms.pop("weights_omega_concentration")
        terms["atoms_y"] = self.atoms_y.prior_term()
        if self.use_x:
            terms["atoms_x_loglik"] = (self.rho * self.elog_x()).sum()
            terms["atoms_x"] = self.atoms_x.prior_term()
        return {k: float(v) for k, v in terms.items()}

    def occupied_summary(self) -> str:
        """Expected-size > 0.5 counts of individual clusters / cell atoms, for the log."""
        k = int((self.rho.sum(0) > 0.5).sum())
        l = int((self.stats.counts > 0.5).sum())
        return f"{k}/{l}"

    def fitted_globals(self) -> dict[str, torch.Tensor]:
        """The global factors as a fit saves them.

        Atoms in the data's coordinates, sticks (for Dirichlet weights the equivalent Beta
        sticks, plus ``b_star``) and concentrations.
        """
        d = self.data
        a_u, b_u = self.omega.sticks()
        post = self.atoms_y.post
        out = {
            "m_y": post.mean + d.y_shift, "t_y": post.mean_precision, "c_y": post.dof,
            "D_inv_y": post.scale_inv, "a_u": a_u, "b_u": b_u, "a_v": self.pi.a, "b_v": self.pi.b,
            "s_hat": torch.tensor([self.pi.concentration.shape, self.pi.concentration.rate]),
        }
        if isinstance(self.atoms_y, StudentTAtoms):
            out["dof_y"] = self.atoms_y.dof
        if isinstance(self.omega, StickWeights):
            out["r_hat"] = torch.tensor([self.omega.concentration.shape, self.omega.concentration.rate])
        else:
            out["b_star"] = self.omega.b_star
        if self.use_x:
            post = self.atoms_x.post
            out |= {"m_x": post.mean + d.x_shift, "t_x": post.mean_precision, "c_x": post.dof,
                    "D_inv_x": post.scale_inv}
        return out

    def load_fitted_cell_factors(self, fitted: dict[str, torch.Tensor]) -> None:
        """Set what U1 reads, q(theta^y), q(omega) and rho, from a saved fit.

        The inverse of :meth:`fitted_globals` for those factors (plus ``rho`` (J, K)), internal
        order; the atom means move into this run's centred frame (``data.y_shift``).
        """
        post = NWPosterior(fitted["m_y"] - self.data.y_shift, fitted["t_y"], fitted["c_y"], fitted["D_inv_y"])
        self.atoms_y.set_posterior(post)
        if isinstance(self.atoms_y, StudentTAtoms):
            self.atoms_y.dof = fitted["dof_y"]
        if isinstance(self.omega, StickWeights):
            self.omega.a, self.omega.b = fitted["a_u"], fitted["b_u"]
        else:
            self.omega.b_star = fitted["b_star"]
        self.rho = fitted["rho"]

    # ------------------------------------------------------------ snapshots
    def state(self) -> dict:
        """rho, the cell statistics and every global factor."""
        stats = {f.name: getattr(self.stats, f.name) for f in dataclasses.fields(CellStats)}
        st = {"rho": self.rho, "stats": {k: v for k, v in stats.items() if v is not None},
              "atoms_y": self.atoms_y.state(), "weights_pi": self.pi.state(),
              "weights_omega": self.omega.state()}
        if self.use_x:
            st["atoms_x"] = self.atoms_x.state()
        return st

    def load_state(self, state: dict) -> None:
        """Return to a :meth:`state` snapshot."""
        self.rho = state["rho"]
        stats = dict(state["stats"])
        stats["neg_entropy"] = torch.as_tensor(stats["neg_entropy"], dtype=torch.float64, device=self.data.device)
        self.stats = CellStats(**stats)
        self.atoms_y.load_state(state["atoms_y"])
        self.pi.load_state(state["weights_pi"])
        self.omega.load_state(state["weights_omega"])
        if self.use_x:
            self.atoms_x.load_state(state["atoms_x"])

