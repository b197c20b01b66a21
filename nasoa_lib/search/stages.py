"""The two search stages of NASOA section 4.2 and what notebooks 02-03 call.

"We first search for a group of efficient block structure, then use those block candidates to
conduct the macro-level search." :func:`block_search` runs NSGA-II over blocks on a fixed macro
skeleton; :func:`reference_blocks` evaluates the hand-designed blocks of appendix Fig. 9 (Basic,
Bottleneck, inverted bottleneck at several widths) with the same proxy; :func:`best_blocks` picks
the block candidates; :func:`macro_search` runs NSGA-II over macros with those blocks and
:func:`random_search` spends the same evaluation budget on uniform samples (the baseline).
:func:`check_reachable` refuses a T_m that no architecture of the space can meet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import InfeasibleConstraintError
from nasoa_lib.profiles import resolve_profile
from nasoa_lib.search.config import SearchConfig, small_image_stem
from nasoa_lib.search.evaluate import Backend, StepSpec, evaluate_codes, make_backend, measure_costs
from nasoa_lib.search.operators import CodeSpace
from nasoa_lib.search.run import SearchResult, SearchSpec, pareto_front, run_search
from nasoa_lib.space import ArchCode, MacroCode, parse_block
from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

REFERENCE_BLOCKS = {"Basic": "020-", "Bottleneck": "10001-", "InvertedBottleneck": "14441-"}
"""Appendix Fig. 9's hand-designed blocks in our notation: ResNet basic (conv3x3, conv3x3),
ResNet bottleneck (expansion 4: 1x1 to x0.25, 3x3, 1x1 to x1), MobileNetV2 inverted bottleneck
(expansion 4: 1x1 to x4, depthwise 3x3, 1x1 to x1)."""
FASTEST_BLOCK = "1-"
REFERENCE_T_MAX_MS = 1e9  # the reference blocks are trained whatever their step time


@dataclass(frozen=True)
class SearchContext:
    """Shared inputs of every stage of one profile."""

    profile: str
    config: SearchConfig
    step: StepSpec
    store: ArtifactStore
    num_classes: int

    @classmethod
    def create(cls, profile, store: ArtifactStore | None = None, config: SearchConfig | None = None) -> "SearchContext":
        from nasoa_lib.data import load_manifest

        prof = resolve_profile(profile)
        store = store or ArtifactStore.for_profile(prof.name)
        num_classes = int(load_manifest(prof.source_dataset).num_classes)
        config = config or SearchConfig.from_profile(prof)
        return cls(prof.name, config, StepSpec.from_profile(prof, config.measure_threads), store, num_classes)

    def backend(self, kind: str = "process", address: str | None = None) -> Backend:
        return make_backend(kind, self.config.workers, self.config.threads_per_worker, address)


def block_space(ctx: SearchContext) -> CodeSpace:
    return CodeSpace("block", block_space=ctx.config.block_space, skeleton=ctx.config.skeleton)


def macro_space(ctx: SearchContext, blocks: Sequence[str]) -> CodeSpace:
    return CodeSpace("macro", macro_space=ctx.config.macro_space, blocks=tuple(blocks))


def _spec(ctx: SearchContext, name: str, algorithm: str, space: CodeSpace, population: int, generations: int) -> SearchSpec:
    cfg = ctx.config
    return SearchSpec(name, algorithm, space, population, generations, cfg.workers, cfg.t_max_ms, cfg.proxy,
                      ctx.step, ctx.profile, cfg.seed)


def check_reachable(ctx: SearchContext, codes: Sequence[str]) -> float:
    """Measure the fastest candidates ``codes`` on the parent node; if none meets T_m, raise
    :class:`InfeasibleConstraintError` (NASOA Eq. 1 would have no feasible architecture)."""
    times = [measure_costs(c, ctx.profile, ctx.step, ctx.num_classes, ctx.store)["step_ms"] for c in codes]
    fastest = float(min(times))
    if fastest > ctx.config.t_max_ms:
        raise InfeasibleConstraintError(
            f"T_m = {ctx.config.t_max_ms:g} ms is unreachable: the fastest architecture of the search space "
            f"({codes[int(np.argmin(times))]}) takes {fastest:.1f} ms per training step "
            f"(batch {ctx.step.batch_size}, {ctx.step.image_size}x{ctx.step.image_size}, {ctx.step.threads} threads)",
            hint=f"raise search.t_max_ms above {fastest:.1f} in configs/profiles.yaml, or shrink the space",
        )
    return fastest


def fastest_block_code(ctx: SearchContext) -> str:
    return str(ArchCode(parse_block(FASTEST_BLOCK), ctx.config.skeleton))


def fastest_macro_codes(ctx: SearchContext, blocks: Sequence[str]) -> list[str]:
    width = min(ctx.config.macro_stem_widths)
    macro = MacroCode(width, ((1,), (1,), (1,), (1,)))
    return [str(ArchCode(parse_block(b), macro)) for b in blocks]


def block_search(ctx: SearchContext, backend: Backend, progress: bool = True,
                 stop_after: int | None = None) -> SearchResult:
    """Block-level NSGA-II on the fixed skeleton (NASOA section 4.2, first stage)."""
    check_reachable(ctx, [fastest_block_code(ctx)])
    cfg = ctx.config
    spec = _spec(ctx, "block", "nsga2", block_space(ctx), cfg.block_population, cfg.block_generations)
    return run_search(spec, store=ctx.store, backend=backend, num_classes=ctx.num_classes, progress=progress,
                      stop_after=stop_after)


def reference_codes(ctx: SearchContext) -> pd.DataFrame:
    """The reference blocks of appendix Fig. 9 on the skeleton, one row per (block, stem width)."""
    rows = []
    skeleton = ctx.config.skeleton
    for name, block in REFERENCE_BLOCKS.items():
        for width in ctx.config.reference_widths:
            code = str(ArchCode(parse_block(block), MacroCode(width, skeleton.stages)))
            rows.append({"reference": name, "block": block, "stem_width": width, "code": code})
    return pd.DataFrame(rows)


def reference_blocks(ctx: SearchContext, backend: Backend) -> pd.DataFrame:
    """Proxy accuracy and step time of the reference blocks (trained whatever their step time)."""
    refs = reference_codes(ctx)
    records, _ = evaluate_codes(
        refs["code"].tolist(), profile=ctx.profile, proxy=ctx.config.proxy, step=ctx.step,
        t_max_ms=REFERENCE_T_MAX_MS, store=ctx.store, backend=backend, num_classes=ctx.num_classes,
        seed=ctx.config.seed, context={"first_search": "reference", "first_generation": 0},
    )
    df = pd.DataFrame(records)
    df["feasible"] = df["step_ms"] <= ctx.config.t_max_ms
    return refs.merge(df.drop(columns=["t_max_ms"]), on="code")


def best_blocks(result: SearchResult, k: int) -> list[str]:
    """``k`` distinct blocks for the macro search: the blocks of the feasible Pareto front of the
    block search, evenly spread over its step-time range (so fast and accurate blocks both come),
    then the next non-dominated layers if the front has fewer than ``k`` blocks."""
    df = result.feasible.copy()
    if df.empty:
        raise InfeasibleConstraintError("the block search found no feasible block",
                                        hint="raise search.t_max_ms or widen the block space")
    df["block"] = [c.split("_")[0] for c in df["code"]]
    chosen: list[str] = []
    remaining = df
    while len(chosen) < k and not remaining.empty:
        front = pareto_front(remaining)
        blocks = list(dict.fromkeys(front["block"]))
        need = k - len(chosen)
        if len(blocks) > need:
            picks = np.unique(np.round(np.linspace(0, len(blocks) - 1, need)).astype(int))
            blocks = [blocks[i] for i in picks]
        chosen.extend(b for b in blocks if b not in chosen)
        remaining = remaining[~remaining["code"].isin(front["code"])]
    return chosen[:k]


def macro_spec(ctx: SearchContext, blocks: Sequence[str]) -> SearchSpec:
    """The macro-level NSGA-II's spec (population, generations, space, seed of the profile)."""
    cfg = ctx.config
    return _spec(ctx, "macro", "nsga2", macro_space(ctx, blocks), cfg.macro_population, cfg.macro_generations)


