"""Collecting the meta-dataset: many real fine-tuning runs, in parallel, resumable (NASOA 4.3).

:func:`collect` makes sure runs ``0 .. runs-1`` of the profile's collection exist. Run ``i`` is
drawn by :func:`~nasoa_lib.metadata.sampling.sample_run`; its meta-features (domain similarity by
EMD, source accuracy, ...) are computed in the parent, the fine-tuning happens in a worker, and
the worker appends the run's rows to the artifact store itself (kind ``meta_run``): **one row per
checkpoint** (epochs of the run-length ladder, :mod:`nasoa_lib.run_length`; the constant-rate
state after ``e`` epochs is the run of ``e`` epochs), keyed by ``(collection, run, epochs)``, with
``index = run * len(ladder) + rung`` so that sorting by ``index`` keeps a run's rows together and
in epoch order:

* **kill -9 at any point** loses at most the runs in flight: every row is one committed SQLite
  transaction (WAL, ``synchronous=FULL``), a run's rows are written in epoch order after the run,
  and a run counts as stored when its last row is; a re-run runs the others again, and
  ``INSERT OR IGNORE`` on the key means a row is never stored twice, even if an orphaned worker
  of the killed run finishes the same run later;
* **extension**: asking for more runs adds indices; the ones already there are not touched;
* **parallelism**: a local pool of ``workers`` spawned processes, each with
  ``cores // workers`` torch threads (both cores busy with the default two workers), or Ray tasks
  when a cluster address is given (``address="local"`` starts a one-machine Ray instance).

A collection is identified by :func:`collection_id`: the profile, the sampling ranges, the
fine-tuning settings, the run-length ladder and schedule, and the meta-feature settings. Changing
any of these starts another collection (rows of an older collection stay in the store, unread);
changing ``runs``, ``workers`` or the model list extends the same one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from nasoa_lib.errors import ArtifactNotFoundError, InvalidDataError, NasoaError, StoreCorruptedError
from nasoa_lib.finetune import FinetuneSettings, worker_threads
from nasoa_lib.kinds import META_RUN_KIND
from nasoa_lib.metadata.config import MetaDatasetConfig
from nasoa_lib.metadata.sampling import DatasetCounts, SampledRun, check_meta_train, sample_run
from nasoa_lib.metafeatures import MetaFeatureConfig, MetaFeatures
from nasoa_lib.parallel import WorkerPool
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.run_length import SCHEDULE, RunLengthConfig
from nasoa_lib.store import ArtifactStore, spec_key

log = logging.getLogger(__name__)

STEP_TIME_KIND = "meta_step_time"
#: Planning only: time of a fine-tuning step with k frozen stages relative to k = 0, measured on
#: collector runs (batch 32, one thread, ResNet-18 / RegNetY-400MF / MobileNetV3-S, tasks of 10 to
#: 1500 images, frozen-prefix cache on "auto"): at 32x32, training stage 4 alone costs about half
#: a full step, and the head alone (k = 4) almost nothing.
FROZEN_COST = {0: 1.0, 1: 0.88, 2: 0.80, 3: 0.50, 4: 0.03}
#: Planning only: seconds per run besides training steps (task arrays, model copy), measured on the
#: same collector runs.
RUN_OVERHEAD_S = 0.15
#: Planning only: seconds of evaluating one test image at a checkpoint, as a multiple of one
#: training step's seconds per image (a forward pass without backward, in eval mode; measured 0.21
#: on ResNet-18 runs with nothing frozen, less with frozen stages, whose prefix is cached).
EVAL_COST_PER_IMAGE = 0.25
#: Format of the collection's rows (2: one row per checkpoint of a constant-rate run, issue 22).
ROWS_VERSION = 2


@dataclass(frozen=True)
class CandidateModel:
    """A model the collector may fine-tune: ``name`` is its meta-feature value (baseline name or
    zoo member), ``target`` what :func:`~nasoa_lib.train.load_pretrained` takes (name or code)."""

    name: str
    target: str
    group: str
    source_accuracy: float
    pretrained_key: str


@dataclass(frozen=True)
class Job:
    """Everything a worker needs for one run (small and picklable: no arrays, no weights)."""

    store_root: str
    profile: str
    collection: str
    keys: tuple[str, ...]
    indices: tuple[int, ...]
    run: SampledRun
    model: CandidateModel
    features: MetaFeatures
    emd: float


@dataclass(frozen=True)
class MetaRunRecord:
    """One row of the meta-dataset as stored (kind ``meta_run``): one checkpoint of one run, its
    meta-features (``iterations`` = the checkpoint's optimizer steps), the target (``accuracy``
    after that many steps), and what identifies and measures the run.

    ``index`` is the row's place in the collection (``run * len(ladder) + rung``), ``run`` the run
    it belongs to, ``epochs`` the checkpoint's epochs of the task and ``run_epochs`` the run's last
    checkpoint; ``accuracy_even`` / ``accuracy_odd`` are the accuracies on the even- and
    odd-indexed test images (independent halves: notebook 06's test-set noise floor).
    ``train_seconds`` is the training time up to the checkpoint (what a run of ``epochs`` costs);
    ``wall_seconds`` / ``cpu_seconds`` are the run's worker time divided over its rows (so sums
    are worker time), ``run_wall_seconds`` the whole run's.

    :meth:`to_dict` is exactly the flat JSON object the store holds (the columns of
    :data:`nasoa_lib.metadata.export.COLUMNS` but ``stored_at``, which the store adds on reading).
    """

    collection: str
    index: int
    run: int
    epochs: int
    run_epochs: int
    split: str
    profile: str
    features: MetaFeatures
    accuracy: float
    accuracy_even: float
    accuracy_odd: float
    dataset: str
    classes: tuple[int, ...]
    task_seed: int
    test_per_class: int
    test_images: int
    emd: float
    model_group: str
    model_target: str
    pretrained_key: str
    batch_size: int
    lr_schedule: str
    momentum: float
    weight_decay: float
    augment: bool
    seed: int
    spec_hash: str
    train_seconds: float
    eval_seconds: float
    wall_seconds: float
    run_wall_seconds: float
    cpu_seconds: float
    steps: int
    median_step_seconds: float
    frozen_cache: bool
    threads: int
    pid: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "features":
                out.update(value.to_dict())
            else:
                out[f.name] = list(value) if f.name == "classes" else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MetaRunRecord":
        missing = [f.name for f in fields(cls) if f.name != "features" and f.name not in data]
        if missing:
            raise InvalidDataError(
                f"meta-dataset row {data.get('index')!r} lacks {', '.join(missing)}: a row of an older format "
                "(one row per run, before checkpoints)",
                hint="collect the profile's current collection: nasoa reproduce --only 05 (older rows stay unread)")
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "features"}
        values["classes"] = tuple(values["classes"])
        return cls(features=MetaFeatures.from_dict(data), **values)


@dataclass(frozen=True)
class JobSummary:
    """What a worker reports back for one :class:`Job` (the row itself is in the store)."""

    run: int
    rows: int
    cpu_seconds: float
    accuracy: float | None = None

    @property
    def stored(self) -> bool:
        return self.rows > 0


@dataclass(frozen=True)
class CollectSummary:
    """What one :func:`collect` call did."""

    collection: str
    requested: int
    already_stored: int
    collected: int
    rows: int
    new_rows: int
    wall_seconds: float
    workers: int
    threads_per_worker: int
    backend: str
    cpu_seconds: float = 0.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def runs_per_hour(self) -> float:
        return 3600.0 * self.collected / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def rows_per_hour(self) -> float:
        return 3600.0 * self.new_rows / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def cpu_utilisation(self) -> float:
        """Worker CPU seconds over ``wall x cores``: 1.0 means every core busy fine-tuning."""
        return self.cpu_seconds / (self.wall_seconds * self.cores) if self.wall_seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runs_per_hour": self.runs_per_hour, "rows_per_hour": self.rows_per_hour,
                "cpu_utilisation": self.cpu_utilisation}


# ----------------------------------------------------------------------------------------------
# Identity and models
# ----------------------------------------------------------------------------------------------


def collection_id(profile: Profile | str, config: MetaDatasetConfig | None = None) -> str:
    """Key of the profile's collection: what decides run ``i`` (see module docstring)."""
    prof = resolve_profile(profile)
    config = config or MetaDatasetConfig.from_profile(prof)
    return spec_key({
        "stage": "meta_dataset", "profile": prof.name, "source": prof.source_dataset,
        "meta_train": list(prof.meta_train), "image_size": prof.image_size,
        "sampling": config.sampling_dict(), "finetune": asdict(FinetuneSettings.from_profile(prof)),
        "metafeatures": MetaFeatureConfig.from_profile(prof).to_dict(),
        "run_length": asdict(RunLengthConfig.from_profile(prof)), "schedule": SCHEDULE, "rows": ROWS_VERSION,
    })


