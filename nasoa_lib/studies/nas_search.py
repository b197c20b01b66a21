"""Notebooks 02-03: what the searches conclude, decided by the study's verdict rule.

NASOA section 4.2 makes three claims about its search: the searched blocks beat hand-designed
ones (Fig. 9), "smaller models should use simpler structures of blocks while bigger models prefer
complex blocks" (Fig. 3), and the evolutionary search finds a better front than chance (our
control: random search at the same number of evaluations). Each is an effect with an interval
(:mod:`nasoa_lib.verdict`); the noise floor is the binomial standard error of a proxy accuracy
on the proxy's test images.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from nasoa_lib import verdict
from nasoa_lib.space import parse_block
from nasoa_lib.search import SearchContext


def proxy_test_images(ctx: SearchContext) -> int:
    """Test images behind one proxy accuracy (per class x the source's classes)."""
    return int(ctx.config.proxy_test_images_per_class * ctx.num_classes)


def block_complexity(block: str) -> int:
    """Nodes plus skip connections of a block code (the simplicity NASOA's Fig. 3 speaks of)."""
    b = parse_block(block)
    return int(b.num_nodes + len(b.skips))


def with_complexity(front: pd.DataFrame) -> pd.DataFrame:
    """The front with each point's block and its :func:`block_complexity`."""
    blocks = [c.split("_")[0] for c in front.code]
    return front.assign(block=blocks, complexity=[block_complexity(b) for b in blocks])


def front_margin_over_references(refs: pd.DataFrame, front: pd.DataFrame) -> pd.Series:
    """Per reference block: the most accurate front point at least as fast, minus the reference's
    proxy top-1 (points); nan where no front point is as fast. A reference is *dominated* where the
    margin is >= 0 (some searched block at least as accurate and at least as fast)."""
    def margin(row: pd.Series) -> float:
        faster = front[front.step_ms <= row.step_ms]
        return float((faster.proxy_top1.max() - row.proxy_top1) * 100) if len(faster) else float("nan")

    return refs.apply(margin, axis=1)


def block_claims(refs: pd.DataFrame, front: pd.DataFrame, test_images: int) -> pd.DataFrame:
    """Notebook 02's claims: the front beats the hand-designed blocks at equal or lower step time
    (Fig. 9; units: reference blocks); faster front blocks are simpler (Fig. 3; Spearman of step
    time and block complexity over the front's points)."""
    floor = verdict.accuracy_standard_error(pd.concat([refs.proxy_top1, front.proxy_top1]), test_images) * 100
    margins = front_margin_over_references(refs, front)
    front = with_complexity(front)
    return verdict.table([
        verdict.one_sample(
            "Searched blocks beat the hand-designed ones (Fig. 9): the best front block at least as fast is more "
            "accurate (units: reference blocks)", margins.dropna(), unit="points", noise_floor=floor,
            evidence=f"{int(margins.isna().sum())} reference(s) faster than every front point left out"),
        verdict.correlation(
            "Smaller models prefer simpler blocks (Fig. 3): block complexity rises with step time on the front",
            front.step_ms, front.complexity, "spearman", unit="rho",
            evidence=", ".join(f"{r.block} ({r.step_ms:.0f} ms, {r.complexity})" for r in front.itertuples())),
    ])


def search_claims(final_hypervolumes: pd.DataFrame) -> pd.DataFrame:
    """Notebook 03's claim: NSGA-II ends with a larger hypervolume than random search at the same
    number of evaluations. ``final_hypervolumes`` has one row per repetition and columns
    ``NSGA-II`` and ``random search``; one repetition gives n = 1 and is inconclusive by rule."""
    return verdict.table([verdict.paired(
        "NSGA-II finds a better front than random search at the same number of evaluations (final hypervolume)",
        final_hypervolumes["NSGA-II"], final_hypervolumes["random search"], unit="hypervolume",
        evidence=f"{len(final_hypervolumes)} repetition(s)")])


def final_hypervolumes(curves: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Last hypervolume of each algorithm per repetition, from :func:`~nasoa_lib.search.hypervolume_curve`
    frames with an ``algorithm`` column and an optional ``repetition`` column."""
    frame = pd.concat(curves, ignore_index=True)
    if "repetition" not in frame:
        frame = frame.assign(repetition=0)
    last = frame.sort_values("evaluations").groupby(["repetition", "algorithm"]).hypervolume.last()
    return last.unstack("algorithm")
