"""Notebook 00 (SPEC section 12): NASOA Table 1 for our datasets, sample grids, class histograms.

Every number comes from the verified prepared files, never from hand-copied counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasoa_lib.data.datasets import ImageDataset, load_dataset
from nasoa_lib.data.manifests import load_manifest
from nasoa_lib.errors import ProfileConfigError
from nasoa_lib.profiles import Profile


@dataclass(frozen=True)
class DataReportConfig:
    """Knobs of notebook 00 (``data:`` section of a profile)."""

    sample_grid_per_dataset: int

    def __post_init__(self) -> None:
        if self.sample_grid_per_dataset < 1:
            raise ProfileConfigError(
                f"data.sample_grid_per_dataset={self.sample_grid_per_dataset}; must be >= 1",
                hint="set it to e.g. 8 or 16 in configs/profiles.yaml",
            )


def profile_datasets(profile: Profile) -> list[ImageDataset]:
    """Every dataset of ``profile`` (source, meta-train, meta-test), loaded and verified."""
    return [load_dataset(name) for name in profile.datasets]


def dataset_table(profile: Profile) -> pd.DataFrame:
    """NASOA Table 1 for the datasets of ``profile``: role, domain, sizes, per-class range, license."""
    rows = []
    for data in profile_datasets(profile):
        manifest = load_manifest(data.name)
        train, test = data.train_counts(), data.test_counts()
        rows.append(
            {
                "dataset": data.name,
                "role": manifest.role,
                "domain": manifest.domain,
                "classes": data.num_classes,
                "train_images": int(train.sum()),
                "test_images": int(test.sum()),
                "train_per_class_min": int(train.min()),
                "train_per_class_max": int(train.max()),
                "test_per_class_min": int(test.min()),
                "test_per_class_max": int(test.max()),
                "image_size": data.image_size,
                "license": manifest.license,
                "source": manifest.source,
            }
        )
    return pd.DataFrame(rows)


def headline_numbers(table: pd.DataFrame) -> dict[str, int]:
    """Headline numbers of notebook 00: datasets and total images."""
    return {
        "datasets": int(len(table)),
        "classes": int(table["classes"].sum()),
        "train_images": int(table["train_images"].sum()),
        "test_images": int(table["test_images"].sum()),
    }


def sample_indices(data: ImageDataset, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training-image indices spread over the classes (round-robin over a shuffled class order)."""
    rng = np.random.default_rng(seed)
    class_order = rng.permutation(data.num_classes)
    pools = {c: rng.permutation(np.flatnonzero(data.y_train == c)) for c in class_order}
    picked = []
    for i in range(min(n, len(data.y_train))):
        c = class_order[i % data.num_classes]
        pool = pools[c]
        taken = i // data.num_classes
        if taken < len(pool):
            picked.append(int(pool[taken]))
    return np.asarray(picked, dtype=np.int64)


def plot_sample_grid(datasets: Sequence[ImageDataset], per_dataset: int, seed: int = 0) -> Figure:
    """One row of ``per_dataset`` training images per dataset, each titled with its class."""
    rows, cols = len(datasets), per_dataset
    fig, axes = plt.subplots(
        rows, cols, figsize=(0.95 * cols + 1.2, 1.15 * rows), squeeze=False
    )
    for r, data in enumerate(datasets):
        idx = sample_indices(data, per_dataset, seed)
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(idx):
                ax.imshow(data.x_train[idx[c]], interpolation="nearest")
                ax.set_title(data.class_names[data.y_train[idx[c]]][:12], fontsize=6, pad=2)
        axes[r, 0].set_ylabel(data.name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("Training images per dataset (32x32 RGB as prepared)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_histograms(datasets: Sequence[ImageDataset]) -> Figure:
    """Bar chart of training images per class, one panel per dataset (shows class imbalance)."""
    cols = min(4, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    for ax, data in zip(axes.flat, datasets):
        counts = data.train_counts()
        ax.bar(np.arange(data.num_classes), counts, width=0.85, color="tab:blue")
        ax.set_title(f"{data.name} ({data.num_classes} classes)", fontsize=9)
        if data.num_classes <= 12:
            ax.set_xticks(np.arange(data.num_classes))
            ax.set_xticklabels(
                [n[:12] for n in data.class_names], rotation=45, ha="right", fontsize=6
            )
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("class index", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
        ax.set_ylabel("train images", fontsize=8)
        ax.set_ylim(0, counts.max() * 1.1)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
