"""pymoo pieces of the NAS (NASOA section 3.1, "Multi-objective Searching Algorithm"): the problem,
our sampling, the paper's mutation operators on codes, and duplicate elimination.

An individual's ``X`` is one architecture code string. pymoo's NSGA-II (non-dominated sorting,
crowding distance, binary tournament) is used unchanged; only these operators are ours:

* :class:`CodeSampling` draws distinct codes uniformly from a (sub-)space
  (:func:`nasoa_lib.space.sample_block` / ``sample_macro``);
* :class:`CodeMutation` applies one mutation operator of :func:`nasoa_lib.space.mutate` (block
  level, macro level, or macro level plus swapping to another of the best blocks); every child is
  valid and differs from its parent. There is no crossover (``NoCrossover``), as in the paper;
* :class:`CodeDuplicates` rejects a child equal to another child, to a member of the population,
  or to any code this search has already evaluated, so an evaluation is never spent twice and
  pymoo's mating loop refills until exactly N offspring exist.

Sampling, mutation and :func:`sample_distinct` talk to the space only through the
:class:`~nasoa_lib.space.protocol.SearchSpace` protocol (``sample``, ``mutate``), so any space whose
architectures are strings plugs in; :class:`CodeSpace` is NASOA's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling

from nasoa_lib.builder import Complexity, build, complexity
from nasoa_lib.errors import InvalidArchitectureCode, InvalidCodeSpace, InvalidSearchSetup
from nasoa_lib.space import (
    ArchCode,
    BlockSpace,
    MacroCode,
    MacroSpace,
    mutate,
    parse,
    parse_block,
    sample_block,
    sample_macro,
)
from nasoa_lib.space.protocol import SearchSpace
from nasoa_lib.staged import StagedNetwork

MAX_SAMPLING_TRIES = 1000


class CodeProblem(Problem):
    """NASOA Eq. 1 for pymoo: minimise (-accuracy, step time) subject to step time - T_m <= 0.

    Evaluation happens outside pymoo (parallel workers + parent node, ask/tell), so ``_evaluate``
    is never called by the search; the objective values are set on the population by the loop.
    """

    def __init__(self) -> None:
        super().__init__(n_var=1, n_obj=2, n_ieq_constr=1, vtype=object)

    def _evaluate(self, x, out, *args, **kwargs):  # pragma: no cover - ask/tell only
        raise RuntimeError("NAS candidates are evaluated by nasoa_lib.search (ask/tell), not by pymoo")


@dataclass(frozen=True)
class CodeSpace:
    """Which codes a search draws and how it mutates them.

    ``level="block"``: blocks of ``block_space`` on the fixed ``skeleton`` macro (block-level search).
    ``level="macro"``: one of ``blocks`` (the best blocks of the block search) with a macro of
    ``macro_space``; mutation changes the macro or swaps the block for another of ``blocks``.

    Implements :class:`~nasoa_lib.space.protocol.SearchSpace` over code strings (a code's string is
    the exact value of the architecture and what pymoo's ``X`` and the store keys hold); the
    operators and the random baseline below only use that protocol.
    """

    level: str
    block_space: BlockSpace = field(default_factory=BlockSpace)
    macro_space: MacroSpace | None = None
    skeleton: MacroCode | None = None
    blocks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level == "block" and self.skeleton is None:
            raise InvalidCodeSpace("a block-level space needs a fixed macro skeleton",
                                   hint="pass skeleton=parse_macro(...) (the search: section's block_skeleton)")
        if self.level == "macro" and (self.macro_space is None or not self.blocks):
            raise InvalidCodeSpace("a macro-level space needs a macro space and at least one block",
                                   hint="pass macro_space=MacroSpace(...) and the best blocks of the block-level search")
        if self.level not in ("block", "macro"):
            raise InvalidCodeSpace(f"level must be 'block' or 'macro', got {self.level!r}",
                                   hint="use level='block' or level='macro'")
        object.__setattr__(self, "blocks", tuple(str(parse_block(b)) for b in self.blocks))

    def sample(self, rng: np.random.Generator) -> str:
        """A code drawn uniformly: a block of ``block_space`` on the skeleton, or one of ``blocks``
        with a macro of ``macro_space``."""
        if self.level == "block":
            return str(ArchCode(sample_block(rng, self.block_space), self.skeleton))
        block = parse_block(self.blocks[int(rng.integers(len(self.blocks)))])
        return str(ArchCode(block, sample_macro(rng, self.macro_space)))

    def mutate(self, code: str, rng: np.random.Generator) -> str:
        """One of the paper's mutation operators of this level (NASOA section 3.3)."""
        arch = parse(code)
        if self.level == "block":
            return str(mutate(arch, rng, "block", block_space=self.block_space))
        others = [b for b in self.blocks if b != str(arch.block)]
        if others and rng.random() < 1.0 / 6.0:  # block swap: one operator among the five macro ones
            return str(ArchCode(parse_block(others[int(rng.integers(len(others)))]), arch.macro))
        return str(mutate(arch, rng, "macro", macro_space=self.macro_space))

    def contains(self, code: ArchCode | str) -> bool:
        """Whether ``code`` is a valid code this space can draw."""
        try:
            arch = parse(code)
        except InvalidArchitectureCode:
            return False
        if self.level == "block":
            return arch.macro == self.skeleton and self.block_space.contains(arch.block)
        return str(arch.block) in self.blocks and self.macro_space.contains(arch.macro)

    def build(self, code: ArchCode | str, num_classes: int, image_size: int,
              small_image_stem: bool = False) -> StagedNetwork:
        """:func:`nasoa_lib.builder.build`."""
        return build(code, num_classes, image_size, small_image_stem)

    def complexity(self, code: ArchCode | str, num_classes: int, image_size: int,
                   small_image_stem: bool = False) -> Complexity:
        """:func:`nasoa_lib.builder.complexity`."""
        return complexity(code, num_classes, image_size, small_image_stem)

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "block_space": {"max_nodes": self.block_space.max_nodes, "ops": list(self.block_space.ops),
                            "ratios": list(self.block_space.ratios), "max_skips": self.block_space.max_skips},
            "macro_space": None if self.macro_space is None else {
                "stem_widths": list(self.macro_space.stem_widths),
                "max_stage_depth": self.macro_space.max_stage_depth,
                "max_blocks": self.macro_space.max_blocks,
                "max_doublings": self.macro_space.max_doublings,
            },
            "skeleton": None if self.skeleton is None else str(self.skeleton),
            "blocks": list(self.blocks),
        }


