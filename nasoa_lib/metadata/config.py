"""What the meta-dataset samples and how much of it to collect: the profile's ``metadata:`` section.

NASOA section 4.3: "30K samples are collected by continually sampling a subset of each dataset and
fine-tuning with a randomized hyperparameters on it. Each subset varies from #. classes and #.
images." The paper gives no ranges; ours are documented here and recorded in the data card:

* task: a meta-train dataset uniformly at random; ``num_classes`` uniform in its range (capped by
  the dataset's classes); images per class log-uniform in ``images_per_class`` (capped by the
  smallest chosen class); ``test_per_class`` test images per class (capped likewise);
* regime: learning rate log-uniform in ``lr`` (Li et al. 2020's fine-tuning range 1e-3..1e-1),
  frozen stages uniform over ``frozen_stages``; batch size, momentum and weight decay are the
  profile's ``finetune:`` section; the learning rate is constant
  (:data:`nasoa_lib.run_length.SCHEDULE`);
* run length: in epochs of the task (:mod:`nasoa_lib.run_length`, the profile's ``run_length:``
  section, shared with the generator and notebook 07). Each run's length is a rung of the ladder
  drawn uniformly (so log-uniform in epochs: as many runs of 1-5 epochs as of 11-50), and the run
  is evaluated at every rung up to it. **Each checkpoint is one row** (its meta-feature
  ``iterations`` is the checkpoint's optimizer steps, ``epochs`` its epochs); under the constant
  rate the checkpoint after ``e`` epochs is exactly the run of ``e`` epochs, so a long run costs
  one training and yields a row per rung. Rows of one run share ``run`` and stay contiguous in the
  stream (sorted by run, then epochs);
* model: uniform over ``baselines`` (``None``: the profile's ``models.baselines``) plus, when
  ``zoo`` is true, every zoo member built so far (so collection can start with the baseline
  families and take in zoo models when they land).

Log-uniform draws spend as many runs on 10..20 images per class as on 100..200. ``validation_fraction``
of the runs (all their rows) are marked ``split = "validation"`` (the paper's 24K / 6K split is
0.2), by a draw of their own so extending the collection keeps earlier runs' splits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nasoa_lib.errors import ProfileConfigError
from nasoa_lib.staged import MAX_FROZEN_STAGES

if TYPE_CHECKING:
    from nasoa_lib.profiles import Profile

SECTION = "metadata"
#: Settings that do not change which run an index is (how many, on how many workers, which
#: models exist yet): left out of the collection id, so changing them extends one collection.
NOT_IN_COLLECTION = ("runs", "workers", "baselines", "zoo")


@dataclass(frozen=True)
class MetaDatasetConfig:
    """The profile's ``metadata:`` section (ranges are inclusive ``[low, high]`` pairs)."""

    runs: int
    workers: int
    num_classes: tuple[int, int]
    images_per_class: tuple[int, int]
    test_per_class: int
    lr: tuple[float, float]
    frozen_stages: tuple[int, ...] = (0, 1, 2, 3, 4)
    baselines: tuple[str, ...] | None = None
    zoo: bool = True
    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(key: str, message: str, hint: str) -> ProfileConfigError:
            return ProfileConfigError(f"{SECTION}.{key}={getattr(self, key)!r}: {message}", hint=hint)

        for key in ("num_classes", "images_per_class", "lr"):
            value = getattr(self, key)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise bad(key, "must be a [low, high] pair", f"e.g. {key}: [2, 10]")
            object.__setattr__(self, key, tuple(value))
            low, high = value
            if not (isinstance(low, (int, float)) and isinstance(high, (int, float))) or not low <= high:
                raise bad(key, "is an empty range (low > high)", "give [low, high] with low <= high")
        if self.num_classes[0] < 2:
            raise bad("num_classes", "a task needs at least 2 classes", "use a low of 2 or more")
        if self.images_per_class[0] < 1:
            raise bad("images_per_class", "must start at 1 or more", "counts are positive integers")
        if any(int(v) != v for v in (*self.num_classes, *self.images_per_class)):
            raise bad("images_per_class", "class and image ranges must be integers",
                      "write e.g. [10, 200], not [10.5, 200]")
        if not (self.lr[0] > 0 and math.isfinite(self.lr[1])):
            raise bad("lr", "learning rates must be finite and > 0", "e.g. lr: [0.001, 0.1]")
        frozen = tuple(self.frozen_stages)
        object.__setattr__(self, "frozen_stages", frozen)
        if not frozen or any(not isinstance(k, int) or not 0 <= k <= MAX_FROZEN_STAGES for k in frozen):
            raise bad("frozen_stages", f"must be a non-empty list of ints in 0..{MAX_FROZEN_STAGES}",
                      "e.g. frozen_stages: [0, 1, 2, 3, 4]")
        if self.baselines is not None:
            object.__setattr__(self, "baselines", tuple(self.baselines))
            if not self.baselines and not self.zoo:
                raise bad("baselines", "is empty and zoo is false: no model to sample",
                          "list baselines, or set zoo: true")
        if self.runs < 0 or self.workers < 1 or self.test_per_class < 1:
            raise ProfileConfigError(
                f"{SECTION}: runs={self.runs}, workers={self.workers}, test_per_class={self.test_per_class}",
                hint="runs >= 0, workers >= 1, test_per_class >= 1",
            )
        if not 0 <= self.validation_fraction < 1:
            raise bad("validation_fraction", "must be in [0, 1)", "the paper's 6K of 30K is 0.2")

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "MetaDatasetConfig":
        from nasoa_lib.profiles import resolve_profile

        prof = resolve_profile(profile)
        return prof.section(SECTION, cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sampling_dict(self) -> dict[str, Any]:
        """The settings that decide what run ``index`` is (part of the collection id)."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_IN_COLLECTION}
