"""Architecture codes: grammar round-trips, validation errors, counts, sampling, mutation, released codes."""

from __future__ import annotations

import json
from collections import Counter
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasoa_lib.errors import InvalidArchitectureCode
from nasoa_lib.space import (
    BLOCK_SPACE,
    MACRO_SPACE,
    OPERATIONS,
    PAPER_BLOCKS,
    PAPER_MACROS,
    RELEASED,
    RELEASED_CODES,
    ArchCode,
    BlockCode,
    BlockSpace,
    MacroCode,
    MacroSpace,
    Node,
    Skip,
    block_neighbours,
    count_blocks,
    count_macros,
    count_table,
    describe,
    from_released,
    macro_neighbours,
    mutate,
    parse,
    parse_block,
    parse_macro,
    released_code,
    sample_arch,
    sample_block,
    sample_macro,
    to_released,
)
from nasoa_lib.space.counting import count_compositions, count_skip_sets, skip_sets

SMALL_MACROS = MacroSpace(stem_widths=(16, 32), max_stage_depth=4, max_blocks=10, max_doublings=3)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY = settings(max_examples=40, deadline=None)


# ------------------------------------------------------------------------------ grammar


def test_operations_are_the_released_numbering():
    assert [op.name for op in OPERATIONS] == ["conv3x3", "conv1x1", "conv3x3_g2", "conv3x3_g4", "conv3x3_dw"]
    assert [op.groups(64, 128) for op in OPERATIONS] == [1, 1, 2, 4, 64]
    assert OPERATIONS[4].groups(128, 32) == 32  # depthwise keeps a shrinking node valid: gcd


@pytest.mark.parametrize("name", sorted(RELEASED_CODES))
def test_released_codes_round_trip(name):
    text = RELEASED_CODES[name]
    code = parse(text)
    assert str(code) == text
    assert to_released(code) == text
    assert from_released(text) == code
    assert released_code(name) == code
    assert ArchCode.from_dict(json.loads(json.dumps(code.to_dict()))) == code


def test_parts_of_a_released_code():
    code = parse("23311-a02c12_64_211-2111-21111111111111111111111-211")
    assert code.block.nodes == (Node(2, 3), Node(3, 1), Node(1, 2))
    assert code.block.skips == (Skip("a", 0, 2), Skip("c", 1, 2))
    assert code.macro.stem_width == 64
    assert code.macro.depths == (3, 4, 23, 3)
    assert code.macro.stages[0] == (2, 1, 1)
    assert code.macro.out_channels == 64 * 2**4
    assert parse_block("23311-a02c12") == code.block
    assert parse_macro("64_211-2111-21111111111111111111111-211") == code.macro
    assert "conv3x3_g2 x2" in describe(code) and "concat 1->2" in describe(code)


def test_from_released_accepts_the_released_builders_liberties():
    assert str(from_released("011_32_2-211-2-111122")) == "011-_32_2-211-2-111122"
    assert str(from_released("02031-a13a01_64_1-1-1-1")) == "02031-a01a13_64_1-1-1-1"
    with pytest.raises(InvalidArchitectureCode, match="released operation 5"):
        from_released("51-_64_1-1-1-1")
    with pytest.raises(InvalidArchitectureCode, match="concat before an add into node 2"):
        from_released("02031-c12a02_64_1-1-1-1")


