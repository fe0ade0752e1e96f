"""Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016), in the two forms the released
networks were trained with. Both draw from torch's default generator, so restoring torch's RNG state replays the
same drops.

- ``DropPath``: NAFSSR's (NAFNet release): a whole stereo block is skipped for the whole batch; NAFSSR, CVHSSR and
  SCGLANet wrap their blocks in it.
- ``drop_path``: per sample, on a residual branch (the Swin Transformer releases' form: SwinFIR's, SwinFSR's).
"""
import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth over whole blocks: in training, skip ``module`` for the whole batch with probability
    ``drop_rate`` and otherwise scale its update (output minus input) by 1 / (1 - drop_rate)."""

    def __init__(self, drop_rate, module):
        super().__init__()
        self.drop_rate = drop_rate
        self.module = module

    def forward(self, *feats):
        if not self.training or self.drop_rate == 0:
            return self.module(*feats)
        if torch.rand(()).item() < self.drop_rate:
            return feats
        factor = 1. / (1. - self.drop_rate)
        return tuple(x + factor * (y - x) for x, y in zip(feats, self.module(*feats)))


def drop_path(x, rate, training, draw='rand'):
    """Per-sample stochastic depth of a residual branch ``x``: zero a sample's branch with probability ``rate`` and
    scale the others by 1 / (1 - rate). ``draw``: how the samples' keep mask comes from torch's generator, as each
    release drew it, so that a seeded run drops the same samples as the release: ``'rand'`` (uniform draws
    floored, and the branch divided before the mask: SwinFIR's copy of timm) or ``'bernoulli'`` (``bernoulli_``,
    and the mask divided: timm's ``DropPath`` as SwinFSR uses it)."""
    if rate == 0. or not training:
        return x
    keep = 1 - rate
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    if draw == 'bernoulli':
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)
    mask = torch.rand(shape, dtype=x.dtype, device=x.device).add_(keep).floor_()
    return x.div(keep) * mask
