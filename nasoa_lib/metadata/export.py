"""The meta-dataset as a table: a pandas frame, ``meta_dataset.parquet`` and its data card.

The rows live in the artifact store (kind ``meta_run``): one row per checkpoint of a run
(:mod:`nasoa_lib.metadata.collect`). :func:`export` writes them, ordered by row index (runs in the
order they were sampled in, a run's checkpoints together in epoch order: the online stream), as one
Parquet file beside a
Markdown data card (columns, ranges, counts per dataset and model, how it was collected) into the
store (kind ``meta_dataset``), never into the repository. Notebooks 06 and 07 read the frame with
:func:`load_meta_dataset`; anyone else can ``pandas.read_parquet`` the exported file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
import pandas as pd

from nasoa_lib.errors import ArtifactNotFoundError, InvalidDataError
from nasoa_lib.metadata.collect import collection_id, stored_rows
from nasoa_lib.metadata.config import MetaDatasetConfig
from nasoa_lib.metadata.sampling import check_meta_train
from nasoa_lib.metafeatures import FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET_COLUMN, MetaFeatureConfig
from nasoa_lib.profiles import Profile, resolve_profile
from nasoa_lib.run_length import RunLengthConfig
from nasoa_lib.store import ArtifactStore, spec_key

EXPORT_KIND = "meta_dataset"
PARQUET_FILE = "meta_dataset.parquet"
CARD_FILE = "DATA_CARD.md"
#: Columns of the exported table, in order: index and split, the meta-features, the target, then
#: what identifies and measures the run.
COLUMNS: tuple[str, ...] = (
    "index", "run", "epochs", "run_epochs", "split", *FEATURE_COLUMNS, TARGET_COLUMN, "accuracy_even",
    "accuracy_odd", "dataset", "classes", "task_seed", "test_per_class",
    "test_images", "emd", "model_group", "model_target", "pretrained_key", "batch_size", "lr_schedule",
    "momentum", "weight_decay", "augment", "seed", "spec_hash", "train_seconds", "eval_seconds", "wall_seconds",
    "run_wall_seconds", "cpu_seconds", "steps", "median_step_seconds", "frozen_cache", "threads", "pid", "device", "collection", "profile",
    "stored_at",
)
DESCRIPTIONS = {
    "index": "row index: run x ladder length + rung; sorted, the stream order (a run's rows together)",
    "run": "run index in the collection (the sampling order); rows of one run share it",
    "epochs": "epochs of the task at this checkpoint (a rung of the run-length ladder)",
    "run_epochs": "epochs of the run's last checkpoint (the run's length)",
    "accuracy_even": "test accuracy on the even-indexed test images (one independent half)",
    "accuracy_odd": "test accuracy on the odd-indexed test images (the other half)",
    "run_wall_seconds": "worker wall-clock of the whole run (all its checkpoints)",
    "split": "train / validation (the paper's 24K / 6K split: a fixed draw per run)",
    "model": "meta-feature: model name (one-hot in the predictors); baseline or zoo member",
    "domain_similarity": "meta-feature: exp(-0.01 * EMD) of the task's class means to the source's (Cui et al. 2018)",
    "images_per_class": "meta-feature: training images per class of the task",
    "num_classes": "meta-feature: classes in the task",
    "source_accuracy": "meta-feature: the model's top-1 on the source test set",
    "iterations": "meta-feature: optimizer steps up to this checkpoint",
    "lr": "meta-feature: learning rate (constant: nasoa_lib.run_length.SCHEDULE)",
    "frozen_stages": "meta-feature: stem + stages 1..k frozen (0 = none, 4 = head only)",
    TARGET_COLUMN: "target: test accuracy of the fine-tuned model at this checkpoint",
    "emd": "Earth Mover's Distance behind domain_similarity",
    "wall_seconds": "worker wall-clock of the run (task arrays + fine-tuning + evaluation) / its rows",
    "train_seconds": "training time up to this checkpoint, measured by the engine",
    "spec_hash": "key of the fine-tuning spec (nasoa_lib.finetune.run_spec)",
    "stored_at": "UTC time the row was committed to the store",
    "dataset": "meta-train dataset the task was sampled from",
    "classes": "class indices of the task in its dataset",
    "task_seed": "seed of the task's image draw (nasoa_lib.data.TaskSpec)",
    "test_per_class": "test images per class", "test_images": "test images of the task",
    "model_group": "baseline / ours / released", "model_target": "baseline name or architecture code",
    "pretrained_key": "store key of the source pretraining", "seed": "training seed (head init, batch order)",
    "batch_size": "fine-tuning batch (profile)", "lr_schedule": "constant (checkpointed runs)",
    "momentum": "SGD momentum (profile)", "weight_decay": "weight decay (profile)", "augment": "flip+crop (profile)",
    "eval_seconds": "evaluation time of the run / its rows", "cpu_seconds": "worker CPU time of the run / its rows",
    "steps": "optimizer steps up to this checkpoint", "median_step_seconds": "median step time",
    "frozen_cache": "frozen-prefix activations cached", "threads": "torch threads of the worker",
    "pid": "worker process", "device": "device and threads", "collection": "collection id (sampling settings)",
    "profile": "scale profile",
}


@dataclass(frozen=True)
class ExportedMetaDataset:
    """Where :func:`export` wrote the table and its card."""

    parquet: Path
    card: Path
    rows: int
    collection: str


def frame_from_rows(rows: list[dict]) -> pd.DataFrame:
    """Rows -> frame with :data:`COLUMNS` first, sorted by index; a meta-test row is an error."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    check_meta_train(sorted(frame["dataset"].unique()))
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidDataError(f"meta-dataset rows lack columns {missing}",
                               hint="rows written by another version of the collector; re-collect them")
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[list(COLUMNS) + extra].sort_values("index").reset_index(drop=True)


