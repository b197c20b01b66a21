"""Uniform random sampling of blocks, macros and architectures (NASOA section 3.1 / 3.3 initial population).

"Uniform" is exact: every canonical code of the (sub-)space has the same probability. Each choice is
made with weights equal to the number of codes it leaves reachable (the counts of ``counting``), with
big-integer arithmetic, since the macro space has more codes than a float can weigh exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nasoa_lib.errors import InvalidCodeSpace
from nasoa_lib.space.codes import MACRO_SPACE, NUM_STAGES, ArchCode, BlockCode, MacroCode, MacroSpace, Node
from nasoa_lib.space.counting import (
    BLOCK_SPACE,
    BlockSpace,
    count_blocks_with_nodes,
    count_compositions,
    count_macros_with_blocks,
    count_multiplier_sequences,
    skip_sets,
)
from nasoa_lib.space.ops import LAST_NODE_RATIO


def _randbelow(rng: np.random.Generator, n: int) -> int:
    """A uniform integer in ``0..n-1`` for any positive Python int ``n`` (rejection sampling)."""
    if n <= 0:
        raise InvalidCodeSpace(f"cannot sample below {n}",
                               hint="the space holds no architecture to draw: widen its limits")
    bits = max(n.bit_length(), 1)
    words = (bits + 31) // 32
    while True:
        value = 0
        for word in rng.integers(0, 2**32, size=words, dtype=np.uint64):
            value = (value << 32) | int(word)
        value >>= 32 * words - bits
        if value < n:
            return value


def _choose_weighted(rng: np.random.Generator, weights: list[int]) -> int:
    """Index ``i`` with probability ``weights[i] / sum(weights)``, exactly."""
    pick = _randbelow(rng, sum(weights))
    for i, w in enumerate(weights):
        if pick < w:
            return i
        pick -= w
    raise AssertionError("unreachable")


@lru_cache(maxsize=None)
def _skip_sets(num_nodes: int, max_skips: int):
    return skip_sets(num_nodes, max_skips)


def sample_block(rng: np.random.Generator, space: BlockSpace = BLOCK_SPACE) -> BlockCode:
    """A block drawn uniformly from ``space``."""
    sizes = list(range(1, space.max_nodes + 1))
    n = sizes[_choose_weighted(rng, [count_blocks_with_nodes(k, space) for k in sizes])]
    ops = [space.ops[_randbelow(rng, len(space.ops))] for _ in range(n)]
    ratios = [space.ratios[_randbelow(rng, len(space.ratios))] for _ in range(n - 1)] + [LAST_NODE_RATIO]
    options = _skip_sets(n, space.max_skips)
    skips = options[_randbelow(rng, len(options))]
    return BlockCode(tuple(Node(op, r) for op, r in zip(ops, ratios)), skips)


def _compositions_left(total: int, parts: int, max_part: int) -> int:
    if parts == 0:
        return 1 if total == 0 else 0
    return count_compositions(total, parts, max_part)


def _sequences_left(length: int, doublings_left: int, multipliers: tuple[int, ...]) -> int:
    if doublings_left < 0:
        return 0
    return count_multiplier_sequences(length, doublings_left, multipliers)


def sample_macro(rng: np.random.Generator, space: MacroSpace = MACRO_SPACE) -> MacroCode:
    """A macro code drawn uniformly from ``space``."""
    width = space.stem_widths[_randbelow(rng, len(space.stem_widths))]
    totals = list(range(NUM_STAGES, space.max_blocks + 1))
    total = totals[_choose_weighted(rng, [count_macros_with_blocks(t, space) for t in totals])]
    depths, left = [], total
    for stage in range(NUM_STAGES):
        later = NUM_STAGES - stage - 1
        options = list(range(1, min(space.max_stage_depth, left) + 1))
        weights = [_compositions_left(left - d, later, space.max_stage_depth) for d in options]
        depth = options[_choose_weighted(rng, weights)]
        depths.append(depth)
        left -= depth
    mults, budget = [], space.max_doublings
    for position in range(total):
        rest = total - position - 1
        weights = [_sequences_left(rest, budget - (m.bit_length() - 1), space.multipliers) for m in space.multipliers]
        m = space.multipliers[_choose_weighted(rng, weights)]
        mults.append(m)
        budget -= m.bit_length() - 1
    stages, start = [], 0
    for depth in depths:
        stages.append(tuple(mults[start : start + depth]))
        start += depth
    return MacroCode(width, tuple(stages))


def sample_arch(
    rng: np.random.Generator, block_space: BlockSpace = BLOCK_SPACE, macro_space: MacroSpace = MACRO_SPACE
) -> ArchCode:
    """An architecture drawn uniformly from the product of a block and a macro (sub-)space."""
    return ArchCode(sample_block(rng, block_space), sample_macro(rng, macro_space))
