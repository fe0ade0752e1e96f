"""MultiScaleSCAM: stereo cross-attention along rows at full resolution and at a coarser scale.

At the coarse scale both views are average-pooled by ``pool`` in height and width, rows attend to rows as in
SCAM (over ``pool`` times fewer positions, so each position covers a wider disparity step), and the gathered
features are up-sampled back (nearest) before they are added. Each scale has its own projections and its own
zero-initialised output scales, so the module starts as the identity, like SCAM; the full-resolution scale keeps
SCAM's parameter names. Select it with ``cross_block: MultiScaleSCAM`` and ``cross_kwargs: {pool: 2}``.
"""
import torch.nn.functional as F

from basicsr.models.archs.scam import SCAM
from basicsr.utils.registry import BLOCK_REGISTRY


@BLOCK_REGISTRY.register()
class MultiScaleSCAM(SCAM):
    """(x_l, x_r), each (N, c, H, W) -> the same; SCAM at full resolution plus SCAM on ``pool``x pooled views."""
    block_kind = 'cross'

    def __init__(self, c, pool=2):
        super().__init__(c)
        if not isinstance(pool, int) or pool < 2:
            raise ValueError(f'pool: expected an integer >= 2, got {pool!r}')
        self.pool = pool
        self.coarse = SCAM(c)

    def forward(self, x_l, x_r):
        to_l, to_r = self.exchange(x_l, x_r)
        size = x_l.shape[-2:]
        coarse_l = F.avg_pool2d(x_l, self.pool, ceil_mode=True)
        coarse_r = F.avg_pool2d(x_r, self.pool, ceil_mode=True)
        c_to_l, c_to_r = self.coarse.exchange(coarse_l, coarse_r)
        to_l = to_l + F.interpolate(c_to_l, size=size, mode='nearest')
        to_r = to_r + F.interpolate(c_to_r, size=size, mode='nearest')
        return x_l + to_l, x_r + to_r