def load_meta_dataset(
    profile: Profile | str, store: ArtifactStore | None = None, config: MetaDatasetConfig | None = None,
    skip_corrupt: bool = False,
) -> pd.DataFrame:
    """Every stored row of the profile's collection as a frame (sorted by run index)."""
    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    rows = stored_rows(store, collection_id(prof, config), skip_corrupt=skip_corrupt)
    return frame_from_rows(rows)


def _range(series: pd.Series) -> str:
    if series.dtype == object or series.empty:
        return ""
    return f"{series.min():.4g} .. {series.max():.4g}"


def data_card(frame: pd.DataFrame, profile: Profile | str, config: MetaDatasetConfig | None = None) -> str:
    """Markdown data card: how the rows were collected, columns and ranges, counts per dataset and model."""
    prof = resolve_profile(profile)
    config = config or MetaDatasetConfig.from_profile(prof)
    mf = MetaFeatureConfig.from_profile(prof)
    ladder = RunLengthConfig.from_profile(prof).ladder()
    runs = int(frame["run"].nunique()) if len(frame) else 0
    lines = [
        f"# Meta-dataset `{collection_id(prof, config)}` (profile `{prof.name}`)",
        "",
        f"{len(frame)} rows from {runs} fine-tuning runs (NASOA section 4.3 collects 30K runs: 24K meta-train / "
        "6K meta-validation).",
        "",
        "## How it was collected",
        "",
        f"- Tasks sampled from the meta-train datasets only ({', '.join(prof.meta_train)}); the meta-test "
        f"datasets ({', '.join(prof.meta_test)}) never enter (checked when sampling, running and loading).",
        f"- Per run: a dataset uniformly; {config.num_classes[0]}..{config.num_classes[1]} random classes; "
        f"log-uniform {config.images_per_class[0]}..{config.images_per_class[1]} training images per class "
        f"(capped by the smallest chosen class); {config.test_per_class} test images per class (capped likewise).",
        f"- Regime: lr log-uniform {config.lr[0]:g}..{config.lr[1]:g}, constant during the run; frozen stages "
        f"uniform over {list(config.frozen_stages)}; batch size, momentum, weight decay from the profile's "
        "`finetune:` section.",
        f"- Run length in epochs of the task: a rung of the ladder {list(ladder)} drawn uniformly (log-uniform in "
        "epochs). **Rows**: the run is evaluated after every rung up to its length, and each checkpoint is one row "
        "(`iterations` = its optimizer steps, `epochs` its epochs); under the constant rate the state after e epochs "
        "is exactly the run of e epochs with the same seed. Rows of one run share `run` and are contiguous in "
        "`index` order (the stream).",
        "- Model: uniform over the pretrained baselines and the zoo members present when the run was planned; "
        "all pretrained on the source set with one shared recipe.",
        f"- Domain similarity: exp(-{mf.gamma:g} * EMD) between class means of `{mf.reference_model}` penultimate "
        f"features (source `{prof.source_dataset}` vs the task's classes), EMD by POT `ot.emd2`.",
        f"- Split: {config.validation_fraction:.0%} of runs (all their rows) marked `validation` by a fixed draw "
        "per run.",
        "- Test accuracy is also recorded on the even- and odd-indexed test images (`accuracy_even`, "
        "`accuracy_odd`): two independent halves that measure the test-set noise.",
        f"- Runs are deterministic given (collection, run); the store key is (collection, run, epochs), "
        "so an interrupted or extended collection neither loses nor repeats a row.",
        "",
        "## Columns",
        "",
        "| column | dtype | range | meaning |",
        "|---|---|---|---|",
    ]
    for column in frame.columns:
        ranged = column in (*NUMERIC_FEATURES, TARGET_COLUMN, "emd", "wall_seconds", "train_seconds", "epochs")
        lines.append(f"| `{column}` | {frame[column].dtype} | {_range(frame[column]) if ranged else ''} | "
                     f"{DESCRIPTIONS.get(column, '')} |")
    if not frame.empty:
        counts = frame.pivot_table(index="model", columns="dataset", values="run", aggfunc="nunique",
                                   fill_value=0, margins=True, margins_name="all")
        lines += ["", "## Runs per dataset and model", "", "```", counts.to_string(), "```",
                  "", "## Rows and runs per split", "", "```",
                  frame.groupby("split").agg(rows=("index", "size"), runs=("run", "nunique")).to_string(), "```",
                  "", f"Accuracy: mean {frame[TARGET_COLUMN].mean():.3f}, std {frame[TARGET_COLUMN].std():.3f}; "
                  f"worker wall-clock {frame['wall_seconds'].sum() / 3600:.2f} h in all."]
    return "\n".join(lines) + "\n"


