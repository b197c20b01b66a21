"""The fine-tuning engine: one function runs one regime on one task (NASOA sections 3.2, 4.1).

A :class:`Regime` is the paper's ``Regime_FT`` (learning rate, schedule, iterations, frozen
stages) plus the fixed knobs (batch size, momentum, weight decay, augmentation). :func:`finetune`
replaces the head for the task's classes, freezes the stem and stages ``1..k`` (BatchNorm of frozen
modules in eval mode, so their running statistics stay fixed), trains with SGD + momentum, and
returns test accuracy, wall-clock, steps and an accuracy curve. ``pretrained=None`` with an
architecture is training from scratch through the same code path.

Speed (the meta-dataset repeats this thousands of times): the task's images become one float
tensor once; batches are index tensors drawn from a seeded generator; there is no DataLoader and
no per-step work beyond the model, except a ``perf_counter`` per step for the time limit.

**Frozen-prefix cache.** Frozen modules see no gradient and their BatchNorm is in eval mode, so
their output for an image never changes during the run. Without augmentation the engine runs the
frozen prefix once over the training (and test) images and trains the remaining stages on those
cached activations. The cache costs one prefix pass over ``N`` training images, the uncached loop
``iterations * batch_size`` prefix passes, so ``cache_frozen="auto"`` caches when
``iterations * batch_size >= N`` and the activations fit in :data:`CACHE_LIMIT_BYTES`.
Augmentation (random crop + flip) changes the prefix's input every step, so an augmented run
cannot cache and pays the prefix forward every step (under ``torch.no_grad``). Measured speed-ups
are in ``benchmarks/finetune_throughput.py`` / ``reports/benchmarks/``.

**Learning-rate schedules** (per iteration, planned over ``Regime.iterations``): ``"cosine"``
decays from ``lr`` to 0 (half a cosine); ``"step"`` multiplies ``lr`` by 0.1 after 50 % and
again after 75 % of the iterations (the classic ImageNet-style step schedule); ``"constant"`` keeps
``lr`` at every step, so the state after ``e`` epochs of a long run is the run of ``e`` epochs
(:mod:`nasoa_lib.run_length`: checkpointed runs of the meta-dataset).

**Checkpoints.** ``eval_steps`` names the optimizer steps after which the run is evaluated (instead
of ``eval_points`` evenly spaced ones); each evaluation is a :class:`Checkpoint` with the test
accuracy, the accuracy on the even- and odd-indexed test images (two independent halves: the
irreducible-error floor of notebook 06's Table 3) and, when the task has validation images
(``TaskSpec.validation_per_class``), the validation accuracy. :func:`early_stopped` picks the
checkpoint a run reports when it is stopped early on validation (notebook 07's generators and
family curves): the test accuracy is read once, at the checkpoint that validation chose.

**Time limit.** Only training counts (building the frozen cache included, evaluation excluded).
The limit is checked against a *measured* step: the first forward + backward (plus the cache
build) is timed before the first optimizer step; a limit shorter than that raises
:class:`InvalidRegimeError` before any weight changes. Afterwards the loop stops when the next step
(estimated by the median step so far) would cross the limit, so a time-limited run ends within one
step of it; the schedule stays the one planned for ``Regime.iterations`` and is truncated.
``train_deadline`` is the same rule against an absolute ``time.perf_counter()`` instant: a command
with one wall-clock budget (``nasoa finetune``) keeps time for evaluation and saving and lets
training run until the instant left over (the limit is then fixed when training starts, after the
network copy and the image tensors, which are part of the command's wall-clock). A first step that
crosses the instant still completes (its forward and backward are paid for; the optimizer step is
cheap) and the run stops after it, so a budget the caller judged feasible yields a model; an
instant already past when training would start raises :class:`BudgetTooSmallError`.

**Progress.** ``on_step(steps, train_seconds)`` is called after every optimizer step (a live
progress bar in seconds of a budget; no thread guesses).

**Threads.** :func:`worker_threads` is the single policy for CPU threads per run; see its docstring.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nasoa_lib.errors import BudgetTooSmallError, InvalidParallelSetup, InvalidRegimeError
from nasoa_lib.schedule import constant_lr, cosine_lr, step_decay_lr
from nasoa_lib.staged import MAX_FROZEN_STAGES, StagedNetwork, freeze_stages, num_frozen_modules, replace_head, train_mode

if TYPE_CHECKING:
    from nasoa_lib.data import Task
    from nasoa_lib.profiles import Profile
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.train import Pretrained

log = logging.getLogger(__name__)

LR_SCHEDULES = ("cosine", "step", "constant")
CACHE_LIMIT_BYTES = 768 * 2**20
_AUGMENT_STREAM = 7919  # seed offset of a constant-rate run's own augmentation generator
EVAL_BATCH = 256
FINETUNE_KIND = "finetune"


@dataclass(frozen=True)
class Regime:
    """A fine-tuning regime (NASOA Eq. 2's ``Regime_FT``); invalid values raise at construction."""

    lr: float
    iterations: int
    frozen_stages: int = 0
    batch_size: int = 64
    lr_schedule: str = "cosine"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    augment: bool = False

    def __post_init__(self) -> None:
        def bad(field: str, message: str, hint: str) -> InvalidRegimeError:
            return InvalidRegimeError(f"Regime.{field}={getattr(self, field)!r}: {message}", hint=hint)

        if isinstance(self.frozen_stages, bool) or not isinstance(self.frozen_stages, (int, np.integer)) or not (
            0 <= int(self.frozen_stages) <= MAX_FROZEN_STAGES
        ):
            raise bad("frozen_stages", f"must be an int in 0..{MAX_FROZEN_STAGES}",
                      "0 trains everything, k freezes the stem and stages 1..k, 4 trains only the head")
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise bad("lr", "must be a finite number > 0", "typical fine-tuning rates are 1e-3..1e-1")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, (int, np.integer)) or self.iterations < 1:
            raise bad("iterations", "must be an int >= 1", "give the number of optimizer steps")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 2:
            raise bad("batch_size", "must be an int >= 2", "BatchNorm needs at least 2 images per batch")
        if self.lr_schedule not in LR_SCHEDULES:
            raise bad("lr_schedule", f"must be one of {LR_SCHEDULES}", "'cosine' decays to 0; 'step' x0.1 at 50% and 75%; 'constant' keeps lr")
        if not 0 <= self.weight_decay < 1:
            raise bad("weight_decay", "must be in [0, 1)", "typical values are 0..5e-4")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", "must be in [0, 1)", "the paper's SGD uses 0.9")
        object.__setattr__(self, "frozen_stages", int(self.frozen_stages))
        object.__setattr__(self, "iterations", int(self.iterations))
        object.__setattr__(self, "batch_size", int(self.batch_size))
        object.__setattr__(self, "lr", float(self.lr))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Regime":
        return cls(**dict(data))

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based) under :attr:`lr_schedule`."""
        if self.lr_schedule == "cosine":
            return cosine_lr(step, self.iterations, self.lr)
        if self.lr_schedule == "constant":
            return constant_lr(step, self.iterations, self.lr)
        return step_decay_lr(step, self.iterations, self.lr)


@dataclass(frozen=True)
class FinetuneSettings:
    """The profile's ``finetune:`` section: the knobs every regime of a profile shares.

    ``workers`` is the size of the process pool that runs grids of fine-tuning runs (each worker
    uses :func:`worker_threads` threads).
    """

    batch_size: int
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = False
    workers: int = 1

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "FinetuneSettings":
        from nasoa_lib.profiles import resolve_profile

        prof = resolve_profile(profile)
        return prof.section("finetune", cls)

    def regime(self, lr: float, iterations: int, frozen_stages: int = 0) -> Regime:
        return Regime(lr=lr, iterations=iterations, frozen_stages=frozen_stages, batch_size=self.batch_size,
                      lr_schedule=self.lr_schedule, weight_decay=self.weight_decay, momentum=self.momentum,
                      augment=self.augment)


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation of a run after ``step`` optimizer steps (``finetune(..., eval_steps=...)``).

    ``test_half_accuracies`` are the accuracies on the even- and odd-indexed test images of the
    task: two independent halves of the test set, whose disagreement measures the test-set noise
    (the irreducible-error floor of notebook 06). ``validation_accuracy`` is ``None`` when the task
    has no validation images."""

    step: int
    train_seconds: float
    test_accuracy: float
    validation_accuracy: float | None
    test_half_accuracies: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "train_seconds": self.train_seconds, "test_accuracy": self.test_accuracy,
                "validation_accuracy": self.validation_accuracy,
                "test_half_accuracies": list(self.test_half_accuracies)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Checkpoint":
        va = data.get("validation_accuracy")
        a, b = data["test_half_accuracies"]
        return cls(int(data["step"]), float(data["train_seconds"]), float(data["test_accuracy"]),
                   None if va is None else float(va), (float(a), float(b)))


