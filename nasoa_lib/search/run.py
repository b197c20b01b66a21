"""The NAS loop (NASOA section 3.1, Eq. 1): NSGA-II via pymoo's ask/tell, N offspring per generation,
generation state persisted so a killed search resumes; plus the random-search baseline.

One generation: ``ask`` the proposer for codes (the initial population, then exactly N offspring:
N = number of parallel evaluators, the paper's modification a), evaluate them
(:func:`nasoa_lib.search.evaluate.evaluate_codes`: parent node measures step time, workers
proxy-train), ``tell`` the proposer the objectives ``(-top1, step_ms)`` and the constraint
``step_ms - T_m``, then atomically write the whole proposer (pymoo algorithm, random state, seen
codes) with the generation history to the store. A search killed at any point restarts from the
last written generation; the generation being evaluated when it died is asked again identically
(the random state is restored) and its evaluations already in the store are read, not repeated.
A finished search is a ``nas_search`` record.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidSearchSetup, SearchStateCorruptedError
from nasoa_lib.search.config import ProxySpec
from nasoa_lib.search.evaluate import EVAL_KIND, Backend, StepSpec, eval_key, evaluate_codes
from nasoa_lib.search.operators import (
    CodeDuplicates,
    CodeMutation,
    CodeProblem,
    CodeSampling,
    CodeSpace,
    CopyParents,
    sample_distinct,
)
from nasoa_lib.store import ArtifactStore, spec_key

log = logging.getLogger(__name__)

SEARCH_KIND = "nas_search"
STATE_KIND = "nas_search_state"
STATE_FILE = "state.pkl"
STATE_VERSION = 1
ALGORITHMS = ("nsga2", "random")


@dataclass(frozen=True)
class SearchSpec:
    """Everything that determines one search run (its key is the hash of this)."""

    name: str
    algorithm: str
    space: CodeSpace
    population: int
    generations: int
    offspring: int
    t_max_ms: float
    proxy: ProxySpec
    step: StepSpec
    profile: str
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise InvalidSearchSetup(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}",
                                     hint=f"use one of {', '.join(ALGORITHMS)}")
        if self.population < 1 or self.generations < 1 or self.offspring < 1:
            raise InvalidSearchSetup("population, generations and offspring must be >= 1",
                                     hint="set each to 1 or more (the search: section's populations and generations)")

    @property
    def evaluations(self) -> int:
        return self.population + self.offspring * (self.generations - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "algorithm": self.algorithm, "space": self.space.to_dict(),
            "population": self.population, "generations": self.generations, "offspring": self.offspring,
            "t_max_ms": self.t_max_ms, "proxy": self.proxy.to_dict(), "step": self.step.to_dict(),
            "profile": self.profile, "seed": self.seed,
        }

    @property
    def key(self) -> str:
        return spec_key({"stage": "nas_search", **self.to_dict()})


# ----------------------------------------------------------------------------------- proposers


def objectives(records: Sequence[dict], t_max_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """pymoo's minimisation form of NASOA Eq. 1: F = (-top1, step_ms), G = step_ms - T_m.

    An untrained (infeasible) candidate has top-1 0; constraint domination ranks it below every
    feasible one anyway."""
    F = np.array([[-(r["proxy_top1"] or 0.0), r["step_ms"]] for r in records], dtype=float)
    G = np.array([[r["step_ms"] - t_max_ms] for r in records], dtype=float)
    return F, G


class NSGA2Proposer:
    """pymoo's NSGA-II with our sampling, mutation and duplicate elimination; ``n_offsprings = N``."""

    def __init__(self, spec: SearchSpec) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        self.spec = spec
        self.duplicates = CodeDuplicates()
        self.problem = CodeProblem()
        self.algorithm = NSGA2(
            pop_size=spec.population,
            n_offsprings=spec.offspring,
            sampling=CodeSampling(spec.space, self.duplicates),
            crossover=CopyParents(),
            mutation=CodeMutation(spec.space),
            eliminate_duplicates=self.duplicates,
            seed=spec.seed,
        )
        self.algorithm.setup(self.problem, termination=("n_gen", spec.generations + 1), verbose=False)
        self._pending = None

    def ask(self) -> list[str]:
        pop = self.algorithm.ask()
        self._pending = pop
        return [str(x[0]) for x in pop.get("X")]

    def tell(self, codes: Sequence[str], records: Sequence[dict]) -> None:
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        pop, self._pending = self._pending, None
        F, G = objectives(records, self.spec.t_max_ms)
        Evaluator().eval(StaticProblem(self.problem, F=F, G=G), pop)
        self.algorithm.tell(infills=pop)
        self.duplicates.seen.update(codes)

    def front(self) -> list[str]:
        opt = self.algorithm.opt
        return [] if opt is None else [str(x[0]) for x in opt.get("X")]


