"""How long one fine-tuning run takes on this device: the generator's step-time lookup table.

NASOA section 3.2: "once the time constraint T is provided, the max number of iterations for
different models can be calculated by an offline step-time lookup table". The zoo's table
(:func:`nasoa_lib.zoo.step_time_table`) holds a full training step at the *measure* batch size;
a fine-tuning run differs in three ways, so this module keeps its own table per (model, frozen
stages) at the profile's *fine-tuning* batch size:

* with ``k`` frozen stages the engine trains only the later stages, on cached prefix activations
  (NASOA Fig. 6: freezing is much faster), after one prefix pass over the training images;
* the run evaluates the test images at the end;
* a run has a fixed cost (copying the pretrained network, a new head, images to tensors, the
  optimizer, the slower first step).

**Measured on the engine itself.** Each :class:`RunCost` is fitted to real
:func:`nasoa_lib.finetune.finetune` calls on a probe task of the source set (timing does not depend
on the weights, so freshly built networks are timed): the engine's own median step time of a run
of ``long`` iterations on ``N`` images is the step time (a median, because single steps on a shared
CPU have heavy tails); a run of ``short`` iterations on ``4N`` images minus one on ``N`` images
gives the frozen prefix's cost per image; evaluation seconds over the test images give the cost
per test image; what the ``short`` call took beyond training and evaluation, plus its first step's
excess over the median, is the fixed cost. :meth:`RunCost.expected_seconds` then mirrors the engine's own rules
(frozen-prefix cache when ``iterations * batch >= N`` and the activations fit
:data:`nasoa_lib.finetune.CACHE_LIMIT_BYTES`; otherwise the prefix runs every step) and predicts
the whole wall-clock of a call: fixed + training (cache build included) + evaluation. Notebook 07
reports predicted against recorded wall-clock for every run it makes.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import StoreCorruptedError, UnknownModelError
from nasoa_lib.generator.config import GeneratorConfig

if TYPE_CHECKING:  # torch loads only when something is measured (nasoa recommend's errors stay instant)
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.profiles import Profile
    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

COST_KIND = "finetune_cost"
COST_VERSION = 2  # how a RunCost is fitted (part of its key: a new method re-measures)
TABLE_FORMAT = "nasoa-finetune-time-table"
TABLE_VERSION = 1
PROBE_CLASSES = 4


@dataclass(frozen=True)
class RunCost:
    """Measured cost of fine-tuning one model with ``frozen_stages`` frozen, on one device.

    ``step_seconds``: one optimizer step at the batch size (on cached activations when
    ``cacheable``); ``prefix_seconds_per_image``: the frozen prefix's forward per image (the cache
    build, or per batch image when the run cannot cache); ``prefix_bytes_per_image``: its cached
    activation size; ``eval_seconds_per_image``: final evaluation per test image; ``fixed_seconds``:
    the per-call overhead.
    """

    model: str
    frozen_stages: int
    step_seconds: float
    prefix_seconds_per_image: float
    prefix_bytes_per_image: int
    eval_seconds_per_image: float
    fixed_seconds: float
    cacheable: bool

    def uses_cache(self, iterations: np.ndarray | int, n_train: int, batch_size: int) -> np.ndarray:
        """The engine's ``cache_frozen="auto"`` rule, vectorised over ``iterations``."""
        from nasoa_lib.finetune import CACHE_LIMIT_BYTES

        batch = min(batch_size, n_train)
        fits = self.prefix_bytes_per_image * n_train * 2 <= CACHE_LIMIT_BYTES
        return np.asarray(self.cacheable and fits) & (np.asarray(iterations) * batch >= n_train)

    def expected_seconds(self, iterations: np.ndarray | int, n_train: int, n_test: int,
                         batch_size: int) -> np.ndarray:
        """Predicted wall-clock of a whole ``finetune`` call (fixed + training + evaluation)."""
        it = np.asarray(iterations, dtype=float)
        batch = min(batch_size, n_train)
        cached = self.uses_cache(iterations, n_train, batch_size)
        if self.cacheable:
            train = np.where(cached, n_train * self.prefix_seconds_per_image + it * self.step_seconds,
                             it * (self.step_seconds + batch * self.prefix_seconds_per_image))
        else:
            train = it * self.step_seconds
        return self.fixed_seconds + train + n_test * self.eval_seconds_per_image

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunCost":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FinetuneTimeTable:
    """:class:`RunCost` per (model, frozen stages) for one device, batch size and image size."""

    device: str
    batch_size: int
    image_size: int
    threads: int
    costs: Mapping[tuple[str, int], RunCost] = field(default_factory=dict)
    measured_seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", dict(self.costs))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(m for m, _ in self.costs))

    def cost(self, model: str, frozen_stages: int) -> RunCost:
        try:
            return self.costs[(model, int(frozen_stages))]
        except KeyError:
            raise UnknownModelError(
                f"the fine-tuning time table ({self.device}, batch {self.batch_size}) has no entry for "
                f"{model!r} with {frozen_stages} frozen stage(s)",
                hint=f"it holds {', '.join(self.models) or 'nothing'}; measure it with "
                "nasoa_lib.generator.finetune_time_table(...)",
            ) from None

    def expected_seconds(self, model: str, frozen_stages: int, iterations: np.ndarray | int,
                         n_train: int, n_test: int) -> np.ndarray:
        return self.cost(model, frozen_stages).expected_seconds(iterations, n_train, n_test, self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, "device": self.device,
                "batch_size": self.batch_size, "image_size": self.image_size, "threads": self.threads,
                "costs": [c.to_dict() for c in self.costs.values()]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FinetuneTimeTable":
        if d.get("format") != TABLE_FORMAT or d.get("version") != TABLE_VERSION:
            raise StoreCorruptedError(f"not a {TABLE_FORMAT} v{TABLE_VERSION} document",
                                      hint="re-measure it with nasoa_lib.generator.finetune_time_table(...)")
        costs = [RunCost.from_dict(c) for c in d["costs"]]
        return cls(d["device"], int(d["batch_size"]), int(d["image_size"]), int(d["threads"]),
                   {(c.model, c.frozen_stages): c for c in costs})

    def frame(self):
        """One row per (model, frozen stages), for tables."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.costs.values()])


# ------------------------------------------------------------------------------------ measuring


def probe_tasks(source: str, images: int, seed: int = 0):
    """Two tasks of the source set with the same ``images`` test images: ``images`` and
    ``4 * images`` training images (``PROBE_CLASSES`` classes)."""
    from nasoa_lib.data import Task, TaskSpec, load_dataset, make_task

    per_class = -(-4 * images // PROBE_CLASSES)
    test_per_class = -(-images // PROBE_CLASSES)
    big = make_task(TaskSpec(source, tuple(range(PROBE_CLASSES)), per_class, seed, test_per_class),
                    load_dataset(source))
    order = np.random.default_rng(seed).permutation(len(big.y_train))
    small_idx, big_idx = np.sort(order[:images]), np.sort(order[: 4 * images])
    test_idx = np.arange(min(images, len(big.y_test)))

    def subset(idx: np.ndarray) -> Task:
        return Task(big.spec, big.x_train[idx], big.y_train[idx], big.x_test[test_idx], big.y_test[test_idx],
                    big.class_names)

    return subset(small_idx), subset(big_idx)


def measure_run_cost(name: str, network, frozen_stages: int, settings: FinetuneSettings, small, big,
                     image_size: int, probe_iterations: tuple[int, int] = (2, 10), repeats: int = 1) -> RunCost:
    """Fit a :class:`RunCost` to timed :func:`~nasoa_lib.finetune.finetune` calls (module docstring)."""
    import torch

    from nasoa_lib.finetune import finetune
    from nasoa_lib.staged import num_frozen_modules

    short, long = probe_iterations
    cacheable = frozen_stages > 0 and not settings.augment
    mode: bool | str = True if cacheable else False
    n_small, n_big, n_test = len(small.y_train), len(big.y_train), len(small.y_test)

    def call(task, iterations: int) -> tuple[float, Any]:
        regime = settings.regime(lr=0.01, iterations=iterations, frozen_stages=frozen_stages)
        start = time.perf_counter()
        result = finetune(None, task, regime, model=network, seed=0, cache_frozen=mode, image_size=image_size)
        return time.perf_counter() - start, result

    steps, prefixes, evals, fixed = [], [], [], []
    for _ in range(repeats):
        wall_a, a = call(small, short)
        _, b = call(small, long)
        step = b.median_step_seconds
        prefix = 0.0
        if cacheable:
            _, c = call(big, short)
            prefix = max(0.0, (c.train_seconds - a.train_seconds) / (n_big - n_small))
        first_step_excess = a.train_seconds - short * step - (n_small * prefix if cacheable else 0.0)
        steps.append(step)
        prefixes.append(prefix)
        evals.append((a.eval_seconds + b.eval_seconds) / (2 * n_test))
        fixed.append(max(0.0, wall_a - a.train_seconds - a.eval_seconds + first_step_excess))
    bytes_per_image = 0
    if frozen_stages:
        from nasoa_lib.data.transforms import to_tensor

        with torch.no_grad():
            x = to_tensor(small.x_train[:2], image_size)
            was = network.training
            network.eval()
            out = network.run_trunk(x, 0, num_frozen_modules(frozen_stages))
            network.train(was)
        bytes_per_image = int(out[0].numel() * out.element_size())
    return RunCost(name, frozen_stages, statistics.median(steps), statistics.median(prefixes), bytes_per_image,
                   statistics.median(evals), statistics.median(fixed), cacheable)


def cost_spec(target: str, frozen_stages: int, settings: FinetuneSettings, profile, cfg: GeneratorConfig,
              threads: int) -> dict[str, Any]:
    """What determines a measured :class:`RunCost` (its store key): the architecture, the frozen
    stages, the fine-tuning knobs that change cost, the probe, the device kind and threads (and the
    builder's down-sampling rule for a code whose blocks pool)."""
    from nasoa_lib.builder import key_fields
    from nasoa_lib.device import describe_device
    from nasoa_lib.search.config import small_image_stem

    return {"stage": COST_KIND, "version": COST_VERSION, "target": target, "frozen_stages": frozen_stages,
            "batch_size": settings.batch_size, "augment": settings.augment, "image_size": profile.image_size,
            "small_image_stem": small_image_stem(profile), "threads": threads, "profile": profile.name,
            "device": describe_device().split(":")[0], "probe": [cfg.probe_images, list(cfg.probe_iterations),
                                                                 cfg.probe_repeats],
            **key_fields(target)}


def finetune_time_table(profile: Profile | str, models: Mapping[str, str], store: ArtifactStore | None = None, *, frozen_stages: Sequence[int] | None = None,
                        threads: int | None = None, progress: bool = False) -> FinetuneTimeTable:
    """Measure (or read back) the :class:`RunCost` of every ``{name: code or baseline name}`` for
    every frozen-stage count of the profile's generator grid, at the fine-tuning batch size.

    One store record per (architecture, frozen stages): an interrupted measurement resumes, and a
    model measured once (for any notebook or the CLI) is never measured again on this device kind.
    """
    started = time.perf_counter()  # measured_seconds includes the imports a first measurement pays
    from nasoa_lib.data import load_manifest
    from nasoa_lib.device import pinned_threads
    from nasoa_lib.finetune import FinetuneSettings, worker_threads
    from nasoa_lib.profiles import resolve_profile
    from nasoa_lib.search.config import small_image_stem
    from nasoa_lib.store import ArtifactStore, spec_key
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    cfg = GeneratorConfig.from_profile(prof)
    settings = FinetuneSettings.from_profile(prof)
    threads = threads or min(prof.threads, worker_threads(settings.workers))
    ks = tuple(frozen_stages if frozen_stages is not None else cfg.frozen_stages)
    todo = [(name, target, k) for name, target in models.items() for k in ks]
    keys = {(target, k): spec_key(cost_spec(target, k, settings, prof, cfg, threads)) for _, target, k in todo}
    missing = [t for t in todo if not store.has(COST_KIND, keys[(t[1], t[2])])]
    if missing:
        from nasoa_lib.measure import warn_if_contended

        warn_if_contended("the generator's fine-tuning time table")
        small, big = probe_tasks(prof.source_dataset, cfg.probe_images)
        num_classes = int(load_manifest(prof.source_dataset).num_classes)
        bar = _bar(len(missing), progress)
        with pinned_threads(threads):
            built: dict[str, Any] = {}
            for name, target, k in missing:
                if target not in built:
                    built.clear()
                    built[target] = build_model(target, num_classes, prof.image_size, small_image_stem(prof))
                cost = measure_run_cost(target, built[target], k, settings, small, big, prof.image_size,
                                        cfg.probe_iterations, cfg.probe_repeats)
                store.put(COST_KIND, keys[(target, k)], cost.to_dict())
                log.info("%s k=%d: %.1f ms/step, fixed %.0f ms", name, k, cost.step_seconds * 1e3,
                         cost.fixed_seconds * 1e3)
                bar.update(1)
        bar.close()
    costs = {}
    for name, target, k in todo:
        record = store.get(COST_KIND, keys[(target, k)])
        costs[(name, k)] = RunCost.from_dict({**record, "model": name})
    from nasoa_lib.device import describe_device

    return FinetuneTimeTable(f"{describe_device().split(':')[0]}:{threads}threads", settings.batch_size,
                             prof.image_size, threads, costs,
                             measured_seconds=time.perf_counter() - started if missing else 0.0)


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fine-tuning time table", leave=False, disable=not enabled)


# --------------------------------------------------------------------------- one budget, kept

TOLERANCE_FACTOR = 1.1
TOLERANCE_SECONDS = 2.0
SAVE_SECONDS = 0.3
EVAL_SAFETY = 1.5
COLD_START_SECONDS = 1.0


@dataclass(frozen=True)
class Deadline:
    """One wall-clock budget for a whole command, counted from when the command begins work.

    ``nasoa finetune --budget T`` aims to finish (data, service, recommendation, pretrained
    network, frozen features, training, evaluation, saving) within ``T`` seconds of its start and
    promises wall-clock <= ``TOLERANCE_FACTOR * T + TOLERANCE_SECONDS`` (1.1 T + 2 s) from process
    start to exit. The tolerance covers what the clock cannot see or stop: the interpreter's start
    and imports before the command runs, at most one training step past the instant (the engine
    stops when its *next* step would cross it), and evaluation or saving slower than their
    estimates (:func:`run_reserve`). ``benchmarks/finetune_budget.py`` measures it.

    Planning constants: :data:`SAVE_SECONDS` (writing weights, run card and predictor, each with
    fsync, beyond serialising the weights, which is measured), :data:`EVAL_SAFETY` (evaluation
    estimate x 1.5 for a busy machine) and :data:`COLD_START_SECONDS`: the first fine-tuning call of
    a process pays for kernel initialisation that the time table, measured warm, does not hold
    (0.4 s measured on an idle 2-core CPU for the smoke zoo; 1 s kept for a busy one).
    """

    budget: float
    start: float = field(default_factory=time.perf_counter)

    @property
    def at(self) -> float:
        """The ``time.perf_counter()`` instant the budget ends."""
        return self.start + self.budget

    @property
    def tolerated(self) -> float:
        """The most wall-clock seconds the command promises: 1.1 T + 2 s."""
        return TOLERANCE_FACTOR * self.budget + TOLERANCE_SECONDS

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return self.at - time.perf_counter()

    def verdict(self, wall_seconds: float) -> str:
        """``kept`` (<= T), ``kept within tolerance`` (<= 1.1 T + 2 s) or ``exceeded``."""
        if wall_seconds <= self.budget:
            return "kept"
        if wall_seconds <= self.tolerated:
            return f"kept within tolerance (<= {TOLERANCE_FACTOR:g} x budget + {TOLERANCE_SECONDS:g}s)"
        return f"exceeded (tolerance {TOLERANCE_FACTOR:g} x budget + {TOLERANCE_SECONDS:g}s)"


def run_reserve(cost: RunCost, n_test: int, save_seconds: float = SAVE_SECONDS) -> float:
    """Seconds a budgeted run keeps after training: evaluating ``n_test`` images (the time table's
    measured cost per test image, times :data:`EVAL_SAFETY` for a busy machine) plus saving."""
    return EVAL_SAFETY * n_test * cost.eval_seconds_per_image + save_seconds


def smallest_run_seconds(cost: RunCost, n_train: int, n_test: int, batch_size: int,
                         save_seconds: float = SAVE_SECONDS) -> float:
    """The least wall-clock one fine-tuning run can take on this device: the first call's cold
    start, the fixed cost, one training step (with the frozen prefix), evaluation and saving, at
    the time table's estimates (the same ones the recommendation was filtered with; the
    :data:`EVAL_SAFETY` margin of :func:`run_reserve` only shortens training)."""
    return COLD_START_SECONDS + float(cost.expected_seconds(1, n_train, n_test, batch_size)) + save_seconds
