"""Running a recommendation and learning from it: NASOA's online scenario (section 3.2.1).

"In cloud computing service or a GPU cluster, a sequence of fine-tuning requests with different
data will arrive from time to time. The predictive model can be further improved ..." -- after
each fine-tuning, :func:`run` hands the observed accuracy to the predictor's online update
(predict first, then learn: :meth:`nasoa_lib.online.AccuracyPredictor.update`) and, given a store
and a name, persists its new state, so the next request is ranked by a predictor that has seen this
one.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from nasoa_lib.generator.ranking import Recommendation


@dataclass(frozen=True)
class Outcome:
    """What running a :class:`Recommendation` gave: observed accuracy and time, and the
    predictor's loss on it (its prediction was made before learning from it)."""

    model: str
    accuracy: float
    predicted_accuracy: float
    wall_seconds: float
    expected_seconds: float
    time_budget: float
    train_seconds: float
    steps: int
    predictor_loss: float | None
    key: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(recommendation: Recommendation, task: Any, pretrained: Any, *, predictor: Any = None, store: Any = None,
        predictor_name: str | None = None, seed: int = 0, cached: bool = True, profile: str | None = None,
        progress: bool = False) -> tuple[Outcome, Any]:
    """Fine-tune ``pretrained`` (the recommended model's source-pretrained network) on ``task`` with
    the recommended regime, then update ``predictor``.

    ``cached=True`` reads/writes the run through :func:`~nasoa_lib.generator.runs.cached_run` (the
    notebook's replayable runs); ``cached=False`` trains now and also returns the fine-tuned network
    (the command line saves it). With ``store`` and ``predictor_name`` the updated predictor is
    written back (:func:`nasoa_lib.online.store_predictor`, atomic). Returns ``(outcome, network or None)``.
    """
    from nasoa_lib.finetune import finetune
    from nasoa_lib.generator.runs import cached_run, charged_seconds

    regime = recommendation.regime()
    network = None
    with elapsed_bar(recommendation.chosen.expected_seconds, f"fine-tuning {recommendation.chosen.model}", progress):
        if cached:
            if store is None:
                raise ValueError("cached=True needs the artifact store")
            record = cached_run(store, pretrained, task, regime, seed=seed, profile=profile)
            accuracy, wall = float(record["accuracy"]), charged_seconds(record)
            train, steps, key = float(record["train_seconds"]), int(record["steps"]), record["key"]
        else:
            start = time.perf_counter()
            result = finetune(pretrained, task, regime, seed=seed, keep_model=True)
            wall = time.perf_counter() - start
            accuracy, train, steps, key, network = result.accuracy, result.train_seconds, result.steps, result.key, result.model
    loss = None
    if predictor is not None:
        loss = float(predictor.update(recommendation.features(), accuracy))
        if store is not None and predictor_name is not None:
            from nasoa_lib.online import store_predictor

            store_predictor(store, predictor_name, predictor)
    outcome = Outcome(recommendation.chosen.model, float(accuracy), recommendation.chosen.predicted_accuracy,
                      float(wall), recommendation.chosen.expected_seconds, recommendation.time_budget, float(train),
                      int(steps), loss, key)
    return outcome, network


@contextmanager
def elapsed_bar(expected_seconds: float, desc: str, enabled: bool = True) -> Iterator[None]:
    """A progress bar of elapsed against expected wall-clock while a run trains (the engine has no
    per-step callback; the bar stops at 99 % until the run really ends)."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    total = max(expected_seconds, 1e-3)
    bar = tqdm(total=round(total, 1), desc=desc, unit="s", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s")
    stop = threading.Event()
    start = time.perf_counter()

    def tick() -> None:
        while not stop.wait(0.5):
            bar.n = round(min(time.perf_counter() - start, 0.99 * total), 1)
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.n = round(max(total, time.perf_counter() - start), 1)
        bar.total = bar.n
        bar.refresh()
        bar.close()
