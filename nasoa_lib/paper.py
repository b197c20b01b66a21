"""Every number this study quotes from its papers, in one place, to print beside ours.

Three papers, three groups; names say which paper a number comes from:

* ``PAPER_*``: NASOA, the paper this study rebuilds (notebooks 00-07).
* ``THESIS_*``: feature-history performance estimation (Cao, CMU thesis; ``papers/003``),
  notebook 08.
* ``NSS_PAPER_*``: Network Space Search (Hong et al., "Network Space Search for Pareto-Efficient
  Spaces"), notebook 09: its reported averages and the search settings we scale from.

A number here is data read off a table, figure or setting of a paper; nothing in this module is
computed from our runs. The modules that compare against them (``online.stream``,
``hpo.methods``, ``space.counting``, ``metadata.analysis``, ``studies.feature_histories.figures``, ``nss.*``)
import them from here under the names they always had.
"""

from __future__ import annotations

import math

import pandas as pd

# ============================================================================================
# NASOA
# ============================================================================================

PAPER_BLOCKS = 5.4e6
"""Unique blocks of NASOA's search space (section 3.1), stated without the ranges behind it."""
PAPER_MACROS = 1.5e7
"""Unique macro architectures of NASOA's search space (section 3.1)."""

PAPER_META_DATASET = {"runs": 30000, "meta_train_runs": 24000, "meta_validation_runs": 6000, "meta_train_datasets": 5}
"""NASOA section 4.3's meta-dataset: 30K fine-tuning runs on 5 meta-train datasets, split 24K / 6K."""

PAPER_ADAPTIVE_LABEL = "Ours Adaptive MLP"
"""Table 3's row name of NASOA's adaptive online MLP; our stream's adaptive runs carry the same
label (``online.ADAPTIVE_LABEL``) so their rows line up with the paper's."""

PAPER_TABLE3 = pd.DataFrame(
    [
        ("Fixed MLP (L=3)", 10.07, 1.94, 8.99, 1.56, 7.99, 1.21),
        ("Fixed MLP (L=6)", 9.12, 1.71, 9.03, 1.62, 7.16, 1.04),
        ("Fixed MLP (L=10)", 8.45, 1.59, 8.46, 1.53, 6.68, 0.96),
        ("Fixed MLP (L=14)", 11.24, 2.91, 8.34, 1.54, 4.62, 0.46),
        (PAPER_ADAPTIVE_LABEL, 7.51, 1.36, 7.55, 1.11, 3.73, 0.28),
    ],
    columns=["predictor", "all MAE %", "all MSE %", "20-40% MAE %", "20-40% MSE %", "80-100% MAE %",
             "80-100% MSE %"],
)
"""NASOA Table 3 (section 4.3; 30K runs: online stream of the meta-dataset; percentages of accuracy)."""

PAPER_TABLE4: dict[str, dict[str, float | str]] = {
    "rs_hpo_only": {"cost": "x40", "Aircrafts": 63.07, "MIT67": 75.60, "Sf-Car": 67.47, "Sf-Dog": 86.25},
    "bohb_hpo_only": {"cost": "x40", "Aircrafts": 72.70, "MIT67": 77.61, "Sf-Car": 70.94, "Sf-Dog": 87.41},
    "rs": {"cost": "x40", "Aircrafts": 81.07, "MIT67": 79.93, "Sf-Car": 88.99, "Sf-Dog": 89.06},
    "bohb": {"cost": "x40", "Aircrafts": 82.34, "MIT67": 79.85, "Sf-Car": 89.01, "Sf-Dog": 89.49},
    "zoo_rs": {"cost": "x40", "Aircrafts": 83.71, "MIT67": 80.97, "Sf-Car": 87.84, "Sf-Dog": 92.75},
    "zoo_bohb": {"cost": "x40", "Aircrafts": 84.67, "MIT67": 82.34, "Sf-Car": 89.03, "Sf-Dog": 93.74},
    "oa_only": {"cost": "x1", "Aircrafts": 81.22, "MIT67": 79.33, "Sf-Car": 84.56, "Sf-Dog": 89.70},
    "zoo_offline": {"cost": "x1", "Aircrafts": 81.31, "MIT67": 75.97, "Sf-Car": 88.81, "Sf-Dog": 88.58},
    "nasoa": {"cost": "x1", "Aircrafts": 82.54, "MIT67": 80.30, "Sf-Car": 88.20, "Sf-Dog": 92.30},
}
"""NASOA Table 4 (section 4.4): fine-tuning accuracy (%) per method key of ``hpo.methods.METHODS``
and test dataset; search cost as printed."""

PAPER_TABLE5: tuple[tuple[str, str, str, float], ...] = (
    ("bohb_hpo_only", "BOHB", "fixed model, x40", 77.2),
    ("zoo_bohb", "+ Our Zoo", "NAS models, x40", 87.5),
    ("oa_only", "Our OA", "existing models + adaptive scheduler, x1", 83.7),
    ("nasoa", "NASOA", "NAS models + adaptive scheduler, x1", 85.8),
)
"""NASOA Table 5 (section 4.4): the ablation rows (method key, label, fixed/existing/NAS models,
adaptive scheduler, cost) and their average accuracy over the test datasets (%)."""

