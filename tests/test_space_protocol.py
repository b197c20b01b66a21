"""One search-space protocol for NASOA's code space and NSS's network spaces (NASLib's plug-in
design): both satisfy :class:`SearchSpace`; each samples, contains, builds, runs and costs its
architectures; mutation gives a different valid architecture; and the random streams are pinned:
the same seed draws the same architectures as before the protocol existed (values recorded from
the code before the refactor)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from nasoa_lib import search
from nasoa_lib.builder import Complexity, complexity
from nasoa_lib.measure import count_macs, count_params
from nasoa_lib.nss import Architecture, NetworkSpace, NSSConfig, build as nss_build, elite_macro_space
from nasoa_lib.nss.evaluate import sampling_nas
from nasoa_lib.nss.flops import architecture_flops, architecture_params
from nasoa_lib.search.evaluate import StepSpec
from nasoa_lib.search.run import SearchSpec, make_proposer
from nasoa_lib.space import BlockSpace, MacroSpace, mutate, parse, parse_macro, sample_arch
from nasoa_lib.space.protocol import SearchSpace

SKELETON = "16_1-2-2-1"


def _block_space() -> search.CodeSpace:
    return search.CodeSpace("block", skeleton=parse_macro(SKELETON))


def _macro_space() -> search.CodeSpace:
    return search.CodeSpace("macro", macro_space=MacroSpace(stem_widths=(16, 32), max_stage_depth=3, max_blocks=8,
                                                            max_doublings=3), blocks=("011-", "10001-"))


SPACES = {
    "nasoa-block": _block_space,
    "nasoa-macro": _macro_space,
    "nss-network": lambda: NetworkSpace.parse("d1-2,3-4,1-2;w9-16,17-24,9-16"),
    "nss-elite": lambda: elite_macro_space("d1-2,3-4,1-2;w9-16,17-24,9-16"),
}


# ------------------------------------------------------------------------------ the protocol


def test_a_partial_space_is_not_a_search_space():
    class SampleOnly:
        def sample(self, rng):
            return 0

    assert not isinstance(SampleOnly(), SearchSpace)


@pytest.mark.parametrize("name", SPACES)
def test_sample_contains_build_forward_complexity_mutate(name):
    space = SPACES[name]()
    assert isinstance(space, SearchSpace)
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    assert space.contains(arch)
    model = space.build(arch, 10, 32)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    cx = space.complexity(arch, 10, 32)
    assert isinstance(cx, Complexity) and cx.params > 0 and cx.macs > 0
    assert cx.params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    child = space.mutate(arch, rng)
    assert child != arch and space.contains(child)


def test_contains_rejects_outsiders():
    assert not _block_space().contains("011-_32_1-2-2-1")  # another skeleton
    assert not _block_space().contains("not a code")
    assert not _macro_space().contains("1-_16_1-1-1-1")  # a block that is not among the best
    assert not _macro_space().contains("011-_64_1-1-1-1")  # stem width outside the macro space
    assert _macro_space().contains(parse("011-_16_1-1-1-1"))
    network = SPACES["nss-network"]()
    assert not network.contains(Architecture((3, 3, 1), (9, 17, 9)))
    assert not network.contains(Architecture((1, 3), (9, 17)))


def test_network_space_mutation_stays_inside_and_rejects_outsiders():
    from nasoa_lib.errors import InvalidNetworkSpace

    space = NetworkSpace.parse("d1-4,1-1,2-3;w1-1,5-9,7-7")
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(50):
        child = space.mutate(arch, rng)
        assert child != arch and space.contains(child)
        diffs = sum(a != b for a, b in zip(arch.depths + arch.widths, child.depths + child.widths))
        assert diffs == 1  # one stage's depth or width
        arch = child
    single = NetworkSpace.parse("d1-1;w4-4")
    assert single.mutate(Architecture((1,), (4,)), rng) == Architecture((1,), (4,))
    with pytest.raises(InvalidNetworkSpace):
        space.mutate(Architecture((9, 1, 2), (1, 5, 7)), rng)


def test_nss_params_formula_matches_the_built_network():
    for arch in (Architecture((1, 1, 1), (1, 1, 1)), Architecture((3, 2, 4), (16, 40, 7))):
        model = nss_build(arch, 100)
        assert architecture_params(arch, 100) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", SPACES)
def test_complexity_is_what_the_built_network_counts(name):
    """``complexity`` (no forward pass) equals torch's count of the network ``build`` returns, at an
    image size other than the default and for another head."""
    space = SPACES[name]()
    rng = np.random.default_rng(2)
    for arch in (space.sample(rng) for _ in range(2)):
        cx = space.complexity(arch, 100, 64)
        model = space.build(arch, 100, 64)
        assert cx.macs == count_macs(model, 64)
        assert cx.params == count_params(model)


# ------------------------------------------------------------------- random streams pinned


def test_seeded_nasoa_samples_and_mutations_are_pinned():
    expected = {
        "block": (
            ["42120-_16_1-2-2-1", "12023-a01a02c12_16_1-2-2-1", "24343-a12a13a23_16_1-2-2-1"],
            ["42120-c12_16_1-2-2-1", "12023-a02c12_16_1-2-2-1", "24343-a12a23_16_1-2-2-1"],
            ["01141-a12_16_1-2-2-1", "23324-c01a23_16_1-2-2-1", "03043-c01c12a13_16_1-2-2-1",
             "42122-_16_1-2-2-1"],
        ),
        "macro": (
            ["10001-_16_1-1-1-212", "10001-_32_141-11-11-1", "011-_32_111-11-12-2"],
            ["10001-_16_1-1-11-212", "10001-_32_41-11-11-1", "011-_32_111-11-21-2"],
            ["10001-_16_11-1-221-1", "10001-_16_41-1-12-1", "10001-_16_4-1-11-11", "011-_32_1-11-124-1"],
        ),
    }
    for name, space in (("block", _block_space()), ("macro", _macro_space())):
        samples, children, distinct = expected[name]
        rng = np.random.default_rng(7)
        drawn = [space.sample(rng) for _ in range(3)]
        assert drawn == samples
        assert [space.mutate(c, rng) for c in drawn] == children
        assert search.sample_distinct(space, 4, np.random.default_rng(3), set()) == distinct
    rng = np.random.default_rng(11)
    joint = [str(sample_arch(rng, BlockSpace(), MacroSpace(max_blocks=12))) for _ in range(2)]
    assert joint == ["14304-a12c02a13_32_41112-1-41111-1", "22443-c12a13_32_21-1-11-1411122"]
    assert [str(mutate(c, rng)) for c in joint] == [
        "14304-a12c02a13_32_41111-1-41111-1", "22443-c12a13a23_32_21-1-11-1411122"]


def test_seeded_nas_proposers_are_pinned():
    """NSGA-II (pymoo with our sampling/mutation) and the random baseline ask the same codes."""
    spec = SearchSpec("t", "nsga2", _macro_space(), population=6, generations=3, offspring=3, t_max_ms=40.0,
                      proxy=search.SearchConfig.from_profile("smoke").proxy, step=StepSpec(8, 1, 1, 1, 32),
                      profile="smoke")
    first = ["10001-_32_2-1-22-111", "10001-_16_1-211-1-11", "011-_32_11-21-12-11", "10001-_32_111-1-24-11",
             "011-_32_11-1-4-112", "10001-_16_121-2-2-1"]
    expected = {
        "nsga2": [first, ["011-_32_1-11-4-112", "10001-_16_2-1-22-111", "011-_32_11-2-12-11"],
                  ["10001-_16_121-2-1-2", "011-_32_1-11-4-12", "10001-_16_1-121-1-11"]],
        "random": [first, ["011-_32_111-2-21-2", "10001-_16_14-1-1-12", "011-_32_11-22-11-21"],
                   ["10001-_16_111-2-411-1", "10001-_16_21-1-111-11", "011-_32_112-2-112-1"]],
    }
    for algorithm, generations in expected.items():
        proposer = make_proposer(replace(spec, algorithm=algorithm))
        for codes_expected in generations:
            codes = proposer.ask()
            assert codes == codes_expected
            records = []
            for c in codes:
                cx = complexity(c, 100, 32)
                records.append({"proxy_top1": float(np.log10(cx.params)) / 10, "step_ms": cx.macs / 1e5})
            proposer.tell(codes, records)


def test_seeded_nss_samples_mutations_and_nas_are_pinned():
    space = NetworkSpace.parse("d1-4,5-8,1-4;w1-32,33-64,1-32")
    drawn = [str(a) for a in space.sample_many(3, np.random.default_rng(5))]
    assert drawn == ["d3,8,1;w26,48,17", "d3,6,4;w2,41,13", "d3,6,1;w2,33,2"]
    elite = elite_macro_space("d1-2,3-4,1-2;w9-16,17-24,9-16")
    rng = np.random.default_rng(9)
    archs = [elite.sample(rng) for _ in range(3)]
    assert [str(a) for a in archs] == ["d1,4,2;w11,17,13", "d2,4,2;w14,24,16", "d2,4,2;w16,17,9"]
    assert [str(elite.mutate(a, rng)) for a in archs] == ["d1,4,1;w11,17,13", "d2,3,2;w14,24,16",
                                                         "d2,4,2;w16,17,10"]

    class FakeEvaluator:
        def flops(self, arch):
            return architecture_flops(arch, 16, 10)

        def error(self, arch, split="test"):
            return float((sum(arch.depths) * 7 + sum(arch.widths) * 3) % 97)

    config = NSSConfig(d_max=4, w_max=32, depth_range=2, width_range=8, image_size=16, datasets=("cifar10",),
                       train_images=128, test_images=32, epochs=3, eval_epochs=1, eval_samples=2,
                       edf_samples=2, batch_size=32, nas_pool=3, nas_max_samples=200)
    nas_space = NetworkSpace.parse("d1-4,1-4,1-4;w1-32,1-32,1-32")
    runs = [sampling_nas(FakeEvaluator(), nas_space, 3293344.0, r, config) for r in range(2)]
    assert [(r.arch, r.samples_to_hit, r.draws, r.evaluated) for r in runs] == [
        ("d3,4,4;w14,3,22", 3, 81, 3), ("d1,2,2;w28,1,24", 1, 17, 3)]
