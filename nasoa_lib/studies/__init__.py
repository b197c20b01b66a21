"""The study's experiments, one module per notebook: plan, run, tables, figures, claims.

The papers' methods live in their own packages (``space``, ``search``, ``zoo``, ``online``,
``generator``, ``hpo``, ``estimate``, ``nss``); a module here composes them into one notebook's
experiment and decides its claims with :mod:`nasoa_lib.verdict` (issue 19: drivers apart from
methods).

* :mod:`.source_pretraining`: notebook 00's shared source pretraining (NASOA section 4.2; issue 23)
* :mod:`.preliminary`: notebook 01 (NASOA section 4.1, appendix Figs 6-7)
* :mod:`.nas_search`: notebooks 02-03's claims (NASOA section 4.2, Figs 3 and 9)
* :mod:`.zoo_comparison`: notebook 04 (Table 2, Figs 4-5)
* :mod:`.nasoa_vs_hpo`: notebook 07 (Tables 4-5, Fig 6)
* :mod:`.feature_histories`: notebook 08 (thesis Figs 4.1, 4.3-4.4, Tables 4.1, 4.3)
* :mod:`.network_space_search`: notebook 09 (NSS Figs 3-5, Tables 1-2)
"""
