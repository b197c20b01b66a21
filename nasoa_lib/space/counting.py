"""How many blocks and macro architectures our encoding has, by formula (NASOA section 3.1).

The paper reports 5.4e6 unique blocks and 1.5e7 unique macro architectures without the ranges
behind them. We count the canonical codes of *our* encoding exactly (every canonical code is a
distinct string and builds), and :func:`count_table` sets the numbers side by side with the reasons
they differ. Tests check the formulas against brute-force enumeration of strings on small sub-spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, product
from math import comb

from nasoa_lib.errors import InvalidCodeSpace
from nasoa_lib.paper import PAPER_BLOCKS, PAPER_MACROS
from nasoa_lib.space.codes import (
    MACRO_SPACE,
    MAX_NODES,
    MAX_SKIPS,
    NUM_STAGES,
    MacroSpace,
    Skip,
)
from nasoa_lib.space.ops import OPERATIONS, RATIO_DIGITS


@dataclass(frozen=True)
class BlockSpace:
    """A (sub-)space of blocks: node counts, operations and ratio digits allowed, skip budget."""

    max_nodes: int = MAX_NODES
    ops: tuple[int, ...] = tuple(op.index for op in OPERATIONS)
    ratios: tuple[int, ...] = RATIO_DIGITS
    max_skips: int = MAX_SKIPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(sorted(set(self.ops))))
        object.__setattr__(self, "ratios", tuple(sorted(set(self.ratios))))
        if not 1 <= self.max_nodes <= MAX_NODES or not 0 <= self.max_skips <= MAX_SKIPS:
            raise InvalidCodeSpace(f"max_nodes must be 1..{MAX_NODES} and max_skips 0..{MAX_SKIPS}",
                                   hint=f"e.g. BlockSpace(max_nodes={MAX_NODES}, max_skips={MAX_SKIPS}) (the whole space)")
        if not self.ops or not set(self.ops) <= {op.index for op in OPERATIONS}:
            raise InvalidCodeSpace(f"ops must be a non-empty subset of 0..{len(OPERATIONS) - 1}",
                                   hint="operation indices are listed in nasoa_lib.space.OPERATIONS")
        if not self.ratios or not set(self.ratios) <= set(RATIO_DIGITS):
            raise InvalidCodeSpace(f"ratios must be a non-empty subset of {RATIO_DIGITS}",
                                   hint=f"pick ratio digits among {RATIO_DIGITS}")

    def contains(self, block) -> bool:
        nodes = block.nodes
        return (
            len(nodes) <= self.max_nodes
            and len(block.skips) <= self.max_skips
            and all(n.op in self.ops for n in nodes)
            and all(n.ratio in self.ratios for n in nodes[:-1])
        )


BLOCK_SPACE = BlockSpace()


def skip_slots(num_nodes: int) -> tuple[tuple[int, int, tuple[str, ...]], ...]:
    """Every (source, target) pair a searched skip may use and the kinds it may have.

    Pairs ``0 <= source < target <= n`` except the fixed residual ``(0, n)``; into the last node only
    adds (a concat there would widen the block's output).
    """
    return tuple(
        (src, dst, ("a",) if dst == num_nodes else ("a", "c"))
        for dst in range(1, num_nodes + 1)
        for src in range(dst)
        if not (src == 0 and dst == num_nodes)
    )


def skip_sets(num_nodes: int, max_skips: int = MAX_SKIPS) -> list[tuple[Skip, ...]]:
    """All canonical skip tuples of a block with ``num_nodes`` nodes (used for uniform sampling)."""
    slots = skip_slots(num_nodes)
    result: list[tuple[Skip, ...]] = []
    for k in range(min(max_skips, len(slots)) + 1):
        for chosen in combinations(slots, k):
            for kinds in product(*(slot[2] for slot in chosen)):
                skips = [Skip(kind, src, dst) for (src, dst, _), kind in zip(chosen, kinds)]
                result.append(tuple(sorted(skips, key=lambda s: s.sort_key)))
    return result


def count_skip_sets(num_nodes: int, max_skips: int = MAX_SKIPS) -> int:
    """Coefficients up to ``x**max_skips`` of prod over slots of (1 + kinds * x)."""
    poly = [1]
    for _, _, kinds in skip_slots(num_nodes):
        nxt = poly + [0]
        for d, c in enumerate(poly):
            nxt[d + 1] += c * len(kinds)
        poly = nxt
    return sum(poly[: max_skips + 1])


def count_blocks_with_nodes(num_nodes: int, space: BlockSpace = BLOCK_SPACE) -> int:
    """Blocks with exactly ``num_nodes`` nodes: ops^n x ratios^(n-1) x skip sets."""
    return (
        len(space.ops) ** num_nodes
        * len(space.ratios) ** (num_nodes - 1)
        * count_skip_sets(num_nodes, space.max_skips)
    )


def count_blocks(space: BlockSpace = BLOCK_SPACE) -> int:
    """Unique canonical blocks of ``space`` (the whole block level by default)."""
    return sum(count_blocks_with_nodes(n, space) for n in range(1, space.max_nodes + 1))


@lru_cache(maxsize=None)
def count_compositions(total: int, parts: int, max_part: int) -> int:
    """Ways to write ``total`` as ``parts`` ordered parts each in 1..max_part (inclusion-exclusion)."""
    return sum(
        (-1) ** j * comb(parts, j) * comb(total - j * max_part - 1, parts - 1)
        for j in range(parts + 1)
        if total - j * max_part - 1 >= parts - 1
    )


@lru_cache(maxsize=None)
def _growth_poly(length: int, multipliers: tuple[int, ...]) -> tuple[int, ...]:
    """Coefficients of (sum over multipliers of x**log2(m)) ** length: sequences by total doublings."""
    logs = [m.bit_length() - 1 for m in multipliers]
    poly = [1]
    for _ in range(length):
        nxt = [0] * (len(poly) + max(logs))
        for d, c in enumerate(poly):
            for lg in logs:
                nxt[d + lg] += c
        poly = nxt
    return tuple(poly)


def count_multiplier_sequences(length: int, max_doublings: int, multipliers: tuple[int, ...]) -> int:
    """Sequences of ``length`` block multipliers whose total growth is at most 2**max_doublings."""
    return sum(_growth_poly(length, tuple(multipliers))[: max_doublings + 1])


def count_macros_with_blocks(total_blocks: int, space: MacroSpace = MACRO_SPACE) -> int:
    """Macro codes with exactly ``total_blocks`` blocks, for one stem width."""
    return count_compositions(total_blocks, NUM_STAGES, space.max_stage_depth) * count_multiplier_sequences(
        total_blocks, space.max_doublings, space.multipliers
    )


def count_macros(space: MacroSpace = MACRO_SPACE) -> int:
    """Unique macro codes: stem widths x sum over total depth of (stage splits x multiplier sequences)."""
    return len(space.stem_widths) * sum(
        count_macros_with_blocks(total, space) for total in range(NUM_STAGES, space.max_blocks + 1)
    )


def count_table(block_space: BlockSpace = BLOCK_SPACE, macro_space: MacroSpace = MACRO_SPACE) -> list[dict]:
    """Our counts beside the paper's (section 3.1), with the reason for each difference."""
    blocks, macros = count_blocks(block_space), count_macros(macro_space)
    return [
        {
            "level": "block",
            "ours": blocks,
            "paper": PAPER_BLOCKS,
            "ours / paper": blocks / PAPER_BLOCKS,
            "why they differ": (
                "we count canonical codes only: the last node's ratio is fixed at x1 (released notation), "
                "at most one skip per node pair, no concat into the last node, no written copy of the fixed "
                "residual, and skip order is canonical (adds commute; concat order only permutes channels). "
                "The paper does not give its ranges; counting every node's ratio and ordered skips would "
                "give more."
            ),
        },
        {
            "level": "macro",
            "ours": macros,
            "paper": PAPER_MACROS,
            "ours / paper": macros / PAPER_MACROS,
            "why they differ": (
                f"our ranges: stem widths {macro_space.stem_widths}, 4 stages of 1..{macro_space.max_stage_depth} "
                f"blocks, at most {macro_space.max_blocks} blocks, multipliers {macro_space.multipliers} with "
                f"growth <= x{2 ** macro_space.max_doublings}, chosen wide enough for all 12 released codes "
                "(up to 46 blocks, 27 in one stage). The paper's 1.5e7 implies much narrower depth ranges "
                "per search (it searched macros around given depths), which it does not state."
            ),
        },
    ]