def early_stopped(checkpoints: Sequence[Checkpoint]) -> Checkpoint:
    """The checkpoint an early-stopped run keeps: the highest validation accuracy, the earliest of
    equals (the cheaper model; Prechelt 1998's "best so far" rule). Without validation accuracies
    (a user's task) nothing can choose, and the run keeps its last checkpoint. Test accuracy never
    takes part: selection on validation, test reported once (the study's evidence rules)."""
    if not checkpoints:
        raise InvalidRegimeError("a run without checkpoints has nothing to stop at",
                                 hint="evaluate the run at checkpoints: finetune(..., eval_steps=...)")
    scored = [c for c in checkpoints if c.validation_accuracy is not None]
    if not scored:
        return checkpoints[-1]
    best = max(c.validation_accuracy for c in scored)
    return next(c for c in scored if c.validation_accuracy == best)


@dataclass(frozen=True)
class FinetuneResult:
    """What one fine-tuning run measured. ``curve`` holds ``(step, train_seconds, accuracy)``;
    ``checkpoints`` the same evaluations with validation and test-half accuracies, filled when the
    run was asked for ``eval_steps`` or its task has validation images (otherwise empty, and the
    record is the one stored before checkpoints existed)."""

    accuracy: float
    train_seconds: float
    eval_seconds: float
    steps: int
    planned_steps: int
    median_step_seconds: float
    curve: tuple[tuple[int, float, float], ...]
    stopped_by_time: bool
    frozen_cache: bool
    threads: int
    key: str
    checkpoints: tuple[Checkpoint, ...] = ()
    model: StagedNetwork | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        out["curve"] = [list(p) for p in self.curve]
        if self.checkpoints:
            out["checkpoints"] = [c.to_dict() for c in self.checkpoints]
        else:
            del out["checkpoints"]  # a run without checkpoints keeps the record (and bytes) it always had
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FinetuneResult":
        values = dict(data)
        values["curve"] = tuple(tuple(p) for p in values["curve"])
        values["checkpoints"] = tuple(Checkpoint.from_dict(c) for c in values.get("checkpoints") or ())
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name != "model"})