# ============================================================================================
# Feature-history performance estimation (Cao, CMU thesis; papers/003)
# ============================================================================================

THESIS_TABLE_4_1 = pd.DataFrame(
    [("random_search", 93.21, 0.78, 93.45, 0.27), ("hyperband", 93.36, 0.30, 93.77, 0.09), ("bohb", 93.35, 0.55, 93.45, 0.37)],
    columns=["method", "without_mean", "without_std", "with_mean", "with_std"],
)
"""Thesis Table 4.1: test accuracy (%) of the architecture found on NAS-Bench-201 / CIFAR-10
(global optimum 94.37 %), 5 runs, 200-epoch ground truth, search budgets 1..128 epochs."""

THESIS_TABLE_4_3 = pd.DataFrame(
    [("hyperband", "VGG-16", 85.38, 0.24, 85.60, 0.28), ("hyperband", "ResNet-18", 85.83, 0.43, 86.06, 0.64),
     ("hyperband", "MobileNetV2", 86.53, 0.23, 86.62, 0.48), ("bohb", "VGG-16", 85.35, 0.44, 85.61, 0.38),
     ("bohb", "ResNet-18", 86.04, 1.16, 86.53, 0.64), ("bohb", "MobileNetV2", 86.92, 0.46, 86.80, 0.71)],
    columns=["method", "network", "without_mean", "without_std", "with_mean", "with_std"],
)
"""Thesis Table 4.3: test accuracy (%) after the RandAugment search on an 8000/2000 CIFAR-10 subset."""

THESIS_NOTES = {
    "estimate_overhead_epochs": 0.5,  # appendix A.1: "typically 0.5 epoch time" (NAS-Bench-201)
    "fig_3_1": "ResNet-18 / CIFAR-100: the ensemble reaches >77 % at epoch 75 of 200 (about 2.7x faster)",
    "fig_4_3_4_4": "100 NAS-Bench-201 architectures x 3 runs: 'Ours' has lower absolute error and higher "
    "Kendall tau than 'Original' at every epoch checked (every 10 of 200)",
}
"""What the thesis states in words: appendix A.1's estimation overhead, Fig. 3.1 and Figs 4.3-4.4."""

# ============================================================================================
# Network Space Search (NSS)
# ============================================================================================

NSS_PAPER_IMAGE_SIZE = 32
"""CIFAR-10/100 resolution of the NSS paper's experiments (Sec. 4.1)."""

NSS_PAPER_EXPANDED_SPACE = {"d_max": 16, "w_max": 512, "depth_range": 4, "width_range": 32}
"""The NSS paper's Expanded Search Space and Elite Space range sizes (Sec. 3.2, 4.1): depths up to
16 and widths up to 512 per stage, Elite Spaces of 4 depths x 32 widths (``nss.ExpandedSpace``'s
fields; ``nss.search.PAPER_EXPANDED`` builds it)."""

NSS_PAPER_ARCH_LR = 3e-4
"""DARTS [21] architecture learning rate (NSS supp. 6.4.1 follows DARTS' settings)."""

NSS_PAPER_ARCH_STEPS = 35 * math.ceil(25_000 / 64)
"""Theta updates of one NSS paper search: 35 search epochs over CIFAR's 25K validation half, batch 64
(supp. 6.4.1)."""

NSS_PAPER_TABLE1 = pd.DataFrame(
    [  # NSS Table 1 averages (CIFAR-10 / CIFAR-100, 6 targets 600MF..24GF), for comparison only
        {"dataset": "CIFAR-10 (paper)", "space": "Elite", "deviation_%": 2.1, "samples": 5.0, "error_%": 4.00},
        {"dataset": "CIFAR-10 (paper)", "space": "Expanded", "deviation_%": 5.5, "samples": 43.2, "error_%": 4.52},
        {"dataset": "CIFAR-100 (paper)", "space": "Elite", "deviation_%": 2.2, "samples": 5.0, "error_%": 20.02},
        {"dataset": "CIFAR-100 (paper)", "space": "Expanded", "deviation_%": 5.9, "samples": 46.8, "error_%": 22.28},
    ]
)
"""NSS Table 1's 'Average' rows (Sec. 4.2): FLOPs deviation, samples until one within +-10 % and
error of Elite vs Expanded Space, CIFAR-10 and CIFAR-100, over 6 targets 600MF..24GF."""

__all__ = [
    "NSS_PAPER_ARCH_LR", "NSS_PAPER_ARCH_STEPS", "NSS_PAPER_EXPANDED_SPACE", "NSS_PAPER_IMAGE_SIZE",
    "NSS_PAPER_TABLE1", "PAPER_ADAPTIVE_LABEL", "PAPER_BLOCKS", "PAPER_MACROS", "PAPER_META_DATASET",
    "PAPER_TABLE3", "PAPER_TABLE4", "PAPER_TABLE5", "THESIS_NOTES", "THESIS_TABLE_4_1", "THESIS_TABLE_4_3",
]
