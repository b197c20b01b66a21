"""Network Space Search: Gumbel-softmax over space choices on a weight-sharing super network.

NSS Sec. 3.3-3.4 and supplementary 6.3-6.4: the space distribution P_Theta is a categorical per
stage over the depth ranges and one over the width ranges of the Elite Space grid. Each step draws a
space with the hard Gumbel-softmax (temperature annealed linearly 5 -> 0.001), an architecture
uniformly inside it (Eq. 3, supp. 6.2), and minimises Eq. 5, task loss + lambda * |FLOPs(A)/F_t - 1|,
where FLOPs(A) is the expected FLOPs of the drawn space (exact polynomial in the gated moments, see
:mod:`nasoa_lib.nss.flops`). Weights (train half) and Theta (validation half) alternate as in DARTS
[21], first order. The first ``warmup_fraction`` of the epochs train weights only, with all channels /
all blocks of a stage enabled with a probability annealed linearly 1 -> 0 (filter and block warm-up,
supp. 6.3.2, from TuNAS [1]). Afterwards ``n = 5`` spaces are drawn from P_Theta and the one whose
expected FLOPs is closest to the target is the Elite Space.

Gradient path: as GDAS [6] (which NSS cites for the Gumbel-softmax), only the drawn path is computed;
its straight-through gate (value 1) multiplies the block / stage outputs so the task loss reaches the
logits. The warm-up is the same for every target, so it is computed once and shared.

Both stages (and the evaluation super network of :mod:`nasoa_lib.nss.evaluate`) run on the
library's one epoch loop, :func:`nasoa_lib.train.epoch_loop`: each epoch's batches
(:func:`supernet_batches`) carry that epoch's own numpy and torch generators, so an epoch's draws
do not depend on earlier epochs and a run resumed at its last finished epoch repeats them exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasoa_lib.checkpoint import load_checkpoint, restore, resume, save_checkpoint
from nasoa_lib.data import load_dataset, random_flip_crop, to_tensor
from nasoa_lib.errors import InvalidNetworkSpace
from nasoa_lib.nss.flops import expected_flops_from_moments, space_expected_flops
from nasoa_lib.nss.spaces import Architecture, ExpandedSpace, NetworkSpace, _uniform_moments
from nasoa_lib.nss.supernet import SuperNet
from nasoa_lib.paper import NSS_PAPER_ARCH_LR as PAPER_ARCH_LR
from nasoa_lib.paper import NSS_PAPER_ARCH_STEPS as PAPER_ARCH_STEPS
from nasoa_lib.paper import NSS_PAPER_EXPANDED_SPACE
from nasoa_lib.paper import NSS_PAPER_IMAGE_SIZE as PAPER_IMAGE_SIZE
from nasoa_lib.schedule import cosine_lr
from nasoa_lib.train import EpochRecords, epoch_loop

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore

log = logging.getLogger(__name__)

PAPER_EXPANDED = ExpandedSpace(**NSS_PAPER_EXPANDED_SPACE)
"""The NSS paper's Expanded Search Space (:data:`nasoa_lib.paper.NSS_PAPER_EXPANDED_SPACE`)."""