BAD_CODES = [
    ("011-_32_2-211-2", "has 3 stages"),
    ("701-_32_2-211-2-111122", "block node 1: operation 7 unknown; operations are 0..4 (0 conv3x3, 1 conv1x1"),
    ("071-_32_2-211-2-111122", "block node 1: ratio digit 7 unknown; ratio digits are 0..4"),
    ("02901-_32_2-211-2-111122", "block node 2: operation 9 unknown"),
    ("011_32_2-211-2-111122", "exactly one '-'"),
    ("0111-_32_2-211-2-111122", "odd number of digits"),
    ("0101011-_32_2-211-2-111122", "describe 4 nodes"),
    ("011-x01_32_2-211-2-111122", "kind 'x' unknown"),
    ("011-a0_32_2-211-2-111122", "3-character items"),
    ("011-a02_32_2-211-2-111122", "residual from the input to the last node is fixed"),
    ("02031-c03_32_2-211-2-111122", "fixed"),
    ("02031-c13_32_2-211-2-111122", "concat into the last node"),
    ("011-a05_32_2-211-2-111122", "needs 0 <= source < target <= 2"),
    ("02031-a02a01_32_2-211-2-111122", "not in canonical order; write 'a01a02'"),
    ("02031-a01a01_32_2-211-2-111122", "a second skip from node 0 into node 1"),
    ("02031-a01a12a13a23_32_2-211-2-111122", "4 searched skips; at most 3"),
    ("011-_40_2-211-2-111122", "stem width 40 not allowed; widths are 16, 32, 48, 64"),
    ("011-_032_2-211-2-111122", "without leading zeros"),
    ("011-_32_2-211-2-111132", "stage 4 block 5: '3' is not a channel multiplier"),
    ("011-_32_2--2-111122", "macro stage 2 is empty"),
    ("011-_32_4-4-4-4444", "channels grow x16384 over the network; at most x32"),
    ("011-_32_" + "1" * 33 + "-1-1-1", "stage 1 depth 33; depths must be 1..32"),
    ("011-_32_" + "1" * 30 + "-" + "1" * 10 + "-11111111-1", "49 blocks in all; at most 48"),
    ("011-_32_2-211-2-111122_1", "3 parts BLOCK_WIDTH_MACRO"),
]


@pytest.mark.parametrize("text, fragment", BAD_CODES)
def test_malformed_codes_say_what_is_wrong(text, fragment):
    with pytest.raises(InvalidArchitectureCode) as info:
        parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


NON_ASCII_DIGIT_CODES = [
    ("0\u0661" + "1-_32_2-211-2-111122", "odd number of digits"),  # Arabic-Indic one in the nodes
    ("01\u00b2-_32_2-211-2-111122", "odd number of digits"),  # superscript two: int() cannot even read it
    ("02031-a0\uff12_32_2-211-2-111122", "source and target must be node digits"),  # fullwidth two in a skip
    ("011-_\uff13\uff12_2-211-2-111122", "ASCII digits"),  # fullwidth 32 as the stem width
    ("011-_3\u00b2_2-211-2-111122", "ASCII digits"),  # superscript in the width
    ("011-_32_2-2\u0661" + "1-2-111122", "not a channel multiplier"),
]


@pytest.mark.parametrize("text, fragment", NON_ASCII_DIGIT_CODES)
def test_codes_with_non_ascii_digits_are_rejected(text, fragment):
    """Issue 20 (6): str.isdigit() accepted '\u0661' (and int() read it as 1), so one network had
    several spellings and str(parse(text)) != text; a superscript digit crashed int()."""
    with pytest.raises(InvalidArchitectureCode, match=fragment):
        parse(text)


@PROPERTY
@given(st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=1))
def test_any_non_ascii_digit_anywhere_in_a_code_is_rejected(digits):
    """A code is ASCII: putting any non-ASCII decimal/other digit into any digit position fails."""
    code = "02031-a02_32_2-211-2-111122"
    if set(digits) <= set("0123456789"):
        return
    for i in range(len(code)):
        if code[i].isdigit():
            text = code[:i] + digits + code[i + 1 :]
            with pytest.raises(InvalidArchitectureCode):
                parse(text)


@pytest.mark.parametrize("data", [
    {"nodes": [["0", "\u0661"], [1, 2]]},
    {"nodes": [[0, 1.7], [1, 2]]},
    {"nodes": [[0, True], [1, 2]]},
    {"nodes": [[0, 1], [1, 2]], "skips": [["a", 0, "\uff11"]]},
])
def test_dict_forms_accept_only_integers(data):
    with pytest.raises(InvalidArchitectureCode, match="malformed"):
        BlockCode.from_dict(data)


def test_dict_forms_accept_numpy_integers():
    code = parse("02031-a01_32_2-211-2-111122")
    block = {"nodes": [[np.int64(op), np.int64(r)] for op, r in code.block.to_dict()["nodes"]],
             "skips": [["a", np.int64(0), np.int64(1)]]}
    assert BlockCode.from_dict(block) == code.block
    with pytest.raises(InvalidArchitectureCode, match="malformed"):
        MacroCode.from_dict({"stem_width": "\uff13\uff12", "stages": [[2], [1], [2], [1]]})


