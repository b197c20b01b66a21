"""The one small interface every search space offers its optimisers (NASLib's plug-in design).

NASLib (automl/NASLib, ``naslib/search_spaces``, ``naslib/optimizers``) keeps search spaces and
optimisers independent: an optimiser only asks a space to sample, mutate and build architectures.
Here the same protocol covers NASOA's joint block/macro code space (NASOA section 3.1; implemented
by :class:`nasoa_lib.search.CodeSpace`, whose architectures are code strings) and NSS's network
spaces (NSS section 3, Sec. 3.2-3.3; :class:`nasoa_lib.nss.NetworkSpace` and
:class:`nasoa_lib.nss.EliteMacroSpace`, whose architectures are :class:`~nasoa_lib.nss.Architecture`
values). Every method delegates to the space's existing functions (``sample_block``/``sample_macro``
and ``mutate``, ``builder.build``/``builder.complexity``; ``NetworkSpace.sample``,
``supernet.build``, ``flops.architecture_flops``/``architecture_params``), so the protocol adds no
second implementation and changes no random stream.

Kept, because both spaces have them naturally: ``sample`` (a uniform draw: NASOA section 3.1's
initial population; NSS Eq. 3, uniform within a space), ``mutate`` (NASOA section 3.3's operators;
one stage's depth or width for NSS), ``contains`` (membership, the constraint the optimisers rely
on), ``build`` (architecture -> ``nn.Module``) and ``complexity`` (parameters and multiply-adds
without a forward pass, pycls-style; :class:`nasoa_lib.builder.Complexity`).

Left out: ``neighbours``. NASOA's block/macro operators enumerate neighbours, but a search-level
code space mutates with an extra block swap that is not a neighbour list, and no optimiser of the
study walks neighbourhoods (NSGA-II and random search only sample and mutate). Also left out:
counting the space (NASOA counts codes with big integers per level, an Elite Space is a product of
ranges; nothing searches by size) and string parsing (a property of the architecture value, not of
the space).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from nasoa_lib.builder import Complexity

A = TypeVar("A")


@runtime_checkable
class SearchSpace(Protocol[A]):
    """A search space as an optimiser sees it: architectures of type ``A`` and five operations.

    ``isinstance(space, SearchSpace)`` checks that the five methods exist (not their signatures).
    """

    def sample(self, rng: np.random.Generator) -> A:
        """One architecture drawn uniformly from the space."""
        ...

    def mutate(self, arch: A, rng: np.random.Generator) -> A:
        """A child of ``arch`` inside the space, different from it whenever the space allows."""
        ...

    def contains(self, arch: A) -> bool:
        """Whether ``arch`` is an architecture of this space."""
        ...

    def build(self, arch: A, num_classes: int, image_size: int) -> nn.Module:
        """The network of ``arch`` with a ``num_classes`` head for ``image_size`` inputs."""
        ...

    def complexity(self, arch: A, num_classes: int, image_size: int) -> Complexity:
        """Parameters and multiply-adds of ``build(arch, num_classes, image_size)`` without building it."""
        ...