def row_key(collection: str, run: int, epochs: int) -> str:
    """Store key of the row of run ``run`` at ``epochs`` (whichever model the run drew)."""
    return spec_key({"stage": META_RUN_KIND, "collection": collection, "run": int(run), "epochs": int(epochs)})


def row_index(run: int, rung: int, ladder_length: int) -> int:
    """A row's place in the collection: runs in order, a run's checkpoints in epoch order."""
    return int(run) * int(ladder_length) + int(rung)


def baseline_names(profile: Profile | str, config: MetaDatasetConfig | None = None) -> tuple[str, ...]:
    from nasoa_lib.models import ModelsConfig

    prof = resolve_profile(profile)
    config = config or MetaDatasetConfig.from_profile(prof)
    if config.baselines is not None:
        return config.baselines
    return ModelsConfig.from_profile(prof).baselines


def candidate_models(
    profile: Profile | str, store: ArtifactStore | None = None, config: MetaDatasetConfig | None = None,
    pretrain_missing: bool = False, progress: bool = True,
) -> list[CandidateModel]:
    """The baselines (pretrained with the profile's shared recipe) and, with ``config.zoo``, every
    zoo member built so far; a baseline not yet pretrained is pretrained (``pretrain_missing``) or
    an :class:`ArtifactNotFoundError` naming the notebook that pretrains it."""
    from nasoa_lib.train import PRETRAINED_KIND, PretrainRecipe, pretrain, pretrain_key

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    config = config or MetaDatasetConfig.from_profile(prof)
    recipe = PretrainRecipe.from_profile(prof)
    out: list[CandidateModel] = []
    for name in baseline_names(prof, config):
        key = pretrain_key(name, prof.source_dataset, recipe, prof)
        record = store.get(PRETRAINED_KIND, key)
        if record is None:
            if not pretrain_missing:
                raise ArtifactNotFoundError(
                    f"baseline {name!r} is not pretrained for profile {prof.name!r} in {store.root}",
                    hint=f"pretrain it: nasoa reproduce --profile {prof.name} --only 05 (notebook 05 pretrains missing baselines), "
                         "or pass pretrain_missing=True",
                )
            record = pretrain(name, profile=prof, store=store, progress=progress).record
        out.append(CandidateModel(name, name, "baseline", float(record["source_top1"]), key))
    if config.zoo:
        from nasoa_lib import zoo

        for card in zoo.cards(prof, store).values():
            out.append(CandidateModel(card.name, card.code, card.group, float(card.source_top1), card.pretrain_key))
    if not out:
        raise ArtifactNotFoundError("no model to collect runs with", hint="list baselines in the profile or build the zoo")
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise NasoaError(f"duplicate model names {names}", hint="a baseline and a zoo member share a name")
    return out