def test_constructed_codes_are_validated_too():
    with pytest.raises(InvalidArchitectureCode, match="the last node's ratio is always x1"):
        BlockCode((Node(0, 1),))
    with pytest.raises(InvalidArchitectureCode, match="a block has 1..3 nodes"):
        BlockCode(())
    with pytest.raises(InvalidArchitectureCode, match="exactly 4"):
        MacroCode(32, ((1,), (1,)))
    with pytest.raises(InvalidArchitectureCode, match="disagrees"):
        ArchCode.from_dict({**parse("011-_32_2-211-2-111122").to_dict(), "code": "2-_32_2-211-2-111122"})
    with pytest.raises(InvalidArchitectureCode, match="malformed"):
        BlockCode.from_dict({"nodes": "x"})


@PROPERTY
@given(SEEDS)
def test_sampled_codes_round_trip(seed):
    code = sample_arch(np.random.default_rng(seed))
    assert parse(str(code)) == code
    assert str(parse(str(code))) == str(code)
    assert ArchCode.from_dict(json.loads(json.dumps(code.to_dict()))) == code
    assert hash(parse(str(code))) == hash(code)


@PROPERTY
@given(SEEDS, st.sampled_from(["block", "macro", "both"]))
def test_mutation_is_valid_and_differs(seed, level):
    rng = np.random.default_rng(seed)
    parent = sample_arch(rng, macro_space=SMALL_MACROS)
    child = mutate(parent, rng, level=level, macro_space=SMALL_MACROS)
    assert child != parent and str(child) != str(parent)
    assert parse(str(child)) == child
    assert SMALL_MACROS.contains(child.macro)
    if level == "block":
        assert child.macro == parent.macro and child.block != parent.block
    if level == "macro":
        assert child.block == parent.block and child.macro != parent.macro


@PROPERTY
@given(st.sampled_from(sorted(RELEASED_CODES)), SEEDS)
def test_released_codes_mutate_within_the_whole_space(name, seed):
    parent = released_code(name)
    child = mutate(parent, np.random.default_rng(seed))
    assert child != parent and parse(str(child)) == child


def test_block_operators_reach_the_expected_neighbours():
    found = block_neighbours(parse_block("02031-a02"))
    as_text = {name: {str(b) for b in blocks} for name, blocks in found.items()}
    assert "42031-a02" in as_text["op"]
    assert "02001-a02" in as_text["ratio"]
    assert "02031-c02" in as_text["skip_kind"]
    assert "02031-a01" in as_text["skip_move"]
    assert "02031-a02a23" in as_text["skip_add"]
    assert "02031-" in as_text["skip_remove"]
    assert "031-a01" in as_text["node_remove"]  # node 1 removed: a02 becomes a01
    assert "021-" in as_text["node_remove"]  # node 2 removed: its skip goes with it
    assert as_text["node_add"] == set()  # three nodes already
    grown = {str(b) for b in block_neighbours(parse_block("011-"))["node_add"]}
    assert {"11011-", "01231-", "01130-"} <= grown  # insert first / middle / append


def test_macro_operators_reach_the_expected_neighbours():
    found = macro_neighbours(parse_macro("32_2-211-2-111122"))
    as_text = {name: {str(m) for m in macros} for name, macros in found.items()}
    assert "32_2-2111-2-111122" in as_text["depth"] and "32_2-21-2-111122" in as_text["depth"]
    assert "32_2-211-2-111121" in as_text["width"]
    assert "32_2-211-2-111124" not in as_text["width"]  # would grow x64 > x32
    assert as_text["stem"] == {"16_2-211-2-111122", "48_2-211-2-111122", "64_2-211-2-111122"}
    assert as_text["downsample"] == {"32_22-11-2-111122", "32_2-21-12-111122", "32_2-211-21-11122"}
    assert "32_2-121-2-111122" in as_text["doubling"]


# ------------------------------------------------------------------------------ counting


def _brute_force_blocks(space: BlockSpace, skip_digits: int) -> set[str]:
    """Every string NODES-SKIPS over the sub-space's digits that parses; no formula involved."""
    items = ["".join(p) for p in product("ac", map(str, range(skip_digits)), map(str, range(skip_digits)))]
    skip_strings = [""]
    for k in range(1, space.max_skips + 1):
        skip_strings += ["".join(p) for p in product(items, repeat=k)]
    found = set()
    for n in range(1, space.max_nodes + 1):
        digit_sets = [space.ops, space.ratios] * (n - 1) + [space.ops]
        for digits in product(*digit_sets):
            nodes = "".join(map(str, digits))
            for skips in skip_strings:
                try:
                    block = parse_block(f"{nodes}-{skips}")
                except InvalidArchitectureCode:
                    continue
                assert str(block) == f"{nodes}-{skips}"
                found.add(str(block))
    return found


