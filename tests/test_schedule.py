"""The one schedule module returns bit-identical learning rates to the formulas it replaced.

The ``_old_*`` functions are the expressions as they stood in ``finetune.Regime.lr_at``,
``nss.search.cosine_lr``, ``train.warmup_cosine``, ``estimate.training.linear_decay`` and the
lambda of ``estimate.ensemble`` before the move; runs in the store were trained with them, so
the comparison is ``==`` (same float), not approx.
"""

from __future__ import annotations

import math

import pytest

from nasoa_lib import schedule
from nasoa_lib.finetune import Regime


def _old_regime_lr_at(lr: float, iterations: int, lr_schedule: str, step: int) -> float:
    if lr_schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step, iterations) / iterations))
    factor = 1.0
    if step >= 0.5 * iterations:
        factor *= 0.1
    if step >= 0.75 * iterations:
        factor *= 0.1
    return lr * factor


def _old_nss_cosine_lr(step: int, total: int, lr_max: float, lr_min: float) -> float:
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * min(step, total) / max(1, total)))


def _old_warmup_cosine(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _old_linear_decay(step: int, total_steps: int) -> float:
    return max(0.0, 1.0 - step / max(1, total_steps))


def _old_ensemble_lambda(step: int, total: int) -> float:
    return max(0.0, 1.0 - step / max(1, total))


def _steps(total: int, *marks: int) -> list[int]:
    """0, the last step, ``total`` and one past it, the marks and their neighbours, and a stride."""
    points = {0, 1, total - 1, total, total + 1, total + 7}
    for m in marks:
        points |= {m - 1, m, m + 1}
    points |= set(range(0, total + 2, max(1, total // 37)))
    return sorted(p for p in points if p >= 0)


TOTALS = [1, 2, 3, 7, 10, 99, 100, 391, 1000, 4097]
LRS = [0.1, 0.01, 0.025, 0.003, 1.0, 0.0371, 1e-4]


@pytest.mark.parametrize("iterations", TOTALS)
@pytest.mark.parametrize("lr", LRS)
@pytest.mark.parametrize("lr_schedule", ["cosine", "step"])
def test_regime_lr_at_is_bit_identical(iterations, lr, lr_schedule):
    regime = Regime(lr=lr, iterations=iterations, frozen_stages=0, lr_schedule=lr_schedule)
    marks = (iterations // 2, -(-iterations // 2), (3 * iterations) // 4, -(-3 * iterations // 4))
    for step in _steps(iterations, *marks):
        assert regime.lr_at(step) == _old_regime_lr_at(lr, iterations, lr_schedule, step), step


@pytest.mark.parametrize("total", [0, *TOTALS])
@pytest.mark.parametrize("lr_max, lr_min", [(0.025, 0.001), (0.1, 0.001), (0.05, 0.0), (0.3, 1e-5)])
def test_nss_cosine_is_bit_identical(total, lr_max, lr_min):
    for step in _steps(max(total, 1)):
        assert schedule.cosine_lr(step, total, lr_max, lr_min) == _old_nss_cosine_lr(step, total, lr_max, lr_min)


@pytest.mark.parametrize("total", [0, *TOTALS])
@pytest.mark.parametrize("warmup", [0, 1, 3, 10, 50])
def test_pretrain_warmup_cosine_is_bit_identical(total, warmup):
    for step in _steps(max(total, 1), warmup):
        assert schedule.warmup_cosine(step, total, warmup) == _old_warmup_cosine(step, total, warmup), step


@pytest.mark.parametrize("total", [0, *TOTALS])
def test_linear_decay_is_bit_identical(total):
    for step in _steps(max(total, 1)):
        assert schedule.linear_decay(step, total) == _old_linear_decay(step, total)
        assert schedule.linear_decay(step, total) == _old_ensemble_lambda(step, total)


def test_endpoints_are_kept():
    # cosine: the peak at step 0, zero (or lr_min) at ``total`` and after, never below
    assert schedule.cosine_lr(0, 100, 0.1) == 0.1
    assert schedule.cosine_lr(100, 100, 0.1) == 0.0 and schedule.cosine_lr(150, 100, 0.1) == 0.0
    assert schedule.cosine_lr(99, 100, 0.1) > 0.0
    assert schedule.cosine_lr(100, 100, 0.025, 0.001) == 0.001
    # warm-up: (step + 1) / warmup_steps, so the last warm-up step reaches 1 and the cosine starts at 1
    assert schedule.warmup_cosine(0, 100, 10) == 0.1
    assert schedule.warmup_cosine(9, 100, 10) == 1.0 and schedule.warmup_cosine(10, 100, 10) == 1.0
    assert schedule.warmup_cosine(100, 100, 10) == 0.0
    # step decay: x0.1 from 50 %, x0.01 from 75 %
    assert [schedule.step_decay_lr(s, 100, 1.0) for s in (0, 49, 50, 74, 75, 99)] == [1.0, 1.0, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1]