@dataclass(frozen=True)
class NSSConfig:
    """Sizes of the NSS study (profile section ``nss``); algorithm constants default to the paper's.

    Shrunk by profile: ``d_max``, ``w_max``, range sizes, ``image_size``, image counts, epochs,
    sample counts. Kept: 3 stages, stem 16, warm-up 30 % of epochs (15 of 50, supp. 6.4.1; supp.
    6.3.2 says 25 %, we follow the stated epochs), Gumbel temperature 5 -> 0.001, n = 5 space
    samples, +-10 % tolerance, 3 NAS runs, DARTS optimiser settings (weights: SGD 0.025 -> 0.001
    cosine, momentum 0.9, weight decay 3e-4; Theta: Adam betas (0.5, 0.999), weight decay 1e-3).
    ``lambda_flops`` is not stated by the paper; 1.0 weighs a 10 % FLOPs miss like a 0.1 nat
    cross-entropy change. ``arch_lr = None`` scales DARTS' 3e-4 (:func:`scaled_arch_lr`).
    ``eval_samples``: networks drawn uniformly from the Expanded Space for the error-vs-FLOPs
    relation (Figs 3-4, blue); ``elite_samples`` (default ``eval_samples``): networks drawn from each
    Elite Space for the same figures (orange).
    ``val_images`` (default ``test_images``): training-split images outside the training subset on
    which the sampling NAS chooses its network; the test subset only reports the chosen one's error
    (selection never on test).
    ``eval_lr``: peak SGD learning rate of the evaluation super network, which the paper trains
    "carefully with state-of-the-art methods" (Sec. 4.2) without a recipe; 0.1 (ResNet's) learned
    clearly faster than DARTS' 0.025 in our short trainings (median sampled error 80 % vs 85 % on
    CIFAR-10 after 4 epochs of 2000 images).
    """

    d_max: int
    w_max: int
    depth_range: int
    width_range: int
    image_size: int
    datasets: tuple[str, ...]
    train_images: int
    test_images: int
    epochs: int
    eval_epochs: int
    eval_samples: int
    edf_samples: int
    paper_targets_mf: tuple[float, ...] = (600.0, 4000.0, 24000.0)
    warmup_fraction: float = 0.3
    batch_size: int = 64
    eval_batch: int = 250
    tau_start: float = 5.0
    tau_end: float = 0.001
    lambda_flops: float = 1.0
    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float | None = None
    eval_lr: float = 0.1
    arch_weight_decay: float = 1e-3
    n_space_samples: int = 5
    tolerance: float = 0.1
    nas_runs: int = 3
    nas_pool: int = 5
    nas_max_samples: int = 2000
    elite_samples: int | None = None
    val_images: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.expanded  # validates the grid
        for name in ("eval_samples", "edf_samples", "nas_runs", "nas_pool"):
            if getattr(self, name) < 1:
                raise InvalidNetworkSpace(f"{name}={getattr(self, name)}; must be >= 1",
                                          hint=f"set nss: {name} in configs/profiles.yaml to a positive count")
        if self.val_images is not None and self.val_images < 1:
            raise InvalidNetworkSpace(f"val_images={self.val_images}; must be >= 1 (or omitted)",
                                      hint="omit val_images to hold out as many training-split images as test_images")
        if self.elite_samples is not None and self.elite_samples < 1:
            raise InvalidNetworkSpace(f"elite_samples={self.elite_samples}; must be >= 1 (or omitted)",
                                      hint="omit elite_samples to draw eval_samples networks per Elite Space")
        if self.train_images < 2 * self.batch_size:
            raise InvalidNetworkSpace(f"train_images={self.train_images} < 2 batches",
                                      hint="NSS splits the training images into two halves")

    @property
    def expanded(self) -> ExpandedSpace:
        return ExpandedSpace(self.d_max, self.w_max, self.depth_range, self.width_range)

    @property
    def validation_images(self) -> int:
        return self.test_images if self.val_images is None else self.val_images

    @property
    def samples_per_elite_space(self) -> int:
        return self.eval_samples if self.elite_samples is None else self.elite_samples

    @property
    def warmup_epochs(self) -> int:
        """Weights-only epochs (paper: 15 of 50)."""
        return int(round(self.warmup_fraction * self.epochs))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


def grid_flops_range(expanded: ExpandedSpace, image_size: int, num_classes: int) -> tuple[float, float]:
    """Expected FLOPs of the smallest and the largest Elite Space of the grid."""
    s = expanded.num_stages
    lo = expanded.space_from_choices((0,) * s, (0,) * s)
    hi = expanded.space_from_choices((expanded.num_depth_choices - 1,) * s,
                                     (expanded.num_width_choices - 1,) * s)
    return (space_expected_flops(lo, image_size, num_classes),
            space_expected_flops(hi, image_size, num_classes))


