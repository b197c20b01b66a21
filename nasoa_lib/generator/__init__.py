"""NASOA's schedule generator G(D, T) (section 3.2, Eq. 2; notebook 07 and ``nasoa recommend``).

``config``: the grid (lrs, frozen stages, the run-length ladder in epochs); ``timing``: the fine-tuning time table
of this device; ``features``: D's meta-features; ``ranking``: rank the grid by predicted accuracy
under T; ``online``: run a recommendation and update the predictor; ``runs``: cached, timed runs;
``budget``: ``90s`` / ``10m`` / ``1h``; ``service`` and ``commands``: the command line.

Names are imported on first use (PEP 562), so ``nasoa --help`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "format_seconds": "budget", "parse_budget": "budget",
    "GeneratorConfig": "config",
    "TaskFeatures": "features", "check_size": "features", "dataset_similarity": "features", "describe": "features",
    "task_similarity": "features",
    "Outcome": "online", "run": "online",
    "Candidate": "ranking", "Recommendation": "ranking", "candidate_grid": "ranking", "rank": "ranking",
    "recommend": "ranking", "regime_costs": "ranking", "smallest_feasible_budget": "ranking",
    "cached_run": "runs",
    "FinetuneTimeTable": "timing", "RunCost": "timing", "finetune_time_table": "timing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nasoa_lib.generator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nasoa_lib.generator.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
