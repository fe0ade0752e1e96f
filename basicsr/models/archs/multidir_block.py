"""MultiDirBlock: a NAFBlock whose depthwise 3x3 conv is joined by long horizontal and vertical depthwise convs.

Stereo features vary most along rows (disparity) and long thin kernels widen the receptive field cheaply:
the spatial mixing is ``dw3x3(x) + dw1xk(x) + dwkx1(x)``. The two new branches start at zero, so a MultiDirBlock
starts as the NAFBlock it extends and can be fine-tuned from a NAFSSR checkpoint (load with strict=False).
Select it in YAML with ``intra_block: MultiDirBlock`` and ``intra_kwargs: {kernel_size: 7}``.
"""
from torch import nn

from basicsr.models.archs.nafnet_arch import NAFBlock
from basicsr.utils.registry import BLOCK_REGISTRY


@BLOCK_REGISTRY.register()
class MultiDirBlock(NAFBlock):
    """NAFBlock with multi-direction depthwise spatial mixing: 3x3 + 1 x ``kernel_size`` + ``kernel_size`` x 1."""

    def __init__(self, c, kernel_size=7, dw_expand=2, ffn_expand=2, drop_out_rate=0.):
        super().__init__(c, dw_expand=dw_expand, ffn_expand=ffn_expand, drop_out_rate=drop_out_rate)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size: expected an odd positive integer, got {kernel_size!r}')
        dw_channel = c * dw_expand
        pad = kernel_size // 2
        self.conv2_row = nn.Conv2d(dw_channel, dw_channel, (1, kernel_size), padding=(0, pad), groups=dw_channel,
                                   bias=False)
        self.conv2_col = nn.Conv2d(dw_channel, dw_channel, (kernel_size, 1), padding=(pad, 0), groups=dw_channel,
                                   bias=False)
        nn.init.zeros_(self.conv2_row.weight)
        nn.init.zeros_(self.conv2_col.weight)

    def spatial(self, x):
        return self.conv2(x) + self.conv2_row(x) + self.conv2_col(x)
