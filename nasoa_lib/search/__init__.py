"""Offline NAS for the ET-NAS zoo (NASOA section 3.1, Eq. 1; section 4.2; appendix Fig. 9).

Maximise proxy accuracy on the source set and minimise measured training step time subject to
step time <= T_m, with pymoo's NSGA-II, our sampling/mutation/duplicate elimination and exactly
N offspring per generation (N parallel evaluators). Block-level search first on a fixed macro
skeleton, then macro-level search with the best blocks; a random-search baseline with the same
budget. Every evaluation is a store record; a killed search resumes from its last generation.

    >>> from nasoa_lib import search
    >>> ctx = search.SearchContext.create("smoke")
    >>> with ctx.backend() as backend:
    ...     blocks = search.block_search(ctx, backend)
"""

from nasoa_lib.search.config import ProxySpec, SearchConfig, ZooConfig
from nasoa_lib.search.evaluate import (
    COST_KIND,
    EVAL_KIND,
    Backend,
    StepSpec,
    eval_key,
    evaluate_codes,
    make_backend,
    measure_costs,
)
from nasoa_lib.search.operators import (
    CodeDuplicates,
    CodeMutation,
    CodeProblem,
    CodeSampling,
    CodeSpace,
    CopyParents,
    sample_distinct,
)
from nasoa_lib.search.run import (
    SEARCH_KIND,
    STATE_KIND,
    NSGA2Proposer,
    RandomProposer,
    SearchResult,
    SearchSpec,
    SearchState,
    hypervolume_curve,
    load_state,
    objectives,
    pareto_front,
    run_search,
)
from nasoa_lib.search.stages import (
    REFERENCE_BLOCKS,
    SearchContext,
    best_blocks,
    block_search,
    check_reachable,
    macro_search,
    macro_spec,
    random_search,
    random_spec,
    reference_blocks,
    reference_codes,
    search_plan,
)

__all__ = [
    "ProxySpec", "SearchConfig", "ZooConfig", "COST_KIND", "EVAL_KIND", "Backend",
    "StepSpec", "eval_key", "evaluate_codes", "make_backend", "measure_costs",
    "CodeDuplicates", "CodeMutation", "CodeProblem", "CodeSampling", "CodeSpace", "CopyParents",
    "sample_distinct", "SEARCH_KIND", "STATE_KIND", "NSGA2Proposer", "RandomProposer", "SearchResult",
    "SearchSpec", "SearchState", "hypervolume_curve", "load_state", "objectives", "pareto_front",
    "run_search", "REFERENCE_BLOCKS", "SearchContext", "best_blocks", "block_search", "check_reachable",
    "macro_search", "macro_spec", "random_search", "random_spec", "reference_blocks", "reference_codes", "search_plan",
]
