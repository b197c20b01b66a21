"""Mutation operators of the NAS (NASOA section 3.3: "a group of mutation operations for our block/macro
search space" that NSGA-II uses to change the network structure).

Each operator lists *all* the codes it can reach from a parent (its neighbours). :func:`mutate`
picks an operator uniformly among those with at least one neighbour inside the given (sub-)spaces,
then a neighbour uniformly, so the child is always a valid code and always differs from its parent.

Block operators: ``op`` (change a node's operation), ``ratio`` (a node's channel ratio),
``skip_kind`` (add <-> concat), ``skip_move`` (re-route a skip to another free node pair),
``skip_add``, ``skip_remove``, ``node_add``, ``node_remove`` (skips are renumbered; skips touching a
removed node are dropped). Macro operators: ``depth`` (add a x1 block to a stage, or remove a block),
``width`` (change one block's channel multiplier), ``stem`` (stem width), ``downsample`` (move a
stage boundary by one block), ``doubling`` (move a channel-raising block one position).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from nasoa_lib.errors import InvalidArchitectureCode, InvalidCodeSpace
from nasoa_lib.space.codes import MACRO_SPACE, ArchCode, BlockCode, MacroCode, MacroSpace, Node, Skip, parse
from nasoa_lib.space.counting import BLOCK_SPACE, BlockSpace, skip_slots
from nasoa_lib.space.ops import LAST_NODE_RATIO

LEVELS = ("block", "macro", "both")


def _block(nodes: Iterable[Node], skips: Iterable[Skip]) -> BlockCode | None:
    nodes = list(nodes)
    if nodes:
        nodes[-1] = Node(nodes[-1].op, LAST_NODE_RATIO)
    try:
        return BlockCode(tuple(nodes), tuple(sorted(skips, key=lambda s: s.sort_key)))
    except InvalidArchitectureCode:
        return None


def _op_changes(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for i, node in enumerate(b.nodes):
        for op in space.ops:
            if op != node.op:
                yield _block(b.nodes[:i] + (Node(op, node.ratio),) + b.nodes[i + 1 :], b.skips)


def _ratio_changes(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for i, node in enumerate(b.nodes[:-1]):
        for ratio in space.ratios:
            if ratio != node.ratio:
                yield _block(b.nodes[:i] + (Node(node.op, ratio),) + b.nodes[i + 1 :], b.skips)


def _skip_kind_flips(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for i, s in enumerate(b.skips):
        flipped = Skip("c" if s.kind == "a" else "a", s.source, s.target)
        yield _block(b.nodes, b.skips[:i] + (flipped,) + b.skips[i + 1 :])


def _free_slots(b: BlockCode) -> list[tuple[int, int, tuple[str, ...]]]:
    used = {(s.source, s.target) for s in b.skips}
    return [slot for slot in skip_slots(b.num_nodes) if slot[:2] not in used]


def _skip_moves(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for i, s in enumerate(b.skips):
        for src, dst, kinds in _free_slots(b):
            kind = s.kind if s.kind in kinds else "a"
            yield _block(b.nodes, b.skips[:i] + (Skip(kind, src, dst),) + b.skips[i + 1 :])


def _skip_adds(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for src, dst, kinds in _free_slots(b):
        for kind in kinds:
            yield _block(b.nodes, b.skips + (Skip(kind, src, dst),))


def _skip_removes(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    for i in range(len(b.skips)):
        yield _block(b.nodes, b.skips[:i] + b.skips[i + 1 :])


def _node_adds(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    n = b.num_nodes
    for position in range(1, n + 2):  # the new node's 1-based index
        shift = lambda k: k if k < position else k + 1  # noqa: E731
        skips = [Skip(s.kind, shift(s.source), shift(s.target)) for s in b.skips]
        for op in space.ops:
            for ratio in space.ratios:
                nodes = list(b.nodes)
                if position == n + 1:  # appended: the old last node is no longer last and takes the ratio
                    nodes[-1] = Node(nodes[-1].op, ratio)
                    nodes.append(Node(op, LAST_NODE_RATIO))
                else:
                    nodes.insert(position - 1, Node(op, ratio))
                yield _block(nodes, skips)


def _node_removes(b: BlockCode, space: BlockSpace) -> Iterable[BlockCode | None]:
    n = b.num_nodes
    if n == 1:
        return
    for position in range(1, n + 1):
        nodes = b.nodes[: position - 1] + b.nodes[position:]
        last = n - 1
        skips = []
        for s in b.skips:
            if position in (s.source, s.target):
                continue
            src = s.source - (s.source > position)
            dst = s.target - (s.target > position)
            if (src, dst) == (0, last) or (s.kind == "c" and dst == last):
                continue
            skips.append(Skip(s.kind, src, dst))
        yield _block(nodes, skips)


BLOCK_OPERATORS: dict[str, Callable[[BlockCode, BlockSpace], Iterable[BlockCode | None]]] = {
    "op": _op_changes,
    "ratio": _ratio_changes,
    "skip_kind": _skip_kind_flips,
    "skip_move": _skip_moves,
    "skip_add": _skip_adds,
    "skip_remove": _skip_removes,
    "node_add": _node_adds,
    "node_remove": _node_removes,
}


def _macro(width: int, stages: Iterable[Iterable[int]]) -> MacroCode | None:
    try:
        return MacroCode(width, tuple(tuple(s) for s in stages))
    except InvalidArchitectureCode:
        return None


def _flat(m: MacroCode) -> tuple[list[int], list[int]]:
    return [x for stage in m.stages for x in stage], list(m.depths)


def _split(mults: list[int], depths: list[int]) -> list[list[int]]:
    out, start = [], 0
    for d in depths:
        out.append(mults[start : start + d])
        start += d
    return out


def _depth_changes(m: MacroCode, space: MacroSpace) -> Iterable[MacroCode | None]:
    for s, stage in enumerate(m.stages):
        stages = [list(x) for x in m.stages]
        stages[s] = list(stage) + [1]
        yield _macro(m.stem_width, stages)
        if len(stage) > 1:
            for b in range(len(stage)):
                stages = [list(x) for x in m.stages]
                del stages[s][b]
                yield _macro(m.stem_width, stages)


def _width_changes(m: MacroCode, space: MacroSpace) -> Iterable[MacroCode | None]:
    for s, stage in enumerate(m.stages):
        for b, mult in enumerate(stage):
            for new in space.multipliers:
                if new != mult:
                    stages = [list(x) for x in m.stages]
                    stages[s][b] = new
                    yield _macro(m.stem_width, stages)


def _stem_changes(m: MacroCode, space: MacroSpace) -> Iterable[MacroCode | None]:
    for width in space.stem_widths:
        if width != m.stem_width:
            yield _macro(width, m.stages)


def _downsample_moves(m: MacroCode, space: MacroSpace) -> Iterable[MacroCode | None]:
    mults, depths = _flat(m)
    for boundary in range(len(depths) - 1):
        for delta in (-1, 1):
            new = list(depths)
            new[boundary] += delta
            new[boundary + 1] -= delta
            if min(new) >= 1:
                yield _macro(m.stem_width, _split(mults, new))


def _doubling_moves(m: MacroCode, space: MacroSpace) -> Iterable[MacroCode | None]:
    mults, depths = _flat(m)
    for i in range(len(mults) - 1):
        if mults[i] != mults[i + 1]:
            swapped = list(mults)
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            yield _macro(m.stem_width, _split(swapped, depths))


MACRO_OPERATORS: dict[str, Callable[[MacroCode, MacroSpace], Iterable[MacroCode | None]]] = {
    "depth": _depth_changes,
    "width": _width_changes,
    "stem": _stem_changes,
    "downsample": _downsample_moves,
    "doubling": _doubling_moves,
}


def block_neighbours(block: BlockCode, space: BlockSpace = BLOCK_SPACE) -> dict[str, list[BlockCode]]:
    """Per block operator, the distinct valid blocks of ``space`` it reaches from ``block``."""
    result = {}
    for name, operator in BLOCK_OPERATORS.items():
        found = {c for c in operator(block, space) if c is not None and c != block and space.contains(c)}
        result[name] = sorted(found, key=str)
    return result


def macro_neighbours(macro: MacroCode, space: MacroSpace = MACRO_SPACE) -> dict[str, list[MacroCode]]:
    """Per macro operator, the distinct valid macros of ``space`` it reaches from ``macro``."""
    result = {}
    for name, operator in MACRO_OPERATORS.items():
        found = {c for c in operator(macro, space) if c is not None and c != macro and space.contains(c)}
        result[name] = sorted(found, key=str)
    return result


def mutate(
    code: ArchCode | str,
    rng: np.random.Generator,
    level: str = "both",
    block_space: BlockSpace = BLOCK_SPACE,
    macro_space: MacroSpace = MACRO_SPACE,
) -> ArchCode:
    """A child of ``code``: one operator of ``level`` ("block", "macro" or "both": any operator of
    either level) applied once. Always valid, always different from the parent."""
    if level not in LEVELS:
        raise InvalidCodeSpace(f"level must be one of {LEVELS}, got {level!r}",
                               hint="use level='block', 'macro' or 'both'")
    code = parse(code) if isinstance(code, str) else code
    groups: list[list[ArchCode]] = []
    if level in ("block", "both"):
        for children in block_neighbours(code.block, block_space).values():
            if children:
                groups.append([ArchCode(b, code.macro) for b in children])
    if level in ("macro", "both"):
        for children in macro_neighbours(code.macro, macro_space).values():
            if children:
                groups.append([ArchCode(code.block, m) for m in children])
    if not groups:
        raise InvalidCodeSpace(f"no {level}-level mutation of {code} stays inside the given spaces",
                               hint="widen block_space / macro_space, or mutate at another level")
    group = groups[int(rng.integers(len(groups)))]
    return group[int(rng.integers(len(group)))]
