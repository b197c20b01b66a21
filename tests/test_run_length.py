"""Run length in epochs of the task (nasoa_lib/run_length.py): the ladder, the conversions that
must agree with the fine-tuning engine's batching, and the prefix property of constant-rate runs."""

from __future__ import annotations

import pytest
import torch

from nasoa_lib import run_length as rl
from nasoa_lib.data import sample_task
from nasoa_lib.errors import InvalidRegimeError, NasoaError, ProfileConfigError
from nasoa_lib.finetune import Regime, _batch_order, finetune, worker_threads
from nasoa_lib.profiles import load_profile


def test_default_ladder_is_the_documented_one():
    assert rl.RunLengthConfig().ladder() == (1, 2, 3, 5, 8, 11, 17, 26, 38, 50)


@pytest.mark.parametrize("lo,hi,factor", [(1, 1, 1.5), (1, 4, 1.5), (3, 7, 2.0), (1, 50, 1.1), (2, 300, 3.0)])
def test_ladder_is_strictly_increasing_and_spans_the_range(lo, hi, factor):
    ladder = rl.RunLengthConfig(lo, hi, factor).ladder()
    assert ladder[0] == lo and ladder[-1] == hi
    assert all(a < b for a, b in zip(ladder, ladder[1:]))
    assert all(isinstance(e, int) for e in ladder)


@pytest.mark.parametrize("kwargs,field", [
    ({"min_epochs": 0}, "min_epochs"), ({"max_epochs": 1.5}, "max_epochs"),
    ({"min_epochs": 5, "max_epochs": 2}, "max_epochs"), ({"factor": 1.0}, "factor"), ({"factor": float("nan")}, "factor"),
])
def test_bad_config_is_a_profile_error_with_a_hint(kwargs, field):
    with pytest.raises(ProfileConfigError, match=field) as err:
        rl.RunLengthConfig(**kwargs)
    assert err.value.hint


@pytest.mark.parametrize("name", ["smoke", "laptop", "paper"])
def test_every_profile_has_a_run_length_section(name):
    config = rl.RunLengthConfig.from_profile(load_profile(name))
    assert config.ladder()[-1] == config.max_epochs
    if name != "smoke":
        assert config.max_epochs >= 50  # NASOA 4.4: ResNet-101 for 50 epochs


@pytest.mark.parametrize("n,batch", [(2, 32), (31, 32), (32, 32), (33, 32), (100, 32), (640, 64), (5, 2)])
def test_steps_per_epoch_matches_the_engines_batch_order(n, batch):
    per_epoch = rl.steps_per_epoch(n, batch)
    b = min(batch, n)
    order = _batch_order(n, b, 3 * per_epoch, torch.Generator().manual_seed(0))
    # each epoch is one permutation: within an epoch no image repeats, and every epoch has per_epoch batches
    for e in range(3):
        chunk = order[e * per_epoch:(e + 1) * per_epoch].flatten()
        assert len(set(chunk.tolist())) == len(chunk) == per_epoch * b


def test_conversions_round_trip_and_checkpoints():
    assert rl.steps_per_epoch(100, 32) == 3
    assert rl.iterations_for(10, 100, 32) == 30
    assert rl.iterations_for(0.1, 100, 32) == 1
    assert rl.epochs_of(30, 100, 32) == 10.0
    assert rl.checkpoint_steps((1, 2, 3), 100, 32) == (3, 6, 9)
    # a rung that rounds to the same step count is listed once
    assert rl.checkpoint_steps((1, 2, 3), 10, 32) == (1, 2, 3)
    for epochs in (1, 3, 17, 50):
        assert rl.epochs_of(rl.iterations_for(epochs, 257, 32), 257, 32) == epochs


@pytest.mark.parametrize("call", [
    lambda: rl.steps_per_epoch(1, 32), lambda: rl.steps_per_epoch(10, 1), lambda: rl.iterations_for(0, 10, 4),
    lambda: rl.iterations_for(float("inf"), 10, 4), lambda: rl.checkpoint_steps((), 10, 4),
])
def test_bad_sizes_are_errors_with_hints(call):
    with pytest.raises(InvalidRegimeError) as err:
        call()
    assert isinstance(err.value, NasoaError) and err.value.hint


