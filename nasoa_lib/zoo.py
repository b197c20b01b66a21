"""The ET-NAS model zoo (NASOA section 3.1, "Efficient Training Model Zoo"; Table 2).

"We create an efficient-training model zoo named ET-NAS which consists of K Pareto optimal
models on the Pareto front; they are pretrained by ImageNet." Here:

* :func:`select_zoo` picks K models of the search's feasible Pareto front spread over its
  step-time range (log-spaced targets, nearest front point each), named ``ours/ET-NAS-A``,
  ``ours/ET-NAS-B``, ... by increasing step time. The prefix keeps them apart from the
  authors' released models, which the study also pretrains as ``released/ET-NAS-C`` etc.
* :func:`build_zoo` pretrains each with exactly the recipe and budget of every baseline family
  (:func:`nasoa_lib.train.pretrain`, the profile's ``pretrain:`` section), measures it, and saves a
  :class:`ModelCard` (code, source accuracy, step/inference time, FLOPs, params, recipe, weights
  sha256) as a store record; it then writes the zoo's step-time lookup table for this device.
* :func:`load` returns a ready (pretrained, eval-mode) model by name after checking the weights'
  sha256 against the card. A bare ``"ET-NAS-C"`` means ``ours/ET-NAS-C``.

Table 2 (the zoo against the baselines, notebook 04) is a study of the zoo, not part of it:
:mod:`nasoa_lib.studies.zoo_comparison`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import ArtifactNotFoundError, StoreCorruptedError, UnknownModelError
from nasoa_lib.kinds import CARD_KIND, TABLE_KIND
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.search.config import ZooConfig
from nasoa_lib.search.run import pareto_front
from nasoa_lib.store import ArtifactStore, spec_key

if TYPE_CHECKING:
    from nasoa_lib.search.evaluate import Backend
    from nasoa_lib.search.stages import SearchContext

log = logging.getLogger(__name__)

ZOO_KIND = "zoo"
CARD_FILE = "card.json"
TABLE_FILE = "step_times.json"
OURS = "ours/"
RELEASED = "released/"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to trust and reuse one zoo model."""

    name: str
    code: str
    group: str  # "ours" or "released"
    profile: str
    source: str
    source_top1: float
    proxy_top1: float | None
    step_ms: float
    step_iqr_ms: float
    inference_ms: float
    flops: int
    params: int
    batch_size: int
    image_size: int
    device: str
    recipe: Mapping[str, Any]
    pretrain_key: str
    weights_sha256: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recipe"] = dict(self.recipe)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelCard":
        return cls(**dict(d))

    @property
    def key(self) -> str:
        return spec_key({"stage": "zoo_card", "name": self.name, "code": self.code, "pretrain": self.pretrain_key})


def _store(profile: Profile, store: ArtifactStore | None) -> ArtifactStore:
    return store or ArtifactStore.for_profile(profile.name)


def zoo_name(letter_index: int) -> str:
    return f"{OURS}ET-NAS-{LETTERS[letter_index]}"


def canonical_name(name: str) -> str:
    """``"ET-NAS-C"`` -> ``"ours/ET-NAS-C"``; prefixed names unchanged."""
    return name if name.startswith((OURS, RELEASED)) else OURS + name


# ------------------------------------------------------------------------------------ selection


def select_zoo(evaluations: pd.DataFrame, k: int, floor: float | None = None) -> pd.DataFrame:
    """K models of the feasible Pareto front spanning its step-time range, named by size.

    Only front points whose proxy top-1 reaches ``floor`` are candidates (issue 17: the smallest
    baseline's proxy accuracy, :func:`proxy_floor`; ``None``: no floor); fewer than K above it give
    a smaller zoo, and none above it give the front's most accurate point alone (logged). Targets
    are K log-spaced step times from the candidates' fastest to their slowest model; each takes
    the nearest unused front point (in log step time). A front with <= K candidates is taken whole.
    """
    df = evaluations[evaluations["feasible"] & evaluations["proxy_top1"].notna()]
    df = df.drop_duplicates("code")
    if df.empty:
        raise ArtifactNotFoundError("no feasible evaluated architecture to build a zoo from",
                                    hint="run the searches first: nasoa reproduce --only 02,03 (with your --profile)")
    front = pareto_front(df).reset_index(drop=True)
    if floor is not None:
        above = front[front["proxy_top1"] >= floor].reset_index(drop=True)
        if above.empty:
            log.warning("no front model reaches the zoo's floor (proxy top-1 %.4f); the zoo is the front's most "
                        "accurate model alone", floor)
            above = front.sort_values("proxy_top1").tail(1).reset_index(drop=True)
        elif len(above) < k:
            log.warning("only %d front models reach the zoo's floor (proxy top-1 %.4f): a zoo of %d", len(above),
                        floor, len(above))
        front = above
    out = front.iloc[spread_over_log(front["step_ms"].to_numpy(float), k)].sort_values("step_ms").reset_index(drop=True)
    out.insert(0, "name", [zoo_name(i) for i in range(len(out))])
    return out


