"""Expanded Search Space, network spaces (Elite Spaces) and architectures as values (NSS Sec. 3.2).

A network of the Expanded Search Space (NSS Sec. 3.2, supplementary 6.1, Figs 7-8) is a 3x3 stem
conv with 16 channels, ``N = 3`` stages of identical basic residual blocks (stage ``i`` has depth
``d_i <= d_max`` and width ``w_i <= w_max``), global average pooling and a linear head. A *network
space* ``A = {d_i^A, w_i^A}`` (Sec. 3.3) is a contiguous range of depths and of widths per stage; an
*Elite Space* is one cell of the grid of ``depth_range`` x ``width_range`` ranges (Sec. 4.1: 4
depths x 32 widths with ``d_max = 16``, ``w_max = 512``, i.e. ``(16/4)^3 x (512/32)^3 = 2^18``
candidate spaces).

Strings (one grammar, ``str`` and ``parse`` are exact inverses)::

    space        := "d" ranges ";w" ranges        e.g.  d1-4,5-8,1-4;w1-32,33-64,1-32
    ranges       := lo "-" hi ("," lo "-" hi)*    one inclusive range per stage
    architecture := "d" ints ";w" ints            e.g.  d2,7,3;w24,40,17

Our choices where the paper is silent: stage strides are 1, 2, 2 (CIFAR ResNet convention); the first
block of every stage has a 1x1 conv + BN projection shortcut (its input width differs from its
output width for almost every architecture, and one rule keeps the super network and the stand-alone
networks identical).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import InvalidNetworkSpace

if TYPE_CHECKING:
    from nasoa_lib.builder import Complexity
    from nasoa_lib.nss.supernet import StandaloneNet

NUM_STAGES = 3
STEM_WIDTH = 16
STAGE_STRIDES = (1, 2, 2)

_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")
_INT_RE = re.compile(r"^\d+$")


def _split_two(text: str, what: str, example: str) -> tuple[str, str]:
    if not isinstance(text, str):
        raise InvalidNetworkSpace(f"{what} must be a string, got {type(text).__name__}",
                                  hint=f"write it like {example!r}")
    parts = text.strip().split(";")
    if len(parts) != 2 or not parts[0].startswith("d") or not parts[1].startswith("w"):
        raise InvalidNetworkSpace(f"cannot parse {what} {text!r}: expected 'd...;w...'",
                                  hint=f"write it like {example!r}")
    return parts[0][1:], parts[1][1:]


@dataclass(frozen=True)
class Architecture:
    """One network of the Expanded Search Space: depth and width of each stage (NSS Sec. 3.2)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.depths) != len(self.widths) or not self.depths:
            raise InvalidNetworkSpace(
                f"architecture has {len(self.depths)} depths and {len(self.widths)} widths",
                hint=f"give one depth and one width per stage ({NUM_STAGES} stages)")
        for i, (d, w) in enumerate(zip(self.depths, self.widths), start=1):
            if d < 1 or w < 1:
                raise InvalidNetworkSpace(f"stage {i}: depth {d}, width {w}; both must be >= 1",
                                          hint="every stage has at least one block of one channel")

    def __str__(self) -> str:
        return "d" + ",".join(map(str, self.depths)) + ";w" + ",".join(map(str, self.widths))

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        """Inverse of ``str``: ``'d2,7,3;w24,40,17'``."""
        example = "d2,7,3;w24,40,17"
        d_text, w_text = _split_two(text, "architecture", example)
        values = []
        for part in (d_text, w_text):
            items = part.split(",")
            if not all(_INT_RE.match(x) for x in items):
                raise InvalidNetworkSpace(f"cannot parse architecture {text!r}: {part!r} is not a "
                                          "comma-separated list of integers", hint=f"e.g. {example!r}")
            values.append(tuple(int(x) for x in items))
        return cls(values[0], values[1])

    def to_dict(self) -> dict[str, Any]:
        return {"depths": list(self.depths), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Architecture":
        return cls(tuple(data["depths"]), tuple(data["widths"]))


def _uniform_moments(lo: int, hi: int) -> tuple[float, float]:
    """E[x] and E[x^2] of x uniform on the integers lo..hi."""
    n = hi - lo + 1

    def s2(k: int) -> int:
        return k * (k + 1) * (2 * k + 1) // 6

    return (lo + hi) / 2.0, (s2(hi) - s2(lo - 1)) / n


@dataclass(frozen=True)
class NetworkSpace:
    """A network space: an inclusive depth range and width range per stage (NSS Sec. 3.3).

    Architectures of the space are uniformly distributed over it (Eq. 3 and the derivation in
    supplementary 6.2), so its expected FLOPs and its samples follow from the ranges alone.
    It is a :class:`~nasoa_lib.space.protocol.SearchSpace` of :class:`Architecture` values
    (``sample``, ``mutate``, ``contains``, ``build``, ``complexity``), as NASOA's code space is.
    """

    depths: tuple[tuple[int, int], ...]
    widths: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple((int(a), int(b)) for a, b in self.depths))
        object.__setattr__(self, "widths", tuple((int(a), int(b)) for a, b in self.widths))
        if len(self.depths) != len(self.widths) or not self.depths:
            raise InvalidNetworkSpace(
                f"space has {len(self.depths)} depth ranges and {len(self.widths)} width ranges",
                hint="give one depth range and one width range per stage")
        for i, ((dlo, dhi), (wlo, whi)) in enumerate(zip(self.depths, self.widths), start=1):
            for kind, lo, hi in (("depth", dlo, dhi), ("width", wlo, whi)):
                if lo < 1:
                    raise InvalidNetworkSpace(f"stage {i} {kind} range {lo}-{hi} starts below 1",
                                              hint=f"{kind}s are 1 or more")
                if hi < lo:
                    raise InvalidNetworkSpace(f"stage {i} {kind} range {lo}-{hi} is empty",
                                              hint="write ranges as lo-hi with lo <= hi")

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    def __str__(self) -> str:
        fmt = lambda rs: ",".join(f"{a}-{b}" for a, b in rs)  # noqa: E731
        return f"d{fmt(self.depths)};w{fmt(self.widths)}"

    @classmethod
    def parse(cls, text: str) -> "NetworkSpace":
        """Inverse of ``str``: ``'d1-4,5-8,1-4;w1-32,33-64,1-32'``."""
        example = "d1-4,5-8,1-4;w1-32,33-64,1-32"
        d_text, w_text = _split_two(text, "network space", example)
        values = []
        for part in (d_text, w_text):
            ranges = []
            for item in part.split(","):
                m = _RANGE_RE.match(item)
                if not m:
                    raise InvalidNetworkSpace(f"cannot parse network space {text!r}: {item!r} is "
                                              "not a range lo-hi", hint=f"e.g. {example!r}")
                ranges.append((int(m.group(1)), int(m.group(2))))
            values.append(tuple(ranges))
        return cls(values[0], values[1])

    def to_dict(self) -> dict[str, Any]:
        return {"space": str(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkSpace":
        return cls.parse(data["space"])

    @property
    def size(self) -> int:
        """Number of architectures in the space."""
        n = 1
        for (dlo, dhi), (wlo, whi) in zip(self.depths, self.widths):
            n *= (dhi - dlo + 1) * (whi - wlo + 1)
        return n

    def contains(self, arch: Architecture) -> bool:
        if len(arch.depths) != self.num_stages:
            return False
        return all(lo <= d <= hi for d, (lo, hi) in zip(arch.depths, self.depths)) and all(
            lo <= w <= hi for w, (lo, hi) in zip(arch.widths, self.widths))

    def sample(self, rng: np.random.Generator) -> Architecture:
        """One architecture drawn uniformly from the space (Eq. 3, P_theta uniform; supp. 6.2)."""
        depths = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in self.depths)
        widths = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in self.widths)
        return Architecture(depths, widths)

    def sample_many(self, n: int, rng: np.random.Generator) -> list[Architecture]:
        return [self.sample(rng) for _ in range(n)]

    def check(self, arch: Architecture) -> None:
        """Raise :class:`InvalidNetworkSpace` unless ``arch`` lies in the space."""
        if not self.contains(arch):
            raise InvalidNetworkSpace(f"architecture {arch} is outside the space {self}",
                                      hint="sample or mutate with this space")

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one stage's depth or width to another value of its range (the result differs
        from ``arch`` unless the space holds a single architecture); the mutation an evolutionary
        search such as NASOA's applies inside an Elite Space (NSS Sec. 4.3)."""
        self.check(arch)
        if self.size == 1:
            return arch
        while True:
            stage = int(rng.integers(self.num_stages))
            field = "depths" if rng.random() < 0.5 else "widths"
            lo, hi = getattr(self, field)[stage]
            if hi == lo:
                continue
            values = list(getattr(arch, field))
            choices = [v for v in range(lo, hi + 1) if v != values[stage]]
            values[stage] = int(rng.choice(choices))
            return Architecture(**{**{"depths": arch.depths, "widths": arch.widths}, field: tuple(values)})

    def build(self, arch: Architecture, num_classes: int, image_size: int = 32) -> StandaloneNet:
        """The stand-alone network of ``arch`` (:func:`nasoa_lib.nss.supernet.build`); it pools
        globally, so ``image_size`` does not change it."""
        from nasoa_lib.nss.supernet import build

        self.check(arch)
        return build(arch, num_classes)

    def complexity(self, arch: Architecture, num_classes: int, image_size: int = 32) -> Complexity:
        """Parameters and multiply-adds of :meth:`build` (:mod:`nasoa_lib.nss.flops`, Eq. 4's count)."""
        from nasoa_lib.builder import Complexity
        from nasoa_lib.nss.flops import architecture_flops, architecture_params

        return Complexity(architecture_params(arch, num_classes), architecture_flops(arch, image_size, num_classes))

    def moments(self) -> dict[str, np.ndarray]:
        """Per-stage E[d], E[w], E[w^2] of a uniformly drawn architecture (inputs of the FLOPs model)."""
        ed = np.array([(a + b) / 2.0 for a, b in self.depths])
        mw = np.array([_uniform_moments(a, b) for a, b in self.widths])
        return {"d": ed, "w": mw[:, 0], "w2": mw[:, 1]}


