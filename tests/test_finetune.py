"""The fine-tuning engine on real tiny tasks (fashion_mnist / cifar10 class subsets)."""

from __future__ import annotations

import pytest
import torch

from nasoa_lib import models
from nasoa_lib.data import sample_task
from nasoa_lib.data.tasks import Task
from nasoa_lib.errors import InvalidRegimeError
from nasoa_lib.finetune import FinetuneResult, Regime, finetune, worker_threads
from nasoa_lib.staged import num_frozen_modules
from nasoa_lib.train import Pretrained

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(1))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def easy_task() -> Task:
    # trouser / bag / ankle-boot style subsets of fashion_mnist are easy: chance is 1/3
    return sample_task("fashion_mnist", 3, 30, seed=0, test_per_class=50)


@pytest.fixture(scope="module")
def random_resnet() -> Pretrained:
    torch.manual_seed(0)
    net = models.create("resnet18", 10)
    return Pretrained("resnet18", net, 0.0, {"image_size": 32, "recipe": {"small_image_stem": False}}, "test-random")


def _count_optimizer_steps(monkeypatch) -> list[int]:
    calls = [0]
    original = torch.optim.SGD.step

    def counting(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", counting)
    return calls


def test_tiny_finetune_beats_chance(easy_task):
    result = finetune(None, easy_task, Regime(lr=0.05, iterations=30, batch_size=32), model="resnet18", seed=0,
                      eval_points=3)
    chance = 1.0 / easy_task.num_classes
    assert result.steps == 30 and not result.stopped_by_time
    assert result.accuracy > chance + 0.3, result
    assert len(result.curve) == 3 and result.curve[-1][2] == result.accuracy
    assert [p[0] for p in result.curve] == [10, 20, 30]


def test_same_seed_same_result(easy_task, random_resnet):
    regime = Regime(lr=0.05, iterations=15, frozen_stages=3, batch_size=16)
    a = finetune(random_resnet, easy_task, regime, seed=3, eval_points=2)
    b = finetune(random_resnet, easy_task, regime, seed=3, eval_points=2)
    assert a.key == b.key
    assert [p[2] for p in a.curve] == [p[2] for p in b.curve]
    c = finetune(random_resnet, easy_task, regime, seed=4, eval_points=2)
    assert c.key != a.key


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("cache", [False, True])
def test_frozen_stages_stay_bit_identical(easy_task, random_resnet, k, cache):
    before = {n: t.clone() for n, t in random_resnet.model.state_dict().items()}
    regime = Regime(lr=0.1, iterations=4, frozen_stages=k, batch_size=16)
    result = finetune(random_resnet, easy_task, regime, keep_model=True, cache_frozen=cache)
    after = result.model.state_dict()
    frozen = [name for name in ("stem", "stage1", "stage2", "stage3", "stage4")][: num_frozen_modules(k)]
    trainable = [name for name in ("stem", "stage1", "stage2", "stage3", "stage4") if name not in frozen]
    for name, tensor in after.items():
        module = name.split(".")[0]
        if module in frozen:
            assert torch.equal(tensor, before[name]), f"k={k}: frozen {name} changed"
    for module in trainable:
        changed = [n for n in after if n.split(".")[0] == module and not torch.equal(after[n], before[n])]
        assert changed, f"k={k}: trainable {module} did not change"
    assert result.model.num_classes == easy_task.num_classes
    # the caller's pretrained network is never modified
    for name, tensor in random_resnet.model.state_dict().items():
        assert torch.equal(tensor, before[name])
    assert result.frozen_cache == cache


def test_time_limit_stops_within_one_step(easy_task, random_resnet):
    # head-only training on cached features: steps of a few ms, so the limit spans many steps
    # (2 s: the first step builds the frozen-feature cache, > 1 s on a loaded 2-core machine)
    limit = 2.0
    regime = Regime(lr=0.01, iterations=100_000, frozen_stages=4, batch_size=16)
    result = finetune(random_resnet, easy_task, regime, time_limit=limit)
    assert result.stopped_by_time
    assert result.steps < 100_000
    # within a step or two of the limit; steps of ~0.3 ms jitter by more than their median on a
    # busy machine, so the slack is at least 50 ms (still < 5 % of the limit)
    slack = max(2 * result.median_step_seconds, 0.05)
    assert limit - slack <= result.train_seconds <= limit + slack, (result.train_seconds, result.median_step_seconds)


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("frozen_stages", {"frozen_stages": 5}),
        ("frozen_stages", {"frozen_stages": -1}),
        ("lr", {"lr": 0.0}),
        ("lr", {"lr": -0.1}),
        ("iterations", {"iterations": 0}),
        ("batch_size", {"batch_size": 1}),
        ("lr_schedule", {"lr_schedule": "linear"}),
    ],
)
def test_bad_regime_names_the_field(field, kwargs):
    values = {"lr": 0.01, "iterations": 10, **kwargs}
    with pytest.raises(InvalidRegimeError, match=field):
        Regime(**values)


