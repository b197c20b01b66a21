"""An Elite Space as the macro search space of our NAS (NSS Sec. 4.3; SPEC section 11).

NSS serves Elite Spaces "as NAS search spaces". :class:`EliteMacroSpace` is the plug-in for the
Offline NAS stage (not built yet): it draws architectures uniformly from the space (``sample``),
mutates one stage's depth or width inside the space (``mutate``, for evolutionary search such as
NASOA's), tells whether an architecture belongs (``contains``, a constraint), builds it (``build``)
and costs it (``complexity``): the :class:`~nasoa_lib.space.protocol.SearchSpace` protocol, each
method delegating to :class:`NetworkSpace`, with this space's classes and image size as defaults.
Depths map to blocks per stage, widths to channels per stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasoa_lib.builder import Complexity
from nasoa_lib.nss.flops import architecture_flops
from nasoa_lib.nss.spaces import Architecture, ExpandedSpace, NetworkSpace
from nasoa_lib.nss.supernet import StandaloneNet


@dataclass(frozen=True)
class EliteMacroSpace:
    """Sampler, mutation operator and constraint over one network space."""

    space: NetworkSpace
    image_size: int = 32
    num_classes: int = 10

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.space.sample(rng)

    def contains(self, arch: Architecture) -> bool:
        return self.space.contains(arch)

    def check(self, arch: Architecture) -> None:
        """Raise :class:`~nasoa_lib.errors.InvalidNetworkSpace` unless ``arch`` lies in the space."""
        self.space.check(arch)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one stage's depth or width inside the space (:meth:`NetworkSpace.mutate`)."""
        return self.space.mutate(arch, rng)

    def flops(self, arch: Architecture) -> int:
        return architecture_flops(arch, self.image_size, self.num_classes)

    def build(self, arch: Architecture, num_classes: int | None = None,
              image_size: int | None = None) -> StandaloneNet:
        """The stand-alone network (:meth:`NetworkSpace.build`); by default for this space's classes."""
        return self.space.build(arch, self.num_classes if num_classes is None else num_classes,
                                self.image_size if image_size is None else image_size)

    def complexity(self, arch: Architecture, num_classes: int | None = None,
                   image_size: int | None = None) -> Complexity:
        """Parameters and multiply-adds (:meth:`NetworkSpace.complexity`); by default at this space's
        image size and classes."""
        return self.space.complexity(arch, self.num_classes if num_classes is None else num_classes,
                                     self.image_size if image_size is None else image_size)


def elite_macro_space(space: NetworkSpace | str, expanded: ExpandedSpace | None = None,
                      image_size: int = 32, num_classes: int = 10) -> EliteMacroSpace:
    """An Elite Space (object or string, e.g. from the ``nss_search`` records) as a macro space;
    with ``expanded`` it is first checked to lie inside that Expanded Search Space."""
    if isinstance(space, str):
        space = NetworkSpace.parse(space)
    if expanded is not None:
        expanded.check(space)
    return EliteMacroSpace(space, image_size, num_classes)