def spread_over_log(values: np.ndarray, k: int) -> list[int]:
    """Indices of ``k`` of ``values`` spread over their log range: K log-spaced targets from the
    smallest to the largest, each taking the nearest unused value (all of them when <= K), sorted."""
    if len(values) <= k:
        return list(range(len(values)))
    logs = np.log(np.asarray(values, dtype=float))
    chosen: list[int] = []
    for t in np.linspace(logs.min(), logs.max(), k):
        order = np.argsort(np.abs(logs - t), kind="stable")
        chosen.append(int(next(i for i in order if i not in chosen)))
    return sorted(chosen)


def proxy_floor(ctx: SearchContext, backend: Backend) -> dict | None:
    """The zoo's accuracy floor: the proxy evaluation of the profile's ``zoo.floor_model`` (a
    baseline, trained on the search's proxy like every candidate, with no T_m: it may be slower),
    or ``None`` when the profile sets no floor. Stored like every evaluation (read back on a rerun)."""
    from nasoa_lib.search.evaluate import evaluate_codes

    model = ZooConfig.from_profile(ctx.profile).floor_model
    if model is None:
        return None
    records, _ = evaluate_codes([model], profile=ctx.profile, proxy=ctx.config.proxy, step=ctx.step, t_max_ms=float("inf"),
                                store=ctx.store, backend=backend, num_classes=ctx.num_classes,
                                context={"search": "zoo floor"})
    return records[0]


def released_fitting(profile: Profile | str, t_max_ms: float, store: ArtifactStore | None = None) -> list[str]:
    """Released ET-NAS names the profile compares: the ``zoo.released`` list, or (``null``) every
    released model whose step time, measured now like the search's, is within ``t_max_ms``."""
    from nasoa_lib.search.config import SearchConfig
    from nasoa_lib.search.evaluate import StepSpec, measure_costs
    from nasoa_lib.space import RELEASED as RELEASED_MODELS

    prof = resolve_profile(profile)
    cfg = ZooConfig.from_profile(prof)
    if cfg.released is not None:
        unknown = [n for n in cfg.released if n not in RELEASED_MODELS]
        if unknown:
            raise UnknownModelError(f"zoo.released names unknown models {unknown}",
                                    hint=f"released models: {', '.join(RELEASED_MODELS)}")
        return list(cfg.released)
    store = _store(prof, store)
    step = StepSpec.from_profile(prof, SearchConfig.from_profile(prof).measure_threads)
    num_classes = _num_classes(prof)
    fits = []
    for name, model in RELEASED_MODELS.items():
        if measure_costs(model.code, prof, step, num_classes, store)["step_ms"] <= t_max_ms:
            fits.append(name)
        else:
            break  # the released models are listed by size; once one is too slow, larger ones are too
    return fits


def _num_classes(prof: Profile) -> int:
    from nasoa_lib.data import load_manifest

    return int(load_manifest(prof.source_dataset).num_classes)


# ---------------------------------------------------------------------------------- measurement