def scaled_targets(paper_targets_mf: tuple[float, ...], expanded: ExpandedSpace, image_size: int,
                   num_classes: int) -> list[float]:
    """Map the paper's FLOPs targets to ours by their position on the log scale between the smallest
    and largest grid space (the paper's 600MF sits near its smallest spaces, 24GF at ~1/4 of its
    largest); a plain ratio would put small targets below our smallest network."""
    plo, phi = grid_flops_range(PAPER_EXPANDED, PAPER_IMAGE_SIZE, 10)
    lo, hi = grid_flops_range(expanded, image_size, num_classes)
    out = []
    for t in paper_targets_mf:
        pos = (math.log(t * 1e6) - math.log(plo)) / (math.log(phi) - math.log(plo))
        out.append(float(math.exp(math.log(lo) + pos * (math.log(hi) - math.log(lo)))))
    return out


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NSSData:
    """Training subset split in halves (weights / Theta, Sec. 4.1), a validation subset (further
    training-split images, where the NAS chooses) and a test subset (where errors are reported)."""

    name: str
    num_classes: int
    x_weights: torch.Tensor
    y_weights: torch.Tensor
    x_arch: torch.Tensor
    y_arch: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def load_nss_data(name: str, config: NSSConfig) -> NSSData:
    ds = load_dataset(name)
    rng = np.random.default_rng(config.seed)
    n = min(config.train_images, len(ds.y_train))
    order = rng.permutation(len(ds.y_train))
    idx, vidx = order[:n], order[n : n + config.validation_images]
    tidx = rng.permutation(len(ds.y_test))[: min(config.test_images, len(ds.y_test))]
    # idx stays in random order: the prepared files are sorted by class, and both halves must
    # hold every class
    x = to_tensor(ds.x_train[idx], config.image_size)
    y = torch.from_numpy(ds.y_train[idx].astype(np.int64))
    half = n // 2
    return NSSData(name, ds.num_classes, x[:half], y[:half], x[half:], y[half:],
                   to_tensor(ds.x_test[tidx], config.image_size),
                   torch.from_numpy(ds.y_test[tidx].astype(np.int64)),
                   to_tensor(ds.x_train[vidx], config.image_size),
                   torch.from_numpy(ds.y_train[vidx].astype(np.int64)))


# ---------------------------------------------------------------------------------------------
# The space distribution P_Theta
# ---------------------------------------------------------------------------------------------


@dataclass
class GumbelDraw:
    """One hard Gumbel-softmax draw: the chosen grid cell and its straight-through one-hots."""

    depth_idx: tuple[int, ...]
    width_idx: tuple[int, ...]
    depth_onehot: torch.Tensor  # (S, n_d), values one-hot, gradients of the soft sample
    width_onehot: torch.Tensor  # (S, n_w)

    @property
    def depth_gates(self) -> list[torch.Tensor]:
        return [self.depth_onehot[i, j] for i, j in enumerate(self.depth_idx)]

    @property
    def width_gates(self) -> list[torch.Tensor]:
        return [self.width_onehot[i, j] for i, j in enumerate(self.width_idx)]


