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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nasoa_lib.errors import ArtifactNotFoundError, InvalidDataError
from nasoa_lib.finetune import FinetuneSettings
from nasoa_lib.generator.config import GeneratorConfig
from nasoa_lib.generator.features import TaskFeatures, check_size, dataset_similarity, describe
from nasoa_lib.generator.ranking import Recommendation, recommend
from nasoa_lib.generator.timing import FinetuneTimeTable, finetune_time_table
from nasoa_lib.profiles import Profile, load_profile

SERVICE_PREDICTOR = "service"
START_PREDICTOR = "adaptive"
WEIGHTS_FILE = "model.pt"
CARD_FILE = "run_card.json"


@dataclass(eq=False)
class Service:
    """The zoo, its time table on this device, and the online predictor of one profile's store."""

    profile: Profile
    store: Any
    config: GeneratorConfig
    settings: FinetuneSettings
    zoo: Mapping[str, float]
    codes: Mapping[str, str]
    table: FinetuneTimeTable
    predictor: Any
    predictor_name: str


def _build_hint(prof: Profile, notebooks: str) -> str:
    return f"build it with: nasoa reproduce --profile {prof.name} --only {notebooks}"


def open_service(profile: Profile | str = "laptop", store: Any = None, *, progress: bool = False) -> Service:
    """Load the zoo, the predictor and the time table (measuring it on first use on this device)."""
    from nasoa_lib import zoo as zoo_lib
    from nasoa_lib.online import load_predictor
    from nasoa_lib.store import ArtifactStore

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    cards = {n: c for n, c in zoo_lib.cards(prof, store).items() if c.group == "ours"}
    if not cards:
        raise ArtifactNotFoundError(f"the model zoo of profile {prof.name!r} is not built yet (store {store.root})",
                                    hint=_build_hint(prof, "00,01,02,03"))
    try:
        predictor, name = load_predictor(store, SERVICE_PREDICTOR), SERVICE_PREDICTOR
    except ArtifactNotFoundError:
        try:
            predictor, name = load_predictor(store, START_PREDICTOR), START_PREDICTOR
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(f"no trained accuracy predictor for profile {prof.name!r} (store {store.root})",
                                        hint=_build_hint(prof, "05,06")) from None
    _check_reference(prof, store)
    codes = {n: c.code for n, c in cards.items()}
    table = finetune_time_table(prof, codes, store, progress=progress)
    return Service(prof, store, GeneratorConfig.from_profile(prof), FinetuneSettings.from_profile(prof),
                   {n: float(c.source_top1) for n, c in cards.items()}, codes, table, predictor, name)


def _check_reference(prof: Profile, store: Any) -> None:
    """Domain similarity needs the reference network pretrained; never start pretraining from the CLI."""
    from nasoa_lib.metafeatures import MetaFeatureConfig
    from nasoa_lib.train import PRETRAINED_KIND, PretrainRecipe, pretrain_key

    ref = MetaFeatureConfig.from_profile(prof).reference_model
    if not store.has(PRETRAINED_KIND, pretrain_key(ref, prof.source_dataset, PretrainRecipe.from_profile(prof), prof)):
        raise ArtifactNotFoundError(f"the reference network {ref!r} for domain similarity is not pretrained",
                                    hint=_build_hint(prof, "01,05"))


def load_data(path: str | Path, profile: Profile | str) -> Any:
    """A user's ImageFolder or ``.npz`` at the profile's image size (:func:`nasoa_lib.data.load_user_dataset`);
    read before anything else, so a bad path or image is reported first."""
    from nasoa_lib.data import load_user_dataset

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    return load_user_dataset(path, image_size=prof.image_size)


def data_features(dataset: Any, service: Service) -> TaskFeatures:
    """D's meta-features; the size check comes first so a tiny dataset fails before any forward pass."""
    counts = dataset.train_counts()
    check_size(TaskFeatures(dataset.name, dataset.num_classes, len(dataset.y_train), len(dataset.y_test), 1.0,
                            int(counts.min()) if len(counts) else 0), service.config.min_images_per_class)
    return describe(dataset, dataset_similarity(dataset, service.profile, service.store))


