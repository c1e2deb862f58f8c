"""Synthetic data: every generator of cohorts and simulated data sets.

* :mod:`~nam_core.synthetic.base`: :class:`~nam_core.synthetic.base.CohortSpec` (a cohort's
  parameters), :class:`~nam_core.synthetic.base.SimulatedData`, partitions, cell counts,
  genotype PCs.
* :mod:`~nam_core.synthetic.ancestry`: ancestry labels and Balding-Nichols genotypes.
* :mod:`~nam_core.synthetic.profiles` and :mod:`~nam_core.synthetic.cohort_parts`: the PBMC
  profiles and the parts of a cohort (compositions, cells, counts) that the cohorts share.
* :mod:`~nam_core.synthetic.demo`: the demo cohort (PLINK + counts .h5ad + truth);
  :mod:`~nam_core.synthetic.scale_cohort`: OneK1K-shaped cohorts written out of core;
  :mod:`~nam_core.synthetic.writers`: their PLINK and truth files.
* :mod:`~nam_core.synthetic.simulate`: the simulation design of ``docs/model.md``;
  :mod:`~nam_core.synthetic.realistic`: the realistic-counts scenario;
  :mod:`~nam_core.synthetic.simulate_baselines`: data from the nested DP and the HDP.
* :mod:`~nam_core.synthetic.many_types`: cells of ten PBMC types, some close, with NB dispersion
  from 2 to 20 and type-specific library sizes, for grouping atoms into cell types.
"""
