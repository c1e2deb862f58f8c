"""The simulation study: its design, one job, the aggregation, the methods compared and the figures.

* :mod:`~nam_core.study.design`: scenarios, sweeps and jobs of a study config;
* :mod:`~nam_core.study.job`: simulate one replicate, fit one method, score and record it;
* :mod:`~nam_core.study.aggregation`: tidy metrics, summary and the study's checks;
* :mod:`~nam_core.study.methods`: the methods by name; :mod:`~nam_core.study.simplots`: figures;
* :mod:`~nam_core.study.cell_clusters`: cell clusters against Leiden on named data sets.

The data come from :mod:`nam_core.synthetic`.
"""
