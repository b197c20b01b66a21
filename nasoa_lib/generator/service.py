"""The practitioner's path (SPEC section 1): a folder of images and a time budget in, a model out.

``nasoa recommend`` and ``nasoa finetune`` call these functions; notebook 07 uses the same
generator underneath. The "service" is NASOA's cloud scenario on one machine: the zoo, its
fine-tuning time table for this device (measured on first use and kept in the artifact store), and
an online predictor that starts from notebook 06's adaptive predictor and is saved back under
:data:`SERVICE_PREDICTOR` after every fine-tuning (notebook 07 never reads that name, so practising
with the command line never changes the study's results).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from nasoa_lib.errors import (
    ArtifactNotFoundError, BudgetTooSmallError, InvalidDataError, InvalidRegimeError, UnknownModelError,
    UnusablePathError,
)
from nasoa_lib.generator.config import GeneratorConfig
from nasoa_lib.run_length import checkpointed
from nasoa_lib.generator.features import TaskFeatures, check_size, dataset_similarity, describe
from nasoa_lib.generator.ranking import Recommendation, recommend, smallest_feasible_budget
from nasoa_lib.generator.budget import format_seconds
from nasoa_lib.generator.timing import (
    COLD_START_SECONDS, SAVE_SECONDS, Deadline, FinetuneTimeTable, finetune_time_table, run_reserve, smallest_run_seconds,
)
from nasoa_lib.profiles import Profile, resolve_profile

if TYPE_CHECKING:  # torch loads only once the service opens (nasoa recommend's errors stay instant)
    from torch import nn

    from nasoa_lib.data import ImageDataset, Task
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.store import ArtifactStore
    from nasoa_lib.online.predictor import AccuracyPredictor

SERVICE_PREDICTOR = "service"
START_PREDICTOR = "adaptive"
WEIGHTS_FILE = "model.pt"
CARD_FILE = "run_card.json"


@dataclass(eq=False)
class Service:
    """The zoo, its time table on this device, and the online predictor of one profile's store."""

    profile: Profile
    store: ArtifactStore
    config: GeneratorConfig
    settings: FinetuneSettings
    zoo: Mapping[str, float]
    codes: Mapping[str, str]
    table: FinetuneTimeTable
    predictor: AccuracyPredictor
    predictor_name: str


def _build_hint(prof: Profile) -> str:
    """The one command that builds everything the service reads (zoo, reference network,
    meta-dataset, predictor): re-running it recomputes only what the store lacks."""
    from nasoa_lib.reporting.runner import service_build_command

    return f"build it with: {service_build_command(prof.name)}"


def open_service(profile: Profile | str = "laptop", store: ArtifactStore | None = None, *, progress: bool = False) -> Service:
    """Load the zoo, the predictor and the time table (measuring it on first use on this device)."""
    from nasoa_lib import zoo as zoo_lib
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.online import load_predictor
    from nasoa_lib.store import ArtifactStore

    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    cards = {n: c for n, c in zoo_lib.cards(prof, store).items() if c.group == "ours"}
    if not cards:
        raise ArtifactNotFoundError(f"the model zoo of profile {prof.name!r} is not built yet (store {store.root})",
                                    hint=_build_hint(prof))
    try:
        predictor, name = load_predictor(store, SERVICE_PREDICTOR), SERVICE_PREDICTOR
    except ArtifactNotFoundError:
        try:
            predictor, name = load_predictor(store, START_PREDICTOR), START_PREDICTOR
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(f"no trained accuracy predictor for profile {prof.name!r} (store {store.root})",
                                        hint=_build_hint(prof)) from None
    _check_reference(prof, store)
    codes = {n: c.code for n, c in cards.items()}
    table = finetune_time_table(prof, codes, store, progress=progress)
    return Service(prof, store, GeneratorConfig.from_profile(prof), checkpointed(FinetuneSettings.from_profile(prof)),
                   {n: float(c.source_top1) for n, c in cards.items()}, codes, table, predictor, name)


