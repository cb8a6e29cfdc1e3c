"""Learning-rate schedules (MXNet's names): scheduler(num_update) -> lr,
with an optional linear warm-up. Give one to the Trainer as
optimizer_params={"lr_scheduler": ...}."""
from __future__ import annotations

import math


class LRScheduler:
    def __init__(self, base_lr: float = 0.01, warmup_steps: int = 0, warmup_begin_lr: float = 0.0):
        self.base_lr, self.warmup_steps, self.warmup_begin_lr = base_lr, warmup_steps, warmup_begin_lr

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * num_update / self.warmup_steps
        return self.decayed(num_update)

    def decayed(self, num_update: int) -> float:
        return self.base_lr


class FactorScheduler(LRScheduler):
    """lr * factor every `step` updates, not below stop_factor_lr."""

    def __init__(self, step: int, factor: float = 1.0, stop_factor_lr: float = 1e-8, base_lr: float = 0.01,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0.0):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr)
        self.step, self.factor, self.stop = step, factor, stop_factor_lr

    def decayed(self, num_update):
        return max(self.stop, self.base_lr * self.factor ** (num_update // self.step))


class MultiFactorScheduler(LRScheduler):
    """lr * factor at each update count in `step` (increasing)."""

    def __init__(self, step: list, factor: float = 1.0, base_lr: float = 0.01, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0.0):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr)
        if list(step) != sorted(step):
            raise ValueError(f"MultiFactorScheduler: steps must increase, got {step}")
        self.steps, self.factor = list(step), factor

    def decayed(self, num_update):
        return self.base_lr * self.factor ** sum(1 for s in self.steps if num_update >= s)


class CosineScheduler(LRScheduler):
    """From base_lr to final_lr along half a cosine over max_update updates (after warm-up)."""

    def __init__(self, max_update: int, base_lr: float = 0.01, final_lr: float = 0.0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0.0):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr)
        self.max_update, self.final_lr = max_update, final_lr

    def decayed(self, num_update):
        t = min(max(num_update - self.warmup_steps, 0), self.max_update - self.warmup_steps)
        span = max(self.max_update - self.warmup_steps, 1)
        return self.final_lr + (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * t / span)) / 2
