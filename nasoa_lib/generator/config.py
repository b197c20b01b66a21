"""The profile's ``generator:`` section: the grid G(D, T) ranks and how its time model is measured.

NASOA section 3.2: "the optimal selection of model and hyperparameters is obtained by ranking the
predicted accuracy of all possible grid combinations". The grid is model x lr x frozen stages x
run length; its values lie in the collector's regime ranges (``nasoa_lib.metadata``), so the
predictor is only asked about regimes of the kind it was trained on.

**Run length is stated in epochs of the task**, on the one ladder of :mod:`nasoa_lib.run_length`
(the profile's ``run_length:`` section, shared with the meta-dataset): a candidate of ``e`` epochs
trains ``iterations_for(e, training images, batch)`` steps, so every model's candidates reach
``min(T / its step time, max_epochs)`` whatever the task's size (the predictor's meta-feature stays
the iteration count). The ladder is geometric, not "exactly the maximum that fits T": the same
regimes recur across time budgets, methods and seeds, so identical runs are computed once and
replayed from the artifact store (and are cells of notebook 07's replay table); the price is that
the largest ladder value under T leaves up to ``1 - 1/factor`` of the training time unused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from nasoa_lib.errors import ProfileConfigError

if TYPE_CHECKING:
    from nasoa_lib.profiles import Profile


@dataclass(frozen=True)
class GeneratorConfig:
    """Grid values, the runner-up count, the smallest usable task, and the timing probe sizes.

    ``epochs``: the run-length ladder (epochs of the task), filled by :meth:`from_profile` from the
    profile's ``run_length:`` section (:class:`nasoa_lib.run_length.RunLengthConfig`); never set in
    the ``generator:`` section, so there is one way to state run length.

    ``probe_*``: the time model is fitted to real :func:`nasoa_lib.finetune.finetune` calls on a
    probe task (see :mod:`nasoa_lib.generator.timing`): ``probe_images`` training images (and as many
    test images), ``probe_iterations`` = (short, long): the long run's median step is the step time,
    two short runs on ``probe_images`` and ``4 * probe_images`` images give the frozen prefix's cost
    per image by difference;
    ``probe_repeats`` repetitions, medians kept.

    ``early_stopping``: on a task with validation images, plan the longest run that fits T and stop
    it where validation peaks (:mod:`nasoa_lib.generator.ranking`); false ranks every rung as a run
    of its own.
    """

    lrs: tuple[float, ...]
    frozen_stages: tuple[int, ...]
    epochs: tuple[int, ...] | None = None
    top_k: int = 5
    min_images_per_class: int = 2
    probe_images: int = 32
    probe_iterations: tuple[int, int] = (2, 10)
    probe_repeats: int = 1
    early_stopping: bool = True

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
        if self.epochs is not None:
            if not self.epochs or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in self.epochs):
                raise bad(f"epochs={self.epochs!r} must be a non-empty list of ints >= 1",
                          "state run length in the profile's run_length: section (RunLengthConfig.ladder())")
            object.__setattr__(self, "epochs", tuple(sorted(set(int(e) for e in self.epochs))))
        if not isinstance(self.early_stopping, bool):
            raise bad(f"early_stopping={self.early_stopping!r} must be true or false",
                      "true stops runs of tasks with validation images where validation peaks")
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
        from nasoa_lib.run_length import RunLengthConfig

        prof = resolve_profile(profile)
        config = prof.section("generator", cls)
        if config.epochs is not None:
            raise ProfileConfigError(f"profile {prof.name!r} section 'generator' sets epochs",
                                     hint="state run length once, in the run_length: section (min_epochs, max_epochs, factor)")
        return replace(config, epochs=RunLengthConfig.from_profile(prof).ladder())

    @property
    def ladder(self) -> tuple[int, ...]:
        """The run-length ladder in epochs of the task (smallest first)."""
        if self.epochs is None:
            raise ProfileConfigError("this GeneratorConfig has no run-length ladder (epochs=None)",
                                     hint="build it with GeneratorConfig.from_profile(profile), or pass epochs=(1, 2, 3, ...)")
        return self.epochs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