def _check_reference(prof: Profile, store: ArtifactStore) -> None:
    """Domain similarity needs the reference network pretrained; never start pretraining from the CLI."""
    from nasoa_lib.metafeatures import MetaFeatureConfig
    from nasoa_lib.train import PRETRAINED_KIND, PretrainRecipe, pretrain_key

    ref = MetaFeatureConfig.from_profile(prof).reference_model
    if not store.has(PRETRAINED_KIND, pretrain_key(ref, prof.source_dataset, PretrainRecipe.from_profile(prof), prof)):
        raise ArtifactNotFoundError(f"the reference network {ref!r} for domain similarity is not pretrained",
                                    hint=_build_hint(prof))


def load_data(path: str | Path, profile: Profile | str) -> Any:
    """A user's ImageFolder or ``.npz`` at the profile's image size (:func:`nasoa_lib.data.load_user_dataset`);
    read before anything else, so a bad path or image is reported first."""
    from nasoa_lib.data import load_user_dataset

    prof = resolve_profile(profile)
    return load_user_dataset(path, image_size=prof.image_size)


def data_features(dataset: ImageDataset, service: Service) -> TaskFeatures:
    """D's meta-features; the size check comes first so a tiny dataset fails before any forward pass."""
    counts = dataset.train_counts()
    check_size(TaskFeatures(dataset.name, dataset.num_classes, len(dataset.y_train), len(dataset.y_test), 1.0,
                            int(counts.min()) if len(counts) else 0), service.config.min_images_per_class)
    return describe(dataset, dataset_similarity(dataset, service.profile, service.store))


STARTUP_KIND = "features_seconds"


def _features_key(service: Service) -> str:
    from nasoa_lib.store import spec_key

    return spec_key({"stage": STARTUP_KIND, "device": service.table.device, "profile": service.profile.name})


def recommend_for(dataset: ImageDataset, budget_seconds: float, service: Service, *,
                  deadline: Deadline | None = None) -> Recommendation:
    """G(D, T) over the zoo with the service's predictor.

    With ``deadline`` (``nasoa finetune``: one budget for the whole command) the grid holds only
    runs that fit what is left of it after what the command already spent (data, service, domain
    similarity), the first call's cold start and saving; the recommendation still states the
    user's budget. A budget too small for the cheapest run plus the domain similarity is refused
    *before* the similarity is computed: that step (mostly its first-call imports and the
    reference network) is timed the first time on each device and kept in the store
    (kind ``features_seconds``), so later commands can predict it.
    """
    if deadline is None:
        return recommend(data_features(dataset, service), budget_seconds, service.zoo, service.predictor,
                         service.table, config=service.config, settings=service.settings)
    key = _features_key(service)
    known = service.store.get(STARTUP_KIND, key) if service.store.exists() else None
    expected_features = float(known["seconds"]) if known else 0.0
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    sizes = TaskFeatures(dataset.name, dataset.num_classes, n_train, n_test, 0.0, 0)
    _refuse_if_short(deadline, smallest_feasible_budget(sizes, list(service.zoo), service.table, service.config,
                                                        service.settings.batch_size),
                     sizes.name, service, expected_features)
    started = time.perf_counter()
    features = data_features(dataset, service)
    if known is None and not service.table.measured_seconds:  # measuring the table ran its imports: not typical
        service.store.put(STARTUP_KIND, key, {"seconds": time.perf_counter() - started, "n_images": n_train + n_test})
    least = smallest_feasible_budget(features, list(service.zoo), service.table, service.config,
                                     service.settings.batch_size)
    _refuse_if_short(deadline, least, features.name, service)
    rec = recommend(features, deadline.remaining() - SAVE_SECONDS - COLD_START_SECONDS, service.zoo,
                    service.predictor, service.table, config=service.config, settings=service.settings)
    return replace(rec, time_budget=float(deadline.budget))