def test_unmappable_labels_fail_before_training(easy_task, random_resnet, monkeypatch):
    calls = _count_optimizer_steps(monkeypatch)
    bad = Task(easy_task.spec, easy_task.x_train, easy_task.y_train + 1, easy_task.x_test, easy_task.y_test,
               easy_task.class_names)
    with pytest.raises(InvalidRegimeError, match="labels"):
        finetune(random_resnet, bad, Regime(lr=0.01, iterations=5, batch_size=16))
    assert calls[0] == 0


def test_time_limit_below_one_step_fails_before_training(easy_task, random_resnet, monkeypatch):
    calls = _count_optimizer_steps(monkeypatch)
    with pytest.raises(InvalidRegimeError, match="shorter than one measured training step"):
        finetune(random_resnet, easy_task, Regime(lr=0.01, iterations=5, batch_size=16), time_limit=1e-6)
    assert calls[0] == 0


def test_step_schedule_and_cosine():
    step = Regime(lr=1.0, iterations=100, lr_schedule="step")
    assert [step.lr_at(s) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = Regime(lr=1.0, iterations=100)
    assert cos.lr_at(0) == 1.0 and cos.lr_at(50) == pytest.approx(0.5) and cos.lr_at(100) == pytest.approx(0.0)


def test_constant_schedule_keeps_the_rate_and_the_others_are_unchanged():
    const = Regime(lr=0.3, iterations=10, lr_schedule="constant")
    assert [const.lr_at(s) for s in (0, 5, 9, 50)] == [0.3] * 4
    # cosine and step are the schedule module's formulas, bit for bit
    from nasoa_lib.schedule import cosine_lr, step_decay_lr
    for total in (1, 7, 100):
        for s in range(total + 2):
            assert Regime(lr=0.1, iterations=total).lr_at(s) == cosine_lr(s, total, 0.1)
            assert Regime(lr=0.1, iterations=total, lr_schedule="step").lr_at(s) == step_decay_lr(s, total, 0.1)


def test_eval_steps_checkpoints_with_halves_and_validation():
    task = sample_task("fashion_mnist", 3, 12, seed=0, test_per_class=9, validation_per_class=5)
    regime = Regime(lr=0.05, iterations=6, frozen_stages=3, batch_size=12, lr_schedule="constant")
    result = finetune(None, task, regime, model="mobilenet_v3_small", eval_steps=(1, 4, 6))
    assert [c.step for c in result.checkpoints] == [1, 4, 6] == [p[0] for p in result.curve]
    assert [c.test_accuracy for c in result.checkpoints] == [p[2] for p in result.curve]
    n = len(task.y_test)  # 27: 14 even-indexed, 13 odd-indexed images
    for c in result.checkpoints:
        a, b = c.test_half_accuracies
        assert c.test_accuracy == pytest.approx((a * 14 + b * 13) / n)
        assert c.validation_accuracy is not None and round(c.validation_accuracy * 15) == c.validation_accuracy * 15
    assert FinetuneResult.from_dict(result.to_dict()) == result
    # the key changes only when eval_steps is given
    plain = finetune(None, task, regime, model="mobilenet_v3_small")
    assert plain.key != result.key and plain.accuracy == result.accuracy
    assert len(plain.checkpoints) == 1 and plain.checkpoints[0].validation_accuracy is not None


def test_run_key_without_eval_steps_is_unchanged():
    from nasoa_lib.finetune import FinetuneRunSpec, run_spec
    from nasoa_lib.store import spec_key

    args = (None, "resnet18", {"dataset": "x"}, Regime(lr=0.1, iterations=3), None, 0, 1)
    assert "eval_steps" not in run_spec(*args)
    assert spec_key(run_spec(*args)) == spec_key(run_spec(*args, None)) != spec_key(run_spec(*args, (1, 3)))
    spec = FinetuneRunSpec(*args, (1, 3))
    assert FinetuneRunSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("steps", [(), (0, 2), (3, 2), (2, 2), (1, 7)])
def test_bad_eval_steps_are_errors(easy_task, steps):
    with pytest.raises(InvalidRegimeError, match="eval_steps") as err:
        finetune(None, easy_task, Regime(lr=0.05, iterations=6), model="resnet18", eval_steps=steps)
    assert "checkpoint_steps" in err.value.hint


def test_records_stored_before_checkpoints_still_load(easy_task):
    result = finetune(None, easy_task, Regime(lr=0.05, iterations=2, frozen_stages=4, batch_size=16),
                      model="mobilenet_v3_small")
    old = result.to_dict()
    assert "checkpoints" not in old and result.checkpoints == ()  # no eval_steps, no validation: the old record
    assert FinetuneResult.from_dict(old) == result


def test_result_round_trip(easy_task):
    result = finetune(None, easy_task, Regime(lr=0.05, iterations=2, frozen_stages=4, batch_size=16),
                      model="mobilenet_v3_small")
    again = FinetuneResult.from_dict(result.to_dict())
    assert again == result
    assert Regime.from_dict(Regime(lr=0.1, iterations=3).to_dict()) == Regime(lr=0.1, iterations=3)


def test_worker_threads_policy():
    assert worker_threads(1, cores=2) == 2
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(4, cores=2) == 1
    with pytest.raises(ValueError):
        worker_threads(0)
