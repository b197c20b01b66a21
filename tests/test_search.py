"""The offline NAS (NASOA section 3.1, Eq. 1): operators, exactly-N generations, duplicate
elimination, a tiny real search on real data, resuming after kill -9, the random baseline, errors."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
from pymoo.core.population import Population

from nasoa_lib import search
from nasoa_lib.builder import complexity
from nasoa_lib.errors import InfeasibleConstraintError, SearchStateCorruptedError
from nasoa_lib.paths import PROJECT_ROOT
from nasoa_lib.search.run import STATE_FILE, SearchSpec
from nasoa_lib.space import MacroSpace, parse
from nasoa_lib.store import ArtifactStore

SKELETON = "16_1-2-2-1"


def _ctx(tmp_path, **overrides) -> search.SearchContext:
    store = ArtifactStore(tmp_path / "store")
    ctx = search.SearchContext.create("smoke", store=store)
    if overrides:
        ctx = replace(ctx, config=ctx.config.with_overrides(**overrides))
    return ctx


def _block_space() -> search.CodeSpace:
    from nasoa_lib.space import parse_macro

    return search.CodeSpace("block", skeleton=parse_macro(SKELETON))


def _macro_space() -> search.CodeSpace:
    return search.CodeSpace("macro", macro_space=MacroSpace(stem_widths=(16, 32), max_stage_depth=3, max_blocks=8,
                                                            max_doublings=3), blocks=("011-", "10001-"))


# ------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize("space", [_block_space(), _macro_space()], ids=["block", "macro"])
def test_mutation_gives_valid_distinct_children(space):
    rng = np.random.default_rng(0)
    mutation = search.CodeMutation(space)
    parents = search.sample_distinct(space, 20, rng, set())
    X = np.array(parents, dtype=object).reshape(-1, 1)
    children = mutation._do(None, X, random_state=rng)
    for parent, child in zip(parents, children[:, 0]):
        code = parse(child)  # valid
        assert str(code) == child and child != parent
        if space.level == "block":
            assert str(code.macro) == SKELETON  # block mutations keep the skeleton
        else:
            assert str(code.block) in space.blocks and space.macro_space.contains(code.macro)


def test_duplicate_elimination_within_against_population_and_seen():
    dup = search.CodeDuplicates(seen=["020-_16_1-2-2-1"])
    off = Population.new("X", np.array([["011-_16_1-2-2-1"], ["011-_16_1-2-2-1"], ["020-_16_1-2-2-1"],
                                        ["1-_16_1-2-2-1"]], dtype=object))
    pop = Population.new("X", np.array([["1-_16_1-2-2-1"]], dtype=object))
    kept = [str(x[0]) for x in dup.do(off, pop).get("X")]
    assert kept == ["011-_16_1-2-2-1"]


def test_nsga2_asks_exactly_n_new_codes_per_generation():
    """Real pymoo NSGA-II with our operators; objectives from the analytic cost model so that the
    test needs no training: every generation after the first has exactly N never-seen codes."""
    from nasoa_lib.search.evaluate import StepSpec

    spec = SearchSpec("t", "nsga2", _macro_space(), population=6, generations=6, offspring=3, t_max_ms=40.0,
                      proxy=search.SearchConfig.from_profile("smoke").proxy, step=StepSpec(8, 1, 1, 1, 32),
                      profile="smoke")
    proposer = search.NSGA2Proposer(spec)
    seen: set[str] = set()
    for gen in range(spec.generations):
        codes = proposer.ask()
        assert len(codes) == (6 if gen == 0 else 3)
        assert len(set(codes)) == len(codes) and not set(codes) & seen
        seen.update(codes)
        records = []
        for c in codes:
            cx = complexity(c, 100, 32)
            records.append({"proxy_top1": float(np.log10(cx.params)) / 10, "step_ms": cx.macs / 1e5})
        proposer.tell(codes, records)
        pickle.loads(pickle.dumps(proposer))  # the state the search persists must pickle
    assert len(proposer.front()) >= 1


# ------------------------------------------------------------------------------- real searches


@pytest.fixture(scope="module")
def fresh_block_search(tmp_path_factory):
    """One real tiny block search (smoke sizes: 2 generations, 200 source images) run start to end."""
    ctx = _ctx(tmp_path_factory.mktemp("fresh"))
    with ctx.backend("serial") as backend:
        result = search.block_search(ctx, backend, progress=False)
    return ctx, result


def test_tiny_block_search_stores_every_evaluation_once(fresh_block_search):
    ctx, result = fresh_block_search
    cfg = ctx.config
    assert len(result.evaluations) == cfg.evaluations("block") == ctx.store.count(search.EVAL_KIND)
    sizes = result.evaluations.groupby("generation").size().tolist()
    assert sizes == [cfg.block_population] + [cfg.workers] * (cfg.block_generations - 1)
    assert result.evaluations["code"].is_unique
    assert set(result.evaluated_now) == set(ctx.store.keys(search.EVAL_KIND))
    row = result.evaluations.iloc[0]
    for field in ("code", "proxy_top1", "step_ms", "flops", "params", "wall_seconds", "generation"):
        assert row[field] is not None
    assert ctx.store.count("pretrained") == 0  # proxy weights are not kept
    with ctx.backend("serial") as backend:
        again = search.block_search(ctx, backend, progress=False)  # finished: read, nothing evaluated
    assert again.evaluated_now == () and ctx.store.count(search.EVAL_KIND) == len(result.evaluations)


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from nasoa_lib import search
    from nasoa_lib.search import run as run_mod
    from nasoa_lib.store import ArtifactStore

    mode, root = sys.argv[1], sys.argv[2]
    ctx = search.SearchContext.create("smoke", store=ArtifactStore(root))
    if mode == "between":  # die right after generation 0's state is written
        original = run_mod.save_state
        def save_then_die(store, state):
            original(store, state)
            os.kill(os.getpid(), signal.SIGKILL)
        run_mod.save_state = save_then_die
    else:  # die in the middle of generation 1, after its first evaluation is stored
        original_put = ArtifactStore.put
        def put_then_die(self, kind, key, record, **kw):
            out = original_put(self, kind, key, record, **kw)
            if kind == search.EVAL_KIND and self.count(kind) == ctx.config.block_population + 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        ArtifactStore.put = put_then_die
    with ctx.backend("serial") as backend:
        search.block_search(ctx, backend, progress=False)
""")


