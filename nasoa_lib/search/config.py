"""Settings of the offline NAS (NASOA section 3.1, Eq. 1; section 4.2): typed, frozen, from the profile.

The profile's ``search:`` section (``configs/profiles.yaml``) holds every size knob: the number of
parallel evaluators ``workers`` (= N, the offspring per generation, as the paper modifies NSGA-II),
the step-time bound ``t_max_ms`` (T_m of Eq. 1), the short proxy training, and the sizes of the
block-level and macro-level searches. Only sizes differ between profiles, never the algorithm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from nasoa_lib.errors import ProfileConfigError
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.space import MACRO_SPACE, BlockSpace, MacroSpace, parse_macro
from nasoa_lib.train import PretrainRecipe


@dataclass(frozen=True)
class ProxySpec:
    """The short proxy training that scores a candidate (NASOA section 4.2: "a short training
    setting to evaluate each architecture"). It is :class:`~nasoa_lib.train.PretrainRecipe` on a
    per-class subset of the source set (``classes``: of a fixed class subset), run by the one
    training engine (:func:`nasoa_lib.train.pretrain`), scored on ``validation_per_class`` held-out
    training images per class (``None``: the test split, which a search should not select on).
    """

    epochs: int
    batch_size: int
    lr: float
    images_per_class: int | None
    test_images_per_class: int
    warmup_epochs: float = 0.0
    weight_decay: float = 5e-4
    classes: int | None = None
    validation_per_class: int | None = None

    def recipe(self, small_image_stem: bool = False) -> PretrainRecipe:
        return PretrainRecipe(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_epochs=self.warmup_epochs,
            augment=False,
            images_per_class=self.images_per_class,
            test_images_per_class=self.test_images_per_class,
            small_image_stem=small_image_stem,
            classes=self.classes,
            validation_per_class=self.validation_per_class,
        )

    def to_dict(self) -> dict[str, Any]:
        """As stored in evaluation keys; ``classes`` / ``validation_per_class`` only when set (so
        evaluations stored before they existed keep their keys)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("classes", "validation_per_class")}


