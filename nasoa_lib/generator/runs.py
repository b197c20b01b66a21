"""One fine-tuning run, computed once and replayed: the unit every method of notebook 07 spends.

:func:`cached_run` is :func:`nasoa_lib.finetune.finetune_cached` plus the call's whole wall-clock
(``wall_seconds``: copying the network, tensors, training, evaluation), stored in the same record
kind and key. Runs are deterministic given their spec, so when two methods (or two seeds of a
search) ask for the same (task, model, regime, seed), the second reads the record instead of
training again, and is still *charged* the recorded wall-clock: a search's budget counts what the
run cost when it ran, not what the replay cost.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

from nasoa_lib.finetune import FINETUNE_KIND, Regime, finetune, run_spec
from nasoa_lib.store import ArtifactStore, spec_key

if TYPE_CHECKING:
    from nasoa_lib.data import Task
    from nasoa_lib.train import Pretrained


def run_key(pretrained: Pretrained, task: Task, regime: Regime, seed: int) -> str:
    """Store key of the run (the same key :func:`~nasoa_lib.finetune.finetune_cached` uses)."""
    return spec_key(run_spec(pretrained.key, pretrained.name, task.spec, regime, None, seed, 1))


def cached_run(store: ArtifactStore, pretrained: Pretrained, task: Task, regime: Regime, *, seed: int, profile: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's record: read from ``store`` or computed, timed and stored (kind ``finetune``)."""
    spec = run_spec(pretrained.key, pretrained.name, task.spec, regime, None, seed, 1)
    key = spec_key(spec)
    found = store.get(FINETUNE_KIND, key)
    if found is not None:
        return found
    start = time.perf_counter()
    result = finetune(pretrained, task, regime, seed=seed)
    wall = time.perf_counter() - start
    record = {**spec, **result.to_dict(), "wall_seconds": wall, **dict(extra or {})}
    provenance = None
    if profile is not None:
        from nasoa_lib.provenance import provenance as make_provenance

        provenance = make_provenance(profile, seed, "cpu")
    store.put(FINETUNE_KIND, key, record, provenance=provenance)
    return record


def charged_seconds(record: Mapping[str, Any]) -> float:
    """Seconds a method is charged for a run: its recorded wall-clock (a record written by
    :func:`~nasoa_lib.finetune.finetune_cached` has none: then training + evaluation)."""
    if record.get("wall_seconds") is not None:
        return float(record["wall_seconds"])
    return float(record["train_seconds"]) + float(record["eval_seconds"])