def _refuse_if_short(deadline: Deadline, least_run: float, name: str, service: Service,
                     still_to_spend: float = 0.0) -> None:
    """:class:`BudgetTooSmallError` when what is left of ``deadline`` cannot hold ``still_to_spend``
    (the domain similarity, when not yet computed) plus the cheapest run (``least_run``: fixed
    cost, the smallest ladder value, evaluation), cold start and saving."""
    spent = deadline.elapsed()
    overhead = still_to_spend + SAVE_SECONDS + COLD_START_SECONDS
    if deadline.remaining() >= least_run + overhead:
        return
    measured = service.table.measured_seconds
    note = (f"; this start-up included measuring this device's fine-tuning time table once ({format_seconds(measured)}, "
            "now kept in the store), so the same command starts faster next time") if measured else ""
    similarity = f"the domain similarity (about {format_seconds(still_to_spend)} here), " if still_to_spend else ""
    raise BudgetTooSmallError(
        f"no model fits the budget of {format_seconds(deadline.budget)} on {name!r} on {service.table.device}: the "
        f"start-up took {format_seconds(spent)}, leaving {format_seconds(max(deadline.remaining(), 0.0))}, but "
        f"{similarity}the cheapest run, cold start and saving need {format_seconds(least_run + overhead)}",
        hint=f"the smallest feasible budget here is about {format_seconds(spent - measured + least_run + overhead)} "
        f"(start-up{', domain similarity' if still_to_spend else ''}, {service.config.ladder[0]} epoch(s) of the "
        f"fastest model with its evaluation, cold start and saving){note}",
    )


def user_task(dataset: ImageDataset) -> Task:
    """All of a user's images as one fine-tuning task (no subsampling)."""
    from nasoa_lib.data import Task, TaskSpec

    counts = dataset.train_counts()
    spec = TaskSpec(dataset.name, tuple(range(dataset.num_classes)), max(1, int(counts.min())), 0)
    return Task(spec, dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, tuple(dataset.class_names))


def check_matches(recommendation: Recommendation, dataset: ImageDataset) -> None:
    """A saved recommendation must be for this data (same classes and image counts)."""
    t = recommendation.task
    if (t.num_classes, t.n_train, t.n_test) != (dataset.num_classes, len(dataset.y_train), len(dataset.y_test)):
        raise InvalidDataError(
            f"the saved recommendation is for {t.name!r} ({t.num_classes} classes, {t.n_train} train / {t.n_test} "
            f"test images), not for {dataset.name!r} ({dataset.num_classes} classes, {len(dataset.y_train)} / "
            f"{len(dataset.y_test)})", hint="run nasoa recommend again on this data")


def check_recommendation(recommendation: Recommendation, service: Service) -> float:
    """A recommendation read from a file must still hold here: its model in this profile's zoo, its
    fine-tuning settings the profile's, and its run's expected wall-clock, re-computed with this
    device's time table, within its budget. Returns that expected wall-clock."""
    c, t = recommendation.chosen, recommendation.task
    again = f"run nasoa recommend again (--profile {service.profile.name}) on this machine and data"
    if c.model not in service.codes:
        raise InvalidDataError(
            f"the saved recommendation names {c.model!r}, which is not in the zoo of profile "
            f"{service.profile.name!r} ({', '.join(sorted(service.codes))})", hint=again)
    wanted = asdict(service.settings)
    given = {k: recommendation.settings.get(k) for k in wanted}
    if given != wanted:
        diff = ", ".join(f"{k} {given[k]!r} (profile: {wanted[k]!r})" for k in wanted if given[k] != wanted[k])
        raise InvalidDataError(f"the saved recommendation's fine-tuning settings differ from profile "
                               f"{service.profile.name!r}: {diff}", hint=again)
    from nasoa_lib.run_length import iterations_for

    steps = iterations_for(c.epochs, t.n_train, service.settings.batch_size)
    if c.iterations != steps:
        raise InvalidDataError(f"the saved recommendation's {c.epochs} epoch(s) of {t.n_train} training images at batch "
                               f"{service.settings.batch_size} are {steps} iterations, not {c.iterations}", hint=again)
    try:
        expected = float(service.table.expected_seconds(c.model, c.frozen_stages, c.iterations, t.n_train,
                                                        t.n_evaluated))
    except UnknownModelError as err:
        raise InvalidDataError(f"the saved recommendation cannot be timed on this device: {err.args[0]}",
                               hint=again) from None
    if expected > recommendation.time_budget:
        raise BudgetTooSmallError(
            f"the saved recommendation ({c.model}, {c.epochs} epochs = {c.iterations} iterations, {c.frozen_stages} "
            "frozen stage(s)) is "
            f"expected to take {format_seconds(expected)} on {service.table.device}, more than its budget of "
            f"{format_seconds(recommendation.time_budget)} (it was expected to take {format_seconds(c.expected_seconds)} "
            "when it was saved)", hint=again)
    return expected


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """``path`` can become the run's folder (it, or its nearest existing parent, is a writable
    folder); checked before any work, so a bad ``--out`` writes nothing."""
    path = Path(path).expanduser()
    for place in (path, *path.parents):
        if not place.exists():
            continue
        if not place.is_dir():
            raise UnusablePathError(f"{option} {path}: {place} is a file, not a folder",
                                    hint=f"give a folder for {WEIGHTS_FILE} and {CARD_FILE} (it is created), "
                                    f"e.g. {option} {path.parent / (path.stem + '-run')}")
        if not os.access(place, os.W_OK | os.X_OK):
            raise UnusablePathError(f"{option} {path}: cannot write in {place}", hint="choose a folder you can write to")
        break
    return path


