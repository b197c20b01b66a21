"""nasoa_lib: the library behind the nasoa-study notebooks.

One module per concept of the papers (see README):

* foundation: ``profiles``, ``paths``, ``data``, ``store``, ``checkpoint``, ``provenance``,
  ``device``, ``parallel``, ``errors``, ``reporting`` (outputs, notebook runner, index; ``report``
  is the notebooks' import path for it), ``paper`` (every number quoted from the papers), ``cli``;
* architecture core and training engine: ``space`` (codes, grammar, mutation, and the
  ``SearchSpace`` protocol both NAS spaces implement), ``builder``, ``staged``, ``models``,
  ``measure`` (the one step timer), ``schedule`` (every learning-rate schedule), ``train``,
  ``finetune``;
* NASOA: ``search`` and ``zoo`` (offline NAS), ``metafeatures`` and ``metadata``
  (the meta-dataset), ``online`` (the Hedge-Backpropagation predictor), ``generator`` (G(D, T)),
  ``hpo`` and ``multifidelity`` (the RS / BOHB baselines);
* beside it: ``estimate`` (feature-history performance estimation), ``nss`` (Network Space Search);
* the study: ``studies`` (one module per notebook's experiment: plan, run, tables, claims) and
  ``verdict`` (the one rule that decides every claim: holds / does not hold / inconclusive).
"""

__version__ = "0.1.0"