@pytest.mark.parametrize(
    "space",
    [
        BlockSpace(max_nodes=2, ops=(0, 4), ratios=(1, 3), max_skips=3),
        BlockSpace(max_nodes=3, ops=(1,), ratios=(2,), max_skips=3),
        BlockSpace(max_nodes=3, ops=(0, 2), ratios=(0,), max_skips=1),
    ],
)
def test_block_count_matches_brute_force(space):
    assert count_blocks(space) == len(_brute_force_blocks(space, space.max_nodes + 1))


def test_skip_set_count_and_whole_block_count():
    assert [count_skip_sets(n) for n in (1, 2, 3)] == [1, 6, 72]
    assert all(len(skip_sets(n)) == count_skip_sets(n) for n in (1, 2, 3))
    assert count_blocks() == 5 + 125 * 6 + 3125 * 72 == 225_755


@pytest.mark.parametrize(
    "space",
    [
        MacroSpace(stem_widths=(16, 48), max_stage_depth=2, max_blocks=6, max_doublings=2),
        MacroSpace(stem_widths=(32,), max_stage_depth=3, max_blocks=6, max_doublings=5, multipliers=(1, 4)),
    ],
)
def test_macro_count_matches_brute_force(space):
    found = set()
    for length in range(4, space.max_blocks + 4):
        for chars in product("124-", repeat=length):
            if chars.count("-") != 3:
                continue
            for width in space.stem_widths:
                text = f"{width}_{''.join(chars)}"
                try:
                    macro = parse_macro(text)
                except InvalidArchitectureCode:
                    continue
                if space.contains(macro):
                    assert str(macro) == text
                    found.add(text)
    assert count_macros(space) == len(found)


def test_compositions_formula():
    for total, parts, cap in [(10, 4, 3), (7, 4, 32), (4, 4, 1), (13, 4, 3)]:
        brute = sum(1 for p in product(range(1, cap + 1), repeat=parts) if sum(p) == total)
        assert count_compositions(total, parts, cap) == brute


def test_count_table_sets_ours_beside_the_paper():
    table = count_table()
    assert [row["level"] for row in table] == ["block", "macro"]
    assert table[0]["ours"] == count_blocks() and table[0]["paper"] == PAPER_BLOCKS == 5.4e6
    assert table[1]["ours"] == count_macros() and table[1]["paper"] == PAPER_MACROS == 1.5e7
    assert all(row["why they differ"] for row in table)


# ------------------------------------------------------------------------------ sampling


def test_block_sampling_is_uniform_on_a_small_space():
    space = BlockSpace(max_nodes=2, ops=(0, 1), ratios=(2,), max_skips=1)
    rng = np.random.default_rng(0)
    seen = Counter(str(sample_block(rng, space)) for _ in range(1800))
    assert len(seen) == count_blocks(space) == 18
    assert min(seen.values()) > 60 and max(seen.values()) < 145  # 100 expected each


def test_macro_sampling_is_uniform_on_a_small_space():
    space = MacroSpace(stem_widths=(16,), max_stage_depth=2, max_blocks=5, max_doublings=1, multipliers=(1, 2))
    total = count_macros(space)
    rng = np.random.default_rng(1)
    draws = 60 * total
    seen = Counter(str(sample_macro(rng, space)) for _ in range(draws))
    assert len(seen) == total
    assert min(seen.values()) > 30 and max(seen.values()) < 95  # 60 expected each


def test_sampling_stays_in_sub_spaces_and_reaches_large_codes():
    rng = np.random.default_rng(2)
    for _ in range(20):
        assert SMALL_MACROS.contains(sample_macro(rng, SMALL_MACROS))
    depths = [sample_macro(rng).num_blocks for _ in range(20)]
    assert max(depths) > 30  # uniform over the whole space favours deep networks
    assert all(MACRO_SPACE.contains(sample_macro(rng)) for _ in range(5))
    assert all(BLOCK_SPACE.contains(sample_block(rng)) for _ in range(5))


@pytest.mark.parametrize("text", ["1²-_32_1-21-21-2", "1-a0²2_32_1-21-21-2", "1-a0٢2_32_1-21-21-2"])
def test_released_codes_with_non_ascii_digits_are_clear_errors(text):
    from nasoa_lib.space.etnas import from_released

    with pytest.raises(InvalidArchitectureCode):
        from_released(text)