def check_output_file(path: str | Path, option: str = "--save") -> Path:
    """``path`` can become a file (not a folder, inside a writable folder); checked before any work."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UnusablePathError(f"{option} {path} is a folder; it needs a file name",
                                hint=f"give a file, e.g. {option} {path / 'rec.json'}")
    check_output_dir(path.parent, option)
    return path


def _serialise_seconds(network: nn.Module) -> float:
    """Seconds ``torch.save`` takes for ``network``'s weights (the fine-tuned copy has the same
    size but for its head): measured once before training, to keep time for saving."""
    import io

    import torch

    start = time.perf_counter()
    torch.save(network.state_dict(), io.BytesIO())
    return time.perf_counter() - start


def finetune_for(dataset: ImageDataset, recommendation: Recommendation, service: Service, out_dir: str | Path, *,
                 progress: bool = True, deadline: Deadline | None = None) -> dict[str, Any]:
    """Run the recommendation on all of the user's images, update and save the service predictor,
    write the fine-tuned weights and a run card into ``out_dir``; returns the card.

    The whole call keeps ``deadline`` (default: the recommendation's budget, from now;
    ``nasoa finetune`` passes the one that started with the command): after the pretrained network
    is loaded, the time evaluation (this device's time table) and saving (measured) will take is
    kept back and training ends by the instant left over, so loading, the frozen-feature cache,
    training, evaluation and saving all count (tolerance: :class:`~nasoa_lib.generator.timing.Deadline`).
    A budget that cannot hold one training step plus evaluation and saving raises
    :class:`~nasoa_lib.errors.BudgetTooSmallError` with the smallest feasible budget. The card's
    ``budget`` section reports wall-clock against the budget.
    """
    import io

    import torch

    from nasoa_lib.generator.online import budget_bar, run
    from nasoa_lib.provenance import provenance
    from nasoa_lib.store import atomic_write_bytes, atomic_write_json
    from nasoa_lib.train import load_pretrained

    deadline = deadline or Deadline(recommendation.time_budget)
    check_matches(recommendation, dataset)
    out = check_output_dir(out_dir)
    chosen = recommendation.chosen
    cost = service.table.cost(chosen.model, chosen.frozen_stages)
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    started = time.time()
    with budget_bar(deadline.budget, f"fine-tuning {chosen.model}", progress, start=deadline.start) as tick:
        tick()
        pretrained = load_pretrained(service.codes[chosen.model], service.profile, store=service.store)
        tick()
        save_seconds = SAVE_SECONDS + 2 * _serialise_seconds(pretrained.model)
        need = smallest_run_seconds(cost, n_train, n_test, service.table.batch_size, save_seconds)
        hint = (f"the smallest feasible budget here is about {format_seconds(deadline.elapsed() + need)} "
                f"(start-up so far {format_seconds(deadline.elapsed())}, then one training step of {chosen.model}, "
                "evaluation and saving)")
        if deadline.remaining() < need:
            raise BudgetTooSmallError(
                f"the budget of {format_seconds(deadline.budget)} leaves {format_seconds(max(deadline.remaining(), 0))} "
                f"after start-up, less than one run of {chosen.model} needs ({format_seconds(need)})", hint=hint)
        reserve = run_reserve(cost, n_test, save_seconds)
        try:
            outcome, network = run(recommendation, user_task(dataset), pretrained, predictor=service.predictor,
                                   store=service.store, predictor_name=SERVICE_PREDICTOR, cached=False,
                                   train_deadline=deadline.at - reserve, on_step=tick)
        except BudgetTooSmallError as err:
            raise BudgetTooSmallError(f"the budget of {format_seconds(deadline.budget)} ran out before training "
                                      f"could start ({err.args[0]})", hint=hint) from None
        tick()
        service.predictor_name = SERVICE_PREDICTOR
        buffer = io.BytesIO()
        torch.save({"state_dict": network.state_dict(), "code": service.codes[chosen.model],
                    "model": chosen.model, "class_names": list(dataset.class_names),
                    "image_size": service.profile.image_size,
                    "small_image_stem": bool(pretrained.small_image_stem)}, buffer)
        wall = deadline.elapsed()
        card = {"data": dataset.name, "class_names": list(dataset.class_names), "profile": service.profile.name,
                "recommendation": recommendation.to_dict(), "outcome": outcome.to_dict(),
                "budget": {"seconds": deadline.budget, "wall_seconds": wall, "tolerated_seconds": deadline.tolerated,
                           "verdict": deadline.verdict(wall), "kept_back_seconds": reserve,
                           "planned_steps": chosen.iterations, "steps": outcome.steps},
                "predictor": {"name": SERVICE_PREDICTOR, "updates": int(getattr(service.predictor, "updates", 0))},
                "weights": WEIGHTS_FILE, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                "provenance": provenance(service.profile.name, 0, "cpu")}
        try:
            atomic_write_bytes(out / WEIGHTS_FILE, buffer.getvalue())
            atomic_write_json(out / CARD_FILE, card)
        except OSError as err:
            raise UnusablePathError(f"cannot write the run into {out}: {err.strerror or err}",
                                    hint="choose a folder you can write to with --out") from None
    return card


def save_recommendation(recommendation: Recommendation, path: str | Path) -> Path:
    """Write ``recommendation`` for ``nasoa finetune --recommendation`` (a folder or an unwritable
    place is a :class:`~nasoa_lib.errors.UnusablePathError`, not a traceback)."""
    from nasoa_lib.store import atomic_write_json

    path = check_output_file(path, "--save")
    try:
        return atomic_write_json(path, {"format": REC_FORMAT, "version": REC_VERSION, **recommendation.to_dict()})
    except OSError as err:
        raise UnusablePathError(f"cannot write {path}: {err.strerror or err}",
                                hint="choose a file in a folder you can write to") from None


REC_FORMAT = "nasoa-recommendation"
REC_VERSION = 2  # 2: run length in epochs (Candidate.epochs), TaskFeatures.n_validation
_REC_HINT = "save a new one with: nasoa recommend --data DIR --budget 10m --save rec.json (do not edit it by hand)"


def load_recommendation(path: str | Path) -> Recommendation:
    """Read a recommendation saved by ``nasoa recommend --save``; every field is checked
    (:func:`recommendation_from_dict`), and a wrong path is an error with a hint, never a traceback."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UnusablePathError(f"--recommendation {path} is a folder, not a recommendation file",
                                hint="give the .json file written by: nasoa recommend --data DIR --budget 10m --save rec.json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactNotFoundError(f"no recommendation file at {path}", hint=_REC_HINT) from None
    except UnicodeDecodeError:
        raise InvalidDataError(f"{path} is not a recommendation file (not UTF-8 text)", hint=_REC_HINT) from None
    except OSError as err:
        raise UnusablePathError(f"cannot read {path}: {err.strerror or err}", hint="check the path and its permissions") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise InvalidDataError(f"{path} is not a recommendation file (not JSON: {err})", hint=_REC_HINT) from None
    return recommendation_from_dict(data, str(path))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_TASK_FIELDS = {"name": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
                "num_classes": (lambda v: _integer(v) and v >= 2, "an integer >= 2"),
                "n_train": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
                "n_test": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
                "domain_similarity": (_finite, "a finite number"),
                "smallest_class": (lambda v: _integer(v) and v >= 0, "an integer >= 0")}
_CANDIDATE_FIELDS = {"model": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
                     "lr": (lambda v: _finite(v) and v > 0, "a number > 0"),
                     "frozen_stages": (lambda v: _integer(v) and 0 <= v <= 4, "an integer in 0..4"),
                     "iterations": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
                     "epochs": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
                     "predicted_accuracy": (_finite, "a finite number"),
                     "expected_seconds": (lambda v: _finite(v) and v >= 0, "a number >= 0")}
#: optional candidate fields (absent in recommendations saved before early stopping)
_OPTIONAL_CANDIDATE_FIELDS = {
    "eval_epochs": (lambda v: isinstance(v, list) and all(_integer(e) and e >= 1 for e in v)
                    and v == sorted(set(v)), "a list of ascending integers >= 1"),
    "predicted_epochs": (lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1")}
_SETTINGS_FIELDS = {"batch_size": (lambda v: _integer(v) and v >= 2, "an integer >= 2"),
                    "lr_schedule": (lambda v: isinstance(v, str), "a schedule name"),
                    "momentum": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
                    "weight_decay": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
                    "augment": (lambda v: isinstance(v, bool), "true or false"),
                    "workers": (lambda v: _integer(v) and v >= 1, "an integer >= 1")}
_TOP_FIELDS = {"time_budget": (lambda v: _finite(v) and v > 0, "a number of seconds > 0"),
               "grid_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
               "source_accuracy": (lambda v: _finite(v) and 0 <= v <= 1, "a number in [0, 1]")}


def recommendation_from_dict(data: Any, source: str = "the recommendation") -> Recommendation:
    """A :class:`Recommendation` from a saved document, each field checked by name and type: a
    missing key, a wrong type or an impossible value (negative budget, 9 frozen stages, ...) is an
    :class:`~nasoa_lib.errors.InvalidDataError` naming the field."""

    def bad(message: str) -> InvalidDataError:
        return InvalidDataError(f"{source} is not a valid recommendation: {message}", hint=_REC_HINT)

    def section(parent: Any, key: str, where: str) -> dict:
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, dict):
            raise bad(f"{where}{key} is {'missing' if not isinstance(parent, dict) or key not in parent else 'not an object'}")
        return value

    def check(obj: dict, rules: Mapping[str, tuple], where: str, optional: Mapping[str, tuple] | None = None) -> None:
        for key, (ok, rule) in rules.items():
            if key not in obj:
                raise bad(f"{where}{key} is missing")
            if not ok(obj[key]):
                raise bad(f"{where}{key}={obj[key]!r} must be {rule}")
        for key, (ok, rule) in (optional or {}).items():
            if key in obj and not ok(obj[key]):
                raise bad(f"{where}{key}={obj[key]!r} must be {rule}")

    if not isinstance(data, dict):
        raise bad(f"the file holds a JSON {type(data).__name__}, not an object")
    if data.get("format") != REC_FORMAT or data.get("version") != REC_VERSION:
        raise bad(f"format/version is {data.get('format')!r} v{data.get('version')!r}, not {REC_FORMAT!r} v{REC_VERSION}")
    check(data, _TOP_FIELDS, "")
    check(section(data, "task", ""), _TASK_FIELDS, "task.")
    check(section(data, "chosen", ""), _CANDIDATE_FIELDS, "chosen.", _OPTIONAL_CANDIDATE_FIELDS)
    check(section(data, "settings", ""), _SETTINGS_FIELDS, "settings.")
    runners = data.get("runners_up")
    if not isinstance(runners, list):
        raise bad("runners_up is missing" if "runners_up" not in data else "runners_up is not a list")
    for i, runner in enumerate(runners):
        if not isinstance(runner, dict):
            raise bad(f"runners_up[{i}] is not an object")
        check(runner, _CANDIDATE_FIELDS, f"runners_up[{i}].", _OPTIONAL_CANDIDATE_FIELDS)
    if data["task"]["smallest_class"] * data["task"]["num_classes"] > data["task"]["n_train"]:
        raise bad("task.smallest_class x task.num_classes exceeds task.n_train")
    rec = Recommendation.from_dict(data)
    try:
        rec.regime()
    except InvalidRegimeError as err:
        raise bad(err.args[0]) from None
    return rec
