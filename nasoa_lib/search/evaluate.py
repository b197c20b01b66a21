"""Evaluating NAS candidates: proxy accuracy in parallel workers, step time on the parent node.

NASOA section 3.1 modifies NSGA-II so that N candidates train at once on N computation nodes
while "a parent computation node" measures each selected architecture's training speed. Here:

* :func:`measure_costs` runs in the parent process, only while no worker trains (between
  generations), with the profile's thread count: :func:`nasoa_lib.measure.measure_step_time`
  (the study's one step-time function), FLOPs and parameters. Its result is stored per code and
  device (kind ``nas_cost``), so a resumed search never measures a code twice.
* :func:`train_candidate` runs in a worker: the short proxy training through the study's one
  training engine (:func:`nasoa_lib.train.pretrain` with the proxy recipe), returning top-1 on
  held-out source images and the wall-clock. Candidates that break T_m are not trained (Eq. 1
  makes them infeasible whatever their accuracy).
* a :class:`~nasoa_lib.parallel.WorkerPool` runs the trainings: a local process pool by default,
  Ray when a cluster address is given (``"local"`` starts a one-machine Ray instance), or
  serially in-process.

An evaluation is a store record of kind ``nas_eval`` keyed by :func:`eval_key` (code + proxy
spec + step-time spec + profile), written once: whichever search asks for a code again reads it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence


from nasoa_lib.parallel import WorkerPool
from nasoa_lib.profiles import resolve_profile
from nasoa_lib.search.config import ProxySpec, small_image_stem
from nasoa_lib.store import ArtifactStore, spec_key

log = logging.getLogger(__name__)

EVAL_KIND = "nas_eval"
COST_KIND = "nas_cost"


@dataclass(frozen=True)
class StepSpec:
    """How step time is measured: the profile's ``measure:`` section plus the parent's threads."""

    batch_size: int
    warmup: int
    steps: int
    threads: int
    image_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "warmup": self.warmup,
            "steps": self.steps,
            "threads": self.threads,
            "image_size": self.image_size,
        }

    @classmethod
    def from_profile(cls, profile, threads: int | None = None) -> "StepSpec":
        from nasoa_lib.measure import MeasureConfig

        prof = resolve_profile(profile)
        m = MeasureConfig.from_profile(prof)
        return cls(m.batch_size, m.warmup, m.steps, threads or prof.threads, prof.image_size)


PROBE_FACTOR = 3.0
"""A candidate whose first step (no warm-up) already takes PROBE_FACTOR x T_m is recorded
infeasible from that one step: the median of a full measurement cannot plausibly fall under T_m,
and big random macros would otherwise cost (warm-up + steps) slow iterations each."""


def cost_key(code: str, step: StepSpec, profile: str, t_max_ms: float | None = None) -> str:
    """Store key of a code's measured cost (with the builder's down-sampling rule when it pools)."""
    from nasoa_lib.builder import key_fields
    from nasoa_lib.device import describe_device

    return spec_key({"stage": "nas_cost", "code": code, "step": step, "profile": profile,
                     "device": describe_device().split(":")[0], "t_max_ms": t_max_ms, **key_fields(code)})


def eval_key(code: str, proxy: ProxySpec, step: StepSpec, t_max_ms: float, profile: str) -> str:
    """Run key of one evaluation (what makes two evaluations the same; the builder's down-sampling
    rule when it pools, :func:`nasoa_lib.builder.downsampling_rule`)."""
    from nasoa_lib.builder import key_fields

    return spec_key({"stage": "nas_eval", "code": code, "proxy": proxy, "step": step,
                     "t_max_ms": t_max_ms, "profile": profile, **key_fields(code)})


def measure_costs(code: str, profile, step: StepSpec, num_classes: int, store: ArtifactStore,
                  t_max_ms: float | None = None) -> dict:
    """Step time (ms, median and IQR), FLOPs and parameters of ``code``, measured in this process
    (the parent node) with ``step.threads`` threads; cached in the store per code and device.

    With ``t_max_ms``, one probe step comes first; a probe over :data:`PROBE_FACTOR` x T_m is the
    recorded step time (``step_samples`` 1) and the candidate is infeasible without more steps."""
    from nasoa_lib import measure
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    key = cost_key(code, step, prof.name, t_max_ms)
    found = store.get(COST_KIND, key)
    if found is not None:
        return found
    model = build_model(code, num_classes, step.image_size, small_image_stem(prof))
    timing = None
    if t_max_ms is not None:
        probe = measure.measure_step_time(model, step.batch_size, step.image_size, num_classes=num_classes,
                                          warmup=0, steps=1, threads=step.threads)
        if probe.median_ms > PROBE_FACTOR * t_max_ms:
            timing = probe
    if timing is None:
        timing = measure.measure_step_time(
            model, step.batch_size, step.image_size, num_classes=num_classes,
            warmup=step.warmup, steps=step.steps, threads=step.threads,
        )
    record = {
        "code": code,
        "step_ms": timing.median_ms,
        "step_iqr_ms": timing.iqr_ms,
        "step_samples": len(timing.samples_ms),
        "step_device": timing.device,
        "flops": measure.count_flops(model, step.image_size),
        "params": measure.count_params(model),
    }
    store.put(COST_KIND, key, record)
    return record


def train_candidate(code: str, profile_name: str, proxy: ProxySpec, store_root: str, seed: int) -> dict:
    """Proxy-train ``code`` (in a worker) and return its source top-1 and wall-clock.

    The proxy run's weights are not kept (only its accuracy matters); its ``pretrained`` record is
    removed once the caller has stored the evaluation, see :func:`forget_proxy_weights`.
    """
    from nasoa_lib.train import pretrain

    prof = resolve_profile(profile_name)
    store = ArtifactStore(store_root)
    start = time.perf_counter()
    result = pretrain(code, recipe=proxy.recipe(small_image_stem(prof)), profile=prof, store=store,
                      seed=seed, progress=False)
    return {
        "proxy_top1": float(result.source_top1),
        "train_seconds": float(result.record["train_seconds"]),
        "wall_seconds": time.perf_counter() - start,
        "proxy_pretrain_key": result.key,
        "worker_pid": os.getpid(),
    }


def forget_proxy_weights(store: ArtifactStore, pretrain_key: str) -> None:
    """Drop a proxy training's weights (its accuracy lives in the ``nas_eval`` record)."""
    from nasoa_lib.train import PRETRAINED_KIND

    store.delete(PRETRAINED_KIND, pretrain_key)


