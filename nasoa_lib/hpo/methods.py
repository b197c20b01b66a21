"""The methods of NASOA Table 4 (and the four rows of Table 5), as data.

=============================  ===========  ==========  ==========================  ============
row (NASOA Table 4)            search       models      predictor                   cost
=============================  ===========  ==========  ==========================  ============
Random Search (HPO only)       random       fixed       --                          x multiple
BOHB (HPO only)                BOHB         fixed       --                          x multiple
Random Search                  random       baselines   --                          x multiple
BOHB                           BOHB         baselines   --                          x multiple
Our Zoo with Random Search     random       zoo         --                          x multiple
Our Zoo with BOHB              BOHB         zoo         --                          x multiple
Our OA only                    generator    baselines   adaptive, learning online   x1
Our Zoo with Fixed MLP         generator    zoo         offline fixed MLP (L = 10)  x1
Our final NASOA                generator    zoo         adaptive, learning online   x1
=============================  ===========  ==========  ==========================  ============

"HPO only" tunes the hyper-parameters of one fixed large baseline (the paper's RegNetY-16GF; the
profile's ``hpo.fixed_model``). "OA only" is our generator restricted to the baseline families: it
ranks only baseline models, with the same adaptive predictor as NASOA (trained on the meta-dataset,
whose runs include both baseline and zoo models, so its one-hot knows the baselines) and, like
NASOA, it learns online from its own runs.
"""

from __future__ import annotations

from dataclasses import dataclass

SEARCH_RANDOM, SEARCH_BOHB, SEARCH_GENERATOR = "random_search", "bohb", "generator"
MODELS_FIXED, MODELS_BASELINES, MODELS_ZOO = "fixed", "baselines", "zoo"


@dataclass(frozen=True)
class Method:
    """One row of Table 4: how it searches, over which models, with which predictor."""

    key: str
    label: str
    search: str
    models: str
    predictor: str | None = None
    online: bool = False

    @property
    def is_search(self) -> bool:
        return self.search != SEARCH_GENERATOR


METHODS: tuple[Method, ...] = (
    Method("rs_hpo_only", "Random Search (HPO only)", SEARCH_RANDOM, MODELS_FIXED),
    Method("bohb_hpo_only", "BOHB (HPO only)", SEARCH_BOHB, MODELS_FIXED),
    Method("rs", "Random Search", SEARCH_RANDOM, MODELS_BASELINES),
    Method("bohb", "BOHB", SEARCH_BOHB, MODELS_BASELINES),
    Method("zoo_rs", "Our Zoo with Random Search", SEARCH_RANDOM, MODELS_ZOO),
    Method("zoo_bohb", "Our Zoo with BOHB", SEARCH_BOHB, MODELS_ZOO),
    Method("oa_only", "Our OA only", SEARCH_GENERATOR, MODELS_BASELINES, "adaptive", online=True),
    Method("zoo_offline", "Our Zoo with Fixed MLP (Offline)", SEARCH_GENERATOR, MODELS_ZOO, "offline"),
    Method("nasoa", "Our final NASOA", SEARCH_GENERATOR, MODELS_ZOO, "adaptive", online=True),
)
BY_KEY = {m.key: m for m in METHODS}

#: NASOA Table 4 (fine-tuning accuracy, %; search cost as printed).
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
#: NASOA Table 5: the ablation rows (method key, label, fixed/existing/NAS models, adaptive
#: scheduler, cost) and their average accuracy over the test datasets (%).
PAPER_TABLE5: tuple[tuple[str, str, str, float], ...] = (
    ("bohb_hpo_only", "BOHB", "fixed model, x40", 77.2),
    ("zoo_bohb", "+ Our Zoo", "NAS models, x40", 87.5),
    ("oa_only", "Our OA", "existing models + adaptive scheduler, x1", 83.7),
    ("nasoa", "NASOA", "NAS models + adaptive scheduler, x1", 85.8),
)
