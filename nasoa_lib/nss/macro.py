"""An Elite Space as the macro search space of our NAS (NSS Sec. 4.3; SPEC section 11).

NSS serves Elite Spaces "as NAS search spaces". :class:`EliteMacroSpace` is the plug-in for the
Offline NAS stage (not built yet): it draws architectures uniformly from the space (``sample``),
mutates one stage's depth or width inside the space (``mutate``, for evolutionary search such as
NASOA's), tells whether an architecture belongs (``contains``, a constraint) and builds it
(``build``). Depths map to blocks per stage, widths to channels per stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasoa_lib.errors import InvalidNetworkSpace
from nasoa_lib.nss.flops import architecture_flops
from nasoa_lib.nss.spaces import Architecture, ExpandedSpace, NetworkSpace
from nasoa_lib.nss.supernet import StandaloneNet, build


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
        """Raise :class:`InvalidNetworkSpace` unless ``arch`` lies in the space."""
        if not self.contains(arch):
            raise InvalidNetworkSpace(f"architecture {arch} is outside the space {self.space}",
                                      hint="sample or mutate with this EliteMacroSpace")

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one stage's depth or width to another value of its range (the result differs
        from ``arch`` unless the space holds a single architecture)."""
        self.check(arch)
        if self.space.size == 1:
            return arch
        while True:
            stage = int(rng.integers(self.space.num_stages))
            field = "depths" if rng.random() < 0.5 else "widths"
            lo, hi = getattr(self.space, field)[stage]
            if hi == lo:
                continue
            values = list(getattr(arch, field))
            choices = [v for v in range(lo, hi + 1) if v != values[stage]]
            values[stage] = int(rng.choice(choices))
            return Architecture(**{**{"depths": arch.depths, "widths": arch.widths}, field: tuple(values)})

    def flops(self, arch: Architecture) -> int:
        return architecture_flops(arch, self.image_size, self.num_classes)

    def build(self, arch: Architecture) -> StandaloneNet:
        self.check(arch)
        return build(arch, self.num_classes)


def elite_macro_space(space: NetworkSpace | str, expanded: ExpandedSpace | None = None,
                      image_size: int = 32, num_classes: int = 10) -> EliteMacroSpace:
    """An Elite Space (object or string, e.g. from the ``nss_search`` records) as a macro space;
    with ``expanded`` it is first checked to lie inside that Expanded Search Space."""
    if isinstance(space, str):
        space = NetworkSpace.parse(space)
    if expanded is not None:
        expanded.check(space)
    return EliteMacroSpace(space, image_size, num_classes)