# ----------------------------------------------------------------------------------- backends

#: Whatever runs the proxy trainings: :class:`nasoa_lib.parallel.WorkerPool`.
Backend = WorkerPool


def make_backend(kind: str, workers: int, threads_per_worker: int, address: str | None = None) -> WorkerPool:
    """``"process"`` (default), ``"serial"``, or ``"ray"`` (``address``: a cluster or ``"local"``)."""
    return WorkerPool(kind, workers, threads_per_worker, address)


# ------------------------------------------------------------------------------ one generation


def evaluate_codes(
    codes: Sequence[str],
    *,
    profile,
    proxy: ProxySpec,
    step: StepSpec,
    t_max_ms: float,
    store: ArtifactStore,
    backend: Backend,
    num_classes: int,
    seed: int = 0,
    context: Mapping[str, Any] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> tuple[list[dict], list[str]]:
    """Evaluate ``codes`` (one generation): stored ones are read, the others are measured by this
    process first (parent node, the pool idle), then the feasible ones train in parallel.

    Returns the evaluation records in the order of ``codes`` and the keys evaluated by this call.
    ``context`` (search name, generation) goes into records created here.
    """
    from nasoa_lib.provenance import provenance

    prof = resolve_profile(profile)
    keys = [eval_key(c, proxy, step, t_max_ms, prof.name) for c in codes]
    records: dict[str, dict] = {}
    todo: list[int] = []
    for i, key in enumerate(keys):
        found = store.get(EVAL_KIND, key)
        if found is not None:
            records[key] = found
        elif key not in {keys[j] for j in todo}:
            todo.append(i)
    costs = {i: measure_costs(codes[i], prof, step, num_classes, store, t_max_ms) for i in todo}
    created: list[str] = []

    def finish(i: int, trained: dict | None) -> None:
        cost = costs[i]
        record = {
            "code": codes[i],
            **cost,
            "feasible": cost["step_ms"] <= t_max_ms,
            "proxy_top1": None if trained is None else trained["proxy_top1"],
            "train_seconds": 0.0 if trained is None else trained["train_seconds"],
            "wall_seconds": 0.0 if trained is None else trained["wall_seconds"],
            "worker_pid": None if trained is None else trained["worker_pid"],
            "t_max_ms": t_max_ms,
            "proxy": proxy.to_dict(),
            **dict(context or {}),
        }
        store.put(EVAL_KIND, keys[i], record, provenance=provenance(prof.name, seed, "cpu"))
        if trained is not None:
            forget_proxy_weights(store, trained["proxy_pretrain_key"])
        records[keys[i]] = record
        created.append(keys[i])
        if on_result is not None:
            on_result(record)

    train = [i for i in todo if costs[i]["step_ms"] <= t_max_ms]
    for i in todo:
        if i not in train:
            finish(i, None)
    jobs = [(codes[i], prof.name, proxy, str(store.root), seed) for i in train]
    for j, result in backend.map_unordered(train_candidate, jobs):
        finish(train[j], result)
    return [records[k] for k in keys], created
