"""The profile's ``generator:`` section: the grid G(D, T) ranks and how its time model is measured.

NASOA section 3.2: "the optimal selection of model and hyperparameters is obtained by ranking the
predicted accuracy of all possible grid combinations". The grid is model x lr x frozen stages x
iterations; its values are the collector's regime ranges (``nasoa_lib.metadata``), so the predictor
is only asked about regimes of the kind it was trained on.

Iterations come from one fixed geometric ladder (``min_iterations`` .. ``max_iterations``, factor
``iteration_factor``), not from "exactly the maximum that fits T": the same iteration counts then
recur across time budgets, methods and seeds, so identical fine-tuning runs are computed once and
replayed from the artifact store; the price is that the largest ladder value under T leaves up to
``1 - 1/iteration_factor`` of the budget unused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nasoa_lib.errors import ProfileConfigError

if TYPE_CHECKING:
    from nasoa_lib.profiles import Profile


@dataclass(frozen=True)
class GeneratorConfig:
    """Grid values, the runner-up count, the smallest usable task, and the timing probe sizes.

    ``probe_*``: the time model is fitted to real :func:`nasoa_lib.finetune.finetune` calls on a
    probe task (see :mod:`nasoa_lib.generator.timing`): ``probe_images`` training images (and as many
    test images), ``probe_iterations`` = (short, long): the long run's median step is the step time,
    two short runs on ``probe_images`` and ``4 * probe_images`` images give the frozen prefix's cost
    per image by difference;
    ``probe_repeats`` repetitions, medians kept.
    """

    lrs: tuple[float, ...]
    frozen_stages: tuple[int, ...]
    min_iterations: int
    max_iterations: int
    iteration_factor: float
    top_k: int = 5
    min_images_per_class: int = 2
    probe_images: int = 32
    probe_iterations: tuple[int, int] = (2, 10)
    probe_repeats: int = 1

    def __post_init__(self) -> None:
        from nasoa_lib.staged import MAX_FROZEN_STAGES  # torch loads only when a generator config is built

        def bad(message: str, hint: str) -> ProfileConfigError:
            return ProfileConfigError(f"generator section: {message}", hint=hint)

        if not self.lrs or any(not (isinstance(v, (int, float)) and v > 0) for v in self.lrs):
            raise bad(f"lrs={self.lrs!r} must be a non-empty list of numbers > 0", "e.g. [0.001, 0.01, 0.1]")
        if not self.frozen_stages or any(
            not isinstance(k, int) or not 0 <= k <= MAX_FROZEN_STAGES for k in self.frozen_stages
        ):
            raise bad(f"frozen_stages={self.frozen_stages!r} must be ints in 0..{MAX_FROZEN_STAGES}", "e.g. [0, 2, 4]")
        if not 1 <= self.min_iterations <= self.max_iterations:
            raise bad(f"iterations {self.min_iterations}..{self.max_iterations} is empty", "need 1 <= min <= max")
        if not self.iteration_factor > 1:
            raise bad(f"iteration_factor={self.iteration_factor} must be > 1", "e.g. 1.41 (sqrt 2)")
        if self.top_k < 0 or self.min_images_per_class < 1:
            raise bad("top_k must be >= 0 and min_images_per_class >= 1", "e.g. top_k: 5, min_images_per_class: 2")
        short, long = self.probe_iterations
        if not 1 <= short < long or self.probe_images < 2 or self.probe_repeats < 1:
            raise bad(f"probe_iterations={self.probe_iterations}, probe_images={self.probe_images}, "
                      f"probe_repeats={self.probe_repeats}", "need 1 <= short < long, >= 2 images, >= 1 repeat")
        object.__setattr__(self, "lrs", tuple(float(v) for v in self.lrs))
        object.__setattr__(self, "frozen_stages", tuple(int(k) for k in self.frozen_stages))
        object.__setattr__(self, "probe_iterations", (int(short), int(long)))

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "GeneratorConfig":
        from nasoa_lib.profiles import resolve_profile

        prof = resolve_profile(profile)
        return prof.section("generator", cls)

    @property
    def ladder(self) -> tuple[int, ...]:
        return iteration_ladder(self.min_iterations, self.max_iterations, self.iteration_factor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iteration_ladder(low: int, high: int, factor: float) -> tuple[int, ...]:
    """``low, low*f, low*f^2, ...`` rounded to distinct ints, ending exactly at ``high``."""
    if not 1 <= low <= high or not factor > 1:
        raise ProfileConfigError(f"need 1 <= low <= high and factor > 1, got {low}, {high}, {factor}",
                                 hint="set min_iterations >= 1, max_iterations >= min_iterations and "
                                 "iteration_factor > 1 in the generator: section")
    steps = math.floor(math.log(high / low) / math.log(factor) + 1e-9)
    values = {int(round(low * factor**j)) for j in range(steps + 1)} | {int(high)}
    return tuple(sorted(v for v in values if low <= v <= high))
