"""Learning-rate schedules, per optimizer step: the one place every training loop takes them from.

- :func:`cosine_lr`: half a cosine from ``lr_max`` at step 0 to ``lr_min`` at step ``total``
  (held there afterwards). Fine-tuning regimes (NASOA Eq. 2's ``Regime_FT``, ``lr_min = 0``) and
  the NSS super networks (DARTS' weight schedule 0.025 -> 0.001, NSS supp. 6.4.1) use it.
- :func:`step_decay_lr`: the ImageNet-style step schedule of a regime, x0.1 from 50 % and again
  from 75 % of the steps.
- :func:`constant_lr`: ``lr`` at every step; the schedule of checkpointed runs
  (:data:`nasoa_lib.run_length.SCHEDULE`), whose state after ``e`` epochs is the run of ``e`` epochs.
- :func:`warmup_cosine`: the pretraining recipe's *multiplier* (for ``LambdaLR``): linear warm-up
  ``(step + 1) / warmup_steps``, then half a cosine from 1 to 0 at ``total_steps``.
- :func:`linear_decay`: the thesis' budgeted-training multiplier (appendix A.2), 1 -> 0 at
  ``total_steps``.

:func:`cosine_lr` and :func:`warmup_cosine` draw the same curve but round differently
(``pi * step / total`` against ``pi * (step / total)``): stored runs were trained with each, and
learning rates must stay bit-identical (``tests/test_schedule.py``), so both stay as they are.
"""

from __future__ import annotations

import math


def cosine_lr(step: int, total: int, lr_max: float, lr_min: float = 0.0) -> float:
    """Learning rate of step ``step`` (0-based): ``lr_max`` at 0, ``lr_min`` from ``total`` on."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * min(step, total) / max(1, total)))


def step_decay_lr(step: int, total: int, lr: float) -> float:
    """``lr``, x0.1 from ``step >= 0.5 * total``, x0.01 from ``step >= 0.75 * total``."""
    factor = 1.0
    if step >= 0.5 * total:
        factor *= 0.1
    if step >= 0.75 * total:
        factor *= 0.1
    return lr * factor


def constant_lr(step: int, total: int, lr: float) -> float:
    """``lr`` at every step: no step's rate depends on ``total``, so every prefix of a run is itself
    a run (:mod:`nasoa_lib.run_length`)."""
    return lr


def warmup_cosine(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """LR multiplier: linear warm-up over ``warmup_steps``, then cosine from 1 to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_decay(step: int, total_steps: int) -> float:
    """LR multiplier falling linearly from 1 to 0 at ``total_steps`` (thesis A.2)."""
    return max(0.0, 1.0 - step / max(1, total_steps))
