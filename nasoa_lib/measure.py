"""What "fast to train" means (SPEC section 5; NASOA section 3.1, "training efficiency").

NASOA ranks architectures by the wall-clock time of one *training* step, not by FLOPs: the
ET-NAS search minimises measured step time on the device the zoo serves. One function here
measures it (:func:`measure_step_time`); every notebook, the NAS and the benchmarks call it.
Several models whose times are compared (Table 2) are timed together by :func:`measure_interleaved`
(ABBA rounds in one process), after :func:`warn_if_contended` checked that no other process
shares the cores.

A training step is one full iteration at a fixed batch size: forward, cross-entropy backward and
an SGD-with-momentum update, on a random batch already on the device (data loading is not part
of the model's cost). We time ``steps`` iterations after ``warmup`` untimed ones with
``time.perf_counter`` (``torch.cuda.synchronize`` before each reading on CUDA) and report the
median with its inter-quartile range, because single steps on a shared CPU have heavy tails.
Comparisons between models are ratios measured in the same run (SPEC section 5, "Noise").

The step-time lookup table (:class:`StepTimeTable`) holds one :class:`StepTiming` per model name
or architecture code for one device; the schedule generator turns a time budget into iterations
with it. It is a plain JSON file so the artifact store can keep it as is.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasoa_lib.device import default_device, describe_device, pinned_threads
from nasoa_lib.errors import InvalidMeasurementSetup, StoreCorruptedError, UnknownModelError, UnsupportedNetworkError
from nasoa_lib.profiles import Profile, resolve_profile

log = logging.getLogger(__name__)

TABLE_FORMAT = "nasoa-step-time-table"
TABLE_VERSION = 1


@dataclass(frozen=True)
class MeasureConfig:
    """Profile section ``measure``: warm-up and timed steps, and the batch size of step times."""

    warmup: int
    steps: int
    batch_size: int

    def __post_init__(self) -> None:
        _check_sizes(self.batch_size, 1, self.warmup, self.steps)

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "MeasureConfig":
        """The profile's ``measure:`` section (every key required: a typo is a ProfileConfigError)."""
        return resolve_profile(profile).section("measure", cls)


