"""Learning-rate schedule: linear warm-up to the peak, then linear decay to zero."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def warmup_steps_for(*, total_steps: int, warmup_ratio: float) -> int:
    """Warm-up steps for a share ``warmup_ratio`` of ``total_steps`` (rounded up, so a positive ratio warms up)."""
    if not 0.0 <= warmup_ratio <= 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1], got {warmup_ratio}")
    return min(total_steps, math.ceil(warmup_ratio * total_steps))


def linear_warmup_decay_factor(step: int, *, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based, the step about to be taken).

    Warm-up climbs ``1/w, 2/w, ..., 1`` over the first ``w`` steps (never 0, so no step is wasted); the rest decays
    linearly ``1, ..., 1/(n - w)`` and reaches 0 only after the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = total_steps - warmup_steps
    if remaining <= 0:
        return 0.0
    return max(0.0, (total_steps - step) / remaining)


class LinearWarmupDecay:
    """A picklable ``lr_lambda`` for :class:`torch.optim.lr_scheduler.LambdaLR` (its state is two ints)."""

    def __init__(self, *, total_steps: int, warmup_steps: int) -> None:
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        return linear_warmup_decay_factor(step, total_steps=self.total_steps, warmup_steps=self.warmup_steps)


def linear_warmup_decay(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per optimizer step (see :func:`linear_warmup_decay_factor`)."""
    from torch.optim.lr_scheduler import LambdaLR

    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    fn = LinearWarmupDecay(total_steps=total_steps, warmup_steps=warmup_steps)
    return LambdaLR(optimizer, lr_lambda=[fn] * len(optimizer.param_groups))


def refit_resumed_schedule(
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
) -> bool:
    """After ``scheduler.load_state_dict``: give the restored :class:`LinearWarmupDecay` lambdas this run's
    length (a resumed run may have been given more epochs) and set each group's learning rate for the step it
    resumes at. Returns whether the length changed."""
    changed = False
    for fn in scheduler.lr_lambdas:
        if (fn.total_steps, fn.warmup_steps) != (total_steps, warmup_steps):
            fn.total_steps, fn.warmup_steps, changed = total_steps, warmup_steps, True
    step = scheduler.last_epoch
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * fn(step)
    return changed
