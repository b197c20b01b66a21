"""NASOA's joint block/macro search space (section 3.1): codes, grammar, counting, sampling, mutation.

A network is a short string (the released ET-NAS notation, see :mod:`nasoa_lib.space.codes`)::

    >>> from nasoa_lib.space import parse
    >>> str(parse("011-_32_2-211-2-111122"))
    '011-_32_2-211-2-111122'

``nasoa_lib.builder.build(code, num_classes)`` turns a code into a network. :class:`SearchSpace`
(``protocol``) is the small interface NASOA's and NSS's spaces share with the optimisers.
"""

from nasoa_lib.space.codes import (
    MACRO_SPACE,
    MAX_BLOCKS,
    MAX_DOUBLINGS,
    MAX_NODES,
    MAX_SKIPS,
    MAX_STAGE_DEPTH,
    MULTIPLIERS,
    STEM_WIDTHS,
    ArchCode,
    BlockCode,
    MacroCode,
    MacroSpace,
    Node,
    Skip,
    describe,
    parse,
    parse_block,
    parse_macro,
)
from nasoa_lib.space.counting import (
    BLOCK_SPACE,
    PAPER_BLOCKS,
    PAPER_MACROS,
    BlockSpace,
    count_blocks,
    count_macros,
    count_table,
)
from nasoa_lib.space.etnas import RELEASED, RELEASED_CODES, ReleasedModel, from_released, released_code, to_released
from nasoa_lib.space.mutation import block_neighbours, macro_neighbours, mutate
from nasoa_lib.space.ops import OPERATIONS, RATIO_DIGITS, Operation
from nasoa_lib.space.protocol import SearchSpace
from nasoa_lib.space.references import REFERENCE_CODES, mobilenetv2_setting, reference_code
from nasoa_lib.space.sampling import sample_arch, sample_block, sample_macro

__all__ = [
    "ArchCode", "BlockCode", "MacroCode", "MacroSpace", "BlockSpace", "Node", "Skip", "Operation",
    "OPERATIONS", "RATIO_DIGITS", "STEM_WIDTHS", "MULTIPLIERS", "MAX_NODES", "MAX_SKIPS", "MAX_BLOCKS",
    "MAX_STAGE_DEPTH", "MAX_DOUBLINGS", "MACRO_SPACE", "BLOCK_SPACE", "PAPER_BLOCKS", "PAPER_MACROS",
    "parse", "parse_block", "parse_macro", "describe", "count_blocks", "count_macros", "count_table",
    "sample_arch", "sample_block", "sample_macro", "mutate", "block_neighbours", "macro_neighbours",
    "RELEASED", "RELEASED_CODES", "ReleasedModel", "released_code", "from_released", "to_released",
    "REFERENCE_CODES", "reference_code", "mobilenetv2_setting", "SearchSpace",
]
