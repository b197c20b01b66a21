"""The HPO baselines of NASOA Table 4 (random search, BOHB) and the table they replay.

``space``: model x lr x frozen stages x run length (epochs) under a time constraint; ``search``:
random search and SMAC3's BOHB on a clock of charged seconds, selecting by validation accuracy;
``replay``: the replayed fine-tuning benchmark (one checkpointed grid of real runs per task);
``methods``: the rows of Tables 4-5 and the paper's numbers. The final comparison that runs them
(notebook 07) is a study: :mod:`nasoa_lib.studies.nasoa_vs_hpo`.
"""

from nasoa_lib.hpo.methods import METHODS, Method
from nasoa_lib.hpo.replay import CheckpointedRun, ReplayTable, cells_from_run, plan_runs
from nasoa_lib.hpo.search import Observation, SearchResult, TrialRecord, bohb, random_search
from nasoa_lib.hpo.space import SearchSpace, Trial
from nasoa_lib.paper import PAPER_TABLE4, PAPER_TABLE5

__all__ = ["METHODS", "PAPER_TABLE4", "PAPER_TABLE5", "CheckpointedRun", "Method", "Observation", "ReplayTable",
           "SearchResult", "SearchSpace", "Trial", "TrialRecord", "bohb", "cells_from_run", "plan_runs",
           "random_search"]