def measure_model(name_or_code: str, profile: Profile | str, model=None, inference_batch: int | None = None,
                  memory: bool = False) -> dict[str, Any]:
    """Step time, inference time, FLOPs, parameters (and optionally peak memory) of one model at
    the profile's measurement settings, with :mod:`nasoa_lib.measure` (the one place that times)."""
    from nasoa_lib import measure
    from nasoa_lib.search.config import small_image_stem
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    m = measure.MeasureConfig.from_profile(prof)
    zoo_cfg = ZooConfig.from_profile(prof)
    model = model if model is not None else build_model(
        name_or_code, _num_classes(prof), prof.image_size, small_image_stem(prof))
    step = measure.measure_step_time(model, m.batch_size, prof.image_size, warmup=m.warmup, steps=m.steps,
                                     threads=prof.threads)
    inf = measure.measure_inference_time(model, inference_batch or zoo_cfg.inference_batch, prof.image_size,
                                         warmup=m.warmup, steps=m.steps, threads=prof.threads)
    row = {
        "step_ms": step.median_ms, "step_iqr_ms": step.iqr_ms, "inference_ms": inf.median_ms,
        "inference_iqr_ms": inf.iqr_ms, "flops": measure.count_flops(model, prof.image_size),
        "params": measure.count_params(model), "device": step.device, "batch_size": m.batch_size,
    }
    if memory:
        peak = measure.measure_peak_memory(model, m.batch_size, prof.image_size)
        row.update({"memory_mib": peak.mib, "memory_method": peak.method,
                    "activation_mib": peak.saved_activation_bytes / 2**20})
    return row


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_card(name: str, code: str, profile: Profile | str, store: ArtifactStore | None = None,
              proxy_top1: float | None = None, progress: bool = True) -> ModelCard:
    """Pretrain ``code`` with the profile's shared recipe (or load it), measure it, and store its
    card (written once per name, code and pretraining)."""
    from nasoa_lib.train import PRETRAINED_KIND, WEIGHTS_FILE, PretrainRecipe, pretrain

    prof = resolve_profile(profile)
    store = _store(prof, store)
    recipe = PretrainRecipe.from_profile(prof)
    result = pretrain(code, recipe=recipe, profile=prof, store=store, progress=progress)
    probe = ModelCard(name, code, "", prof.name, "", 0, None, 0, 0, 0, 0, 0, 0, 0, "", {}, result.key, "")
    found = store.get(CARD_KIND, probe.key)
    if found is not None:
        return ModelCard.from_dict(found)
    row = measure_model(code, prof, model=result.model)
    card = ModelCard(
        name=name, code=code, group="released" if name.startswith(RELEASED) else "ours", profile=prof.name,
        source=result.record["source"], source_top1=float(result.source_top1), proxy_top1=proxy_top1,
        step_ms=row["step_ms"], step_iqr_ms=row["step_iqr_ms"], inference_ms=row["inference_ms"],
        flops=int(row["flops"]), params=int(row["params"]), batch_size=int(row["batch_size"]),
        image_size=prof.image_size, device=row["device"], recipe=recipe.to_dict(), pretrain_key=result.key,
        weights_sha256=sha256_file(store.artifact_path(PRETRAINED_KIND, result.key, WEIGHTS_FILE)),
    )
    store.write_json(CARD_KIND, card.key, CARD_FILE, card.to_dict())
    store.put(CARD_KIND, card.key, card.to_dict())
    return card


def build_zoo(profile: Profile | str, evaluations: pd.DataFrame, store: ArtifactStore | None = None,
              progress: bool = True, floor: float | None = None) -> list[ModelCard]:
    """Select K Pareto models above ``floor`` (:func:`select_zoo`), pretrain and card them, record
    the zoo and write its step-time table."""
    from nasoa_lib.provenance import provenance

    prof = resolve_profile(profile)
    store = _store(prof, store)
    cfg = ZooConfig.from_profile(prof)
    chosen = select_zoo(evaluations, cfg.size, floor)
    cards = [make_card(r["name"], r["code"], prof, store, proxy_top1=float(r["proxy_top1"]), progress=progress)
             for _, r in chosen.iterrows()]
    members = {c.name: c.key for c in cards}
    key = spec_key({"stage": "zoo", "profile": prof.name, "members": members})
    store.put(ZOO_KIND, key, {"profile": prof.name, "members": members,
                              "codes": {c.name: c.code for c in cards}},
              provenance=provenance(prof.name, None, "cpu"))
    write_step_time_table(prof, {c.name: c.code for c in cards}, store)
    return cards


def released_cards(profile: Profile | str, names: Sequence[str], store: ArtifactStore | None = None,
                   progress: bool = True) -> list[ModelCard]:
    """Cards of released ET-NAS models (pretrained by us with the same recipe)."""
    from nasoa_lib.space import RELEASED as RELEASED_MODELS

    return [make_card(RELEASED + n, RELEASED_MODELS[n].code, profile, store, progress=progress) for n in names]


# ------------------------------------------------------------------------------------ lookups


def cards(profile: Profile | str = "laptop", store: ArtifactStore | None = None) -> dict[str, ModelCard]:
    """The current card per name: our latest zoo's members, and the latest card of each released name."""
    prof = resolve_profile(profile)
    store = _store(prof, store)
    out: dict[str, ModelCard] = {}
    zoos = store.records(ZOO_KIND)
    zoos = [z for z in zoos if z["profile"] == prof.name]
    for record in store.records(CARD_KIND):
        card = ModelCard.from_dict(record)
        if card.profile == prof.name and card.group == "released":
            out[card.name] = card
    if zoos:
        for name, key in zoos[-1]["members"].items():
            record = store.get(CARD_KIND, key)
            if record is None:
                raise StoreCorruptedError(f"zoo member {name} has no card {key} in {store.root}",
                                          hint=f"re-create the cards: nasoa reproduce --profile {prof.name} --only 04")
            out[name] = ModelCard.from_dict(record)
    return out