class RandomProposer:
    """Random-search baseline: the initial population and then N fresh uniform samples per
    generation, never repeating a code; the same evaluation budget as NSGA-II."""

    def __init__(self, spec: SearchSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.seen: set[str] = set()
        self.asked = 0

    def ask(self) -> list[str]:
        n = self.spec.population if self.asked == 0 else self.spec.offspring
        self.asked += 1
        return sample_distinct(self.spec.space, n, self.rng, self.seen)

    def tell(self, codes: Sequence[str], records: Sequence[dict]) -> None:
        self.seen.update(codes)


def make_proposer(spec: SearchSpec):
    return NSGA2Proposer(spec) if spec.algorithm == "nsga2" else RandomProposer(spec)


# -------------------------------------------------------------------------------------- state


@dataclass
class SearchState:
    """What is persisted after each generation: the proposer and the per-generation history."""

    spec_key: str
    proposer: Any
    history: list[dict] = field(default_factory=list)
    version: int = STATE_VERSION

    @property
    def generation(self) -> int:
        return len(self.history)

    @property
    def eval_keys(self) -> list[str]:
        return [k for g in self.history for k in g["eval_keys"]]


def save_state(store: ArtifactStore, state: SearchState) -> None:
    store.write_bytes(STATE_KIND, state.spec_key, STATE_FILE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def load_state(store: ArtifactStore, key: str) -> SearchState | None:
    """The saved state of search ``key`` (``None`` if none); unreadable or inconsistent state is a
    :class:`SearchStateCorruptedError` naming the file and what to do."""
    if not store.artifact_exists(STATE_KIND, key, STATE_FILE):
        return None
    path = store.artifact_path(STATE_KIND, key, STATE_FILE)
    hint = (
        f"delete {path} and re-run: the search restarts from generation 0 with the same seed and reads "
        "every evaluation already in the store, so no training is repeated"
    )
    try:
        state = pickle.loads(store.read_bytes(STATE_KIND, key, STATE_FILE))
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise SearchStateCorruptedError(f"search state {path} cannot be read ({type(err).__name__}: {err})",
                                        hint=hint) from err
    if not isinstance(state, SearchState) or state.version != STATE_VERSION or state.spec_key != key:
        raise SearchStateCorruptedError(f"search state {path} is not a state of search {key}", hint=hint)
    missing = [k for k in state.eval_keys if not store.has(EVAL_KIND, k)]
    if missing:
        raise SearchStateCorruptedError(
            f"search state {path} lists {len(missing)} evaluation(s) missing from the store "
            f"(e.g. {missing[0]})", hint=hint,
        )
    return state


# ---------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class SearchResult:
    """A finished (or, with ``stop_after``, partial) search: every evaluation in ask order."""

    spec: SearchSpec
    evaluations: pd.DataFrame
    evaluated_now: tuple[str, ...] = ()
    finished: bool = True

    @property
    def feasible(self) -> pd.DataFrame:
        return self.evaluations[self.evaluations["feasible"]]

    def front(self) -> pd.DataFrame:
        """The feasible Pareto front (max top-1, min step time), sorted by step time."""
        return pareto_front(self.feasible)


def pareto_front(df: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated rows of ``df`` for (max ``proxy_top1``, min ``step_ms``) by pymoo's sorting."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if df.empty:
        return df
    F = np.column_stack([-df["proxy_top1"].to_numpy(float), df["step_ms"].to_numpy(float)])
    idx = NonDominatedSorting().do(F, only_non_dominated_front=True)
    return df.iloc[np.sort(idx)].sort_values("step_ms")


def hypervolume_curve(df: pd.DataFrame, t_max_ms: float) -> pd.DataFrame:
    """Hypervolume of the feasible front after each evaluation (in ask order), with pymoo's HV
    indicator in the objective space (-top1, step_ms / T_m) and reference point (0, 1)."""
    from pymoo.indicators.hv import HV

    hv = HV(ref_point=np.array([0.0, 1.0]))
    rows, points = [], []
    for n, (_, r) in enumerate(df.iterrows(), start=1):
        if r["feasible"] and r["proxy_top1"] is not None and not pd.isna(r["proxy_top1"]):
            points.append([-float(r["proxy_top1"]), float(r["step_ms"]) / t_max_ms])
        value = float(hv(np.array(points))) if points else 0.0
        rows.append({"evaluations": n, "hypervolume": value})
    return pd.DataFrame(rows)


def _frame(spec: SearchSpec, store: ArtifactStore, history: Sequence[dict]) -> pd.DataFrame:
    rows = []
    for gen in history:
        for code, key in zip(gen["codes"], gen["eval_keys"]):
            record = store.get(EVAL_KIND, key)
            rows.append({**record, "search": spec.name, "generation": gen["generation"], "eval_key": key})
    df = pd.DataFrame(rows)
    if not df.empty:
        df["proxy_top1"] = df["proxy_top1"].astype(float)
    return df


def run_search(
    spec: SearchSpec,
    *,
    store: ArtifactStore,
    backend: Backend,
    num_classes: int,
    progress: bool = True,
    stop_after: int | None = None,
) -> SearchResult:
    """Run (or resume, or read) one search. ``stop_after=g`` returns after generation ``g`` is
    saved (used to test resuming)."""
    from nasoa_lib.provenance import provenance

    key = spec.key
    final = store.get(SEARCH_KIND, key)
    if final is not None:
        return SearchResult(spec, _frame(spec, store, final["history"]))
    state = load_state(store, key)
    if state is None:
        state = SearchState(key, make_proposer(spec))
    else:
        log.info("search %s: resuming after generation %d of %d", spec.name, state.generation, spec.generations)
    bar = _bar(spec.evaluations, len(state.eval_keys), progress, f"{spec.name} ({spec.algorithm})")
    created: list[str] = []
    try:
        while state.generation < spec.generations:
            gen = state.generation
            codes = state.proposer.ask()
            expected = spec.population if gen == 0 else spec.offspring
            if len(codes) != expected:
                raise InvalidSearchSetup(
                    f"search {spec.name}: generation {gen} produced {len(codes)} new candidates, expected "
                    f"{expected}; the space has too few unevaluated neighbours of the population "
                    "(widen the space or lower population/offspring)",
                    hint="raise the space's limits or lower population/offspring in the search: section",
                )
            records, now = evaluate_codes(
                codes, profile=spec.profile, proxy=spec.proxy, step=spec.step, t_max_ms=spec.t_max_ms,
                store=store, backend=backend, num_classes=num_classes, seed=spec.seed,
                context={"first_search": spec.name, "first_generation": gen},
                on_result=lambda r: bar.update(1),
            )
            bar.update(len(codes) - len(now))
            created.extend(now)
            state.proposer.tell(codes, records)
            state.history.append({
                "generation": gen,
                "codes": list(codes),
                "eval_keys": [eval_key(c, spec.proxy, spec.step, spec.t_max_ms, spec.profile) for c in codes],
            })
            save_state(store, state)
            log.info("search %s: generation %d done (%d evaluations)", spec.name, gen, len(state.eval_keys))
            if stop_after is not None and state.generation >= stop_after and state.generation < spec.generations:
                return SearchResult(spec, _frame(spec, store, state.history), tuple(created), finished=False)
    finally:
        bar.close()
    df = _frame(spec, store, state.history)
    front = pareto_front(df[df["feasible"]]) if not df.empty else df
    store.put(SEARCH_KIND, key, {
        "spec": spec.to_dict(),
        "history": state.history,
        "evaluations": len(df),
        "front": front["code"].tolist() if not front.empty else [],
    }, provenance=provenance(spec.profile, spec.seed, "cpu"))
    return SearchResult(spec, df, tuple(created))


def _bar(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False)
