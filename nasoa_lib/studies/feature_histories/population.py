"""Ground truth for the estimator (thesis 003, section 4.1 and 4.2.1, appendix A.2, A.3.1).

A population of networks is trained to the end of its schedule on one fixed task of the profile's
source set, with the feature history recorded after every epoch:

* ``space``: architectures drawn uniformly from a small sub-space of our NASOA space (small stem
  width so they fit a CPU), ``archs_per_seed`` per seed, each seed one repetition of thesis A.3.1;
* ``baseline``: a few torchvision families (thesis Fig. 4.1 shows VGG/ResNet/MobileNetV2);
* ``hpo``: one fixed network over a grid of learning rate x augmentation strength (the HPO task of
  thesis section 4.3.1, with our light augmentation instead of RandAugment).

Every trained network is one store record (kind :data:`RUN_KIND`: curves, costs, true accuracy)
plus its feature history and per-epoch refitted validation distributions as artifacts, so a
re-run skips finished networks and an interrupted run restarts only the network it was training.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from nasoa_lib.data import sample_task
from nasoa_lib.errors import InvalidEstimatorInput
from nasoa_lib.estimate.ensemble import RefitConfig, estimate, refit_key
from nasoa_lib.estimate.history import FeatureHistory
from nasoa_lib.estimate.training import AUGMENTATIONS, HistoryData, TrainSettings, train_with_history
from nasoa_lib.profiles import Profile, resolve_profile

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

RUN_KIND = "feature_history_run"
HISTORY_FILE = "history.pt"
PROBS_FILE = "refit_val_probs.pt"
GROUPS = ("space", "baseline", "hpo")


@dataclass(frozen=True)
class EstimateConfig:
    """The ``estimate:`` section of a profile (notebook 08). Only sizes differ between profiles;
    the estimator's own settings (A.1) are :class:`RefitConfig` defaults, except the window K
    (``window``), which the smoke profile shrinks so that a 3-epoch run still exercises it."""

    dataset: str
    classes: int
    train_per_class: int
    val_per_class: int
    test_per_class: int | None
    data_seed: int
    epochs: int
    batch_size: int
    lr: float
    augment: str
    window: int
    seeds: tuple[int, ...]
    archs_per_seed: int
    stem_widths: tuple[int, ...]
    max_blocks: int
    max_stage_depth: int
    max_doublings: int
    small_image_stem: bool
    baselines: tuple[str, ...]
    hpo_model: str
    hpo_lrs: tuple[float, ...]
    hpo_augments: tuple[str, ...]
    search_min_budget: int
    search_max_budget: int
    search_budget_epochs: int
    search_eta: int
    search_repeats: int
    holdout_per_class: int = 0
    curve_examples: int = 2

    def __post_init__(self) -> None:
        if self.window < 1:
            raise InvalidEstimatorInput(f"estimate.window K={self.window}; must be >= 1", hint="thesis: K = 10")
        if not 1 <= self.search_min_budget <= self.search_max_budget <= self.epochs:
            raise InvalidEstimatorInput(
                f"search budgets {self.search_min_budget}..{self.search_max_budget} must lie in 1..{self.epochs}",
                hint="the tabular benchmark only knows the recorded epochs",
            )
        if self.holdout_per_class < 0:
            raise InvalidEstimatorInput(f"estimate.holdout_per_class={self.holdout_per_class}; must be >= 0",
                                        hint="0 keeps only the dataset's own test images")
        if self.search_repeats < 2:
            raise InvalidEstimatorInput(f"estimate.search_repeats={self.search_repeats}; need >= 2 for an interval",
                                        hint="laptop: 20 (searches replay recorded curves and cost seconds)")
        for aug in self.hpo_augments + (self.augment,):
            if aug not in AUGMENTATIONS:
                raise InvalidEstimatorInput(f"augmentation {aug!r} unknown", hint=f"one of {sorted(AUGMENTATIONS)}")

    @classmethod
    def from_profile(cls, profile: Profile | str) -> "EstimateConfig":
        prof = resolve_profile(profile)
        return prof.section("estimate", cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, augment=self.augment)

    def data_spec(self) -> dict[str, Any]:
        spec = {
            "dataset": self.dataset, "classes": self.classes, "train_per_class": self.train_per_class,
            "val_per_class": self.val_per_class, "test_per_class": self.test_per_class, "seed": self.data_seed,
        }
        if self.holdout_per_class:
            spec["holdout_per_class"] = self.holdout_per_class
        return spec


@dataclass(frozen=True)
class Member:
    """One network of the population: which model, which training settings, which seed."""

    group: str
    model: str
    seed: int
    settings: TrainSettings
    small_image_stem: bool = False

    @property
    def label(self) -> str:
        if self.group == "hpo":
            return f"lr={self.settings.lr:g},aug={self.settings.augment}"
        return self.model

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "model": self.model, "seed": self.seed,
                "settings": self.settings.to_dict(), "small_image_stem": self.small_image_stem}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Member":
        return cls(data["group"], data["model"], int(data["seed"]), TrainSettings(**data["settings"]),
                   bool(data.get("small_image_stem", False)))


def task_data(config: EstimateConfig, image_size: int) -> HistoryData:
    """The one task every member trains on (fixed ``data_seed``: rankings compare like with like)."""
    task = sample_task(
        config.dataset, config.classes, config.train_per_class + config.val_per_class + config.holdout_per_class,
        seed=config.data_seed, test_per_class=config.test_per_class,
    )
    return HistoryData.from_task(task, config.val_per_class, image_size, config.holdout_per_class)


def sample_codes(config: EstimateConfig, seed: int) -> list[str]:
    """``archs_per_seed`` distinct architectures drawn uniformly from the configured sub-space."""
    from nasoa_lib.space import MacroSpace, sample_arch

    space = MacroSpace(stem_widths=config.stem_widths, max_stage_depth=config.max_stage_depth,
                       max_blocks=config.max_blocks, max_doublings=config.max_doublings)
    rng = np.random.default_rng([seed, 8])
    codes: list[str] = []
    for _ in range(50 * config.archs_per_seed):
        code = str(sample_arch(rng, macro_space=space))
        if code not in codes:
            codes.append(code)
        if len(codes) == config.archs_per_seed:
            break
    return codes


def population(config: EstimateConfig, groups: Sequence[str] = GROUPS) -> list[Member]:
    """Every network of notebook 08, in training order (space per seed, baselines, HPO grid)."""
    base = config.train_settings
    members: list[Member] = []
    if "space" in groups:
        for seed in config.seeds:
            members += [Member("space", code, seed, base, config.small_image_stem) for code in sample_codes(config, seed)]
    if "baseline" in groups:
        members += [Member("baseline", name, config.seeds[0], base, config.small_image_stem) for name in config.baselines]
    if "hpo" in groups:
        for lr in config.hpo_lrs:
            for aug in config.hpo_augments:
                settings = TrainSettings(**{**base.to_dict(), "lr": lr, "augment": aug})
                members.append(Member("hpo", config.hpo_model, config.seeds[0], settings, config.small_image_stem))
    return members


def run_spec(member: Member, config: EstimateConfig, image_size: int) -> dict[str, Any]:
    """Everything that determines a member's curves (hashed into its store key; with the builder's
    down-sampling rule for a code whose blocks pool)."""
    from nasoa_lib.builder import key_fields

    return {
        "stage": "feature_history", "member": member.to_dict(), "data": config.data_spec(),
        "window": config.window, "refit": RefitConfig().to_dict(), "image_size": image_size,
        **key_fields(member.model),
    }


def run_key(member: Member, config: EstimateConfig, image_size: int) -> str:
    from nasoa_lib.store import spec_key

    return spec_key(run_spec(member, config, image_size))


def _build(member: Member, data: HistoryData, image_size: int) -> torch.nn.Module:
    from nasoa_lib.train import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(member.seed)
        return build_model(member.model, data.num_classes, image_size, member.small_image_stem)


def measure_throughput(member: Member, data: HistoryData, image_size: int, steps: int = 2) -> float:
    """Training images per second of ``member`` on the default device: one warm-up step, then
    ``steps`` timed steps (:func:`nasoa_lib.measure.measure_step_time` on the first training
    images), images over their total time."""
    from nasoa_lib.device import default_device
    from nasoa_lib.measure import measure_step_time

    bs = min(member.settings.batch_size, len(data.y_train))
    timing = measure_step_time(
        _build(member, data, image_size), bs, image_size, num_classes=data.num_classes, device=default_device(),
        warmup=1, steps=steps, lr=1e-3, batch=(data.x_train[:bs], data.y_train[:bs]),
    )
    return steps * bs / max(1e-9, sum(timing.samples_ms) / 1000.0)


EVAL_OVERHEAD = 1.15
"""Per-epoch time beyond the training passes (validation forward + refit), measured at the laptop
scale; only used for the printed plan."""


def plan(members: Sequence[Member], config: EstimateConfig, data: HistoryData, store: ArtifactStore, image_size: int) -> pd.DataFrame:
    """Expected minutes per member (0 when cached), from a measured throughput of each member."""
    rows = []
    n = len(data.y_train)
    for m in members:
        cached = store.has(RUN_KIND, run_key(m, config, image_size))
        ips = float("nan") if cached else measure_throughput(m, data, image_size)
        minutes = 0.0 if cached else m.settings.epochs * n / ips * EVAL_OVERHEAD / 60
        rows.append({"group": m.group, "member": m.label, "seed": m.seed, "cached": cached,
                     "images_per_second": ips, "expected_minutes": minutes})
    return pd.DataFrame(rows)


def train_member(
    member: Member, config: EstimateConfig, data: HistoryData, store: ArtifactStore, image_size: int,
    progress: bool = False, profile_name: str = "",
) -> dict[str, Any]:
    """Train one member with its feature history (or load it from the store)."""
    from nasoa_lib.device import default_device, describe_device

    key = run_key(member, config, image_size)
    found = store.get(RUN_KIND, key)
    if found is not None:
        return found
    model = _build(member, data, image_size)
    history = FeatureHistory(config.window, data.y_val)
    refit = RefitConfig()
    per_epoch_probs: list[torch.Tensor] = []

    def keep_probs(row: dict[str, Any]) -> None:
        per_epoch_probs.append(history.cached_refit(row["epoch"], refit_key(refit)).half())

    bar = None
    if progress:
        from tqdm.auto import tqdm

        steps = member.settings.epochs * max(1, -(-len(data.y_train) // member.settings.batch_size))
        bar = tqdm(total=steps, desc=f"{member.group} {member.label}", leave=False)
    try:
        rows = train_with_history(model, data, member.settings, history=history, refit=refit,
                                  seed=member.seed, on_epoch_end=keep_probs, progress=bar,
                                  device=default_device())
    finally:
        if bar is not None:
            bar.close()
    cold = estimate(history, refit, reuse=False)
    if abs(cold.accuracy - rows[-1]["estimate_acc"]) > 1e-9:
        log.warning("cold estimate %.4f differs from the incremental one %.4f", cold.accuracy, rows[-1]["estimate_acc"])
    epoch_seconds = float(np.mean([r["train_seconds"] for r in rows]))
    store.save_torch(RUN_KIND, key, HISTORY_FILE, history.state_dict())
    store.save_torch(RUN_KIND, key, PROBS_FILE, torch.stack(per_epoch_probs))
    from nasoa_lib.provenance import provenance

    record = {
        **run_spec(member, config, image_size),
        "label": member.label,
        "curve": rows,
        "true_acc": rows[-1]["test_acc"],
        "final_val_acc": rows[-1]["val_acc"],
        "num_params": sum(p.numel() for p in model.parameters()),
        "feature_dim": history.latest.feature_dim,
        "sizes": data.sizes(),
        "epoch_seconds": epoch_seconds,
        "images_per_second": len(data.y_train) / epoch_seconds,
        "estimate_seconds": cold.seconds,
        "estimate_cost_epochs": cold.seconds / epoch_seconds,
        "save_seconds_per_epoch": float(np.mean([r["save_seconds"] + r["val_seconds"] for r in rows])),
        "history_bytes": history.nbytes,
        "history_epochs": list(history.epochs),
        "threads": torch.get_num_threads(),
        "device": describe_device(),
    }
    store.put(RUN_KIND, key, record, provenance=provenance(profile_name or "unknown", member.seed, describe_device()))
    return record


def run_population(
    members: Sequence[Member], config: EstimateConfig, data: HistoryData, store: ArtifactStore, image_size: int,
    threads: int | None = None, progress: bool = True, profile_name: str = "",
) -> list[dict[str, Any]]:
    """Train (or load) every member in order; returns their records."""
    from nasoa_lib.device import pinned_threads

    with pinned_threads(threads or None):
        iterator: Iterable[Member] = members
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(members, desc="networks")
        return [train_member(m, config, data, store, image_size, progress, profile_name) for m in iterator]


# ------------------------------------------------------------------------------------ analysis


def curves_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Long table: one row per (network, epoch) with the original, optimized and ensemble
    accuracies on the validation set and the network's true (final test) accuracy."""
    rows = []
    for r in records:
        for row in r["curve"]:
            rows.append({
                "group": r["member"]["group"], "member": r["label"], "seed": r["member"]["seed"],
                "epoch": row["epoch"], "original": row["val_acc"], "optimized": row.get("optimized_acc"),
                "estimate": row.get("estimate_acc"), "true": r["true_acc"],
            })
    return pd.DataFrame(rows)