@pytest.mark.parametrize("mode", ["between", "middle"])
def test_kill9_then_resume_loses_and_repeats_nothing(tmp_path, mode, fresh_block_search):
    killed = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, mode, str(tmp_path / "killed")],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = ArtifactStore(tmp_path / "killed")
    before = set(store.keys(search.EVAL_KIND))
    assert before and store.count(search.SEARCH_KIND) == 0  # died before finishing

    ctx = search.SearchContext.create("smoke", store=store)
    with ctx.backend("serial") as backend:
        resumed = search.block_search(ctx, backend, progress=False)
    after = store.keys(search.EVAL_KIND)
    assert len(after) == len(set(after)) == ctx.config.evaluations("block")
    assert not before & set(resumed.evaluated_now), "an evaluation was repeated after the resume"
    assert before | set(resumed.evaluated_now) == set(after), "an evaluation was lost"
    assert set(resumed.evaluations["eval_key"]) == set(after)

    fresh_ctx, full = fresh_block_search  # a fresh full run of the same search, never interrupted
    assert fresh_ctx.store.count(search.EVAL_KIND) == store.count(search.EVAL_KIND) == len(full.evaluations)
    assert full.evaluations.groupby("generation").size().tolist() == \
        resumed.evaluations.groupby("generation").size().tolist()


def test_random_search_uses_the_macro_budget(tmp_path):
    ctx = _ctx(tmp_path)
    blocks = ["011-", "10001-"]
    with ctx.backend("serial") as backend:
        nsga = search.macro_search(ctx, blocks, backend, progress=False)
        rand = search.random_search(ctx, blocks, backend, progress=False)
    assert len(nsga.evaluations) == len(rand.evaluations) == ctx.config.evaluations("macro")
    assert rand.evaluations["code"].is_unique
    assert {c.split("_")[0] for c in rand.evaluations["code"]} <= set(blocks)
    hv = search.hypervolume_curve(rand.evaluations, ctx.config.t_max_ms)
    assert len(hv) == len(rand.evaluations) and (np.diff(hv["hypervolume"]) >= -1e-12).all()


# ----------------------------------------------------------------------------------- bad input


def test_unreachable_t_max_is_a_clear_error(tmp_path):
    ctx = _ctx(tmp_path, t_max_ms=0.001)
    with ctx.backend("serial") as backend, pytest.raises(InfeasibleConstraintError, match="unreachable"):
        search.block_search(ctx, backend, progress=False)
    assert ctx.store.count(search.EVAL_KIND) == 0


def test_infeasible_candidates_are_measured_but_not_trained(tmp_path):
    ctx = _ctx(tmp_path)
    with ctx.backend("serial") as backend:
        records, created = search.evaluate_codes(
            ["011-_16_1-2-2-1"], profile="smoke", proxy=ctx.config.proxy, step=ctx.step, t_max_ms=0.001,
            store=ctx.store, backend=backend, num_classes=ctx.num_classes)
    (r,) = records
    assert not r["feasible"] and r["proxy_top1"] is None and r["step_samples"] == 1  # one probe step
    assert r["step_ms"] > 0.001 and created == ctx.store.keys(search.EVAL_KIND)


def test_corrupted_state_is_a_clear_error(tmp_path):
    ctx = _ctx(tmp_path)
    with ctx.backend("serial") as backend:
        search.block_search(ctx, backend, progress=False, stop_after=1)
        path = ctx.store.artifact_path(search.STATE_KIND, _state_key(ctx.store), STATE_FILE)
        path.write_bytes(b"not a pickle")
        with pytest.raises(SearchStateCorruptedError, match="cannot be read"):
            search.block_search(ctx, backend, progress=False)


def test_state_listing_a_missing_evaluation_is_refused(tmp_path):
    ctx = _ctx(tmp_path)
    with ctx.backend("serial") as backend:
        search.block_search(ctx, backend, progress=False, stop_after=1)
        victim = ctx.store.keys(search.EVAL_KIND)[0]
        ctx.store.delete(search.EVAL_KIND, victim)
        with pytest.raises(SearchStateCorruptedError, match="missing from the store"):
            search.block_search(ctx, backend, progress=False)


def _state_key(store: ArtifactStore) -> str:
    folders = list((store.artifacts_root / search.STATE_KIND).iterdir())
    assert len(folders) == 1
    return folders[0].name


def test_objectives_follow_eq1():
    F, G = search.objectives([{"proxy_top1": 0.3, "step_ms": 20.0}, {"proxy_top1": None, "step_ms": 90.0}], 50.0)
    assert F.tolist() == [[-0.3, 20.0], [-0.0, 90.0]] and G.tolist() == [[-30.0], [40.0]]

