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

