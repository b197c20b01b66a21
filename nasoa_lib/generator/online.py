"""Running a recommendation and learning from it: NASOA's online scenario (section 3.2.1).

"In cloud computing service or a GPU cluster, a sequence of fine-tuning requests with different
data will arrive from time to time. The predictive model can be further improved ..." -- after
each fine-tuning, :func:`run` hands the observed accuracy to the predictor's online update
(predict first, then learn: :meth:`nasoa_lib.online.AccuracyPredictor.update`) and, given a store
and a name, persists its new state, so the next request is ranked by a predictor that has seen this
one.

The accuracy it learns from is the run's **validation** accuracy when the task has validation
images (notebook 07's meta-test tasks: a later request on the same task must not be chosen with the
help of its test images), else the held-out accuracy the run reports (a user's data).

**Early-stopped runs** (a candidate with ``eval_epochs``, planned by G(D, T) on a task with
validation images; :mod:`nasoa_lib.generator.ranking`): the replayable run is evaluated at each of
those rungs and reports the checkpoint :func:`nasoa_lib.finetune.early_stopped` keeps (the best
validation accuracy; its test accuracy is the outcome). The predictor learns from every checkpoint
in order, one row each (its step count as ``iterations``, its validation accuracy as target): the
rows notebook 05's meta-dataset is made of, so the stream learns what it was trained on. A run
trained now (``cached=False``, a user's data) trains to the end and is one row.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from nasoa_lib.errors import InvalidRegimeError
from nasoa_lib.generator.ranking import Recommendation

if TYPE_CHECKING:
    from nasoa_lib.data import Task
    from nasoa_lib.finetune import Checkpoint
    from nasoa_lib.online.predictor import AccuracyPredictor
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.train import Pretrained


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
    validation_accuracy: float | None = None
    #: optimizer steps of the checkpoint the outcome reports (an early-stopped run: where validation
    #: peaked; else the run's end)
    selected_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(recommendation: Recommendation, task: Task, pretrained: Pretrained, *, predictor: AccuracyPredictor | None = None, store: ArtifactStore | None = None,
        predictor_name: str | None = None, seed: int = 0, cached: bool = True, profile: str | None = None,
        progress: bool = False, train_deadline: float | None = None,
        on_step: Callable[[int, float], None] | None = None) -> tuple[Outcome, Any]:
    """Fine-tune ``pretrained`` (the recommended model's source-pretrained network) on ``task`` with
    the recommended regime, then update ``predictor``.

    ``cached=True`` reads/writes the run through :func:`~nasoa_lib.generator.runs.cached_run` (the
    notebook's replayable runs); ``cached=False`` trains now and also returns the fine-tuned network
    (the command line saves it). With ``store`` and ``predictor_name`` the update is applied to the
    latest stored predictor under a cross-process lock and written back
    (:func:`nasoa_lib.online.update_stored_predictor`; ``predictor`` is brought up to that state in
    place), so concurrent runs never lose an update. Returns ``(outcome, network or None)``.

    ``train_deadline`` and ``on_step`` go to the engine (:func:`nasoa_lib.finetune.finetune`) of a
    ``cached=False`` run: training ends by that ``time.perf_counter()`` instant (the caller keeps
    time for evaluation and saving, :func:`nasoa_lib.generator.timing.run_reserve`), and ``on_step``
    sees every optimizer step. A cached run is a replayable record and takes neither.
    """
    from nasoa_lib.finetune import finetune
    from nasoa_lib.generator.runs import cached_run

    regime = recommendation.regime()
    network = None
    if cached and (train_deadline is not None or on_step is not None):
        raise InvalidRegimeError("a cached run is replayable: it takes no train_deadline or on_step",
                                 hint="pass cached=False to train now under a deadline, or drop train_deadline/on_step")
    with budget_bar(recommendation.chosen.expected_seconds, f"fine-tuning {recommendation.chosen.model}",
                    progress) as tick:
        if cached:
            if store is None:
                raise InvalidRegimeError("cached=True needs the artifact store",
                                         hint="pass store=ArtifactStore.for_profile(profile), or cached=False")
            record = cached_run(store, pretrained, task, regime, seed=seed, profile=profile,
                                eval_steps=_eval_steps(recommendation, task))
            accuracy, wall = float(record.result.accuracy), record.charged_seconds
            train, steps, key = float(record.result.train_seconds), int(record.result.steps), record.result.key
            checkpoints = record.result.checkpoints
        else:
            start = time.perf_counter()
            def step_done(steps: int, train_seconds: float) -> None:
                tick()
                if on_step is not None:
                    on_step(steps, train_seconds)

            result = finetune(pretrained, task, regime, seed=seed, keep_model=True, train_deadline=train_deadline,
                              on_step=step_done)
            wall = time.perf_counter() - start
            accuracy, train, steps, key, network = result.accuracy, result.train_seconds, result.steps, result.key, result.model
            checkpoints = result.checkpoints
    selected, rows = _selected_and_rows(recommendation, checkpoints, float(accuracy))
    validation = selected.validation_accuracy if selected is not None else None
    if selected is not None:
        accuracy = selected.test_accuracy
    loss = None
    if predictor is not None:
        from nasoa_lib.online import update_stored_predictor

        stored = store is not None and predictor_name is not None
        losses = [float(update_stored_predictor(store, predictor_name, features, learned, predictor=predictor)[1]
                        if stored else predictor.update(features, learned)) for features, learned in rows]
        loss = sum(losses) / len(losses)
    outcome = Outcome(recommendation.chosen.model, float(accuracy), recommendation.chosen.predicted_accuracy,
                      float(wall), recommendation.chosen.expected_seconds, recommendation.time_budget, float(train),
                      int(steps), loss, key, None if validation is None else float(validation),
                      int(selected.step) if selected is not None else int(steps))
    return outcome, network


def _eval_steps(recommendation: Recommendation, task: Task) -> tuple[int, ...] | None:
    """The optimizer steps at which an early-stopped candidate's run is evaluated (None: only at the
    end): its ``eval_epochs`` on the task's training images, when the task has validation images."""
    from nasoa_lib.run_length import checkpoint_steps

    chosen = recommendation.chosen
    x_val = getattr(task, "x_val", None)
    if not chosen.early_stopping or x_val is None or not len(x_val):
        return None
    return checkpoint_steps(chosen.eval_epochs, len(task.y_train), int(recommendation.settings["batch_size"]))


def _selected_and_rows(recommendation: Recommendation, checkpoints: Sequence[Checkpoint],
                       accuracy: float) -> tuple[Checkpoint | None, list[tuple[dict[str, Any], float]]]:
    """The checkpoint the outcome reports (None: the run's end, no checkpoints) and the predictor
    rows ``(features, target)`` the run yields (module docstring)."""
    from nasoa_lib.finetune import early_stopped

    features = recommendation.features()
    if not checkpoints:
        return None, [(features, accuracy)]
    if not recommendation.chosen.early_stopping or checkpoints[-1].validation_accuracy is None:
        last = checkpoints[-1]
        target = last.test_accuracy if last.validation_accuracy is None else last.validation_accuracy
        return last, [(features, float(target))]
    rows = [({**features, "iterations": int(c.step)}, float(c.validation_accuracy)) for c in checkpoints]
    return early_stopped(checkpoints), rows


@contextmanager
def budget_bar(total_seconds: float, desc: str, enabled: bool = True, *, start: float | None = None,
               file: Any = None) -> Iterator[Callable[..., None]]:
    """A live progress bar of wall-clock seconds (since ``start``, default now) against
    ``total_seconds`` (a budget). Yields ``tick(*_)``, which moves the bar to the time now: pass it
    to the engine as its per-step callback and call it between phases. The total is at least 0.1 s
    and both numbers have one decimal, so the bar never reads ``0/0s``; past the total it shows
    the overrun (``12.3/10.0s``) rather than stopping at 100 %.
    """
    start = time.perf_counter() if start is None else start
    if not enabled:
        yield lambda *_: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=round(max(float(total_seconds), 0.1), 1), desc=desc, unit="s", file=file,
               initial=round(max(time.perf_counter() - start, 0.0), 1), bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f}s")
    shown = 0.0

    def tick(*_: Any) -> None:
        nonlocal shown
        now = time.perf_counter()
        if now - shown >= 0.1:
            shown = now
            bar.n = round(now - start, 1)
            bar.refresh()

    try:
        yield tick
    finally:
        bar.n = round(time.perf_counter() - start, 1)
        bar.refresh()
        bar.close()