@dataclass(frozen=True)
class StepTiming:
    """Timing of ``steps`` iterations of one model (milliseconds per iteration)."""

    median_ms: float
    iqr_ms: float
    samples_ms: tuple[float, ...]
    batch_size: int
    image_size: int
    device: str
    threads: int
    dtype: str
    kind: str = "train"  # "train" (forward + backward + SGD step) or "inference" (eval, no_grad)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)

    @property
    def images_per_second(self) -> float:
        return self.batch_size * 1000.0 / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_ms"] = list(self.samples_ms)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StepTiming":
        values = dict(d)
        values["samples_ms"] = tuple(float(v) for v in values["samples_ms"])
        return cls(**values)


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory of one training step, with how it was measured (``method``).

    ``cuda_max_allocated``: ``torch.cuda.max_memory_allocated`` over one steady-state step
    (weights, gradients, optimizer state, activations and workspace).
    ``cpu_peak_rss_delta``: rise of the process's peak resident set (``VmHWM``, reset through
    ``/proc/self/clear_refs``) above its resident set just before the model's *first* step, with
    the model copy and batch already resident: what the step takes from the OS (activations,
    gradients, momentum buffers), blurred by the allocator, which may reuse memory freed earlier
    in the process, so it is a lower bound. ``cpu_rss_delta``: resident set after minus before
    where the peak cannot be reset (a weaker lower bound).
    ``saved_activation_bytes`` is exact on every device: the bytes of the distinct tensors
    autograd saves for the backward pass (parameters excluded), the part that grows with batch.
    """

    bytes: int
    method: str
    device: str
    saved_activation_bytes: int

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


# --- timing ----------------------------------------------------------------------------------


def measure_step_time(
    model: nn.Module,
    batch_size: int,
    image_size: int,
    num_classes: int | None = None,
    device: torch.device | str | None = None,
    warmup: int = 3,
    steps: int = 10,
    threads: int | None = None,
    lr: float = 0.01,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> StepTiming:
    """Median wall-clock time of one training iteration (forward, cross-entropy backward, SGD
    momentum step) of ``model`` at ``batch_size`` x 3 x ``image_size``^2.

    A deep copy is timed, so the caller's weights and BatchNorm statistics are untouched; which
    parameters train follows the copy's ``requires_grad`` (frozen stages cost less, as they should).
    ``threads`` pins torch's intra-op threads for the measurement and restores them afterwards.
    ``batch`` (images, labels of ``batch_size`` rows) replaces the random batch, e.g. with real
    images; it is moved to ``device``, and no random numbers are drawn.
    """
    _check_sizes(batch_size, image_size, warmup, steps)
    device = torch.device(device) if device is not None else default_device()
    with pinned_threads(threads) as used_threads:
        step, dtype = _training_step(model, batch_size, image_size, device, num_classes, lr, batch)
        samples = time_calls(step, device, warmup, steps)
        return _timing(samples, batch_size, image_size, device, used_threads, dtype, "train")


def measure_inference_time(
    model: nn.Module,
    batch_size: int,
    image_size: int,
    device: torch.device | str | None = None,
    warmup: int = 3,
    steps: int = 10,
    threads: int | None = None,
) -> StepTiming:
    """Median wall-clock time of one forward pass in eval mode under ``torch.no_grad``."""
    _check_sizes(batch_size, image_size, warmup, steps)
    device = torch.device(device) if device is not None else default_device()
    with pinned_threads(threads) as used_threads:
        forward, dtype = _inference_call(model, batch_size, image_size, device)
        samples = time_calls(forward, device, warmup, steps)
        return _timing(samples, batch_size, image_size, device, used_threads, dtype, "inference")


def measure_interleaved(
    models: Mapping[str, nn.Module],
    batch_size: int,
    image_size: int,
    *,
    kind: str = "train",
    rounds: int = 4,
    steps_per_round: int = 5,
    warmup: int = 3,
    device: torch.device | str | None = None,
    threads: int | None = None,
) -> dict[str, StepTiming]:
    """Step (``kind="train"``) or inference times of several models measured together, so that
    their ratios come from the same conditions (issue 23; SPEC section 5, "Noise").

    Every model is prepared first (a deep copy, its optimizer and batch), warmed up with
    ``warmup`` untimed calls, then timed in ``rounds`` rounds: in each round every model runs one
    untimed call (its caches are cold after the others) and ``steps_per_round`` timed ones, in the
    given order in even rounds and reversed in odd rounds (ABBA), so a drift of the machine or a
    neighbour's load falls on every model alike. Each model's samples of all rounds give its
    median and IQR, exactly as :func:`measure_step_time` reports them."""
    if kind not in ("train", "inference"):
        raise InvalidMeasurementSetup(f"kind {kind!r} is not 'train' or 'inference'",
                                      hint="time training steps (kind='train') or forward passes (kind='inference')")
    if rounds < 1:
        raise InvalidMeasurementSetup(f"rounds={rounds}; must be >= 1", hint="time at least one round")
    _check_sizes(batch_size, image_size, warmup, steps_per_round)
    device = torch.device(device) if device is not None else default_device()
    with pinned_threads(threads) as used_threads:
        calls = {name: (_training_step(m, batch_size, image_size, device) if kind == "train"
                        else _inference_call(m, batch_size, image_size, device)) for name, m in models.items()}
        for fn, _ in calls.values():
            time_calls(fn, device, warmup, 0)
        samples: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                samples[name] += time_calls(calls[name][0], device, 1, steps_per_round)
        return {name: _timing(samples[name], batch_size, image_size, device, used_threads, calls[name][1], kind)
                for name in order}


def other_cpu_load(interval: float = 0.5) -> float:
    """Cores' worth of CPU that *other* processes used over the next ``interval`` seconds: the
    machine's busy CPU time minus this process's (and its children's that ended meanwhile; call it
    while no worker of ours runs). On a 2-core laptop another
    heavy process distorts step times by up to 2x (OpenMP barrier stalls, issue 23), so timed
    stages check this first (:func:`warn_if_contended`)."""
    import psutil

    before_sys, before_own = psutil.cpu_times(), process_cpu_seconds()
    time.sleep(interval)
    after_sys, after_own = psutil.cpu_times(), process_cpu_seconds()
    busy = sum(getattr(after_sys, f) - getattr(before_sys, f) for f in ("user", "system", "nice", "irq", "softirq")
               if hasattr(after_sys, f))
    return max(0.0, (busy - (after_own - before_own)) / interval)


def process_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def warn_if_contended(what: str, limit_cores: float = 0.25, interval: float = 0.5) -> float:
    """Log a warning when other processes use more than ``limit_cores`` cores while ``what`` is
    about to be timed; returns the load measured (also worth recording beside the timings)."""
    load = other_cpu_load(interval)
    if load > limit_cores:
        log.warning("%s: other processes use %.2f cores of %d; timings taken now are slower than on an "
                    "idle machine and not comparable with other runs", what, load, os.cpu_count() or 1)
    return load


def _trainable_copy(model: nn.Module, device: torch.device, lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A deep copy of ``model`` on ``device`` in train mode with SGD (momentum 0.9) over the
    parameters that train, so a measurement never touches the caller's weights or statistics."""
    net = copy.deepcopy(model).to(device).train()
    trainable = [p for p in net.parameters() if p.requires_grad]
    if not trainable:
        raise UnsupportedNetworkError("the model has no trainable parameters; a training step would do nothing",
                                      hint="leave at least the head trainable (requires_grad=True)")
    return net, torch.optim.SGD(trainable, lr=lr, momentum=0.9)