def recommend_for(dataset: Any, budget_seconds: float, service: Service) -> Recommendation:
    """G(D, T) over the zoo with the service's predictor."""
    return recommend(data_features(dataset, service), budget_seconds, service.zoo, service.predictor, service.table,
                     config=service.config, settings=service.settings)


def user_task(dataset: Any) -> Any:
    """All of a user's images as one fine-tuning task (no subsampling)."""
    from nasoa_lib.data import Task, TaskSpec

    counts = dataset.train_counts()
    spec = TaskSpec(dataset.name, tuple(range(dataset.num_classes)), max(1, int(counts.min())), 0)
    return Task(spec, dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, tuple(dataset.class_names))


def check_matches(recommendation: Recommendation, dataset: Any) -> None:
    """A saved recommendation must be for this data (same classes and image counts)."""
    t = recommendation.task
    if (t.num_classes, t.n_train, t.n_test) != (dataset.num_classes, len(dataset.y_train), len(dataset.y_test)):
        raise InvalidDataError(
            f"the saved recommendation is for {t.name!r} ({t.num_classes} classes, {t.n_train} train / {t.n_test} "
            f"test images), not for {dataset.name!r} ({dataset.num_classes} classes, {len(dataset.y_train)} / "
            f"{len(dataset.y_test)})", hint="run nasoa recommend again on this data")


def finetune_for(dataset: Any, recommendation: Recommendation, service: Service, out_dir: str | Path, *,
                 progress: bool = True) -> dict[str, Any]:
    """Run the recommendation on all of the user's images, update and save the service predictor,
    write the fine-tuned weights and a run card into ``out_dir``; returns the card."""
    import io

    import torch

    from nasoa_lib.generator.online import run
    from nasoa_lib.provenance import provenance
    from nasoa_lib.store import atomic_write_bytes, atomic_write_json
    from nasoa_lib.train import load_pretrained

    check_matches(recommendation, dataset)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    pretrained = load_pretrained(service.codes[recommendation.chosen.model], service.profile, store=service.store)
    started = time.time()
    outcome, network = run(recommendation, user_task(dataset), pretrained, predictor=service.predictor,
                           store=service.store, predictor_name=SERVICE_PREDICTOR, cached=False, progress=progress)
    service.predictor_name = SERVICE_PREDICTOR
    buffer = io.BytesIO()
    torch.save({"state_dict": network.state_dict(), "code": service.codes[recommendation.chosen.model],
                "model": recommendation.chosen.model, "class_names": list(dataset.class_names),
                "image_size": service.profile.image_size}, buffer)
    atomic_write_bytes(out / WEIGHTS_FILE, buffer.getvalue())
    card = {"data": dataset.name, "class_names": list(dataset.class_names), "profile": service.profile.name,
            "recommendation": recommendation.to_dict(), "outcome": outcome.to_dict(),
            "predictor": {"name": SERVICE_PREDICTOR, "updates": int(getattr(service.predictor, "updates", 0))},
            "weights": WEIGHTS_FILE, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "provenance": provenance(service.profile.name, 0, "cpu")}
    atomic_write_json(out / CARD_FILE, card)
    return card


def save_recommendation(recommendation: Recommendation, path: str | Path) -> Path:
    from nasoa_lib.store import atomic_write_json

    return atomic_write_json(Path(path).expanduser(), {"format": "nasoa-recommendation", "version": 1,
                                                       **recommendation.to_dict()})


def load_recommendation(path: str | Path) -> Recommendation:
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != "nasoa-recommendation":
            raise ValueError("not a nasoa recommendation file")
        return Recommendation.from_dict(data)
    except FileNotFoundError:
        raise ArtifactNotFoundError(f"no recommendation file at {path}",
                                    hint="save one with: nasoa recommend --data DIR --budget 10m --save rec.json") from None
    except (ValueError, KeyError, TypeError) as err:
        raise InvalidDataError(f"{path} is not a readable recommendation ({err})",
                               hint="save one with: nasoa recommend --data DIR --budget 10m --save rec.json") from err
