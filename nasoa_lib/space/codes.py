"""Architecture codes of NASOA's joint block/macro space (section 3.1): values, grammar, validation.

A code is a short string that fully defines a network; it is the released ET-NAS notation
(``ETNAS_REFERENCE.md``) restricted to our space, so the 12 released codes read the same here::

    code   := block "_" width "_" macro
    block  := nodes "-" skips
    nodes  := (op ratio){0,2} op             1-3 nodes; the last node's ratio (x1) is left out
    skips  := (kind source target){0,3}      kind: "a" add | "c" concat; 0 = the block input
    width  := decimal integer                channels after the stem: 16, 32, 48 or 64
    macro  := stage "-" stage "-" stage "-" stage
    stage  := mult{1,32}                     mult: 1 | 2 | 4, the block's output/input channels

``011-_32_2-211-2-111122`` (ET-NAS-C): nodes conv3x3 to x0.5 then conv1x1 to x1, no searched skip;
stem width 32; stages of 1, 3, 1 and 6 blocks. ``23311-a02c12_64_211-2111-2111...`` (ET-NAS-L):
three nodes, an add from the block input into node 2 and a concat of node 1 into node 2.

Semantics (as the released builder): the first block of stages 2-4 down-samples by 2, with its
stride on the first node that is not a 1x1 conv (the last node if all are). The residual add from the
block input to the last node is always there and never written. An add whose ends differ in channels
or stride gets a 1x1 conv + BN projection; a concat gets one only when strides differ and widens its
target by the source's channels; a node's ReLU comes after the skips into it are merged.

One change to those semantics, so that down-sampling sees every pixel (issue 17): a block of 1x1
convolutions only (``1-``, ``131-``, ``10101-a13``) has no spatial node to carry its stride, and a
1x1 convolution at stride 2 (with its strided 1x1 projection shortcut) reads one pixel of every 2x2:
after three such blocks a 32x32 image is seen through a 6x6 corner. In those blocks the strided
convolutions (the last node and the strided projections) average-pool 2x2 first and convolve at
stride 1, the ResNet-D down-sampling of He et al. 2019 ("Bag of Tricks for Image Classification
with CNNs", section 4.1). Pooling has no parameters and keeps every output size, so parameter counts
and MACs are unchanged; blocks with a 3x3 node are built exactly as released, and none of the 12
released codes has an all-1x1 block. See :mod:`nasoa_lib.builder` (``plan_block``, ``downsampling_rule``).

Choices of ours, each so that one string means one network:

* at most one skip per (source, target) pair; the pair (0, last) is the fixed residual;
* no concat into the last node (it would widen the block's output beyond ``in x mult``; the
  released builder then fails at the next block);
* skips are written sorted by target, adds before concats, then by source. Adds into a node commute
  and so do concats (up to a channel permutation), so this order loses no network, except a concat
  followed by an add into the same node, which the released notation can write and we cannot;
* stem widths are multiples of 16, so every node width (>= width/4) is divisible by the 4 groups of
  ``conv3x3_g4``, and every code builds.

Macro ranges (``MACRO_SPACE``): stage depth 1..32, total blocks 4..48, total channel growth at most
x32 (five doublings; a x4 block counts as two). The 12 released codes need at most 27 blocks in a
stage, 46 in all and five doublings.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Iterator

from nasoa_lib.errors import InvalidArchitectureCode, InvalidCodeSpace
from nasoa_lib.space.ops import LAST_NODE_RATIO, OPERATIONS, RATIO_DIGITS, describe_operations, ratio_multiplier

MAX_NODES = 3
MAX_SKIPS = 3
SKIP_KINDS = ("a", "c")
NUM_STAGES = 4
STEM_WIDTHS: tuple[int, ...] = (16, 32, 48, 64)
MULTIPLIERS: tuple[int, ...] = (1, 2, 4)
MAX_STAGE_DEPTH = 32
MAX_BLOCKS = 48
MAX_DOUBLINGS = 5

_EXAMPLE = "011-_32_2-211-2-111122"
_KIND_NAMES = {"a": "add", "c": "concat"}


def is_int(value: Any) -> bool:
    """Whether ``value`` is a Python int and not a bool (``True`` is an ``int`` to ``isinstance``,
    but no count, index or width is ever written as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


_ASCII_DIGITS = frozenset("0123456789")


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits. ``str.isdigit`` is not enough: it accepts
    Arabic-Indic, fullwidth and superscript digits, which ``int`` reads as ASCII ones (or fails on),
    so one network would have several spellings."""
    return bool(text) and set(text) <= _ASCII_DIGITS


def _as_int(value: Any) -> int:
    """An integer field of a dict form: an int (numpy ints too, not bools) or a string of ASCII
    digits; anything else (floats, ``'١'``, ``None``) is a ``ValueError`` that from_dict reports."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a bool, not an integer")
    if isinstance(value, str):
        if not is_ascii_digits(value):
            raise ValueError(f"{value!r} is not written with ASCII digits")
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{value!r} is not an integer") from None