def names(profile: Profile | str = "laptop", store: ArtifactStore | None = None) -> list[str]:
    return list(cards(profile, store))


def card(name: str, profile: Profile | str = "laptop", store: ArtifactStore | None = None) -> ModelCard:
    known = cards(profile, store)
    full = canonical_name(name)
    if full not in known:
        raise UnknownModelError(f"no zoo model {name!r} for profile {resolve_profile(profile).name!r}",
                                hint=f"known: {', '.join(known) or f'none (build the zoo: nasoa reproduce --profile {resolve_profile(profile).name} --only 02,03)'}")
    return known[full]


def load(name: str, profile: Profile | str = "laptop", store: ArtifactStore | None = None):
    """A ready model: the pretrained network of zoo member ``name`` in eval mode, its weights'
    sha256 checked against the model card first."""
    from nasoa_lib.train import PRETRAINED_KIND, WEIGHTS_FILE, load_pretrained

    prof = resolve_profile(profile)
    store = _store(prof, store)
    c = card(name, prof, store)
    path = store.artifact_path(PRETRAINED_KIND, c.pretrain_key, WEIGHTS_FILE)
    if not path.is_file():
        raise ArtifactNotFoundError(f"weights of {c.name} missing at {path}",
                                    hint=f"pretrain it again: nasoa reproduce --profile {prof.name} --only 04")
    digest = sha256_file(path)
    if digest != c.weights_sha256:
        raise StoreCorruptedError(
            f"weights of {c.name} at {path} have sha256 {digest[:12]}..., its model card says "
            f"{c.weights_sha256[:12]}...",
            hint=f"delete the file {path}, then pretrain it again: nasoa reproduce --profile {prof.name} --only 04",
        )
    return load_pretrained(c.code, prof, store=store).model


# ----------------------------------------------------------------------------- step-time table


def write_step_time_table(profile: Profile | str, models: Mapping[str, str], store: ArtifactStore | None = None):
    """Measure ``{name: code or baseline name}`` with :func:`nasoa_lib.measure.build_step_time_table`
    on this device and store it (kind ``step_time_table``); returns the table."""
    from nasoa_lib import measure
    from nasoa_lib.builder import downsampling_rule
    from nasoa_lib.device import describe_device
    from nasoa_lib.search.config import small_image_stem
    from nasoa_lib.train import build_model

    prof = resolve_profile(profile)
    store = _store(prof, store)
    m = measure.MeasureConfig.from_profile(prof)
    pooled = {name: downsampling_rule(target) for name, target in models.items() if downsampling_rule(target)}
    key = spec_key({"stage": TABLE_KIND, "profile": prof.name, "device": describe_device().split(":")[0],
                    "models": dict(models), "measure": asdict(m), "threads": prof.threads,
                    **({"downsampling": pooled} if pooled else {})})
    if store.has(TABLE_KIND, key):
        return measure.StepTimeTable.load(store.artifact_path(TABLE_KIND, key, TABLE_FILE))
    measure.warn_if_contended("the zoo's step-time table")
    num_classes = _num_classes(prof)
    factories = {name: (lambda target=target: build_model(target, num_classes, prof.image_size,
                                                          small_image_stem(prof)))
                 for name, target in models.items()}
    table = measure.build_step_time_table(factories, m.batch_size, prof.image_size, warmup=m.warmup,
                                          steps=m.steps, threads=prof.threads)
    store.artifact_dir(TABLE_KIND, key)
    table.save(store.artifact_path(TABLE_KIND, key, TABLE_FILE))
    store.put(TABLE_KIND, key, {"profile": prof.name, "device": table.device, "models": dict(models),
                                "file": TABLE_FILE})
    return table


def step_time_table(profile: Profile | str = "laptop", store: ArtifactStore | None = None):
    """The latest step-time table of this profile and device (the zoo's, or the full one of notebook 04)."""
    from nasoa_lib import measure
    from nasoa_lib.device import describe_device

    prof = resolve_profile(profile)
    store = _store(prof, store)
    device = describe_device().split(":")[0]
    for entry in reversed(store.entries(TABLE_KIND)):
        if entry.record["profile"] == prof.name and entry.record["device"].split(":")[0] == device:
            return measure.StepTimeTable.load(store.artifact_path(TABLE_KIND, entry.key, TABLE_FILE))
    raise ArtifactNotFoundError(f"no step-time table for profile {prof.name!r} on {device}",
                                hint=f"measure it: nasoa reproduce --profile {prof.name} --only 04")
