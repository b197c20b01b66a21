"""The one epoch loop (:func:`nasoa_lib.train.epoch_loop`) and its supervised form
(:func:`nasoa_lib.train.run_epochs`) on synthetic tensors: the order of their hooks and what they
receive, the batches, resuming mid-run, stopping from a hook, and a known run."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasoa_lib.errors import StopTraining
from nasoa_lib.train import EpochRecords, EpochStats, epoch_loop, even_batches, full_batches, run_epochs

N, C, SIZE, CLASSES = 20, 3, 8, 4


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, C, SIZE, SIZE, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(C * SIZE * SIZE, CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler, torch.Generator().manual_seed(seed)


def _run(epochs: int = 2, start_epoch: int = 0, state=None, **hooks):
    model, optimizer, scheduler, generator = _setup()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
    x, y = _data()
    run_epochs(model, x, y, optimizer=optimizer, scheduler=scheduler, loss_fn=F.cross_entropy,
               generator=generator, batches=full_batches(6), epochs=epochs, start_epoch=start_epoch,
               augment_padding=1, **hooks)
    return model, optimizer, scheduler, generator


def _digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _Bar:
    def __init__(self, events: list) -> None:
        self.events = events

    def update(self, n: int = 1) -> None:
        self.events.append(("progress", n))


def test_hooks_run_in_order_with_the_batch_indices_outputs_and_epoch_stats():
    events: list = []
    stats: list[EpochStats] = []
    _run(on_batch_end=lambda idx, out: events.append(("batch", idx.clone(), out.detach().clone())),
         on_epoch_end=lambda s: (events.append(("epoch", s.epoch)), stats.append(s)), progress=_Bar(events))
    kinds = [e[0] if e[0] != "epoch" else e for e in events]
    assert kinds == (["batch", "progress"] * 3 + [("epoch", 1)]) + (["batch", "progress"] * 3 + [("epoch", 2)])
    batches = [e for e in events if e[0] == "batch"]
    # epoch 1 draws its order first from a fresh generator: 3 full batches of 6, the 2 left over dropped
    first_order = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([b[1] for b in batches[:3]]), first_order[:18])
    assert all(b[2].shape == (6, CLASSES) for b in batches)
    for s in stats:
        assert s.seen == 18 and 0 <= s.correct <= 18 and s.seconds > 0


def test_known_tiny_run():
    stats: list[EpochStats] = []
    model, *_ = _run(on_epoch_end=stats.append)
    assert [s.epoch for s in stats] == [1, 2]
    assert stats[-1].train_loss == pytest.approx(float.fromhex(KNOWN_LOSS), rel=1e-6)


def test_resuming_after_an_epoch_equals_the_uninterrupted_run():
    full, *_ = _run(epochs=2)
    model, optimizer, scheduler, generator = _run(epochs=1)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "generator": generator.get_state()}
    resumed_epochs: list[int] = []
    resumed, *_ = _run(epochs=2, start_epoch=1, state=state, on_epoch_end=lambda s: resumed_epochs.append(s.epoch))
    assert resumed_epochs == [2]
    assert _digest(resumed) == _digest(full)


def test_an_exception_in_on_epoch_end_stops_the_run():
    epochs: list[int] = []

    def stop(s: EpochStats) -> None:
        epochs.append(s.epoch)
        raise StopTraining

    with pytest.raises(StopTraining):
        _run(epochs=5, on_epoch_end=stop)
    assert epochs == [1]


def test_batches():
    order = torch.arange(20)
    assert [len(b) for b in full_batches(6)(order)] == [6, 6, 6]
    assert [len(b) for b in full_batches(32)(order)] == [20]  # fewer images than a batch: one batch
    assert [len(b) for b in even_batches(3)(order)] == [7, 7, 6]
    assert torch.equal(torch.cat(list(even_batches(3)(order))), order)



def test_epoch_loop_draws_each_epochs_batches_first_then_steps_then_ends_the_epoch():
    events: list = []

    def batches(epoch: int) -> list[tuple[int, int]]:
        events.append(("batches", epoch))
        return [(epoch, b) for b in range(2)]

    def step(batch: tuple[int, int]) -> str:
        events.append(("step", batch))
        return f"{batch[0]}.{batch[1]}"

    ends: list[EpochRecords[str]] = []
    epoch_loop(range(1, 3), batches, step, on_epoch_end=lambda e: (events.append(("end", e.epoch)), ends.append(e)),
               progress=lambda n: events.append(("progress", n)))
    assert events == [("batches", 1), ("step", (1, 0)), ("progress", 1), ("step", (1, 1)), ("progress", 1), ("end", 2),
                      ("batches", 2), ("step", (2, 0)), ("progress", 1), ("step", (2, 1)), ("progress", 1), ("end", 3)]
    assert [e.records for e in ends] == [["1.0", "1.1"], ["2.0", "2.1"]]  # epoch counts finished epochs, from 1
    assert all(e.seconds >= 0 for e in ends)


def test_epoch_loop_without_hooks_and_stopped_by_on_epoch_end():
    steps: list = []
    epoch_loop(range(2), lambda epoch: [epoch], steps.append)
    assert steps == [0, 1]

    def stop(e: EpochRecords) -> None:
        raise StopTraining

    with pytest.raises(StopTraining):
        epoch_loop(range(5), lambda epoch: [epoch], steps.append, on_epoch_end=stop)
    assert steps == [0, 1, 0]


KNOWN_LOSS = "0x1.7445ec0000000p+0"
"""Last epoch's mean training loss of :func:`_run`, recorded when the loop was shared by ``pretrain``
and ``train_with_history``; compared within a relative 1e-6 (float kernels differ between CPUs,
the resume test pins bit-exact determinism on one machine)."""
