"""Learning-rate schedules selected by ``train:scheduler:type``; stepped once per iteration.

``TrueCosineAnnealingLR`` is torch's ``CosineAnnealingLR`` under the release's name; ``MultiStepLR`` is torch's;
``CosineAnnealingRestartLR`` (BasicSR's cosine with restarts) is written here because torch has no equivalent with
per-period lengths and restart weights. Linear warm-up (``train:warmup_iter``) is applied by the model on top.
All are built by ``SCHEDULER_REGISTRY.build(opt['train']['scheduler'], 'train:scheduler', optimizer=optimizer)``.
"""
import math

from torch.optim import lr_scheduler as torch_sched

from basicsr.utils.registry import SCHEDULER_REGISTRY


@SCHEDULER_REGISTRY.register()
class TrueCosineAnnealingLR(torch_sched.CosineAnnealingLR):
    """Cosine from the base lr to ``eta_min`` over ``T_max`` iterations (torch's ``CosineAnnealingLR``)."""


@SCHEDULER_REGISTRY.register()
class CosineAnnealingRestartLR(torch_sched.LRScheduler):
    """Cosine annealing restarted after each period.

    ``periods`` [p0, p1, ...] are period lengths in iterations; at the start of period i the lr jumps back to
    ``restart_weights[i] * base_lr`` and decays towards ``eta_min`` over ``p_i`` iterations:
    ``lr = eta_min + w_i * (base_lr - eta_min) * (1 + cos(pi * (t - start_i) / p_i)) / 2``.
    """

    def __init__(self, optimizer, periods, restart_weights=None, eta_min=0.0, last_epoch=-1):
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in (restart_weights or [1.0] * len(self.periods))]
        if len(self.periods) != len(self.restart_weights):
            raise ValueError('train:scheduler: periods and restart_weights must have the same length, got '
                             f'{len(self.periods)} and {len(self.restart_weights)}')
        if not self.periods or min(self.periods) < 1:
            raise ValueError(f'train:scheduler:periods: expected positive period lengths, got {periods!r}')
        self.eta_min = float(eta_min)
        self.cumulative = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        idx = next((i for i, end in enumerate(self.cumulative) if t <= end), len(self.cumulative) - 1)
        start = self.cumulative[idx - 1] if idx > 0 else 0
        factor = self.restart_weights[idx] * 0.5 * (1 + math.cos(math.pi * (t - start) / self.periods[idx]))
        return [self.eta_min + factor * (base - self.eta_min) for base in self.base_lrs]


@SCHEDULER_REGISTRY.register()
class MultiStepLR(torch_sched.MultiStepLR):
    """Multiply the lr by ``gamma`` at each of ``milestones`` (torch's ``MultiStepLR``)."""


SCHEDULER_REGISTRY.register(TrueCosineAnnealingLR, name='CosineAnnealingLR')  # torch's name, same schedule


def warmup_lrs(initial_lrs, current_iter, warmup_iter):
    """BasicSR's linear warm-up: ``initial_lr * current_iter / warmup_iter`` while ``current_iter < warmup_iter``,
    else None (the scheduler's lr is used)."""
    if warmup_iter is None or warmup_iter <= 0 or current_iter >= warmup_iter:
        return None
    return [lr * current_iter / warmup_iter for lr in initial_lrs]
