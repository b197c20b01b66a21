"""One timer, one schedule: the library times training steps only in ``measure.py`` and writes the
cosine learning-rate formula only in ``schedule.py`` (STYLE.md, "One obvious place").

The rules read the source (``ast``), so they hold for code no test runs:

- **Step timer**: a function outside ``measure.py`` that reads a ``time`` clock
  (``time.perf_counter()``, ``time.time()``, ``time.monotonic()``, ...) *inside* a ``for``/``while``
  loop, or that reads a clock and has a loop whose body calls ``.backward()`` (a clock around
  training steps). Benchmarks of steps call :func:`nasoa_lib.measure.measure_step_time` or
  :func:`nasoa_lib.measure.time_calls` instead. :data:`NOT_STEP_TIMERS` names every function the
  rule matches that times something else, and why.
- **Cosine schedule**: a ``cos(...)`` call (``math``, ``torch``, ``np``) whose argument mentions
  ``pi``, outside ``schedule.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "nasoa_lib"
CLOCKS = {"perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns", "process_time"}

NOT_STEP_TIMERS = {
    "finetune.finetune": "the training clock: time limit and train_deadline, and the run's train/eval seconds",
    "train.epoch_loop": "the one epoch loop: seconds of each epoch's batches for the run's log (pretraining, "
                        "feature histories, NSS super networks), wall-clock of the run, not a benchmark of steps",
    "store.ArtifactStore.lock": "the deadline for acquiring a file lock; times no computation",
    "online.stream.plan": "one whole predictor run per contender on tabular rows, to plan notebook 07; no network",
}


def _own_nodes(node: ast.AST):
    """Nodes of ``node``'s body, not descending into nested functions or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield child
        yield from _own_nodes(child)


def _functions(tree: ast.AST, prefix: str = ""):
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")


def _is_clock(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCKS
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "time")


def _is_backward(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward"


def _modules():
    for path in sorted(LIB.rglob("*.py")):
        module = ".".join(path.relative_to(LIB).with_suffix("").parts)
        yield module, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def is_step_timer(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The rule: ``fn`` reads a clock, and one of its loops reads a clock or calls ``.backward()``."""
    nodes = list(_own_nodes(fn))
    if not any(_is_clock(n) for n in nodes):
        return False
    for loop in (n for n in nodes if isinstance(n, (ast.For, ast.While))):
        body = [n for stmt in loop.body + loop.orelse for n in [stmt, *_own_nodes(stmt)]]
        if any(_is_clock(n) or _is_backward(n) for n in body):
            return True
    return False


def step_timers() -> dict[str, int]:
    """``module.function`` -> line of every function the step-timer rule matches (measure.py excluded)."""
    return {f"{module}.{name}": fn.lineno for module, tree in _modules() if module != "measure"
            for name, fn in _functions(tree) if is_step_timer(fn)}


def cosines_of_pi(tree: ast.AST) -> list[int]:
    """Lines of the ``cos(...)`` calls in ``tree`` whose argument mentions ``pi``."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        names = {n.attr if isinstance(n, ast.Attribute) else n.id
                 for arg in node.args for n in ast.walk(arg) if isinstance(n, (ast.Attribute, ast.Name))}
        if name == "cos" and "pi" in names:
            lines.append(node.lineno)
    return lines


def cosine_formulas() -> list[str]:
    """``module:line`` of every ``cos(...)`` call with ``pi`` in its argument, outside schedule.py."""
    return [f"{module}:{line}" for module, tree in _modules() if module != "schedule" for line in cosines_of_pi(tree)]


def test_no_step_timing_loop_outside_measure():
    unexpected = {name: line for name, line in step_timers().items() if name not in NOT_STEP_TIMERS}
    assert not unexpected, (
        f"clock reads in loops (or around .backward()) outside measure.py: {unexpected}; time steps with "
        "nasoa_lib.measure.measure_step_time / time_calls, or add the function to NOT_STEP_TIMERS with why"
    )


def test_allow_list_has_no_stale_entries():
    stale = set(NOT_STEP_TIMERS) - set(step_timers())
    assert not stale, f"NOT_STEP_TIMERS names functions the rule no longer matches: {sorted(stale)}"


def test_rule_catches_the_old_hand_made_loops():
    old = '''
def measure_throughput(model, x, y, opt, steps):
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    return steps / (time.perf_counter() - t0)

def clock_around(model, x, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        model(x).sum().backward()
    return time.perf_counter() - t0

def through_measure(model, steps):
    def step():
        model(x).sum().backward()
    return time_calls(step, device, warmup=1, steps=steps)
'''
    assert [name for name, fn in _functions(ast.parse(old)) if is_step_timer(fn)] == ["measure_throughput", "clock_around"]


def test_cosine_rule_catches_the_old_formulas():
    old = """
a = lr * 0.5 * (1.0 + math.cos(math.pi * min(step, iterations) / iterations))
b = 0.5 * (1.0 + torch.cos(torch.pi * progress))
c = np.cos(np.pi * t) + cos(pi * t) + math.cos(angle)
"""
    assert cosines_of_pi(ast.parse(old)) == [2, 3, 4, 4]


def test_no_cosine_formula_outside_schedule():
    assert cosine_formulas() == [], "write learning-rate schedules in nasoa_lib/schedule.py"