def gumbel_softmax_hard(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard Gumbel-softmax [15] per row: (straight-through one-hot, soft sample)."""
    u = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1 - 1e-10)
    gumbels = -torch.log(-torch.log(u))
    soft = F.softmax((logits + gumbels) / tau, dim=-1)
    index = soft.argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return hard - soft.detach() + soft, soft


class SpaceDistribution(nn.Module):
    """P_Theta over the Elite Space grid: independent categoricals per stage (Eq. 2)."""

    def __init__(self, expanded: ExpandedSpace) -> None:
        super().__init__()
        self.expanded = expanded
        s = expanded.num_stages
        self.depth_logits = nn.Parameter(torch.zeros(s, expanded.num_depth_choices))
        self.width_logits = nn.Parameter(torch.zeros(s, expanded.num_width_choices))
        dm = [_uniform_moments(*expanded.depth_choice(j)) for j in range(expanded.num_depth_choices)]
        wm = [_uniform_moments(*expanded.width_choice(j)) for j in range(expanded.num_width_choices)]
        self.register_buffer("depth_mean", torch.tensor([m[0] for m in dm]))
        self.register_buffer("width_mean", torch.tensor([m[0] for m in wm]))
        self.register_buffer("width_sq", torch.tensor([m[1] for m in wm]))

    def draw(self, tau: float, generator: torch.Generator | None = None) -> GumbelDraw:
        hd, _ = gumbel_softmax_hard(self.depth_logits, tau, generator)
        hw, _ = gumbel_softmax_hard(self.width_logits, tau, generator)
        return GumbelDraw(tuple(hd.argmax(-1).tolist()), tuple(hw.argmax(-1).tolist()), hd, hw)

    def space_of(self, draw: GumbelDraw) -> NetworkSpace:
        return self.expanded.space_from_choices(draw.depth_idx, draw.width_idx)

    def expected_flops(self, draw: GumbelDraw, image_size: int, num_classes: int) -> torch.Tensor:
        """FLOPs(A) of the drawn space, differentiable through the straight-through one-hots."""
        ed = draw.depth_onehot @ self.depth_mean
        ew = draw.width_onehot @ self.width_mean
        ew2 = draw.width_onehot @ self.width_sq
        return expected_flops_from_moments(ed, ew, ew2, image_size, num_classes,
                                           self.expanded.stem_width)

    def probabilities(self) -> dict[str, np.ndarray]:
        with torch.no_grad():
            return {"depth": F.softmax(self.depth_logits, -1).numpy().copy(),
                    "width": F.softmax(self.width_logits, -1).numpy().copy()}

    def sample_spaces(self, n: int, rng: np.random.Generator) -> list[NetworkSpace]:
        """n spaces drawn from P_Theta (Sec. 3.4: 'we sample n spaces from P_Theta')."""
        p = self.probabilities()
        out = []
        for _ in range(n):
            d = [int(rng.choice(len(row), p=row / row.sum())) for row in p["depth"]]
            w = [int(rng.choice(len(row), p=row / row.sum())) for row in p["width"]]
            out.append(self.expanded.space_from_choices(d, w))
        return out


def choose_elite_space(candidates: list[NetworkSpace], target: float, image_size: int,
                       num_classes: int) -> NetworkSpace:
    """The candidate whose expected FLOPs is closest to the target (Sec. 3.4, n = 5)."""
    return min(candidates, key=lambda s: abs(space_expected_flops(s, image_size, num_classes) / target - 1))


def temperature(step: int, total_steps: int, tau_start: float = 5.0, tau_end: float = 0.001) -> float:
    """Linear annealing of the Gumbel-softmax temperature 5 -> 0.001 (supp. 6.4.1)."""
    if total_steps <= 1:
        return tau_end
    return tau_start + (tau_end - tau_start) * min(step, total_steps - 1) / (total_steps - 1)


def scaled_arch_lr(config: NSSConfig, arch_steps: int) -> float:
    """Theta learning rate: the configured one, else DARTS' 3e-4 scaled by paper/our Theta steps so
    that Theta can move as far in our few steps as in the paper's ~13.7K (documented deviation)."""
    if config.arch_lr is not None:
        return config.arch_lr
    return PAPER_ARCH_LR * PAPER_ARCH_STEPS / max(1, arch_steps)


# ---------------------------------------------------------------------------------------------
# Sampling with warm-up, one training step
# ---------------------------------------------------------------------------------------------


def warmup_architecture(arch: Architecture, expanded: ExpandedSpace, p_enable_all: float,
                        rng: np.random.Generator) -> Architecture:
    """Filter and block warm-up (supp. 6.3.2): with probability ``p_enable_all`` a stage uses all
    ``w_max`` channels, and independently all ``d_max`` blocks, whatever was sampled."""
    depths = tuple(expanded.d_max if rng.random() < p_enable_all else d for d in arch.depths)
    widths = tuple(expanded.w_max if rng.random() < p_enable_all else w for w in arch.widths)
    return Architecture(depths, widths)


def sample_in_cell(expanded: ExpandedSpace, depth_idx, width_idx, rng: np.random.Generator) -> Architecture:
    return expanded.space_from_choices(depth_idx, width_idx).sample(rng)


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


@dataclass(frozen=True, eq=False)
class SuperNetBatch:
    """One step of a super-network epoch: its step number counted from the first epoch (for the
    learning rate, temperature and warm-up schedules), its image indices, for the search the Theta
    half's indices of the architecture step that follows, and the epoch's random sources: ``rng``
    (numpy: batch order, architectures, warm-up masks) and ``gen`` (torch: Gumbel noise,
    augmentation)."""

    step: int
    idx: np.ndarray
    rng: np.random.Generator
    gen: torch.Generator
    arch_idx: np.ndarray | None = None


def supernet_batches(n: int, batch_size: int, first_step: int, rng: np.random.Generator,
                     gen: torch.Generator, arch_n: int | None = None) -> list[SuperNetBatch]:
    """The batches of one epoch (the ``batches`` of :func:`nasoa_lib.train.epoch_loop`): full batches
    of a permutation of ``n`` images drawn from ``rng``, the remainder dropped. With ``arch_n`` (the
    search), a permutation of the Theta half is drawn first, and its batches are cycled alongside."""
    arch = None if arch_n is None else _batches(arch_n, batch_size, rng)
    return [SuperNetBatch(first_step + b, idx, rng, gen, None if arch is None else arch[b % len(arch)])
            for b, idx in enumerate(_batches(n, batch_size, rng))]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (the super networks' per-step cosine, set by hand)."""
    for g in optimizer.param_groups:
        g["lr"] = lr


def weight_step(net: SuperNet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                arch: Architecture, generator: torch.Generator) -> float:
    """One SGD step of the shared weights on one sampled architecture (augmented batch)."""
    net.train()
    xb = random_flip_crop(x, padding=max(1, x.shape[-1] // 8), generator=generator)
    loss = F.cross_entropy(net(xb, arch), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return float(loss.detach())


def arch_step(net: SuperNet, dist: SpaceDistribution, opt: torch.optim.Optimizer, x: torch.Tensor,
              y: torch.Tensor, tau: float, target: float, lam: float, image_size: int,
              rng: np.random.Generator, generator: torch.Generator) -> dict[str, float]:
    """One Theta step on Eq. 5: CE of an architecture of the drawn space + lambda * Eq. 4."""
    draw = dist.draw(tau, generator)
    arch = sample_in_cell(dist.expanded, draw.depth_idx, draw.width_idx, rng)
    logits = net(x, arch, depth_gates=draw.depth_gates, width_gates=draw.width_gates)
    task = F.cross_entropy(logits, y)
    flops = dist.expected_flops(draw, image_size, net.num_classes)
    fl = torch.abs(flops / target - 1.0)
    loss = task + lam * fl
    opt.zero_grad(set_to_none=True)
    net.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"task": float(task.detach()), "flops_loss": float(fl.detach()), "flops": float(flops.detach())}


# ---------------------------------------------------------------------------------------------
# Resumable search
# ---------------------------------------------------------------------------------------------

WARMUP_KIND = "nss_warmup"
SEARCH_KIND = "nss_search"


def warmup_spec(config: NSSConfig, dataset: str) -> dict[str, Any]:
    keys = ("d_max", "w_max", "depth_range", "width_range", "image_size", "train_images", "epochs",
            "warmup_fraction", "batch_size", "weight_lr", "weight_lr_min", "momentum", "weight_decay", "seed")
    return {"stage": "nss-warmup", "dataset": dataset, **{k: getattr(config, k) for k in keys}}


EVALUATION_ONLY_FIELDS = frozenset({
    "datasets", "paper_targets_mf", "test_images", "eval_epochs", "eval_samples", "elite_samples",
    "edf_samples", "eval_batch", "eval_lr", "tolerance", "nas_runs", "nas_pool", "nas_max_samples", "val_images"})
"""Settings the search never reads (evaluation and NAS); they stay out of its key, so changing how
spaces are evaluated does not redo the searches."""


def search_spec(config: NSSConfig, dataset: str, target: float) -> dict[str, Any]:
    settings = {k: v for k, v in config.to_dict().items() if k not in EVALUATION_ONLY_FIELDS}
    return {"stage": "nss-search", "dataset": dataset, "target": round(float(target), 1), **settings}


def _new_state(config: NSSConfig, num_classes: int):
    torch.manual_seed(config.seed)
    net = SuperNet(config.expanded, num_classes)
    dist = SpaceDistribution(config.expanded)
    wopt = torch.optim.SGD(net.parameters(), lr=config.weight_lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)
    return net, dist, wopt


def _steps_per_epoch(config: NSSConfig, n: int) -> int:
    return n // config.batch_size


def run_warmup(config: NSSConfig, data: NSSData, store, progress: Callable | None = None) -> dict:
    """Weights-only warm-up epochs (shared by every target); checkpoint every epoch, resumable."""
    from nasoa_lib.store import spec_key

    key = spec_key(warmup_spec(config, data.name))
    if store.has(WARMUP_KIND, key):
        return load_checkpoint(store, WARMUP_KIND, key)
    net, dist, wopt = _new_state(config, data.num_classes)
    start, history = resume(store, WARMUP_KIND, key, net=net, wopt=wopt)
    if start:
        log.info("warm-up %s: resuming at epoch %d", data.name, start)
    spe = _steps_per_epoch(config, len(data.y_weights))
    total_steps = spe * config.epochs
    warm_steps = spe * config.warmup_epochs

    def epoch_batches(epoch: int) -> list[SuperNetBatch]:
        return supernet_batches(len(data.y_weights), config.batch_size, epoch * spe,
                                np.random.default_rng([config.seed, 1, epoch]),
                                torch.Generator().manual_seed(config.seed * 1000 + epoch))

    def train_step(batch: SuperNetBatch) -> float:
        set_lr(wopt, cosine_lr(batch.step, total_steps, config.weight_lr, config.weight_lr_min))
        draw = dist.draw(1.0, batch.gen)
        arch = sample_in_cell(config.expanded, draw.depth_idx, draw.width_idx, batch.rng)
        arch = warmup_architecture(arch, config.expanded, 1.0 - batch.step / max(1, warm_steps), batch.rng)
        return weight_step(net, wopt, data.x_weights[batch.idx], data.y_weights[batch.idx], arch, batch.gen)

    def log_and_checkpoint(epoch: EpochRecords[float]) -> None:
        history.append({"epoch": epoch.epoch, "phase": "warmup", "train_loss": float(np.mean(epoch.records))})
        save_checkpoint(store, WARMUP_KIND, key, epoch.epoch, history, net=net, dist=dist, wopt=wopt, aopt=None)

    epoch_loop(range(start, config.warmup_epochs), epoch_batches, train_step,
               on_epoch_end=log_and_checkpoint, progress=progress)
    state = save_checkpoint(store, WARMUP_KIND, key, config.warmup_epochs, history,
                            net=net, dist=dist, wopt=wopt, aopt=None)
    store.put(WARMUP_KIND, key, {"dataset": data.name, "history": history})
    return state


def run_search(config: NSSConfig, data: NSSData, target: float, store: ArtifactStore,
               progress: Callable | None = None, *, profile: str | None = None) -> dict:
    """NSS for one FLOPs target (Eq. 5); returns the stored record with the Elite Space.

    Cached by spec key; a killed run resumes at its last finished epoch.
    """
    from nasoa_lib.provenance import provenance
    from nasoa_lib.store import spec_key

    key = spec_key(search_spec(config, data.name, target))
    if store.has(SEARCH_KIND, key):
        return store.get(SEARCH_KIND, key)
    net, dist, wopt = _new_state(config, data.num_classes)
    spe = _steps_per_epoch(config, len(data.y_weights))
    search_epochs = config.epochs - config.warmup_epochs
    arch_steps = spe * search_epochs
    arch_lr = scaled_arch_lr(config, arch_steps)
    aopt = torch.optim.Adam(dist.parameters(), lr=arch_lr, betas=(0.5, 0.999),
                            weight_decay=config.arch_weight_decay)
    state = load_checkpoint(store, SEARCH_KIND, key) or run_warmup(config, data, store, progress)
    start, history = restore(state, net=net, dist=dist, wopt=wopt, aopt=aopt)
    total_steps = spe * config.epochs
    tag = int(round(target))

    def epoch_batches(epoch: int) -> list[SuperNetBatch]:
        return supernet_batches(len(data.y_weights), config.batch_size, epoch * spe,
                                np.random.default_rng([config.seed, 2, tag % (2**31), epoch]),
                                torch.Generator().manual_seed((config.seed * 7919 + tag + epoch) % (2**62)),
                                arch_n=len(data.y_arch))

    def search_step(batch: SuperNetBatch) -> dict[str, float]:
        """A weight step on an architecture of a space drawn from P_Theta, then a Theta step (Eq. 5)."""
        tau = temperature(batch.step - config.warmup_epochs * spe, arch_steps, config.tau_start, config.tau_end)
        set_lr(wopt, cosine_lr(batch.step, total_steps, config.weight_lr, config.weight_lr_min))
        with torch.no_grad():
            draw = dist.draw(tau, batch.gen)
        arch = sample_in_cell(config.expanded, draw.depth_idx, draw.width_idx, batch.rng)
        loss = weight_step(net, wopt, data.x_weights[batch.idx], data.y_weights[batch.idx], arch, batch.gen)
        stats = arch_step(net, dist, aopt, data.x_arch[batch.arch_idx], data.y_arch[batch.arch_idx], tau, target,
                          config.lambda_flops, config.image_size, batch.rng, batch.gen)
        return {"train_loss": loss, **stats, "tau": tau}

    def log_and_checkpoint(epoch: EpochRecords[dict[str, float]]) -> None:
        probs = dist.probabilities()
        history.append({"epoch": epoch.epoch, "phase": "search",
                        "train_loss": float(np.mean([r["train_loss"] for r in epoch.records])),
                        "arch_task_loss": float(np.mean([r["task"] for r in epoch.records])),
                        "flops_loss": float(np.mean([r["flops_loss"] for r in epoch.records])),
                        "tau": epoch.records[-1]["tau"], "depth_probs": probs["depth"].tolist(),
                        "width_probs": probs["width"].tolist()})
        save_checkpoint(store, SEARCH_KIND, key, epoch.epoch, history, net=net, dist=dist, wopt=wopt, aopt=aopt)

    epoch_loop(range(start, config.epochs), epoch_batches, search_step,
               on_epoch_end=log_and_checkpoint, progress=progress)
    rng = np.random.default_rng([config.seed, 3, tag % (2**31)])
    candidates = dist.sample_spaces(config.n_space_samples, rng)
    elite = choose_elite_space(candidates, target, config.image_size, data.num_classes)
    probs = dist.probabilities()
    record = {
        "dataset": data.name, "target": float(target), "elite_space": str(elite),
        "elite_flops": space_expected_flops(elite, config.image_size, data.num_classes),
        "candidates": [str(c) for c in candidates],
        "candidate_flops": [space_expected_flops(c, config.image_size, data.num_classes) for c in candidates],
        "depth_probs": probs["depth"].tolist(), "width_probs": probs["width"].tolist(),
        "arch_lr": arch_lr, "history": history,
    }
    store.put(SEARCH_KIND, key, record, provenance=provenance(profile or "unknown", seed=config.seed, device="cpu"))
    log.info("NSS %s target %.3g: Elite Space %s", data.name, target, elite)
    return record


def search_steps(config: NSSConfig, n_targets: int) -> int:
    """Weight+Theta steps of all searches of one dataset (the shared warm-up counted once)."""
    spe = (config.train_images // 2) // config.batch_size
    return spe * config.warmup_epochs + n_targets * spe * (config.epochs - config.warmup_epochs)