# --------------------------------------------------------------------------------------- block


@dataclass(frozen=True)
class Node:
    """One block node: operation index (``ops.OPERATIONS``) and ratio digit (``ops.RATIO_DIGITS``)."""

    op: int
    ratio: int

    def __post_init__(self) -> None:
        if not is_int(self.op) or not 0 <= self.op < len(OPERATIONS):
            raise InvalidArchitectureCode(
                f"operation {self.op!r} unknown; operations are 0..{len(OPERATIONS) - 1} ({describe_operations()})"
            )
        if not is_int(self.ratio) or self.ratio not in RATIO_DIGITS:
            raise InvalidArchitectureCode(
                f"ratio digit {self.ratio!r} unknown; ratio digits are 0..4 (x0.25, x0.5, x1, x2, x4)"
            )


@dataclass(frozen=True)
class Skip:
    """A searched skip: ``kind`` "a" (add) or "c" (concat) from node ``source`` into node ``target``."""

    kind: str
    source: int
    target: int

    def __str__(self) -> str:
        return f"{self.kind}{self.source}{self.target}"

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """Canonical order: by target, adds before concats, then by source."""
        return (self.target, SKIP_KINDS.index(self.kind), self.source)


@dataclass(frozen=True)
class BlockCode:
    """The one block structure every block of a network uses (NASOA section 3.1, block level)."""

    nodes: tuple[Node, ...]
    skips: tuple[Skip, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "skips", tuple(self.skips))
        n = len(self.nodes)
        if not 1 <= n <= MAX_NODES:
            raise InvalidArchitectureCode(
                f"block has {n} nodes; a block has 1..{MAX_NODES} nodes",
                hint="write NODES as op/ratio digit pairs with the last node's ratio left out, e.g. '011'",
            )
        for i, node in enumerate(self.nodes, start=1):
            if not isinstance(node, Node):
                raise InvalidArchitectureCode(f"block node {i}: {node!r} is not a Node")
            if i == n and node.ratio != LAST_NODE_RATIO:
                raise InvalidArchitectureCode(
                    f"block node {i} (the last): ratio digit {node.ratio}; the last node's ratio is always "
                    f"x1 (digit {LAST_NODE_RATIO})"
                )
        if len(self.skips) > MAX_SKIPS:
            raise InvalidArchitectureCode(
                f"block has {len(self.skips)} searched skips; at most {MAX_SKIPS} (the residual is not written)"
            )
        seen: set[tuple[int, int]] = set()
        for skip in self.skips:
            _check_skip(skip, n)
            if (skip.source, skip.target) in seen:
                raise InvalidArchitectureCode(
                    f"block skip {skip}: a second skip from node {skip.source} into node {skip.target}; "
                    "at most one skip per pair of nodes"
                )
            seen.add((skip.source, skip.target))
        canonical = tuple(sorted(self.skips, key=lambda s: s.sort_key))
        if canonical != self.skips:
            raise InvalidArchitectureCode(
                f"block skips '{''.join(map(str, self.skips))}' are not in canonical order; "
                f"write '{''.join(map(str, canonical))}' (by target, adds before concats, then by source)"
            )

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        digits = "".join(f"{node.op}{node.ratio}" for node in self.nodes)[:-1]
        return digits + "-" + "".join(map(str, self.skips))

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [[node.op, node.ratio] for node in self.nodes],
            "skips": [[s.kind, s.source, s.target] for s in self.skips],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BlockCode":
        try:
            nodes = tuple(Node(_as_int(op), _as_int(ratio)) for op, ratio in data["nodes"])
            skips = tuple(Skip(str(kind), _as_int(src), _as_int(dst)) for kind, src, dst in data.get("skips", ()))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidArchitectureCode(
                f"block dict {data!r} is malformed ({err})",
                hint="expected {'nodes': [[op, ratio], ...], 'skips': [[kind, source, target], ...]}",
            ) from err
        return cls(nodes, skips)


