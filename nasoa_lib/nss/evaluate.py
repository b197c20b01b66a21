"""Super-network evaluation of spaces and NAS inside Elite vs. Expanded spaces (NSS Sec. 4.2-4.3).

Evaluation super network (Sec. 4.2, after OFA [2]): a stand-alone super network, not the search
one, trained on the whole training subset with architectures drawn uniformly from the Expanded
Search Space, the same channel/block masking and the same warm-up (supp. 6.3), SGD with peak
learning rate ``eval_lr`` and cosine decay, on the library's one epoch loop
(:func:`nasoa_lib.train.epoch_loop`) as the search is. An architecture's error is its super-network
top-1 error on the test subset (batch-statistics BN).

NAS inside a space (Sec. 4.3, Tables 1-2). The paper runs the differentiable NAS of FBNetV2 [33]
inside each space (a super-network training per space and target). We run a **sampling-based**
search over the evaluation super network instead, because on a 2-core CPU one more super-network
training per (space, target, run) is out of budget, and because it isolates what Tables 1-2
measure, the space: draw architectures uniformly from the space until ``pool`` of them fall within
+-10 % of the target (at most ``max_samples`` draws), evaluate those on the super network and keep
the lowest error on the *validation* subset (training-split images outside the training subset);
the table reports the kept network's *test* error, so no choice is made on test. ``#samples`` is the paper's criterion, the draws until the first architecture
within +-10 %; when none is found the closest one is kept and ``#samples`` is reported as
``> max_samples``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from nasoa_lib.checkpoint import load_checkpoint, restore, resume, save_checkpoint
from nasoa_lib.nss.flops import architecture_flops
from nasoa_lib.nss.search import (
    NSSConfig,
    NSSData,
    SuperNetBatch,
    set_lr,
    supernet_batches,
    warmup_architecture,
    weight_step,
)
from nasoa_lib.nss.spaces import Architecture, NetworkSpace
from nasoa_lib.nss.supernet import SuperNet
from nasoa_lib.schedule import cosine_lr
from nasoa_lib.space.protocol import SearchSpace
from nasoa_lib.train import EpochRecords, epoch_loop

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

EVALNET_KIND = "nss_evalnet"
SAMPLES_KIND = "nss_samples"
NAS_KIND = "nss_nas"


def evalnet_spec(config: NSSConfig, dataset: str) -> dict[str, Any]:
    keys = ("d_max", "w_max", "image_size", "train_images", "eval_epochs", "warmup_fraction",
            "batch_size", "eval_lr", "weight_lr_min", "momentum", "weight_decay", "seed")
    return {"stage": "nss-evalnet", "dataset": dataset, **{k: getattr(config, k) for k in keys}}


def train_evaluation_supernet(config: NSSConfig, data: NSSData, store: ArtifactStore,
                              progress: Callable | None = None, *,
                              profile: str | None = None) -> tuple[SuperNet, str]:
    """Train (or load) the evaluation super network of one dataset; checkpoint every epoch."""
    from nasoa_lib.store import spec_key

    key = spec_key(evalnet_spec(config, data.name))
    torch.manual_seed(config.seed + 17)
    net = SuperNet(config.expanded, data.num_classes)
    if store.has(EVALNET_KIND, key):
        restore(load_checkpoint(store, EVALNET_KIND, key), net=net)
        return net, key
    opt = torch.optim.SGD(net.parameters(), lr=config.eval_lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    start, history = resume(store, EVALNET_KIND, key, net=net, opt=opt)
    x = torch.cat([data.x_weights, data.x_arch])
    y = torch.cat([data.y_weights, data.y_arch])
    spe = len(y) // config.batch_size
    total = spe * config.eval_epochs
    warm = spe * int(round(config.warmup_fraction * config.eval_epochs))
    expanded_space = config.expanded.as_space()

    def epoch_batches(epoch: int) -> list[SuperNetBatch]:
        return supernet_batches(len(y), config.batch_size, epoch * spe,
                                np.random.default_rng([config.seed, 5, epoch]),
                                torch.Generator().manual_seed(config.seed * 31 + epoch))

    def train_step(batch: SuperNetBatch) -> float:
        set_lr(opt, cosine_lr(batch.step, total, config.eval_lr, config.weight_lr_min))
        arch = expanded_space.sample(batch.rng)
        if batch.step < warm:
            arch = warmup_architecture(arch, config.expanded, 1.0 - batch.step / warm, batch.rng)
        return weight_step(net, opt, x[batch.idx], y[batch.idx], arch, batch.gen)

    def log_and_checkpoint(epoch: EpochRecords[float]) -> None:
        history.append({"epoch": epoch.epoch, "train_loss": float(np.mean(epoch.records))})
        save_checkpoint(store, EVALNET_KIND, key, epoch.epoch, history, net=net, opt=opt)

    epoch_loop(range(start, config.eval_epochs), epoch_batches, train_step,
               on_epoch_end=log_and_checkpoint, progress=progress)
    from nasoa_lib.provenance import provenance

    store.put(EVALNET_KIND, key, {"dataset": data.name, "history": history},
              provenance=provenance(profile or "unknown", seed=config.seed, device="cpu"))
    return net, key


class SuperNetEvaluator:
    """Error (%) of architectures on the test subset (or, ``split="val"``, the validation subset on
    which the NAS chooses), memoised per architecture and split."""

    def __init__(self, net: SuperNet, data: NSSData, batch_size: int) -> None:
        self.net, self.data, self.batch_size = net, data, batch_size
        self.cache: dict[tuple[str, str], float] = {}

    @torch.no_grad()
    def error(self, arch: Architecture, split: str = "test") -> float:
        key = (split, str(arch))
        if key not in self.cache:
            self.net.eval()
            wrong = 0
            x, y = (self.data.x_val, self.data.y_val) if split == "val" else (self.data.x_test, self.data.y_test)
            for i in range(0, len(y), self.batch_size):
                pred = self.net(x[i : i + self.batch_size], arch).argmax(1)
                wrong += int((pred != y[i : i + self.batch_size]).sum())
            self.cache[key] = 100.0 * wrong / len(y)
        return self.cache[key]

    def flops(self, arch: Architecture) -> int:
        return architecture_flops(arch, self.data.x_test.shape[-1], self.data.num_classes)


def evaluate_samples(evaluator: SuperNetEvaluator, space: NetworkSpace, n: int, seed: int,
                     store, evalnet_key: str, label: str,
                     progress: Callable | None = None) -> list[dict]:
    """n architectures drawn uniformly from ``space`` with FLOPs and error (Figs 3-4); cached."""
    from nasoa_lib.store import spec_key

    key = spec_key({"evalnet": evalnet_key, "space": str(space), "n": n, "seed": seed, "kind": "uniform"})
    found = store.get(SAMPLES_KIND, key)
    if found is not None:
        return found["rows"]
    rng = np.random.default_rng([seed, 11])
    rows = []
    for arch in space.sample_many(n, rng):
        rows.append({"space": label, "space_code": str(space), "arch": str(arch),
                     "flops": evaluator.flops(arch), "error": evaluator.error(arch)})
        if progress:
            progress(1)
    store.put(SAMPLES_KIND, key, {"rows": rows})
    return rows


def within(flops: float, target: float, tolerance: float) -> bool:
    return abs(flops / target - 1.0) <= tolerance


def sample_within_tolerance(evaluator: SuperNetEvaluator, space: SearchSpace[Architecture], target: float,
                            tolerance: float, n: int, max_draws: int, seed: int, store: ArtifactStore,
                            evalnet_key: str, label: str) -> dict:
    """Up to n architectures of ``space`` within +-tolerance of ``target`` by rejection (Fig 5d)."""
    from nasoa_lib.store import spec_key

    key = spec_key({"evalnet": evalnet_key, "space": str(space), "n": n, "seed": seed,
                    "target": round(target, 1), "tol": tolerance, "max": max_draws, "kind": "edf"})
    found = store.get(SAMPLES_KIND, key)
    if found is not None:
        return found
    rng = np.random.default_rng([seed, 13])
    rows, draws = [], 0
    while len(rows) < n and draws < max_draws:
        arch = space.sample(rng)
        draws += 1
        f = evaluator.flops(arch)
        if within(f, target, tolerance):
            rows.append({"space": label, "space_code": str(space), "arch": str(arch), "flops": f,
                         "error": evaluator.error(arch), "target": target})
    result = {"rows": rows, "draws": draws}
    store.put(SAMPLES_KIND, key, result)
    return result


@dataclass(frozen=True)
class NASResult:
    """One NAS run inside a space for one target (a row of Tables 1-2)."""

    space: str
    target: float
    run: int
    arch: str
    flops: float
    deviation: float  # |FLOPs / target - 1|
    samples_to_hit: int | None  # None: no architecture within tolerance in max_samples draws
    draws: int
    evaluated: int
    error: float  # test error (%) of the chosen network
    val_error: float  # validation error (%) on which it was chosen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sampling_nas(evaluator: SuperNetEvaluator, space: SearchSpace[Architecture], target: float, run: int,
                 config: NSSConfig) -> NASResult:
    """Sampling-based NAS inside ``space`` over the evaluation super network (module docstring); it
    only draws from the space (the :class:`~nasoa_lib.space.protocol.SearchSpace` protocol)."""
    rng = np.random.default_rng([config.seed, 17, run, int(target) % (2**31)])
    hits: list[Architecture] = []
    first_hit, draws = None, 0
    closest, closest_dev = None, float("inf")
    while len(hits) < config.nas_pool and draws < config.nas_max_samples:
        arch = space.sample(rng)
        draws += 1
        dev = abs(evaluator.flops(arch) / target - 1.0)
        if dev < closest_dev:
            closest, closest_dev = arch, dev
        if dev <= config.tolerance:
            hits.append(arch)
            first_hit = first_hit or draws
    candidates = hits or [closest]
    best = min(candidates, key=lambda a: evaluator.error(a, "val"))
    f = evaluator.flops(best)
    return NASResult(str(space), float(target), run, str(best), float(f), abs(f / target - 1.0),
                     first_hit, draws, len(candidates), evaluator.error(best), evaluator.error(best, "val"))


def run_nas(evaluator: SuperNetEvaluator, space: NetworkSpace, target: float, config: NSSConfig,
            store, evalnet_key: str) -> list[dict]:
    """``config.nas_runs`` NAS runs (Tables 1-2 report their mean); cached."""
    from nasoa_lib.store import spec_key

    key = spec_key({"evalnet": evalnet_key, "space": str(space), "target": round(target, 1),
                    "runs": config.nas_runs, "pool": config.nas_pool, "max": config.nas_max_samples,
                    "tol": config.tolerance, "seed": config.seed, "select_on": "validation",
                    "val_images": config.validation_images})
    found = store.get(NAS_KIND, key)
    if found is not None:
        return found["runs"]
    runs = [sampling_nas(evaluator, space, target, r, config).to_dict() for r in range(config.nas_runs)]
    store.put(NAS_KIND, key, {"runs": runs})
    return runs