def dataset_counts(profile: Profile | str) -> list[DatasetCounts]:
    """Class counts of the profile's meta-train datasets (each loaded and checksum-verified)."""
    from nasoa_lib.data import load_dataset

    prof = resolve_profile(profile)
    check_meta_train(prof.meta_train, prof.meta_test)
    return [DatasetCounts.of(load_dataset(name)) for name in prof.meta_train]


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------


def pending_runs(
    profile: Profile | str, runs: int | None = None, store: ArtifactStore | None = None,
    config: MetaDatasetConfig | None = None, models: Sequence[CandidateModel] | None = None,
) -> list[SampledRun]:
    """Runs ``0 .. runs-1`` of the collection not yet in the store."""
    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    config = config or MetaDatasetConfig.from_profile(prof)
    runs = config.runs if runs is None else runs
    models = models if models is not None else candidate_models(prof, store, config)
    counts = dataset_counts(prof)
    settings = FinetuneSettings.from_profile(prof)
    run_length = RunLengthConfig.from_profile(prof)
    done = stored_runs(store, collection_id(prof, config), run_length.ladder())
    names = [m.name for m in models]
    return [sample_run(config, i, counts, names, settings, run_length) for i in range(runs) if i not in done]


def step_seconds(
    profile: Profile | str, models: Sequence[CandidateModel], threads: int, store: ArtifactStore | None = None,
) -> dict[str, float]:
    """Median seconds of one fine-tuning step (batch of the ``finetune:`` section, ``threads``
    threads) per model, measured once and stored (kind ``meta_step_time``); used only to plan."""
    from nasoa_lib.builder import key_fields
    from nasoa_lib.measure import MeasureConfig, measure_step_time
    from nasoa_lib.search.config import small_image_stem
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    settings = FinetuneSettings.from_profile(prof)
    m = MeasureConfig.from_profile(prof)
    out = {}
    for model in models:
        spec = {"target": model.target, "batch_size": settings.batch_size, "image_size": prof.image_size,
                "threads": threads, "num_classes": 10, **key_fields(model.target)}
        key = spec_key(spec)
        record = store.get(STEP_TIME_KIND, key)
        if record is None:
            net = build_model(model.target, 10, prof.image_size, small_image_stem(prof))
            timing = measure_step_time(net, settings.batch_size, prof.image_size, warmup=m.warmup,
                                       steps=m.steps, threads=threads)
            record = {**spec, "seconds": timing.median_ms / 1000.0, "timing": timing.to_dict()}
            store.put(STEP_TIME_KIND, key, record)
        out[model.name] = float(record["seconds"])
    return out