def _check_skip(skip: Skip, num_nodes: int) -> None:
    if not isinstance(skip, Skip):
        raise InvalidArchitectureCode(f"block skip {skip!r} is not a Skip")
    if skip.kind not in SKIP_KINDS:
        raise InvalidArchitectureCode(
            f"block skip {skip}: kind {skip.kind!r} unknown; kinds are 'a' (add) and 'c' (concat)"
        )
    if not (is_int(skip.source) and is_int(skip.target)) or not 0 <= skip.source < skip.target <= num_nodes:
        raise InvalidArchitectureCode(
            f"block skip {skip}: needs 0 <= source < target <= {num_nodes} (0 is the block input, "
            f"1..{num_nodes} the nodes)"
        )
    if skip.source == 0 and skip.target == num_nodes:
        raise InvalidArchitectureCode(
            f"block skip {skip}: the residual from the input to the last node is fixed and never written"
        )
    if skip.kind == "c" and skip.target == num_nodes:
        raise InvalidArchitectureCode(
            f"block skip {skip}: a concat into the last node would widen the block output; "
            "only adds may target the last node"
        )


def parse_block(text: str) -> BlockCode:
    """Parse ``NODES-SKIPS`` (e.g. ``"23311-a02c12"``) into a :class:`BlockCode`."""
    if not isinstance(text, str) or text.count("-") != 1:
        raise InvalidArchitectureCode(
            f"block {text!r} must be NODES-SKIPS with exactly one '-' (e.g. '011-' or '02031-a02')"
        )
    node_text, skip_text = text.split("-")
    if not is_ascii_digits(node_text) or len(node_text) % 2 == 0:
        raise InvalidArchitectureCode(
            f"block nodes {node_text!r} must be an odd number of digits (ASCII 0-9): op/ratio pairs, the last "
            "node's ratio left out (e.g. '011' = op 0 ratio 1, then op 1)"
        )
    padded = node_text + str(LAST_NODE_RATIO)
    if len(padded) // 2 > MAX_NODES:
        raise InvalidArchitectureCode(
            f"block nodes {node_text!r} describe {len(padded) // 2} nodes; a block has 1..{MAX_NODES}"
        )
    nodes = []
    for i in range(len(padded) // 2):
        try:
            nodes.append(Node(int(padded[2 * i]), int(padded[2 * i + 1])))
        except InvalidArchitectureCode as err:
            raise InvalidArchitectureCode(f"block node {i + 1}: {err.args[0]}", err.hint) from None
    if len(skip_text) % 3:
        raise InvalidArchitectureCode(
            f"block skips {skip_text!r} must be 3-character items KIND SOURCE TARGET (e.g. 'a02c12')"
        )
    skips = []
    for j in range(0, len(skip_text), 3):
        item = skip_text[j : j + 3]
        if item[0] not in SKIP_KINDS:
            raise InvalidArchitectureCode(
                f"block skip {item!r}: kind {item[0]!r} unknown; kinds are 'a' (add) and 'c' (concat)"
            )
        if not is_ascii_digits(item[1:]):
            raise InvalidArchitectureCode(f"block skip {item!r}: source and target must be node digits 0-9")
        skips.append(Skip(item[0], int(item[1]), int(item[2])))
    return BlockCode(tuple(nodes), tuple(skips))


# --------------------------------------------------------------------------------------- macro


@dataclass(frozen=True)
class MacroSpace:
    """Ranges of the macro level (NASOA section 3.1): which stem widths, depths and growth are allowed.

    ``MACRO_SPACE`` is the whole space (every valid code); smaller instances are sub-spaces for
    sampling, counting and tests (e.g. 16-channel stems and at most 8 blocks).
    """

    stem_widths: tuple[int, ...] = STEM_WIDTHS
    max_stage_depth: int = MAX_STAGE_DEPTH
    max_blocks: int = MAX_BLOCKS
    max_doublings: int = MAX_DOUBLINGS
    multipliers: tuple[int, ...] = MULTIPLIERS

    def __post_init__(self) -> None:
        object.__setattr__(self, "stem_widths", tuple(sorted(set(self.stem_widths))))
        object.__setattr__(self, "multipliers", tuple(sorted(set(self.multipliers))))
        if not self.stem_widths or any(w <= 0 or w % 16 for w in self.stem_widths):
            raise InvalidCodeSpace(f"stem widths must be positive multiples of 16, got {self.stem_widths}",
                                   hint="e.g. stem_widths=(16, 32, 48, 64)")
        if not self.multipliers or not set(self.multipliers) <= set(MULTIPLIERS):
            raise InvalidCodeSpace(f"multipliers must be a non-empty subset of {MULTIPLIERS}, got {self.multipliers}",
                                   hint=f"pick channel multipliers among {MULTIPLIERS}")
        if self.max_stage_depth < 1 or self.max_blocks < NUM_STAGES or self.max_doublings < 0:
            raise InvalidCodeSpace("a macro space needs max_stage_depth >= 1, max_blocks >= 4, max_doublings >= 0",
                                   hint="raise the macro space's limits (MACRO_SPACE holds the whole space)")

    def violation(self, macro: "MacroCode") -> str | None:
        """Why ``macro`` is outside this space (``None`` when it is inside)."""
        if macro.stem_width not in self.stem_widths:
            return f"stem width {macro.stem_width} not allowed; widths are {', '.join(map(str, self.stem_widths))}"
        for s, stage in enumerate(macro.stages, start=1):
            if not 1 <= len(stage) <= self.max_stage_depth:
                return f"stage {s} depth {len(stage)}; depths must be 1..{self.max_stage_depth}"
            for b, mult in enumerate(stage, start=1):
                if mult not in self.multipliers:
                    return (
                        f"stage {s} block {b}: channel multiplier {mult!r} not allowed; "
                        f"multipliers are {', '.join(map(str, self.multipliers))}"
                    )
        if macro.num_blocks > self.max_blocks:
            return f"{macro.num_blocks} blocks in all; at most {self.max_blocks}"
        if macro.doublings > self.max_doublings:
            return (
                f"channels grow x{2 ** macro.doublings} over the network; at most x{2 ** self.max_doublings} "
                f"({self.max_doublings} doublings, a x4 block counts as two)"
            )
        return None

    def contains(self, macro: "MacroCode") -> bool:
        return self.violation(macro) is None


@dataclass(frozen=True)
class MacroCode:
    """Stem width and, per stage, each block's channel multiplier; stages 2-4 start by down-sampling."""

    stem_width: int
    stages: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        try:
            stages = tuple(tuple(stage) for stage in self.stages)
        except TypeError as err:
            raise InvalidArchitectureCode(f"macro stages {self.stages!r} must be 4 sequences of multipliers") from err
        object.__setattr__(self, "stages", stages)
        if not is_int(self.stem_width):
            raise InvalidArchitectureCode(f"stem width {self.stem_width!r} must be an integer")
        if len(stages) != NUM_STAGES:
            raise InvalidArchitectureCode(
                f"macro has {len(stages)} stages; a network has exactly {NUM_STAGES} "
                "(write 3 '-', each in front of a down-sampling block)"
            )
        for s, stage in enumerate(stages, start=1):
            for b, mult in enumerate(stage, start=1):
                if not is_int(mult):
                    raise InvalidArchitectureCode(f"stage {s} block {b}: channel multiplier {mult!r} must be 1, 2 or 4")
        problem = MACRO_SPACE.violation(self)
        if problem is not None:
            raise InvalidArchitectureCode(problem)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(stage) for stage in self.stages)

    @property
    def num_blocks(self) -> int:
        return sum(self.depths)

    @property
    def doublings(self) -> int:
        """log2 of the total channel growth (a x4 block counts as two doublings)."""
        return sum(int(math.log2(m)) for stage in self.stages for m in stage)

    @property
    def out_channels(self) -> int:
        """Channels of the last block (what global pooling and the head see)."""
        return self.stem_width * 2**self.doublings

    def blocks(self) -> Iterator[tuple[int, int, int, int]]:
        """``(stage_index 0..3, in_channels, out_channels, stride)`` for each block in order."""
        channels = self.stem_width
        for s, stage in enumerate(self.stages):
            for b, mult in enumerate(stage):
                stride = 2 if (s > 0 and b == 0) else 1
                yield s, channels, channels * mult, stride
                channels *= mult

    def macro_string(self) -> str:
        """The MACRO part alone (``"2-211-2-111122"``)."""
        return "-".join("".join(map(str, stage)) for stage in self.stages)

    def __str__(self) -> str:
        return f"{self.stem_width}_{self.macro_string()}"

    def to_dict(self) -> dict[str, Any]:
        return {"stem_width": self.stem_width, "stages": [list(stage) for stage in self.stages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MacroCode":
        try:
            return cls(_as_int(data["stem_width"]), tuple(tuple(_as_int(m) for m in stage) for stage in data["stages"]))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidArchitectureCode(
                f"macro dict {data!r} is malformed ({err})",
                hint="expected {'stem_width': 32, 'stages': [[2], [1, 1], [1, 1, 2], [1, 1, 2]]}",
            ) from err


MACRO_SPACE = MacroSpace()


def parse_macro(text: str) -> MacroCode:
    """Parse ``WIDTH_MACRO`` (e.g. ``"32_2-211-2-111122"``) into a :class:`MacroCode`."""
    if not isinstance(text, str) or text.count("_") != 1:
        raise InvalidArchitectureCode(f"macro {text!r} must be WIDTH_MACRO, e.g. '32_2-211-2-111122'")
    width_text, macro_text = text.split("_")
    if not is_ascii_digits(width_text) or width_text != str(int(width_text)):
        raise InvalidArchitectureCode(
            f"stem width {width_text!r} must be a decimal integer (ASCII digits) without leading zeros; "
            f"widths are {', '.join(map(str, STEM_WIDTHS))}"
        )
    parts = macro_text.split("-")
    if len(parts) != NUM_STAGES:
        raise InvalidArchitectureCode(
            f"macro {macro_text!r} has {len(parts)} stages; a network has exactly {NUM_STAGES}: "
            "write 3 '-', each in front of the block that down-samples"
        )
    stages = []
    for s, part in enumerate(parts, start=1):
        if not part:
            raise InvalidArchitectureCode(f"macro stage {s} is empty; every stage has at least one block")
        for b, char in enumerate(part, start=1):
            if char not in "124":
                raise InvalidArchitectureCode(
                    f"macro stage {s} block {b}: {char!r} is not a channel multiplier; multipliers are 1, 2, 4"
                )
        stages.append(tuple(int(c) for c in part))
    return MacroCode(int(width_text), tuple(stages))


# ---------------------------------------------------------------------------------------- arch


@dataclass(frozen=True)
class ArchCode:
    """A whole network of NASOA's joint space: one block structure and one macro structure."""

    block: BlockCode
    macro: MacroCode
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.block, BlockCode) or not isinstance(self.macro, MacroCode):
            raise InvalidArchitectureCode("an ArchCode needs a BlockCode and a MacroCode")
        object.__setattr__(self, "_text", f"{self.block}_{self.macro}")

    def __str__(self) -> str:
        return self._text

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self), "block": self.block.to_dict(), "macro": self.macro.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchCode":
        if not isinstance(data, dict) or "block" not in data or "macro" not in data:
            raise InvalidArchitectureCode(f"arch dict must have 'block' and 'macro', got {data!r}")
        code = cls(BlockCode.from_dict(data["block"]), MacroCode.from_dict(data["macro"]))
        if "code" in data and data["code"] != str(code):
            raise InvalidArchitectureCode(
                f"arch dict's 'code' {data['code']!r} disagrees with its parts ({str(code)!r})"
            )
        return code