@dataclass(frozen=True)
class SearchConfig:
    """The profile's ``search:`` section.

    ``workers`` parallel evaluators (N offspring per generation), each with ``threads_per_worker``
    torch threads; ``t_max_ms``: T_m of NASOA Eq. 1 (median training step at the ``measure:``
    section's batch size, measured by the parent process). ``block_*``: the block-level search on
    the fixed skeleton ``block_skeleton`` (a ``WIDTH_MACRO`` string); ``reference_widths``: stem
    widths of the Basic / Bottleneck / inverted-bottleneck reference blocks of appendix Fig. 9.
    ``macro_*``: the macro-level search over the ``macro_top_blocks`` best blocks and a macro
    sub-space. ``proxy_classes`` / ``proxy_validation_per_class``: the proxy's class subset and
    its validation hold-out (:class:`ProxySpec`). ``surrogate_repetitions``: seeds of each search replayed on the surrogate of the real
    evaluations (:mod:`nasoa_lib.search.surrogate`). ``random_evaluations``: budget of the random-search baseline (``None``: the same
    number of evaluations as the macro NSGA-II). ``measure_threads``: threads of the parent's
    step-time measurements (``None``: the profile's ``threads``, the whole device; on a shared,
    oversubscribed CPU a 2-thread OpenMP step can be 100x slower than 1 thread, so the smoke
    profile measures with 1).
    """

    workers: int
    threads_per_worker: int
    t_max_ms: float
    proxy_epochs: int
    proxy_batch_size: int
    proxy_lr: float
    proxy_images_per_class: int
    proxy_test_images_per_class: int
    block_skeleton: str
    block_population: int
    block_generations: int
    block_max_nodes: int
    reference_widths: tuple[int, ...]
    macro_population: int
    macro_generations: int
    macro_top_blocks: int
    macro_stem_widths: tuple[int, ...]
    macro_max_stage_depth: int
    macro_max_blocks: int
    macro_max_doublings: int
    random_evaluations: int | None = None
    seed: int = 0
    measure_threads: int | None = None
    surrogate_repetitions: int = 10
    proxy_classes: int | None = None
    proxy_validation_per_class: int | None = None

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads_per_worker < 1:
            raise ProfileConfigError(f"search needs workers >= 1 and threads_per_worker >= 1, got {self}",
                                     hint="set workers and threads_per_worker to 1 or more in the search: section")
        if self.t_max_ms <= 0:
            raise ProfileConfigError(f"t_max_ms (T_m of NASOA Eq. 1) must be positive, got {self.t_max_ms}",
                                     hint="set t_max_ms in the search: section to the step-time bound in ms")
        for name in ("block_population", "macro_population"):
            if getattr(self, name) < 2:
                raise ProfileConfigError(
                    f"{name} must be >= 2 (NSGA-II needs a population), got {getattr(self, name)}",
                    hint=f"set {name} to 2 or more in the search: section")
        for name in ("block_generations", "macro_generations", "macro_top_blocks"):
            if getattr(self, name) < 1:
                raise ProfileConfigError(f"{name} must be >= 1, got {getattr(self, name)}",
                                         hint=f"set {name} to 1 or more in the search: section")
        parse_macro(self.block_skeleton)
        object.__setattr__(self, "reference_widths", tuple(self.reference_widths))
        object.__setattr__(self, "macro_stem_widths", tuple(self.macro_stem_widths))

    @property
    def proxy(self) -> ProxySpec:
        return ProxySpec(
            epochs=self.proxy_epochs,
            batch_size=self.proxy_batch_size,
            lr=self.proxy_lr,
            images_per_class=self.proxy_images_per_class,
            test_images_per_class=self.proxy_test_images_per_class,
            classes=self.proxy_classes,
            validation_per_class=self.proxy_validation_per_class,
        )

    @property
    def skeleton(self):
        return parse_macro(self.block_skeleton)

    @property
    def block_space(self) -> BlockSpace:
        return BlockSpace(max_nodes=self.block_max_nodes)

    @property
    def macro_space(self) -> MacroSpace:
        return MacroSpace(
            stem_widths=self.macro_stem_widths,
            max_stage_depth=self.macro_max_stage_depth,
            max_blocks=self.macro_max_blocks,
            max_doublings=self.macro_max_doublings,
            multipliers=MACRO_SPACE.multipliers,
        )

    def evaluations(self, level: str) -> int:
        """Evaluations of one NSGA-II run: the initial population plus N per later generation."""
        pop, gens = (
            (self.block_population, self.block_generations)
            if level == "block"
            else (self.macro_population, self.macro_generations)
        )
        return pop + self.workers * (gens - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **changes: Any) -> "SearchConfig":
        return replace(self, **changes)

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "SearchConfig":
        prof = resolve_profile(profile)
        return prof.section("search", cls)


@dataclass(frozen=True)
class ZooConfig:
    """The profile's ``zoo:`` section: ``size`` = K Pareto models (NASOA section 3.1, "ET-NAS"),
    ``released``: released ET-NAS names pretrained beside ours (``None``: every released model whose
    measured step time is within ``t_max_ms`` of the search); ``inference_batch``: batch of the
    inference-time column of Table 2; ``timing_rounds``: ABBA rounds of Table 2's interleaved
    timing (the profile's ``measure: steps`` timed steps per model, spread over the rounds);
    ``floor_model``: a baseline whose proxy top-1 (same proxy, no T_m) is the zoo's accuracy floor
    (issue 17: a zoo member less accurate than the smallest baseline is not worth pretraining;
    ``None``: no floor)."""

    size: int
    released: tuple[str, ...] | None = None
    inference_batch: int = 64
    timing_rounds: int = 4
    floor_model: str | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ProfileConfigError(f"zoo size K must be >= 1, got {self.size}",
                                     hint="set size to 1 or more in the zoo: section")
        if self.timing_rounds < 1:
            raise ProfileConfigError(f"zoo timing_rounds must be >= 1, got {self.timing_rounds}",
                                     hint="set timing_rounds to 1 or more in the zoo: section (default 4)")
        if self.released is not None:
            object.__setattr__(self, "released", tuple(self.released))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "ZooConfig":
        prof = resolve_profile(profile)
        return prof.section("zoo", cls)


def small_image_stem(profile: Profile | str) -> bool:
    """The profile's stem choice (``models.small_image_stem``), shared with pretraining and timing."""
    from nasoa_lib.models import ModelsConfig

    return ModelsConfig.from_profile(profile).small_image_stem