def expected_seconds(run: SampledRun, seconds_per_step: Mapping[str, float]) -> float:
    """Planned seconds of one run: steps x measured step time x frozen-stage cost, plus one test-set
    evaluation per checkpoint (images x :data:`EVAL_COST_PER_IMAGE` x the step's time per image),
    plus overhead."""
    step = seconds_per_step[run.model]
    train = run.regime.iterations * step * FROZEN_COST[run.regime.frozen_stages]
    test_images = run.task.num_classes * (run.task.test_per_class or 0)
    evaluate = len(run.eval_steps) * test_images * EVAL_COST_PER_IMAGE * step / run.regime.batch_size
    return train + evaluate + RUN_OVERHEAD_S


def plan_table(runs: Sequence[SampledRun], seconds_per_step: Mapping[str, float], workers: int) -> pd.DataFrame:
    """Pending runs, their rows (checkpoints) and expected minutes per model, and the wall-clock on
    ``workers`` workers."""
    rows = [{"model": r.model, "seconds": expected_seconds(r, seconds_per_step), "rows": len(r.epochs)}
            for r in runs]
    frame = pd.DataFrame(rows, columns=["model", "seconds", "rows"])
    table = frame.groupby("model").agg(runs=("seconds", "size"), rows=("rows", "sum"),
                                       cpu_minutes=("seconds", "sum")).reset_index()
    table["cpu_minutes"] /= 60.0
    table["step_ms"] = table.model.map(lambda m: 1000.0 * seconds_per_step[m])
    table["expected_wall_minutes"] = table.cpu_minutes / workers
    return table


# ----------------------------------------------------------------------------------------------
# Stored rows
# ----------------------------------------------------------------------------------------------


def corrupt_keys(store: ArtifactStore) -> list[str]:
    """Keys of ``meta_run`` rows that cannot be decoded."""
    good = {e.key for e in store.entries(META_RUN_KIND, skip_corrupt=True)}
    return [k for k in store.keys(META_RUN_KIND) if k not in good]


def drop_corrupt_rows(store: ArtifactStore) -> list[str]:
    """Delete unreadable ``meta_run`` rows (their indices are collected again by :func:`collect`)."""
    keys = corrupt_keys(store)
    for key in keys:
        store.delete(META_RUN_KIND, key)
    if keys:
        log.warning("dropped %d corrupt meta-dataset row(s): %s", len(keys), ", ".join(keys))
    return keys


def stored_rows(store: ArtifactStore, collection: str, skip_corrupt: bool = False) -> list[dict]:
    """Rows of ``collection`` in storage order, each with its ``stored_at`` time; an unreadable
    row raises (or is skipped)."""
    try:
        entries = store.entries(META_RUN_KIND, skip_corrupt=skip_corrupt)
    except StoreCorruptedError as err:
        raise StoreCorruptedError(
            f"the meta-dataset in {store.root} has unreadable rows ({err})",
            hint=f"read the others with skip_corrupt=True, or drop the bad rows with "
            f"nasoa_lib.metadata.drop_corrupt_rows(ArtifactStore({str(store.root)!r})) and re-run collect(): "
            "their runs are collected again",
        ) from err
    return [{**e.record, "stored_at": e.created_at} for e in entries if e.record.get("collection") == collection]


