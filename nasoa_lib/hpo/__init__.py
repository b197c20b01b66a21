"""The HPO baselines of NASOA Table 4 (random search, BOHB).

``space``: model x lr x frozen stages x iterations under a time constraint; ``search``: random
search and SMAC3's BOHB, charged real fine-tuning wall-clock; ``methods``: the rows of Tables 4-5
and the paper's numbers. The final comparison that runs them (notebook 07) is a study:
:mod:`nasoa_lib.studies.nasoa_vs_hpo`.
"""

from nasoa_lib.hpo.methods import METHODS, Method
from nasoa_lib.hpo.search import SearchResult, TrialRecord, bohb, random_search
from nasoa_lib.hpo.space import SearchSpace, Trial
from nasoa_lib.paper import PAPER_TABLE4, PAPER_TABLE5

__all__ = ["METHODS", "PAPER_TABLE4", "PAPER_TABLE5", "Method", "SearchResult", "SearchSpace", "Trial",
           "TrialRecord", "bohb", "random_search"]