def parse(text: str) -> ArchCode:
    """Parse a full code ``BLOCK_WIDTH_MACRO``; the inverse of ``str(code)``."""
    if isinstance(text, ArchCode):
        return text
    if not isinstance(text, str):
        raise InvalidArchitectureCode(f"an architecture code is a string, got {type(text).__name__}")
    if text.count("_") != 2:
        raise InvalidArchitectureCode(
            f"code {text!r} must have 3 parts BLOCK_WIDTH_MACRO joined by '_', e.g. {_EXAMPLE!r}"
        )
    block_text, width_text, macro_text = text.split("_")
    return ArchCode(parse_block(block_text), parse_macro(f"{width_text}_{macro_text}"))


def describe(code: ArchCode | str) -> str:
    """A sentence-per-part description for people (reports, error context)."""
    code = parse(code) if isinstance(code, str) else code
    nodes = " -> ".join(
        f"{OPERATIONS[n.op].name} x{ratio_multiplier(n.ratio):g}" for n in code.block.nodes
    )
    skips = ", ".join(f"{_KIND_NAMES[s.kind]} {s.source}->{s.target}" for s in code.block.skips) or "none"
    return (
        f"block: {nodes}; residual add 0->{code.block.num_nodes}; searched skips: {skips}. "
        f"stem {code.macro.stem_width} channels; stage depths {code.macro.depths}; "
        f"{code.macro.out_channels} output channels"
    )