def stored_runs(store: ArtifactStore, collection: str, ladder: Sequence[int]) -> set[int]:
    """Runs of ``collection`` with every row stored (one per rung of ``ladder`` up to the run's length)."""
    rows: dict[int, set[int]] = {}
    length: dict[int, int] = {}
    for r in stored_rows(store, collection, skip_corrupt=True):
        rows.setdefault(int(r["run"]), set()).add(int(r["epochs"]))
        length[int(r["run"])] = int(r["run_epochs"])
    return {run for run, epochs in rows.items() if epochs >= {e for e in ladder if e <= length[run]}}


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------

_PRETRAINED: dict[str, Any] = {}


def _pretrained(job: Job) -> Any:
    """The job's pretrained model, loaded once per worker process."""
    from nasoa_lib.train import load_pretrained

    key = job.model.pretrained_key
    if key not in _PRETRAINED:
        store = ArtifactStore(job.store_root)
        loaded = load_pretrained(job.model.target, job.profile, store=store)
        if loaded.key != key:
            raise StoreCorruptedError(
                f"model {job.model.name}: pretraining {loaded.key} found, {key} expected",
                hint="the pretraining recipe changed while collecting; re-run collect()",
            )
        _PRETRAINED[key] = loaded
    return _PRETRAINED[key]


def run_job(job: Job) -> JobSummary:
    """Fine-tune one sampled run and append its row to the store (called in a worker)."""
    import torch

    from nasoa_lib.data import make_task
    from nasoa_lib.device import default_device, describe_device
    from nasoa_lib.finetune import finetune
    from nasoa_lib.provenance import provenance

    store = ArtifactStore(job.store_root)
    if all(store.has(META_RUN_KIND, key) for key in job.keys):
        return JobSummary(job.run.index, 0, 0.0)
    check_meta_train([job.run.task.dataset])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    prof = resolve_profile(job.profile)
    pretrained = _pretrained(job)
    task = make_task(job.run.task)
    device = default_device()
    run = job.run
    result = finetune(pretrained, task, run.regime, seed=run.seed, image_size=prof.image_size, device=device,
                      eval_steps=run.eval_steps)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    checkpoints = {c.step: c for c in result.checkpoints}
    share = 1.0 / len(run.eval_steps)
    stored = 0
    prov = provenance(job.profile, run.seed, device.type)
    for key, index, epochs, steps in zip(job.keys, job.indices, run.epochs, run.eval_steps):
        point = checkpoints[steps]
        record = MetaRunRecord(
            collection=job.collection, index=index, run=run.index, epochs=int(epochs), run_epochs=run.max_epochs,
            split=run.split, profile=job.profile,
            features=dataclasses.replace(job.features, iterations=int(steps)),
            accuracy=float(point.test_accuracy), accuracy_even=float(point.test_half_accuracies[0]),
            accuracy_odd=float(point.test_half_accuracies[1]),
            dataset=run.task.dataset, classes=tuple(run.task.classes), task_seed=run.task.seed,
            test_per_class=run.task.test_per_class, test_images=int(len(task.y_test)),
            emd=job.emd, model_group=job.model.group, model_target=job.model.target,
            pretrained_key=job.model.pretrained_key,
            batch_size=run.regime.batch_size, lr_schedule=run.regime.lr_schedule,
            momentum=run.regime.momentum, weight_decay=run.regime.weight_decay, augment=run.regime.augment,
            seed=run.seed, spec_hash=result.key,
            train_seconds=point.train_seconds, eval_seconds=result.eval_seconds * share, wall_seconds=wall * share,
            run_wall_seconds=wall, cpu_seconds=cpu * share, steps=int(steps),
            median_step_seconds=result.median_step_seconds,
            frozen_cache=result.frozen_cache, threads=torch.get_num_threads(), pid=os.getpid(),
            device=describe_device(device),
        )
        stored += int(store.put(META_RUN_KIND, key, record.to_dict(), provenance=prov))
    return JobSummary(run.index, stored, cpu, result.accuracy)


def execute(jobs: Sequence[Job], workers: int, threads: int, address: str | None = None) -> Iterator[JobSummary]:
    """Run ``jobs``, yielding each worker's summary as it finishes (in-process for one worker, a
    local process pool otherwise, Ray with ``address``: :class:`~nasoa_lib.parallel.WorkerPool`)."""
    kind = "serial" if workers == 1 else "process"
    with WorkerPool(kind, workers, threads, address) as pool:
        for _, summary in pool.map_unordered(run_job, [(job,) for job in jobs]):
            yield summary


