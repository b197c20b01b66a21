"""The study's outputs, the notebook runner and the reports index (SPEC 1, 12).

* :mod:`.outputs`: what notebooks write into ``reports/<profile>/`` (tables, figures, headline
  numbers) and the run records kept there;
* :mod:`.runner`: which notebooks run, their fingerprints, papermill execution, HTML rendering;
* :mod:`.index`: ``reports/index.html``.

Library code imports from these modules; notebooks still import :mod:`nasoa_lib.report`.
"""
