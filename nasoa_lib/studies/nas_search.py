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
from nasoa_lib.errors import InvalidArgumentError
from nasoa_lib.space import parse_block
from nasoa_lib.search import SearchContext


def proxy_test_images(ctx: SearchContext) -> int:
    """Images behind one proxy accuracy: validation (or test) images per class x the proxy's classes."""
    cfg = ctx.config
    classes = min(ctx.num_classes, cfg.proxy_classes or ctx.num_classes)
    per_class = cfg.proxy_validation_per_class or cfg.proxy_test_images_per_class
    return int(per_class * classes)


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


# ------------------------------------------------------- NSGA-II vs random, repeated on a surrogate


def surrogate_fidelity(held_out: pd.DataFrame) -> pd.DataFrame:
    """How well the surrogate orders architectures it was not fitted on: Kendall tau of k-fold
    held-out predictions with the measured proxy top-1 and step time (Fisher-z intervals).
    ``held_out`` comes from :func:`nasoa_lib.search.surrogate.held_out_predictions`."""
    trained = held_out.dropna(subset=["proxy_top1"])
    return verdict.table([
        verdict.correlation("The surrogate ranks held-out architectures' proxy top-1 like the proxy",
                            trained.proxy_top1, trained.predicted_top1, "kendall", unit="tau",
                            evidence=f"{len(trained)} trained architectures, k-fold"),
        verdict.correlation("The surrogate ranks held-out architectures' step time like the measurement",
                            held_out.step_ms, held_out.predicted_step_ms, "kendall", unit="tau",
                            evidence=f"{len(held_out)} measured architectures, k-fold"),
    ])


def replayed_hypervolumes(ctx: SearchContext, blocks: Sequence[str], evaluations: pd.DataFrame,
                          repetitions: int) -> pd.DataFrame:
    """NSGA-II and random search, each replayed ``repetitions`` times (seeds 1..n; the live runs
    used the profile's seed) with the live runs' specs against a surrogate fitted on
    ``evaluations`` (every real evaluation of notebooks 02-03): their hypervolume after each
    evaluation, with ``algorithm`` and ``repetition`` columns."""
    from nasoa_lib.search import hypervolume_curve, macro_spec, random_spec
    from nasoa_lib.search import surrogate

    fitted = surrogate.fit(evaluations, ctx.num_classes, ctx.step.image_size, ctx.config.t_max_ms)
    seeds = [ctx.config.seed + 1 + i for i in range(repetitions)]
    curves = []
    for name, spec in (("NSGA-II", macro_spec(ctx, blocks)), ("random search", random_spec(ctx, blocks))):
        runs = surrogate.replay(spec, fitted, seeds)
        for seed, run in runs.groupby("repetition"):
            curves.append(hypervolume_curve(run.reset_index(drop=True), ctx.config.t_max_ms)
                          .assign(algorithm=name, repetition=int(seed)))
    return pd.concat(curves, ignore_index=True)


def hypervolume_band(curves: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm and evaluation count: mean hypervolume over repetitions with its t interval."""
    rows = []
    for (algorithm, n), grp in curves.groupby(["algorithm", "evaluations"]):
        mean, lo, hi = verdict.t_interval(grp.hypervolume)
        rows.append({"algorithm": algorithm, "evaluations": int(n), "mean": mean, "ci_low": lo, "ci_high": hi,
                     "repetitions": len(grp)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- which proxy ranks


def proxy_fidelity(measured: pd.DataFrame) -> pd.DataFrame:
    """Per proxy of ``benchmarks/proxy_fidelity.py``'s table: repeatability (Kendall tau between
    its first two seeds) and fidelity (Kendall tau between its mean top-1 over seeds and the full
    recipe's source test top-1), each with its Fisher-z interval; CPU-minutes per evaluation
    (training on this machine) and fidelity per CPU-minute (the issue's choice rule)."""
    rows = []
    for proxy, grp in measured.groupby("proxy", sort=False):
        wide = grp.pivot_table(index="arch", columns="seed", values="proxy_top1")
        seeds = list(wide.columns)
        full = grp.groupby("arch").full_top1.first().reindex(wide.index)
        rep = verdict.correlation(f"{proxy}: repeatable across seeds", wide[seeds[0]], wide[seeds[1]], "kendall",
                                  unit="tau")
        fid = verdict.correlation(f"{proxy}: ranks like the full recipe", wide.mean(axis=1), full, "kendall",
                                  unit="tau")
        minutes = float(grp.proxy_train_seconds.mean()) / 60
        rows.append({"proxy": proxy, "architectures": len(wide),
                     "repeatability_tau": rep.effect, "repeatability_ci": f"[{rep.ci_low:.2f}, {rep.ci_high:.2f}]",
                     "fidelity_tau": fid.effect, "fidelity_ci": f"[{fid.ci_low:.2f}, {fid.ci_high:.2f}]",
                     "fidelity_verdict": fid.verdict, "cpu_minutes_per_evaluation": minutes,
                     "fidelity_per_cpu_minute": fid.effect / minutes if minutes > 0 else float("nan"),
                     "scored_on": ", ".join(sorted(set(grp.scored_on)))})
    return pd.DataFrame(rows)


#: Issue 17's bar for a proxy that ranks: Kendall tau >= 0.5 against the full recipe.
FIDELITY_BAR = 0.5


def proxy_choice(proxies: pd.DataFrame, bar: float = FIDELITY_BAR) -> str:
    """One sentence on the chosen proxy (best fidelity per CPU-minute, the issue's rule) against
    the fidelity ``bar``: whether it reaches it, and what the cheapest proxy that does would cost
    relative to it (the reason to accept a proxy below the bar is its price, stated plainly)."""
    if proxies.empty:
        raise InvalidArgumentError("no proxy measured", hint="run python benchmarks/proxy_fidelity.py first")
    chosen = proxies.loc[proxies.fidelity_per_cpu_minute.idxmax()]
    text = (f"chosen proxy: {chosen.proxy} (fidelity tau {chosen.fidelity_tau:.2f} {chosen.fidelity_ci}, "
            f"{chosen.cpu_minutes_per_evaluation:.2f} CPU-min per evaluation)")
    if chosen.fidelity_tau >= bar:
        return text + f": it reaches the bar of tau >= {bar:g}."
    reaching = proxies[proxies.fidelity_tau >= bar]
    if reaching.empty:
        return text + f": below the bar of tau >= {bar:g}, and no measured proxy reaches it."
    best = reaching.loc[reaching.cpu_minutes_per_evaluation.idxmin()]
    ratio = best.cpu_minutes_per_evaluation / chosen.cpu_minutes_per_evaluation
    return (text + f": below the bar of tau >= {bar:g}. The cheapest measured proxy above it, {best.proxy} "
            f"(tau {best.fidelity_tau:.2f} {best.fidelity_ci}), costs {ratio:.1f}x as much per evaluation: "
            f"at that price the laptop search would get {1 / ratio:.0%} of "
            "its evaluations within the same minutes.")