# ----------------------------------------------------------------------------------------------
# Collecting
# ----------------------------------------------------------------------------------------------


def make_jobs(
    profile: Profile | str, runs: Sequence[SampledRun], models: Sequence[CandidateModel], store: ArtifactStore,
    collection: str,
) -> list[Job]:
    """Attach each run's meta-features: the task's EMD similarity to the source (class means of
    the reference network, computed once per dataset), the model's source accuracy, the regime."""
    from nasoa_lib import metafeatures as mf

    prof = resolve_profile(profile)
    mf_config = mf.MetaFeatureConfig.from_profile(prof)
    by_name = {m.name: m for m in models}
    ref = mf.reference_network(prof, store, mf_config)
    source = mf.source_class_features(prof, store, mf_config, ref)
    per_dataset = {name: mf.dataset_class_features(name, prof, store, mf_config, ref)
                   for name in sorted({r.task.dataset for r in runs})}
    ladder_length = len(RunLengthConfig.from_profile(prof).ladder())
    jobs = []
    for run in runs:
        model = by_name[run.model]
        emd, similarity = mf.task_similarity(source, per_dataset[run.task.dataset], run.task.classes,
                                             run.task.images_per_class, mf_config.gamma)
        features = mf.make_meta_features(
            model=model.name, source_accuracy=model.source_accuracy, domain_similarity=similarity,
            num_classes=run.task.num_classes, images_per_class=run.task.images_per_class,
            iterations=run.regime.iterations, lr=run.regime.lr, frozen_stages=run.regime.frozen_stages,
        )
        keys = tuple(row_key(collection, run.index, e) for e in run.epochs)
        indices = tuple(row_index(run.index, rung, ladder_length) for rung in range(len(run.epochs)))
        jobs.append(Job(str(store.root), prof.name, collection, keys, indices, run, model, features, float(emd)))
    return jobs


def collect(
    profile: Profile | str,
    runs: int | None = None,
    *,
    store: ArtifactStore | None = None,
    config: MetaDatasetConfig | None = None,
    workers: int | None = None,
    address: str | None = None,
    models: Sequence[CandidateModel] | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Make sure runs ``0 .. runs-1`` (default: the profile's ``metadata.runs``) are stored.

    Raises before any run when a meta-train dataset is missing, a meta-test dataset is configured
    as meta-train, a range is empty, or stored rows are unreadable (with the way to drop them).
    """
    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    config = config or MetaDatasetConfig.from_profile(prof)
    runs = config.runs if runs is None else int(runs)
    workers = workers or config.workers
    threads = worker_threads(workers)
    check_meta_train(prof.meta_train, prof.meta_test)
    bad = corrupt_keys(store)
    if bad:
        raise StoreCorruptedError(
            f"{len(bad)} meta-dataset row(s) in {store.root} cannot be read: {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}",
            hint="drop them with nasoa_lib.metadata.drop_corrupt_rows(store) and re-run: their runs are "
            "collected again; every other row is kept",
        )
    collection = collection_id(prof, config)
    models = list(models) if models is not None else candidate_models(prof, store, config)
    todo = pending_runs(prof, runs, store, config, models)
    already = runs - len(todo)
    jobs = make_jobs(prof, todo, models, store, collection)
    backend = "ray" if address is not None else ("serial" if workers == 1 else "process")
    log.info("meta-dataset %s: %d of %d runs stored, %d to collect on %d %s worker(s) x %d thread(s)",
             collection, already, runs, len(jobs), workers, backend, threads)
    from tqdm.auto import tqdm

    bar = tqdm(total=runs, initial=already, desc="meta-dataset runs", disable=not progress)
    start = time.perf_counter()
    collected, new_rows, cpu = 0, 0, 0.0
    try:
        for summary in execute(jobs, workers, threads, address):
            collected += int(summary.stored)
            new_rows += summary.rows
            cpu += float(summary.cpu_seconds)
            bar.update(1)
    finally:
        bar.close()
    wall = time.perf_counter() - start
    total = len(stored_rows(store, collection))
    return CollectSummary(collection, runs, already, collected, total, new_rows, wall, workers, threads, backend, cpu)