@pytest.mark.slow
def test_a_short_constant_rate_run_is_the_checkpoint_of_a_long_one():
    """SCHEDULE's promise: same seed, same batch order, constant lr -> the 2-epoch run is bit for bit
    the 2-epoch checkpoint of the 4-epoch run (frozen-prefix cache on and off, with validation)."""
    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(1))
    try:
        task = sample_task("fashion_mnist", 3, 12, seed=1, test_per_class=10, validation_per_class=4)
        n, batch = len(task.y_train), 16
        short_steps = rl.iterations_for(2, n, batch)
        long_steps = rl.checkpoint_steps((1, 2, 4), n, batch)
        for frozen in (0, 2):
            kw = dict(lr=0.05, frozen_stages=frozen, batch_size=batch, lr_schedule=rl.SCHEDULE)
            short = finetune(None, task, Regime(iterations=short_steps, **kw), model="resnet18", seed=3)
            long = finetune(None, task, Regime(iterations=long_steps[-1], **kw), model="resnet18", seed=3,
                            eval_steps=long_steps)
            assert [c.step for c in long.checkpoints] == list(long_steps)
            at_two = long.checkpoints[1]
            assert at_two.step == short.steps == short_steps
            assert at_two.test_accuracy == short.accuracy
            assert at_two.test_half_accuracies == short.checkpoints[-1].test_half_accuracies
            assert at_two.validation_accuracy == short.checkpoints[-1].validation_accuracy is not None
    finally:
        torch.set_num_threads(before)


def _weights_after(monkeypatch, step: int) -> list[torch.Tensor]:
    """Capture the trainable weights right after optimizer step ``step`` of the next run."""
    captured: list[torch.Tensor] = []
    calls = [0]
    original = torch.optim.SGD.step

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == step:
            captured.extend(p.detach().clone() for g in self.param_groups for p in g["params"])
        return out

    monkeypatch.setattr(torch.optim.SGD, "step", recording)
    return captured


@pytest.mark.slow
@pytest.mark.parametrize("schedule,augment,same", [(rl.SCHEDULE, False, True), (rl.SCHEDULE, True, True),
                                                   ("cosine", False, False)])
def test_weights_after_two_epochs_do_not_depend_on_the_run_length(monkeypatch, schedule, augment, same):
    """The weights themselves (not only the accuracy) after 2 epochs of a 2- and of a 4-epoch run:
    identical under the constant schedule, augmented too (its own augmentation stream); the cosine
    control shows the check can fail."""
    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(1))
    try:
        task = sample_task("fashion_mnist", 2, 10, seed=2, test_per_class=4)
        n, batch = len(task.y_train), 8
        two = rl.iterations_for(2, n, batch)
        states = []
        for epochs in (2, 4):
            monkeypatch.undo()
            captured = _weights_after(monkeypatch, two)
            regime = Regime(lr=0.05, iterations=rl.iterations_for(epochs, n, batch), frozen_stages=3, batch_size=batch,
                            lr_schedule=schedule, augment=augment)
            finetune(None, task, regime, model="resnet18", seed=5)
            states.append(captured)
        monkeypatch.undo()
        equal = all(torch.equal(a, b) for a, b in zip(*states))
        assert len(states[0]) == len(states[1]) > 0 and equal is same
    finally:
        torch.set_num_threads(before)


def test_checkpointed_settings_change_only_the_schedule():
    """The meta-dataset's and the generator's regimes share one schedule, set in one place; the
    profile's other fine-tuning knobs (batch, momentum, weight decay) are kept."""
    from nasoa_lib.finetune import FinetuneSettings
    from nasoa_lib.run_length import SCHEDULE, checkpointed

    settings = FinetuneSettings(batch_size=32, lr_schedule="cosine", momentum=0.8, weight_decay=5e-4)
    mine = checkpointed(settings)
    assert mine.lr_schedule == SCHEDULE == "constant"
    assert (mine.batch_size, mine.momentum, mine.weight_decay) == (32, 0.8, 5e-4)
    assert mine.regime(lr=0.01, iterations=10).lr_at(9) == 0.01
