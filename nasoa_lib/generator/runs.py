"""One fine-tuning run, computed once and replayed: the unit every method of notebook 07 spends.

:func:`cached_run` is :func:`nasoa_lib.finetune.finetune_cached` plus the call's whole wall-clock
(``wall_seconds``: copying the network, tensors, training, evaluation), stored in the same record
kind and key. Runs are deterministic given their spec, so when two methods (or two seeds of a
search) ask for the same (task, model, regime, seed), the second reads the record instead of
training again, and is still *charged* the recorded wall-clock: a search's budget counts what the
run cost when it ran, not what the replay cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from nasoa_lib.finetune import FinetuneRecord, FinetuneRunSpec, Regime, finetune_cached

if TYPE_CHECKING:
    from nasoa_lib.data import Task
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.train import Pretrained


def run_key(pretrained: Pretrained, task: Task, regime: Regime, seed: int) -> str:
    """Store key of the run (the same key :func:`~nasoa_lib.finetune.finetune_cached` uses)."""
    return FinetuneRunSpec(pretrained.key, pretrained.name, task.spec, regime, None, seed, 1).key


def cached_run(store: ArtifactStore, pretrained: Pretrained, task: Task, regime: Regime, *, seed: int,
               profile: str | None = None, extra: Mapping[str, Any] | None = None,
               eval_steps: Sequence[int] | None = None) -> FinetuneRecord:
    """The run's record: read from ``store`` or computed, timed and stored (kind ``finetune``);
    ``eval_steps``: its checkpoints (an early-stopped run)."""
    return finetune_cached(store, pretrained, task, regime, seed=seed, profile=profile, extra=extra, timed=True,
                           eval_steps=eval_steps)