def random_spec(ctx: SearchContext, blocks: Sequence[str]) -> SearchSpec:
    """The random-search baseline's spec: the macro NSGA-II's evaluation budget
    (``search.random_evaluations`` overrides it) in generations of ``workers`` samples."""
    cfg = ctx.config
    budget = cfg.random_evaluations or cfg.evaluations("macro")
    generations = 1 + int(np.ceil(max(0, budget - cfg.macro_population) / cfg.workers))
    return _spec(ctx, "random", "random", macro_space(ctx, blocks), cfg.macro_population, generations)


def macro_search(ctx: SearchContext, blocks: Sequence[str], backend: Backend, progress: bool = True,
                 stop_after: int | None = None) -> SearchResult:
    """Macro-level NSGA-II over the best blocks (NASOA section 4.2, second stage)."""
    check_reachable(ctx, fastest_macro_codes(ctx, blocks))
    spec = macro_spec(ctx, blocks)
    return run_search(spec, store=ctx.store, backend=backend, num_classes=ctx.num_classes, progress=progress,
                      stop_after=stop_after)


def random_search(ctx: SearchContext, blocks: Sequence[str], backend: Backend, progress: bool = True) -> SearchResult:
    """The random-search baseline on the macro space with the macro NSGA-II's evaluation budget
    (``search.random_evaluations`` overrides it)."""
    spec = random_spec(ctx, blocks)
    return run_search(spec, store=ctx.store, backend=backend, num_classes=ctx.num_classes, progress=progress)