def export(
    profile: Profile | str, store: ArtifactStore | None = None, config: MetaDatasetConfig | None = None,
    frame: pd.DataFrame | None = None,
) -> ExportedMetaDataset:
    """Write ``meta_dataset.parquet`` and ``DATA_CARD.md`` into the store (atomically) and record them."""
    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    collection = collection_id(prof, config)
    frame = frame if frame is not None else load_meta_dataset(prof, store, config)
    key = spec_key({"stage": EXPORT_KIND, "collection": collection, "rows": len(frame),
                    "last": int(frame["index"].max()) if len(frame) else -1})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    parquet = store.write_bytes(EXPORT_KIND, key, PARQUET_FILE, buffer.getvalue())
    card = store.write_bytes(EXPORT_KIND, key, CARD_FILE, data_card(frame, prof, config).encode("utf-8"))
    store.put(EXPORT_KIND, key, {"collection": collection, "profile": prof.name, "rows": len(frame),
                                 "parquet": PARQUET_FILE, "card": CARD_FILE})
    return ExportedMetaDataset(parquet, card, len(frame), collection)


def exported_path(profile: Profile | str, store: ArtifactStore | None = None,
                  config: MetaDatasetConfig | None = None) -> Path:
    """The newest exported ``meta_dataset.parquet`` of the profile's collection."""
    prof = resolve_profile(profile)
    store = store or ArtifactStore.for_profile(prof.name)
    collection = collection_id(prof, config)
    for entry in reversed(store.entries(EXPORT_KIND, skip_corrupt=True)):
        if entry.record.get("collection") == collection:
            return store.artifact_path(EXPORT_KIND, entry.key, PARQUET_FILE)
    raise ArtifactNotFoundError(f"no exported meta-dataset for profile {prof.name!r} in {store.root}",
                                hint=f"collect and export it: nasoa reproduce --profile {prof.name} --only 05")
