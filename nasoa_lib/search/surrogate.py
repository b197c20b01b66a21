"""Repeating whole searches on a surrogate of the real evaluations (issue 17 item 3).

One live search costs a whole notebook, so "NSGA-II beats random search" cannot be decided from
live runs on a laptop: one repetition has no spread. The NAS-benchmark practice (NAS-Bench-301,
Siems et al. 2020; surrogate benchmarks, Eggensperger et al. 2015) is to fit a regression model on
the evaluations actually made and run many repetitions of each search against it. Here:

* :class:`Surrogate` predicts a code's proxy top-1 and log step time from features of its code
  (block operations and skips, stem width, stage depths and widths) and its FLOPs and parameters
  (computed exactly by building the network), with scikit-learn's random forest;
* :func:`held_out_predictions` is its k-fold cross-validation on the real evaluations: the rank
  correlation of held-out predictions with the measured values is the evidence that the
  surrogate orders architectures like the real proxy does (printed next to the replayed searches);
* :func:`replay` runs the very proposers of the live search (:func:`nasoa_lib.search.run.make_proposer`,
  pymoo's NSGA-II or the random sampler, same space, population and budget) with other seeds,
  answering each ask from the surrogate, and returns the evaluations in ask order, ready for
  :func:`nasoa_lib.search.run.hypervolume_curve`.

The surrogate answers only what the search asks; it never replaces a reported accuracy of a real
model (the zoo is chosen from, and pretrained after, the live search).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd

from nasoa_lib.search.run import SearchSpec, make_proposer
from nasoa_lib.space import parse

OPS = 7
"""Operation indices of the block grammar (``ETNAS_REFERENCE.md``: 0 conv3x3 .. 6 separable conv3x3)."""
TREES = 300


def code_features(code: str, flops: float, params: float) -> np.ndarray:
    """A code as numbers: per-operation node counts, nodes, add and concat skips, stem width, the
    4 stage depths, the 4 stages' channel multipliers (log2 of their products), blocks, log FLOPs
    and log parameters."""
    arch = parse(code)
    ops = np.bincount([n.op for n in arch.block.nodes], minlength=OPS)[:OPS]
    adds = sum(s.kind == "a" for s in arch.block.skips)
    concats = len(arch.block.skips) - adds
    stages = list(arch.macro.stages) + [()] * (4 - len(arch.macro.stages))
    depths = [len(s) for s in stages[:4]]
    growth = [float(np.log2(np.prod(s))) if len(s) else 0.0 for s in stages[:4]]
    return np.array([*ops, arch.block.num_nodes, adds, concats, arch.macro.stem_width, *depths, *growth,
                     arch.macro.num_blocks, np.log(max(flops, 1.0)), np.log(max(params, 1.0))], dtype=float)


@dataclass
class Surrogate:
    """Random forests for proxy top-1 (trained on the feasible evaluations that have one) and
    log step time (on every evaluation); ``costs`` caches the exact FLOPs and parameters of codes."""

    accuracy_model: object
    step_model: object
    num_classes: int
    image_size: int
    t_max_ms: float
    costs: dict[str, tuple[float, float]] = field(default_factory=dict)

    def features(self, codes: Sequence[str]) -> np.ndarray:
        return np.stack([code_features(c, *self._cost(c)) for c in codes])

    def evaluate(self, codes: Sequence[str]) -> list[dict]:
        """Records shaped like the live search's (``code``, ``step_ms``, ``proxy_top1``,
        ``feasible``): the predicted step time decides feasibility against T_m, as measurement does."""
        x = self.features(codes)
        step = np.exp(self.step_model.predict(x))
        top1 = np.clip(self.accuracy_model.predict(x), 0.0, 1.0)
        return [{"code": c, "step_ms": float(s), "feasible": bool(s <= self.t_max_ms),
                 "proxy_top1": float(a) if s <= self.t_max_ms else None} for c, s, a in zip(codes, step, top1)]

    def _cost(self, code: str) -> tuple[float, float]:
        if code not in self.costs:
            from nasoa_lib import measure
            from nasoa_lib.train import build_model

            net = build_model(code, self.num_classes, self.image_size)
            self.costs[code] = (float(measure.count_flops(net, self.image_size)), float(measure.count_params(net)))
        return self.costs[code]


def _forest(seed: int):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, random_state=seed, n_jobs=1)


def _training_rows(evaluations: pd.DataFrame) -> pd.DataFrame:
    df = evaluations.drop_duplicates("code").reset_index(drop=True)
    return df[df["step_ms"].notna()]


def fit(evaluations: pd.DataFrame, num_classes: int, image_size: int, t_max_ms: float, seed: int = 0) -> Surrogate:
    """A :class:`Surrogate` fitted on real evaluations (each code once; ``flops``/``params`` columns
    are the measured costs, reused instead of rebuilding those networks)."""
    df = _training_rows(evaluations)
    costs = {r.code: (float(r.flops), float(r.params)) for r in df.itertuples()}
    surrogate = Surrogate(_forest(seed), _forest(seed), num_classes, image_size, t_max_ms, costs)
    x = surrogate.features(df.code.tolist())
    trained = df["proxy_top1"].notna().to_numpy()
    if trained.sum() >= 2:
        surrogate.accuracy_model.fit(x[trained], df.loc[trained, "proxy_top1"].astype(float))
    else:  # too few trained architectures to learn from (a tiny smoke search): predict their mean
        surrogate.accuracy_model = _Constant(float(df.loc[trained, "proxy_top1"].astype(float).mean()) if trained.any() else 0.0)
    surrogate.step_model.fit(x, np.log(df["step_ms"].astype(float)))
    return surrogate


@dataclass(frozen=True)
class _Constant:
    """A regressor that predicts one value (for fits with fewer than two training rows)."""

    value: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.value)


def held_out_predictions(evaluations: pd.DataFrame, num_classes: int, image_size: int, t_max_ms: float,
                         folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """k-fold predictions of every evaluated code by a surrogate fitted without it: columns
    ``code``, ``proxy_top1`` / ``step_ms`` (measured) and ``predicted_top1`` / ``predicted_step_ms``
    (``proxy_top1`` is missing for codes the search never trained)."""
    from sklearn.model_selection import KFold

    df = _training_rows(evaluations)
    out = []
    for train_idx, test_idx in KFold(min(folds, len(df)), shuffle=True, random_state=seed).split(df):
        s = fit(df.iloc[train_idx], num_classes, image_size, t_max_ms, seed)
        test = df.iloc[test_idx]
        s.costs.update({r.code: (float(r.flops), float(r.params)) for r in test.itertuples()})
        x = s.features(test.code.tolist())
        out.append(pd.DataFrame({"code": test.code.to_numpy(), "proxy_top1": test.proxy_top1.astype(float).to_numpy(),
                                 "step_ms": test.step_ms.astype(float).to_numpy(),
                                 "predicted_top1": s.accuracy_model.predict(x),
                                 "predicted_step_ms": np.exp(s.step_model.predict(x))}))
    return pd.concat(out, ignore_index=True)


def replay(spec: SearchSpec, surrogate: Surrogate, seeds: Sequence[int]) -> pd.DataFrame:
    """Run the live search's proposer (NSGA-II or random, per ``spec.algorithm``) once per seed
    against the surrogate: ``spec.generations`` asks, each answered by :meth:`Surrogate.evaluate`.
    Returns every evaluation in ask order with ``repetition`` (the seed) and ``generation``."""
    frames = []
    for seed in seeds:
        proposer = make_proposer(replace(spec, seed=int(seed)))
        rows = []
        for generation in range(spec.generations):
            codes = proposer.ask()
            records = surrogate.evaluate(codes)
            proposer.tell(codes, records)
            rows += [{**r, "generation": generation} for r in records]
        frames.append(pd.DataFrame(rows).assign(repetition=int(seed)))
    return pd.concat(frames, ignore_index=True)