@dataclass(frozen=True)
class FinetuneRunSpec:
    """Everything that determines a fine-tuning run; :attr:`key` (the
    :func:`~nasoa_lib.store.spec_key` of :meth:`to_dict`) is the run's key in the store, so a
    cached grid skips finished runs. ``task`` is the task's JSON spec (``Task.spec``). A model that
    is an architecture code whose blocks pool adds the builder's down-sampling rule
    (:func:`nasoa_lib.builder.key_fields`); every other run's dict and key are as before."""

    pretrained: str | None
    model: str | None
    task: Any
    regime: Regime
    time_limit: float | None
    seed: int
    eval_points: int
    eval_steps: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        from nasoa_lib.builder import key_fields

        steps = {} if self.eval_steps is None else {"eval_steps": [int(s) for s in self.eval_steps]}
        return {
            "stage": FINETUNE_KIND,
            "pretrained": self.pretrained,
            "model": self.model,
            "task": self.task,
            "regime": self.regime.to_dict(),
            "time_limit": self.time_limit,
            "seed": self.seed,
            "eval_points": self.eval_points,
            **steps,
            **(key_fields(self.model) if self.model is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FinetuneRunSpec":
        if data.get("stage", FINETUNE_KIND) != FINETUNE_KIND:
            raise InvalidRegimeError(f"not a fine-tuning run spec: stage {data.get('stage')!r}",
                                     hint=f"read records of kind {FINETUNE_KIND!r} only")
        steps = data.get("eval_steps")
        return cls(data["pretrained"], data["model"], data["task"], Regime.from_dict(data["regime"]),
                   data["time_limit"], data["seed"], data["eval_points"],
                   None if steps is None else tuple(int(s) for s in steps))

    @property
    def key(self) -> str:
        from nasoa_lib.store import spec_key

        return spec_key(self.to_dict())


@dataclass(frozen=True)
class FinetuneRecord:
    """A fine-tuning run as stored under ``(FINETUNE_KIND, spec.key)``: its spec, what it measured,
    and (for :func:`nasoa_lib.generator.runs.cached_run`) the call's whole wall-clock.

    :meth:`to_dict` is exactly the flat JSON object the store holds (spec keys, result keys,
    ``wall_seconds`` only when measured, then ``extra``); :meth:`from_dict` reads it back, keys it
    does not know going to ``extra``.
    """

    spec: FinetuneRunSpec
    result: FinetuneResult
    wall_seconds: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {**self.spec.to_dict(), **self.result.to_dict()}
        if self.wall_seconds is not None:
            out["wall_seconds"] = self.wall_seconds
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FinetuneRecord":
        known = {"stage", "wall_seconds", *(f.name for f in fields(FinetuneRunSpec)), *(f.name for f in fields(FinetuneResult))}
        return cls(FinetuneRunSpec.from_dict(data), FinetuneResult.from_dict(data), data.get("wall_seconds"),
                   {k: v for k, v in data.items() if k not in known})

    @property
    def charged_seconds(self) -> float:
        """Seconds a method is charged for the run: its recorded wall-clock, or (a record written
        by :func:`finetune_cached` has none) training + evaluation."""
        if self.wall_seconds is not None:
            return float(self.wall_seconds)
        return float(self.result.train_seconds) + float(self.result.eval_seconds)


def worker_threads(workers: int = 1, cores: int | None = None) -> int:
    """Torch intra-op threads for each of ``workers`` parallel fine-tuning processes.

    Policy: split the cores evenly, ``max(1, cores // workers)``, so ``workers`` processes never
    oversubscribe the machine. Which split is faster depends on the run length, measured on an
    idle 2-core machine: for 20-iteration ResNet-18 runs at batch 64
    (``benchmarks/finetune_throughput.py``) 1 process x 2 threads and 2 processes x 1 thread tie
    (ratio 1.00); for the meta-dataset's short runs (5-64 iterations at batch 32, several models,
    ``benchmarks/collect_throughput.py``) 2 x 1 is 1.38x faster, because per-run set-up and
    evaluation do not use a second thread. The collector therefore runs two workers.
    """
    if workers < 1:
        raise InvalidParallelSetup(f"workers must be >= 1, got {workers}",
                                   hint="set workers to 1 or more (the profile's finetune settings)")
    cores = cores or os.cpu_count() or 1
    return max(1, cores // workers)


def set_worker_threads(workers: int = 1) -> int:
    """Apply :func:`worker_threads` to this process (call once at the start of a worker)."""
    threads = worker_threads(workers)
    torch.set_num_threads(threads)
    return threads


def run_spec(
    pretrained_key: str | None,
    model_name: str | None,
    task_spec: Any,
    regime: Regime,
    time_limit: float | None,
    seed: int,
    eval_points: int,
    eval_steps: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The dict of :class:`FinetuneRunSpec` (its :func:`~nasoa_lib.store.spec_key` is the run's key in
    the store)."""
    steps = None if eval_steps is None else tuple(int(s) for s in eval_steps)
    return FinetuneRunSpec(pretrained_key, model_name, task_spec, regime, time_limit, seed, eval_points, steps).to_dict()


def finetune(
    pretrained: Pretrained | None,
    task: Task,
    regime: Regime,
    *,
    model: StagedNetwork | str | None = None,
    time_limit: float | None = None,
    train_deadline: float | None = None,
    on_step: Callable[[int, float], None] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    eval_points: int = 1,
    eval_steps: Sequence[int] | None = None,
    cache_frozen: bool | str = "auto",
    image_size: int | None = None,
    small_image_stem: bool = False,
    keep_model: bool = False,
) -> FinetuneResult:
    """Fine-tune ``pretrained`` (a :class:`~nasoa_lib.train.Pretrained`) on ``task`` with ``regime``.

    ``pretrained=None`` trains ``model`` from scratch: a registered name / architecture code (built
    fresh, seeded) or a :class:`StagedNetwork` (copied, never modified). ``eval_points`` evenly
    spaced evaluations (the last one at the end of training) make the accuracy curve; ``eval_steps``
    (ascending optimizer steps in ``1..regime.iterations``) evaluates after exactly these steps
    instead (and at the end, when training stops elsewhere), each a :class:`Checkpoint` in
    ``result.checkpoints``. The pretrained
    network itself is never modified (the run works on a copy); ``keep_model=True`` returns the
    fine-tuned copy in ``result.model`` (eval mode).

    ``time_limit`` (seconds of training) and ``train_deadline`` (a ``time.perf_counter()`` instant
    by which training must end; the earlier of the two binds) stop the run early (module
    docstring); ``on_step(steps, train_seconds)`` is called after each optimizer step. A run with
    ``train_deadline`` is keyed by the training seconds it was given (its result depends on them).
    """
    from nasoa_lib.data.transforms import random_flip_crop, to_tensor
    from nasoa_lib.store import spec_key

    if eval_points < 1:
        raise InvalidRegimeError(f"eval_points={eval_points}: must be >= 1", hint="1 evaluates only at the end")
    if time_limit is not None and not time_limit > 0:
        raise InvalidRegimeError(f"time_limit={time_limit!r}: must be > 0 seconds", hint="pass None for no limit")
    steps_wanted = _check_eval_steps(eval_steps, regime.iterations)
    device = torch.device(device) if device is not None else torch.device("cpu")
    net, pretrained_key, model_name, size = _network(pretrained, model, seed, image_size, small_image_stem)
    num_classes = _check_task(task)
    key = spec_key(run_spec(pretrained_key, model_name, task.spec, regime, time_limit, seed, eval_points, steps_wanted))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        replace_head(net, num_classes, generator=generator)
        net.to(device)
        freeze_stages(net, regime.frozen_stages)
        train_mode(net, regime.frozen_stages)

        x_train = to_tensor(task.x_train, size).to(device)
        y_train = torch.as_tensor(task.y_train, dtype=torch.int64, device=device)
        x_test = to_tensor(task.x_test, size).to(device)
        y_test = torch.as_tensor(task.y_test, dtype=torch.int64, device=device)
        x_val_np = getattr(task, "x_val", None)
        has_val = x_val_np is not None and len(x_val_np) > 0
        x_val = to_tensor(x_val_np, size).to(device) if has_val else None
        y_val = torch.as_tensor(task.y_val, dtype=torch.int64, device=device) if has_val else None
        n = len(y_train)
        batch = min(regime.batch_size, n)
        order = _batch_order(n, batch, regime.iterations, generator)
        # A constant-rate run must be a prefix of a longer one: its augmentation draws from its own
        # stream (after the batch order, the shared stream's state depends on the run's length).
        # The other schedules keep the shared stream, so their stored runs stay bit-identical.
        augment_generator = (torch.Generator().manual_seed(seed + _AUGMENT_STREAM)
                             if regime.lr_schedule == "constant" else generator)

        n_frozen = num_frozen_modules(regime.frozen_stages)
        use_cache = _use_cache(cache_frozen, net, regime, n_frozen, x_train, batch)
        frozen_prefix = net.trunk[:n_frozen]
        trainable = [p for p in net.parameters() if p.requires_grad]
        decay = [p for p in trainable if p.ndim > 1]
        no_decay = [p for p in trainable if p.ndim <= 1]
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": regime.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=regime.lr_at(0),
            momentum=regime.momentum,
        )
        loss_fn = nn.CrossEntropyLoss()
        if steps_wanted is not None:
            eval_at = set(steps_wanted)
        else:
            eval_at = {max(1, round(regime.iterations * (i + 1) / eval_points)) for i in range(eval_points)}

        train_clock = 0.0
        t_start = time.perf_counter()
        limit = time_limit
        by_deadline = False
        if train_deadline is not None:
            left = train_deadline - t_start
            if time_limit is None or left < time_limit:
                limit, by_deadline = left, True
            if limit <= 0:
                raise BudgetTooSmallError(
                    f"the training deadline passed {-left:.3g}s before training could start",
                    hint="give a larger budget: copying the network and the images took the time left",
                )
            key = spec_key(run_spec(pretrained_key, model_name, task.spec, regime, round(limit, 3), seed, eval_points,
                                    steps_wanted))
        if use_cache:
            with torch.no_grad():
                train_in = _run_prefix(net, x_train, n_frozen)
            train_clock += time.perf_counter() - t_start
        else:
            train_in = x_train
        test_in: torch.Tensor | None = None
        val_in: torch.Tensor | None = None

        def forward_train(xb: torch.Tensor) -> torch.Tensor:
            if use_cache:
                return net.forward_head(net.run_trunk(xb, n_frozen, 5))
            if regime.augment:
                xb = random_flip_crop(xb, generator=augment_generator)
            if n_frozen:
                with torch.no_grad():
                    xb = net.run_trunk(xb, 0, n_frozen)
            return net.forward_head(net.run_trunk(xb, n_frozen, 5))

        def correct_of(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            start = n_frozen if use_cache else 0
            hits = [net.forward_head(net.run_trunk(inputs[s : s + EVAL_BATCH], start, 5)).argmax(1)
                    == labels[s : s + EVAL_BATCH] for s in range(0, len(labels), EVAL_BATCH)]
            return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)

        def evaluate_now(step: int) -> Checkpoint:
            nonlocal test_in, val_in
            net.eval()
            with torch.no_grad():
                if use_cache and test_in is None:
                    test_in = _run_prefix(net, x_test, n_frozen)
                    if has_val:
                        val_in = _run_prefix(net, x_val, n_frozen)
                hits = correct_of(test_in if use_cache else x_test, y_test)
                val_acc = None
                if has_val:
                    val_hits = correct_of(val_in if use_cache else x_val, y_val)
                    val_acc = int(val_hits.sum()) / len(val_hits)
            train_mode(net, regime.frozen_stages)
            halves = (_share(hits[0::2]), _share(hits[1::2]))
            return Checkpoint(step, train_clock, _share(hits), val_acc, halves)

        step_times: list[float] = []
        checkpoints: list[Checkpoint] = []
        eval_seconds = 0.0
        stopped_by_time = False
        steps = 0
        for step in range(regime.iterations):
            if limit is not None and step_times:
                estimate = statistics.median(step_times[-16:])
                if train_clock + estimate > limit:
                    stopped_by_time = True
                    break
            t0 = time.perf_counter()
            idx = order[step]
            logits = forward_train(train_in[idx])
            loss = loss_fn(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if step == 0 and limit is not None:
                measured = train_clock + time.perf_counter() - t0
                if measured > limit and not by_deadline:
                    raise InvalidRegimeError(
                        f"time_limit={limit:.3g}s is shorter than one measured training step "
                        f"({measured:.3g}s: first forward+backward{' + frozen-feature cache' if use_cache else ''})",
                        hint=f"give at least {measured:.3g}s, or fewer frozen-stage images / a smaller model",
                    )
            lr = regime.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            dt = time.perf_counter() - t0
            step_times.append(dt)
            train_clock += dt
            steps = step + 1
            if on_step is not None:
                on_step(steps, train_clock)
            if steps in eval_at:
                te = time.perf_counter()
                checkpoints.append(evaluate_now(steps))
                eval_seconds += time.perf_counter() - te
        if not checkpoints or checkpoints[-1].step != steps:
            te = time.perf_counter()
            checkpoints.append(evaluate_now(steps))
            eval_seconds += time.perf_counter() - te
        curve = [(c.step, c.train_seconds, c.test_accuracy) for c in checkpoints]

    median_step = statistics.median(step_times) if step_times else 0.0
    return FinetuneResult(
        accuracy=curve[-1][2],
        train_seconds=train_clock,
        eval_seconds=eval_seconds,
        steps=steps,
        planned_steps=regime.iterations,
        median_step_seconds=median_step,
        curve=tuple(curve),
        stopped_by_time=stopped_by_time,
        frozen_cache=use_cache,
        threads=torch.get_num_threads(),
        key=key,
        checkpoints=tuple(checkpoints) if steps_wanted is not None or has_val else (),
        model=net.eval() if keep_model else None,
    )


def finetune_cached(
    store: ArtifactStore,
    pretrained: Pretrained | None,
    task: Task,
    regime: Regime,
    *,
    model: str | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    eval_points: int = 1,
    eval_steps: Sequence[int] | None = None,
    image_size: int | None = None,
    extra: Mapping[str, Any] | None = None,
    profile: str | None = None,
    timed: bool = False,
) -> FinetuneRecord:
    """:func:`finetune` once per run spec: the record is read from ``store`` when it exists,
    otherwise the run happens and its record (spec + result + ``extra``) is stored. ``timed=True``
    also records the call's whole wall-clock (``wall_seconds``: copying the network, tensors,
    training, evaluation), which :attr:`FinetuneRecord.charged_seconds` charges on every replay."""
    if pretrained is None and not isinstance(model, str):
        raise InvalidRegimeError("a cached from-scratch run needs the model's name or code", hint="pass model='resnet18'")
    pretrained_key = None if pretrained is None else pretrained.key
    model_name = model if pretrained is None else pretrained.name
    steps = _check_eval_steps(eval_steps, regime.iterations)
    spec = FinetuneRunSpec(pretrained_key, model_name, task.spec, regime, time_limit, seed, eval_points, steps)
    key = spec.key
    found = store.get(FINETUNE_KIND, key)
    if found is not None:
        return FinetuneRecord.from_dict(found)
    start = time.perf_counter()
    result = finetune(pretrained, task, regime, model=model, time_limit=time_limit, seed=seed,
                      eval_points=eval_points, eval_steps=steps, image_size=image_size)
    wall = time.perf_counter() - start if timed else None
    record = FinetuneRecord(spec, result, wall, dict(extra or {}))
    provenance = None
    if profile is not None:
        from nasoa_lib.provenance import provenance as make_provenance

        provenance = make_provenance(profile, seed, "cpu")
    store.put(FINETUNE_KIND, key, record.to_dict(), provenance=provenance)
    return record


def _network(
    pretrained: Pretrained | None, model: StagedNetwork | str | None, seed: int, image_size: int | None, small_image_stem: bool
) -> tuple[StagedNetwork, str | None, str, int]:
    if pretrained is not None:
        if model is not None:
            raise InvalidRegimeError("pass either pretrained or model, not both",
                                     hint="model= is for training from scratch")
        net = copy.deepcopy(pretrained.model)
        return net, pretrained.key, pretrained.name, image_size or pretrained.image_size
    if model is None:
        raise InvalidRegimeError("no network: pretrained is None and no model was given",
                                 hint="pass a Pretrained, or model='resnet18' to train from scratch")
    size = image_size or 32
    if isinstance(model, str):
        from nasoa_lib.train import build_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_model(model, 2, size, small_image_stem)
        return net, None, model, size
    if not isinstance(model, StagedNetwork):
        raise InvalidRegimeError(f"model must be a StagedNetwork or a name/code, got {type(model).__name__}",
                                 hint="use nasoa_lib.models.create or nasoa_lib.builder.build")
    return copy.deepcopy(model), None, type(model).__name__, size


def _share(hits: torch.Tensor) -> float:
    return int(hits.sum()) / max(1, len(hits))


def _check_eval_steps(eval_steps: Sequence[int] | None, iterations: int) -> tuple[int, ...] | None:
    if eval_steps is None:
        return None
    steps = tuple(int(s) for s in eval_steps)
    if not steps or list(steps) != sorted(set(steps)) or steps[0] < 1 or steps[-1] > iterations:
        raise InvalidRegimeError(
            f"eval_steps={list(steps)}: must be ascending, distinct optimizer steps in 1..{iterations}",
            hint="use nasoa_lib.run_length.checkpoint_steps(ladder, train_images, batch_size) with "
                 "regime.iterations = its last step")
    return steps


def _check_task(task: Task) -> int:
    num_classes = int(task.num_classes)
    y_train, y_test = np.asarray(task.y_train), np.asarray(task.y_test)
    if num_classes < 2:
        raise InvalidRegimeError(f"task has {num_classes} class(es); a classifier needs >= 2",
                                 hint="sample a task with at least two classes")
    if len(y_train) < 2 or len(task.x_train) != len(y_train) or len(task.x_test) != len(y_test):
        raise InvalidRegimeError(
            f"task arrays do not match: {len(task.x_train)} train images / {len(y_train)} labels, "
            f"{len(task.x_test)} test images / {len(y_test)} labels (need >= 2 training images)",
            hint="build tasks with nasoa_lib.data.make_task",
        )
    for split, labels in (("train", y_train), ("test", y_test)):
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes):
            raise InvalidRegimeError(
                f"task {split} labels span {labels.min()}..{labels.max()} but the new head has "
                f"{num_classes} outputs (labels must be 0..{num_classes - 1})",
                hint="relabel classes to 0..k-1 (make_task does this)",
            )
    return num_classes


def _batch_order(n: int, batch: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """``(iterations, batch)`` image indices: consecutive chunks of fresh permutations (epochs)."""
    per_epoch = n // batch
    epochs = math.ceil(iterations / per_epoch)
    perms = [torch.randperm(n, generator=generator)[: per_epoch * batch] for _ in range(epochs)]
    return torch.cat(perms).view(-1, batch)[:iterations]


def _use_cache(
    cache_frozen: bool | str, net: StagedNetwork, regime: Regime, n_frozen: int, x_train: torch.Tensor, batch: int
) -> bool:
    if cache_frozen not in (True, False, "auto"):
        raise InvalidRegimeError(f"cache_frozen={cache_frozen!r}", hint="use True, False or 'auto'")
    if n_frozen == 0 or regime.augment or cache_frozen is False:
        if cache_frozen is True and (n_frozen == 0 or regime.augment):
            raise InvalidRegimeError(
                "cache_frozen=True needs frozen stages and no augmentation",
                hint="augmentation changes the frozen prefix's input every step; use 'auto'",
            )
        return False
    if cache_frozen is True:
        return True
    with torch.no_grad():
        per_image = _run_prefix(net, x_train[:2], n_frozen)[0].numel() * 4
    fits = per_image * len(x_train) * 2 <= CACHE_LIMIT_BYTES
    return fits and regime.iterations * batch >= len(x_train)


def _run_prefix(net: StagedNetwork, x: torch.Tensor, n_frozen: int, chunk: int = EVAL_BATCH) -> torch.Tensor:
    """Frozen prefix (eval mode, no grad) over ``x`` in chunks."""
    modes = [m.training for m in net.trunk[:n_frozen]]
    for m in net.trunk[:n_frozen]:
        m.eval()
    out = torch.cat([net.run_trunk(x[s : s + chunk], 0, n_frozen) for s in range(0, len(x), chunk)])
    for m, mode in zip(net.trunk[:n_frozen], modes):
        m.train(mode)
    return out