def search_plan(ctx: SearchContext) -> pd.DataFrame:
    """Expected minutes per stage, from the step time of the skeleton with the Basic block measured
    now on one worker's thread count (a median-cost candidate), the proxy's steps and the budget:
    evaluations x seconds per proxy training / workers, plus the parent's step-time measurements
    (sequential, between generations)."""
    from nasoa_lib import measure
    from nasoa_lib.builder import build

    cfg = ctx.config
    code = str(ArchCode(parse_block(REFERENCE_BLOCKS["Basic"]), cfg.skeleton))
    model = build(code, ctx.num_classes, image_size=ctx.step.image_size, small_image_stem=small_image_stem(ctx.profile))
    timing = measure.measure_step_time(model, cfg.proxy_batch_size, ctx.step.image_size, warmup=1, steps=3,
                                       threads=cfg.threads_per_worker)
    classes = min(ctx.num_classes, cfg.proxy_classes or ctx.num_classes)
    steps = cfg.proxy_epochs * max(1, cfg.proxy_images_per_class * classes // cfg.proxy_batch_size)
    per_eval = steps * timing.median_ms / 1000.0 + 2.0
    measure_s = (ctx.step.warmup + ctx.step.steps) * timing.median_ms / 1000.0 * ctx.step.batch_size / cfg.proxy_batch_size + 0.5
    rows = []
    for stage, n in (("reference blocks", len(cfg.reference_widths) * len(REFERENCE_BLOCKS)),
                     ("block NSGA-II", cfg.evaluations("block")),
                     ("macro NSGA-II", cfg.evaluations("macro")),
                     ("random search", cfg.random_evaluations or cfg.evaluations("macro"))):
        minutes = (n * per_eval / cfg.workers + n * measure_s) / 60.0
        rows.append({"stage": stage, "evaluations": n, "seconds_per_evaluation": per_eval,
                     "expected_minutes": minutes})
    return pd.DataFrame(rows)
