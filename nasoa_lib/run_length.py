"""Run length in epochs of the task: one definition for the meta-dataset (notebook 05), the
generator G(D, T) and the final comparison (notebook 07).

Why epochs. NASOA 4.4 states its budgets as whole trainings of a task, "ResNet-18 for 10 epochs
... ResNet-101 for 50 epochs" (SPEC section 9); a regime's optimizer steps only mean something
against the task's size. The meta-dataset must cover the run lengths the generator is later asked
for, so all three places state a run's length as *epochs of the task* and convert with the same
functions here (issues 21 and 22): :func:`steps_per_epoch`, :func:`iterations_for`,
:func:`epochs_of`. The meta-feature the predictor sees stays the paper's "iterations" (the step
count); epochs are how lengths are chosen and reported.

**The ladder.** :class:`RunLengthConfig` (the profile's ``run_length:`` section) gives the run
lengths in use, :meth:`RunLengthConfig.ladder`: integer epochs, geometric with ratio ``factor``
from ``min_epochs`` to ``max_epochs`` (deduplicated, always ending at ``max_epochs``), e.g.
1, 2, 3, 5, 8, 11, 17, 26, 38, 50 for 1..50 at 1.5.

**Checkpointed runs** (:data:`SCHEDULE`). A run under a *constant* learning rate that records its
state after ``e`` epochs gives exactly the run of ``e`` epochs: with the same seed the batch order
is the same (``finetune._batch_order`` draws one permutation per epoch in sequence, so its first
``e`` epochs do not depend on how many follow) and no step's learning rate depends on the total
length (cosine and step schedules do). One long run therefore yields a whole learning curve of
valid shorter runs at the price of the longest (``tests/test_run_length.py`` pins that a 2-epoch
run's accuracy equals the 2-epoch checkpoint of a 4-epoch run, bit for bit).
:func:`checkpoint_steps` turns the ladder into the optimizer steps at which to evaluate
(``finetune(..., eval_steps=...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from nasoa_lib.errors import InvalidRegimeError, ProfileConfigError

if TYPE_CHECKING:
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.profiles import Profile

SCHEDULE = "constant"


@dataclass(frozen=True)
class RunLengthConfig:
    """The profile's ``run_length:`` section: the epochs of the task a run may last."""

    min_epochs: int = 1
    max_epochs: int = 50
    factor: float = 1.5

    def __post_init__(self) -> None:
        for name in ("min_epochs", "max_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ProfileConfigError(f"run_length.{name}={value!r}: must be an int >= 1",
                                         hint="run lengths are whole epochs of the task, e.g. min_epochs: 1")
        if self.max_epochs < self.min_epochs:
            raise ProfileConfigError(
                f"run_length: max_epochs={self.max_epochs} < min_epochs={self.min_epochs}",
                hint="max_epochs is the longest run (NASOA 4.4: ResNet-101 for 50 epochs); make it >= min_epochs")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or not (
                math.isfinite(self.factor) and self.factor > 1):
            raise ProfileConfigError(f"run_length.factor={self.factor!r}: must be a finite number > 1",
                                     hint="the ratio between neighbouring run lengths, e.g. 1.5")

    def ladder(self) -> tuple[int, ...]:
        """Integer epochs, geometric from ``min_epochs`` by ``factor`` (rounded, deduplicated),
        always ending at ``max_epochs``."""
        out: list[int] = []
        value = float(self.min_epochs)
        while round(value) < self.max_epochs:
            epochs = int(round(value))
            if not out or epochs > out[-1]:
                out.append(epochs)
            value *= self.factor
        out.append(self.max_epochs)
        return tuple(out)

    @classmethod
    def from_profile(cls, profile: "Profile | str") -> "RunLengthConfig":
        from nasoa_lib.profiles import resolve_profile

        return resolve_profile(profile).section("run_length", cls)


def _check_sizes(train_images: int, batch_size: int) -> None:
    if isinstance(train_images, bool) or not isinstance(train_images, int) or train_images < 2:
        raise InvalidRegimeError(f"train_images={train_images!r}: need an int >= 2",
                                 hint="a task needs at least two training images (BatchNorm)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise InvalidRegimeError(f"batch_size={batch_size!r}: need an int >= 2",
                                 hint="the profile's finetune batch_size")


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimizer steps of one epoch, as :func:`nasoa_lib.finetune.finetune` batches the task:
    batch ``min(batch_size, n)``, ``n // batch`` full batches (the remainder of a permutation is
    dropped), at least 1."""
    _check_sizes(train_images, batch_size)
    batch = min(batch_size, train_images)
    return max(1, train_images // batch)


def iterations_for(epochs: float, train_images: int, batch_size: int) -> int:
    """Optimizer steps of a run of ``epochs`` epochs (rounded, at least 1)."""
    if not (isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs > 0):
        raise InvalidRegimeError(f"epochs={epochs!r}: must be a finite number > 0",
                                 hint="run lengths are epochs of the task, e.g. 10")
    return max(1, int(round(epochs * steps_per_epoch(train_images, batch_size))))


def epochs_of(iterations: int, train_images: int, batch_size: int) -> float:
    """Epochs of the task that ``iterations`` optimizer steps make."""
    if iterations < 0:
        raise InvalidRegimeError(f"iterations={iterations!r}: must be >= 0", hint="give a step count")
    return iterations / steps_per_epoch(train_images, batch_size)


def checkpoint_steps(ladder: Sequence[int], train_images: int, batch_size: int) -> tuple[int, ...]:
    """The optimizer steps at which a checkpointed run evaluates: each rung of ``ladder`` (epochs)
    in steps, ascending and deduplicated."""
    if not ladder:
        raise InvalidRegimeError("an empty ladder has no checkpoints", hint="use RunLengthConfig.ladder()")
    return tuple(sorted({iterations_for(e, train_images, batch_size) for e in ladder}))


def checkpointed(settings: "FinetuneSettings") -> "FinetuneSettings":
    """``settings`` (a profile's ``finetune:`` section) with the :data:`SCHEDULE` of checkpointed
    runs: the settings of every regime the meta-dataset samples and G(D, T) recommends, so a run of
    ``e`` epochs is what the predictor's rows of ``e`` epochs measured (and a cell of notebook 07's
    replay table). The profile's own schedule stays for notebook 01's regimes."""
    from dataclasses import replace

    return replace(settings, lr_schedule=SCHEDULE)