def sample_distinct(space: SearchSpace[str], n: int, rng: np.random.Generator, exclude: set[str]) -> list[str]:
    """``n`` distinct codes of ``space`` not in ``exclude`` (error if the space is too small)."""
    out: list[str] = []
    taken = set(exclude)
    tries = 0
    while len(out) < n:
        code = space.sample(rng)
        tries += 1
        if code not in taken:
            taken.add(code)
            out.append(code)
        elif tries > MAX_SAMPLING_TRIES * max(1, n):
            raise InvalidSearchSetup(
                f"could only draw {len(out)} of {n} distinct new codes from {_space_name(space)}; "
                "widen the space or lower the population/budget",
                hint="raise the space's limits (block_space / macro_space) or lower the population in the search: section",
            )
    return out


def _space_name(space: SearchSpace[str]) -> str:
    return f"the {space.level}-level space" if isinstance(space, CodeSpace) else f"the space {space}"


class CodeSampling(Sampling):
    """The initial population: distinct codes drawn uniformly from the space."""

    def __init__(self, space: SearchSpace[str], duplicates: "CodeDuplicates") -> None:
        super().__init__()
        self.space = space
        self.duplicates = duplicates

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        codes = sample_distinct(self.space, n_samples, random_state, self.duplicates.seen)
        return np.array(codes, dtype=object).reshape(-1, 1)


class CopyParents(Crossover):
    """No recombination (NASOA mutates elite architectures only): each child starts as a copy of
    one tournament-selected parent (new individuals, so mutating them leaves the parents intact)."""

    def __init__(self) -> None:
        super().__init__(n_parents=1, n_offsprings=1, prob=0.0)


class CodeMutation(Mutation):
    """One of the paper's mutation operators per child (every child is mutated: ``prob=1``)."""

    def __init__(self, space: SearchSpace[str]) -> None:
        super().__init__(prob=1.0)
        self.space = space

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        out = np.empty_like(X)
        for i, row in enumerate(X):
            out[i, 0] = self.space.mutate(str(row[0]), random_state)
        return out


class CodeDuplicates(DuplicateElimination):
    """Duplicates by code string: within the offspring, against the population, and against
    ``seen`` (every code this search has evaluated, kept up to date by the search loop)."""

    def __init__(self, seen: Sequence[str] = ()) -> None:
        super().__init__()
        self.seen: set[str] = set(seen)

    def _do(self, pop, other, is_duplicate):
        codes = [str(x[0]) for x in pop.get("X")]
        if other is None:
            first: set[str] = set()
            for i, code in enumerate(codes):
                if code in first or code in self.seen:
                    is_duplicate[i] = True
                first.add(code)
        else:
            others = {str(x[0]) for x in other.get("X")}
            for i, code in enumerate(codes):
                if code in others:
                    is_duplicate[i] = True
        return is_duplicate