def cost_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per network: training speed, the estimator's cost in epochs (one cold estimate, and the
    per-epoch validation pass + saving, which the "original" accuracy needs too), and the memory it
    holds."""
    return pd.DataFrame([{
        "group": r["member"]["group"], "member": r["label"], "seed": r["member"]["seed"],
        "params_M": r["num_params"] / 1e6, "feature_dim": r["feature_dim"],
        "images_per_second": r["images_per_second"], "epoch_seconds": r["epoch_seconds"],
        "estimate_seconds": r["estimate_seconds"], "estimate_cost_epochs": r["estimate_cost_epochs"],
        "feature_saving_epochs": r["save_seconds_per_epoch"] / r["epoch_seconds"],
        "history_MiB": r["history_bytes"] / 2**20, "true_acc": r["true_acc"],
    } for r in records])


def first_epoch_within(curves: pd.DataFrame, tolerance: float, method: str) -> pd.DataFrame:
    """Per network, the first epoch from which ``method`` stays within ``tolerance`` of the true
    accuracy (thesis Fig. 3.1: "reaches the final performance at an earlier stage")."""
    rows = []
    for (member, seed), frame in curves.groupby(["member", "seed"]):
        frame = frame.sort_values("epoch")
        close = ((frame[method] - frame["true"]).abs() <= tolerance).to_numpy()
        epoch = math.nan
        for i in range(len(close)):
            if close[i:].all():
                epoch = int(frame["epoch"].iloc[i])
                break
        rows.append({"member": member, "seed": seed, "method": method, "first_epoch": epoch})
    return pd.DataFrame(rows)
