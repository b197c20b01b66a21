"""The evidence behind the shared pretraining recipe (issue 23): its arms, measured once on this machine.

Every arm is a real ``nasoa_lib.train.pretrain`` on the profile's source set, stored in the
profile's store under its own recipe (so the arms that *are* the profile's recipe are the very
weights the study uses, and a second run of this script re-reads every arm instead of training):

* ``chosen``: the profile's ``pretrain:`` recipe (ImageNet stem), per model;
* ``small stem``: the same recipe with the small-image stem (stride 16 instead of 32, about 4x the
  multiply-adds) at **equal CPU-minutes**: its epochs are the chosen epochs times the ratio of the
  two stems' training step times, measured here in one interleaved run;
* ``no augmentation``: the chosen recipe without flip + crop and without label smoothing (what the
  augmentation buys at the same epochs), ResNet-18 only;
* ``old recipe``: the recipe of the study before issue 23 (3 epochs, batch 64, lr 0.05, warm-up
  0.2 epochs, no augmentation), ResNet-18 only, for the before/after comparison in the same conditions.

Writes ``reports/benchmarks/pretrain_recipe.csv`` (one row per arm and epoch; notebook 00 prints
it). Usage::

    python benchmarks/pretrain_recipe.py [--profile laptop] [--stem-models resnet18 ET-NAS-A]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd
import torch

from nasoa_lib import measure, train
from nasoa_lib.data import load_manifest
from nasoa_lib.paths import REPORT_DIR
from nasoa_lib.profiles import load_profile
from nasoa_lib.space import RELEASED
from nasoa_lib.store import ArtifactStore

OUT = REPORT_DIR / "benchmarks" / "pretrain_recipe.csv"
OLD_RECIPE = dict(epochs=3, batch_size=64, lr=0.05, warmup_epochs=0.2, augment=False, label_smoothing=0.0)
"""The laptop recipe before issue 23 (committed reports up to session 5)."""


def target(name: str) -> str:
    """A baseline name, or a released ET-NAS name (``ET-NAS-A``) as its architecture code."""
    return RELEASED[name].code if name in RELEASED else name


def equal_minutes_epochs(name: str, recipe: train.PretrainRecipe, image_size: int, num_classes: int,
                         threads: int) -> tuple[int, float]:
    """Epochs of the small-image stem that cost what ``recipe.epochs`` of the ImageNet stem cost,
    from both stems' step times measured in one interleaved run; and the measured ratio."""
    nets = {stem: train.build_model(target(name), num_classes, image_size, small_image_stem=(stem == "small"))
            for stem in ("imagenet", "small")}
    timing = measure.measure_interleaved(nets, recipe.batch_size, image_size, rounds=4, steps_per_round=3,
                                         warmup=2, threads=threads)
    ratio = timing["small"].median_ms / timing["imagenet"].median_ms
    return max(1, round(recipe.epochs / ratio)), ratio


def arms(profile_name: str, stem_models: list[str]) -> list[tuple[str, str, train.PretrainRecipe, dict]]:
    prof = load_profile(profile_name)
    chosen = train.PretrainRecipe.from_profile(prof)
    classes = int(load_manifest(prof.source_dataset).num_classes)
    out = []
    for name in stem_models:
        out.append(("chosen", name, chosen, {}))
        epochs, ratio = equal_minutes_epochs(name, chosen, prof.image_size, classes, prof.threads)
        out.append(("small stem, equal CPU-minutes", name, replace(chosen, small_image_stem=True, epochs=epochs),
                    {"step_time_ratio_small_vs_imagenet": ratio}))
    out.append(("no augmentation, no label smoothing", "resnet18", replace(chosen, augment=False, label_smoothing=0.0), {}))
    out.append(("old recipe (before issue 23)", "resnet18", replace(chosen, **OLD_RECIPE), {}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="laptop")
    parser.add_argument("--stem-models", nargs="+", default=["resnet18", "ET-NAS-A"])
    args = parser.parse_args()
    prof = load_profile(args.profile)
    store = ArtifactStore.for_profile(prof.name)
    torch.set_num_threads(prof.threads)
    measure.warn_if_contended("the recipe arms' step times")
    rows = []
    for arm, name, recipe, extra in arms(prof.name, args.stem_models):
        result = train.pretrain(target(name), recipe=recipe, profile=prof, store=store)
        for e in result.record["curve"]:
            rows.append({"arm": f"{name}: {arm}", "model": name, "stem": "small" if recipe.small_image_stem else "imagenet",
                         "augment": recipe.augment, "label_smoothing": recipe.label_smoothing,
                         "batch_size": recipe.batch_size, "lr": recipe.lr, "epochs": recipe.epochs,
                         "epoch": e["epoch"], "test_top1": e["test_top1"], "train_top1": e["train_top1"],
                         "train_seconds": e["train_seconds"], "test_images": result.record["test_images"],
                         "threads": result.record["threads"], **extra})
        print(f"{name:10s} {arm:40s} top-1 {result.source_top1 * 100:5.1f} % "
              f"in {result.record['train_seconds'] / 60:5.1f} min", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
