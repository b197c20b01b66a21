"""The released ET-NAS zoo in our notation (NASOA Table 2; ``ETNAS_REFERENCE.md``).

Our grammar *is* the released ``BLOCK_WIDTH_MACRO`` notation restricted to our space, so the 12
released codes are our codes verbatim, and build with their published parameter and MAC counts:
our one change to the released semantics (all-1x1 blocks down-sample by average pooling + 1x1,
:mod:`nasoa_lib.builder`) touches none of them. :func:`from_released` also accepts what the released builder
accepts and we write differently (a block without ``-``, skips not in our canonical order) and says
clearly what of the released space we do not cover (operations 5 and 6).
"""

from __future__ import annotations

from dataclasses import dataclass

from nasoa_lib.errors import InvalidArchitectureCode
from nasoa_lib.space.codes import ArchCode, Skip, is_ascii_digits, parse
from nasoa_lib.space.ops import OPERATIONS

RELEASED_ONLY_OPERATIONS = {5: "conv3x3 with group width 32", 6: "separable conv3x3"}


@dataclass(frozen=True)
class ReleasedModel:
    """A released ET-NAS model and the figures computed from its definition (224x224, 1000 classes)."""

    name: str
    code: str
    mparams: float
    gmacs: float
    mmacs_32: float
    top1: float


RELEASED: dict[str, ReleasedModel] = {
    m.name: m
    for m in (
        ReleasedModel("ET-NAS-A", "2-_32_2-11-112-1121112", 2.6, 0.23, 5.2, 62.06),
        ReleasedModel("ET-NAS-B", "031-_32_1-1-221-11121", 3.9, 0.39, 8.2, 66.92),
        ReleasedModel("ET-NAS-C", "011-_32_2-211-2-111122", 7.1, 0.58, 12.8, 71.29),
        ReleasedModel("ET-NAS-D", "031-_64_1-1-221-11121", 15.2, 1.55, 32.2, 74.46),
        ReleasedModel("ET-NAS-E", "10001-_64_4-111-11122-1111111111111112", 28.4, 2.31, 49.1, 76.87),
        ReleasedModel("ET-NAS-F", "011-_64_21-211-121-11111121", 21.4, 2.61, 54.3, 78.80),
        ReleasedModel("ET-NAS-G", "10001-_64_4-111111111-211112111112-11111", 44.0, 5.33, 110.8, 80.41),
        ReleasedModel("ET-NAS-H", "211-_64_41-211-121-11111121", 49.3, 5.68, 118.0, 80.92),
        ReleasedModel("ET-NAS-I", "02031-a02_64_111-2111-21111111111111111111111-211", 72.4, 13.13, 268.5, 81.38),
        ReleasedModel("ET-NAS-J", "211-_64_411-2111-21111111111111111111111-211", 103.0, 18.16, 372.5, 82.08),
        ReleasedModel(
            "ET-NAS-K", "02031-a02_64_1121-111111111111111111111111111-21111111211111-1", 87.3, 27.51, 561.9, 82.42
        ),
        ReleasedModel("ET-NAS-L", "23311-a02c12_64_211-2111-21111111111111111111111-211", 130.4, 23.46, 479.8, 82.65),
    )
}
"""Parameters/MACs as computed from the released definitions (for E/F and G/H the README swaps them)."""

RELEASED_CODES: dict[str, str] = {name: m.code for name, m in RELEASED.items()}


def released_code(name: str) -> ArchCode:
    """The code of a released model by name (``"ET-NAS-C"``)."""
    try:
        return parse(RELEASED[name].code)
    except KeyError:
        raise InvalidArchitectureCode(
            f"no released model {name!r}", hint=f"released models are {', '.join(RELEASED)}"
        ) from None


def from_released(text: str) -> ArchCode:
    """Read a code in the released notation (as ``etnas.ETNas`` accepts it) into our :class:`ArchCode`."""
    if not isinstance(text, str) or text.count("_") != 2:
        raise InvalidArchitectureCode(f"released code {text!r} must be BLOCK_WIDTH_MACRO")
    block, width, macro = text.split("_")
    if "-" not in block:
        block += "-"
    nodes, skips = block.split("-", 1)
    for i, char in enumerate(nodes[::2], start=1):
        if is_ascii_digits(char) and int(char) in RELEASED_ONLY_OPERATIONS:
            raise InvalidArchitectureCode(
                f"block node {i}: released operation {char} ({RELEASED_ONLY_OPERATIONS[int(char)]}) is not in our "
                f"space; our operations are 0..{len(OPERATIONS) - 1}"
            )
    items = [skips[j : j + 3] for j in range(0, len(skips), 3)]
    if all(len(it) == 3 and it[0] in "ac" and is_ascii_digits(it[1:]) for it in items):
        # The released builder merges skips by target in written order; ours puts adds before concats.
        for target in {it[2] for it in items}:
            kinds = [it[0] for it in items if it[2] == target]
            if "c" in kinds and "a" in kinds[kinds.index("c") :]:
                raise InvalidArchitectureCode(
                    f"block skips {skips!r}: a concat before an add into node {target} is not expressible in our "
                    "space (adds are merged first)"
                )
        ordered = sorted((Skip(it[0], int(it[1]), int(it[2])) for it in items), key=lambda s: s.sort_key)
        skips = "".join(map(str, ordered))
    return parse(f"{nodes}-{skips}_{width}_{macro}")


def to_released(code: ArchCode | str) -> str:
    """Our code in the released notation (the same string: our grammar is the released one)."""
    return str(parse(code) if isinstance(code, str) else code)