@dataclass(frozen=True)
class ExpandedSpace:
    """The Expanded Search Space and its grid of candidate Elite Spaces (NSS Sec. 3.2, 4.1).

    ``depth_range`` / ``width_range`` are the sizes of one Elite Space's contiguous ranges (paper: 4
    and 32); they must divide ``d_max`` / ``w_max`` so the grid tiles the space.
    """

    d_max: int = 16
    w_max: int = 512
    depth_range: int = 4
    width_range: int = 32
    num_stages: int = NUM_STAGES
    stem_width: int = STEM_WIDTH

    def __post_init__(self) -> None:
        if self.num_stages != len(STAGE_STRIDES):
            raise InvalidNetworkSpace(f"num_stages={self.num_stages}; the Expanded Search Space has "
                                      f"{len(STAGE_STRIDES)} stages", hint="use num_stages=3")
        for name, total, step in (("depth", self.d_max, self.depth_range),
                                  ("width", self.w_max, self.width_range)):
            if total < 1 or step < 1:
                raise InvalidNetworkSpace(f"{name}: max {total}, range {step}; both must be >= 1",
                                          hint="paper: d_max 16 / range 4, w_max 512 / range 32")
            if total % step:
                raise InvalidNetworkSpace(
                    f"{name} range {step} does not divide the maximum {total}",
                    hint="choose range sizes that tile 1..max (paper: 16/4 and 512/32)")

    @property
    def num_depth_choices(self) -> int:
        return self.d_max // self.depth_range

    @property
    def num_width_choices(self) -> int:
        return self.w_max // self.width_range

    @property
    def num_spaces(self) -> int:
        """Candidate Elite Spaces: (d_max/depth_range)^N x (w_max/width_range)^N (Sec. 4.1)."""
        return (self.num_depth_choices * self.num_width_choices) ** self.num_stages

    @property
    def num_architectures(self) -> int:
        """(d_max x w_max)^N (Sec. 3.2)."""
        return (self.d_max * self.w_max) ** self.num_stages

    def as_space(self) -> NetworkSpace:
        """The whole Expanded Search Space as a :class:`NetworkSpace` (the baseline of Figs 3-5)."""
        return NetworkSpace(((1, self.d_max),) * self.num_stages, ((1, self.w_max),) * self.num_stages)

    def depth_choice(self, j: int) -> tuple[int, int]:
        return (j * self.depth_range + 1, (j + 1) * self.depth_range)

    def width_choice(self, j: int) -> tuple[int, int]:
        return (j * self.width_range + 1, (j + 1) * self.width_range)

    def space_from_choices(self, depth_idx: Sequence[int], width_idx: Sequence[int]) -> NetworkSpace:
        """The grid cell with depth range ``depth_idx[i]`` and width range ``width_idx[i]`` per stage."""
        if len(depth_idx) != self.num_stages or len(width_idx) != self.num_stages:
            raise InvalidNetworkSpace(f"need {self.num_stages} depth and width choices, got "
                                      f"{len(depth_idx)} and {len(width_idx)}")
        for kind, idx, n in (("depth", depth_idx, self.num_depth_choices),
                             ("width", width_idx, self.num_width_choices)):
            for j in idx:
                if not 0 <= int(j) < n:
                    raise InvalidNetworkSpace(f"{kind} choice {j} outside 0..{n - 1}",
                                              hint=f"the grid has {n} {kind} ranges per stage")
        return NetworkSpace(tuple(self.depth_choice(int(j)) for j in depth_idx),
                            tuple(self.width_choice(int(j)) for j in width_idx))

    def choices_of(self, space: NetworkSpace) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Inverse of :meth:`space_from_choices`; a space off the grid is an error."""
        self.check(space)
        d_idx, w_idx = [], []
        for (dlo, dhi), (wlo, whi) in zip(space.depths, space.widths):
            j, k = (dlo - 1) // self.depth_range, (wlo - 1) // self.width_range
            if self.depth_choice(j) != (dlo, dhi) or self.width_choice(k) != (wlo, whi):
                raise InvalidNetworkSpace(
                    f"space {space} is not a cell of the Elite Space grid",
                    hint=f"depth ranges are multiples of {self.depth_range}, widths of {self.width_range}")
            d_idx.append(j)
            w_idx.append(k)
        return tuple(d_idx), tuple(w_idx)

    def check(self, space: NetworkSpace | Architecture) -> None:
        """Raise :class:`InvalidNetworkSpace` unless ``space`` lies inside the Expanded Search Space."""
        if isinstance(space, Architecture):
            depths = [(d, d) for d in space.depths]
            widths = [(w, w) for w in space.widths]
        else:
            depths, widths = list(space.depths), list(space.widths)
        if len(depths) != self.num_stages:
            raise InvalidNetworkSpace(f"{space} has {len(depths)} stages; the Expanded Search Space "
                                      f"has {self.num_stages}")
        for i, ((dlo, dhi), (wlo, whi)) in enumerate(zip(depths, widths), start=1):
            if dhi > self.d_max:
                raise InvalidNetworkSpace(f"{space}: stage {i} depth {dhi} exceeds d_max={self.d_max}",
                                          hint=f"depths must lie in 1..{self.d_max}")
            if whi > self.w_max:
                raise InvalidNetworkSpace(f"{space}: stage {i} width {whi} exceeds w_max={self.w_max}",
                                          hint=f"widths must lie in 1..{self.w_max}")

    def to_dict(self) -> dict[str, Any]:
        return {"d_max": self.d_max, "w_max": self.w_max, "depth_range": self.depth_range,
                "width_range": self.width_range, "num_stages": self.num_stages,
                "stem_width": self.stem_width}
