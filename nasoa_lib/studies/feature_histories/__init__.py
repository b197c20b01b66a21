"""Notebook 08: feature-history performance estimation on one population (Cao, CMU thesis).

The method (the feature history, the refit and the ensemble estimate, the training loop that
captures features, the searches) lives in :mod:`nasoa_lib.estimate`; this package is the
notebook's experiment:

* :mod:`.population`: the profile's ``estimate:`` section (:class:`~.population.EstimateConfig`),
  the population of architectures and baselines, their store-cached, resumable training runs,
  curves and costs (thesis Figs 4.1, 4.3-4.4);
* :mod:`.evidence`: the claims decided by the study's verdict rule, with intervals over the
  population and the test set's noise floor beside each effect (Figs 4.3-4.4, Tables 4.1, 4.3);
* :mod:`.figures`: the notebook's figures.
"""