def _training_step(
    model: nn.Module, batch_size: int, image_size: int, device: torch.device, num_classes: int | None = None,
    lr: float = 0.01, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[Callable[[], None], torch.dtype]:
    """One training iteration of a deep copy of ``model`` (see :func:`measure_step_time`)."""
    num_classes = num_classes if num_classes is not None else _infer_num_classes(model)
    net, optimizer = _trainable_copy(model, device, lr)
    loss_fn = nn.CrossEntropyLoss()
    if batch is None:
        x, y = _random_batch(batch_size, image_size, num_classes, device, _dtype_of(net))
    else:
        x, y = batch[0].to(device), batch[1].to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step, _dtype_of(net)


def _inference_call(model: nn.Module, batch_size: int, image_size: int,
                    device: torch.device) -> tuple[Callable[[], None], torch.dtype]:
    """One forward pass of a deep copy of ``model`` in eval mode without gradients."""
    net = copy.deepcopy(model).to(device).eval()
    x = torch.randn(batch_size, 3, image_size, image_size, device=device, dtype=_dtype_of(net))

    def forward() -> None:
        with torch.no_grad():
            net(x)

    return forward, _dtype_of(net)


# --- counting ----------------------------------------------------------------------------------


def count_flops(model: nn.Module, image_size: int) -> int:
    """Forward FLOPs for one image (batch 1, eval mode) from ``torch.utils.flop_counter``.

    The counter counts matrix multiplies and convolutions (2 FLOPs per multiply-add) and ignores
    element-wise work (BatchNorm, activations, pooling), like the multiply-add counts papers
    publish; :func:`count_macs` is this halved.
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise InvalidMeasurementSetup(f"image_size must be a positive int, got {image_size!r}",
                                      hint="pass the image side in pixels, e.g. 32")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.randn(1, 3, image_size, image_size, device=device, dtype=dtype)
    with _eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-adds of one forward pass (``count_flops / 2``), the unit of NASOA Table 2."""
    return count_flops(model, image_size) // 2


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --- memory ------------------------------------------------------------------------------------


def measure_peak_memory(
    model: nn.Module,
    batch_size: int,
    image_size: int,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
) -> PeakMemory:
    """Peak memory of one training step (see :class:`PeakMemory` for what each method means)."""
    _check_sizes(batch_size, image_size, 0, 1)
    device = torch.device(device) if device is not None else default_device()
    num_classes = num_classes if num_classes is not None else _infer_num_classes(model)
    net, optimizer = _trainable_copy(model, device, 0.01)
    x, y = _random_batch(batch_size, image_size, num_classes, device, _dtype_of(net))
    param_ptrs = {p.untyped_storage().data_ptr() for p in net.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_ptrs:
            saved[storage.data_ptr()] = max(saved.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()

    name = describe_device(device)
    if device.type == "cuda":
        step()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return PeakMemory(int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated", name, sum(saved.values()))
    resettable = _reset_peak_rss()
    before = _proc_status_kib("VmRSS")
    step()
    if resettable:
        rise, method = _proc_status_kib("VmHWM") - before, "cpu_peak_rss_delta"
    else:
        rise, method = _proc_status_kib("VmRSS") - before, "cpu_rss_delta"
    return PeakMemory(max(0, rise) * 1024, method, name, sum(saved.values()))


# --- the step-time lookup table -------------------------------------------------------------------


@dataclass(frozen=True)
class StepTimeTable:
    """Training step time per model name or architecture code, for one device, batch and size."""

    device: str
    batch_size: int
    image_size: int
    entries: Mapping[str, StepTiming] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", dict(self.entries))

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def timing(self, name: str) -> StepTiming:
        try:
            return self.entries[name]
        except KeyError:
            raise UnknownModelError(
                f"no step time for {name!r} in the table for {self.device} "
                f"(batch {self.batch_size}, {self.image_size}x{self.image_size})",
                hint=f"the table holds: {', '.join(self.entries) or 'nothing'}; "
                "measure it with build_step_time_table([...])",
            ) from None

    def step_ms(self, name: str) -> float:
        """Median training step time of ``name`` in milliseconds."""
        return self.timing(name).median_ms

    def with_entries(self, more: Mapping[str, StepTiming]) -> "StepTimeTable":
        return StepTimeTable(self.device, self.batch_size, self.image_size, {**self.entries, **more})

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "device": self.device,
            "batch_size": self.batch_size,
            "image_size": self.image_size,
            "entries": {name: t.to_dict() for name, t in self.entries.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StepTimeTable":
        if d.get("format") != TABLE_FORMAT or d.get("version") != TABLE_VERSION:
            raise StoreCorruptedError(f"not a {TABLE_FORMAT} v{TABLE_VERSION} document",
                                      hint="delete it and rebuild it with build_step_time_table(...)")
        return cls(
            device=d["device"],
            batch_size=int(d["batch_size"]),
            image_size=int(d["image_size"]),
            entries={name: StepTiming.from_dict(t) for name, t in d["entries"].items()},
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "StepTimeTable":
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_dict(json.load(fh))
        except FileNotFoundError:
            raise
        except (StoreCorruptedError, ValueError, KeyError, TypeError) as err:
            raise StoreCorruptedError(
                f"step-time table {path} cannot be read: {err}",
                hint="delete it and rebuild it with build_step_time_table(...)",
            ) from err


def build_step_time_table(
    models: Mapping[str, Callable[[], nn.Module]] | Sequence[str],
    batch_size: int,
    image_size: int,
    device: torch.device | str | None = None,
    num_classes: int = 100,
    warmup: int = 3,
    steps: int = 10,
    threads: int | None = None,
    small_image_stem: bool = False,
) -> StepTimeTable:
    """Measure :func:`measure_step_time` for every model, one after the other, in one process.

    ``models`` maps names to zero-argument factories, or lists names: a registered baseline
    (``models.create``) or an architecture code (``builder.build``), built with ``num_classes``
    outputs (factories decide their own; targets follow each model's head). Models are built one at a
    time and dropped after timing, so the largest alone must fit in memory.
    """
    device = torch.device(device) if device is not None else default_device()
    factories = models if isinstance(models, Mapping) else {
        name: _named_factory(name, num_classes, image_size, small_image_stem) for name in models
    }
    entries: dict[str, StepTiming] = {}
    with pinned_threads(threads) as used_threads:
        for name, factory in factories.items():
            model = factory()
            entries[name] = measure_step_time(
                model, batch_size, image_size, device=device, warmup=warmup, steps=steps,
            )
            log.info("%s: %.1f ms/step (IQR %.1f)", name, entries[name].median_ms, entries[name].iqr_ms)
            del model
        device_name = describe_device(device) if device.type == "cuda" else f"cpu:{used_threads}threads"
    return StepTimeTable(device=device_name, batch_size=batch_size, image_size=image_size, entries=entries)


def resolve_model(name: str, num_classes: int, image_size: int, small_image_stem: bool = False) -> nn.Module:
    """A registered baseline by name, else an architecture code built by ``nasoa_lib.builder``."""
    from nasoa_lib import models as baselines

    if baselines.is_registered(name):
        return baselines.create(name, num_classes, image_size=image_size, small_image_stem=small_image_stem)
    try:
        from nasoa_lib import builder
    except ImportError:
        raise UnknownModelError(
            f"{name!r} is not a registered baseline and nasoa_lib.builder is not available to build it as a code",
            hint=f"known baselines: {', '.join(baselines.available())}",
        ) from None
    return builder.build(name, num_classes=num_classes, image_size=image_size, small_image_stem=small_image_stem)


# --- helpers -------------------------------------------------------------------------------------


def _named_factory(name: str, num_classes: int, image_size: int, small_image_stem: bool) -> Callable[[], nn.Module]:
    return lambda: resolve_model(name, num_classes, image_size, small_image_stem)


def _check_sizes(batch_size: int, image_size: int, warmup: int, steps: int) -> None:
    for label, value, low in (("batch_size", batch_size, 1), ("image_size", image_size, 1),
                              ("warmup", warmup, 0), ("steps", steps, 1)):
        if not isinstance(value, int) or value < low:
            raise InvalidMeasurementSetup(f"{label} must be an int >= {low}, got {value!r}",
                                          hint=f"pass {label}={low} or more")


def _infer_num_classes(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UnsupportedNetworkError("cannot infer num_classes (no nn.Linear in the model); pass num_classes=",
                                      hint="pass num_classes= (the width of the model's output)")
    return linears[-1].out_features


def _dtype_of(model: nn.Module) -> torch.dtype:
    param = next(model.parameters(), None)
    return param.dtype if param is not None else torch.float32


def _random_batch(
    batch_size: int, image_size: int, num_classes: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch_size, 3, image_size, image_size, device=device, dtype=dtype)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    return x, y


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, warmup: int, steps: int) -> list[float]:
    """Milliseconds of each of ``steps`` calls of ``fn`` after ``warmup`` untimed ones; on CUDA
    the device is synchronised before the first and after every timed call, so each sample
    covers the work ``fn`` queued. The one timing loop of the library: the measurements above
    use it, and so do callers whose step is not a plain ``model(x)`` (the NSS super network)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        _sync(device)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def _timing(
    samples: list[float], batch_size: int, image_size: int, device: torch.device,
    threads: int, dtype: torch.dtype, kind: str,
) -> StepTiming:
    if len(samples) >= 2:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        iqr = q3 - q1
    else:
        iqr = 0.0
    name = describe_device(device) if device.type == "cuda" else f"cpu:{threads}threads"
    return StepTiming(
        median_ms=statistics.median(samples), iqr_ms=iqr, samples_ms=tuple(samples),
        batch_size=batch_size, image_size=image_size, device=name, threads=threads,
        dtype=str(dtype).removeprefix("torch."), kind=kind,
    )


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _proc_status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident set (Linux ``clear_refs`` 5); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
