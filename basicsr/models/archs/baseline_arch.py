"""The Baseline of "Simple Baselines for Image Restoration" (Chen et al., ECCV 2022): NAFNet's ancestor.

Same U-shaped network as NAFNet (``RestorationUNet``), with the block before its simplifications: GELU instead
of SimpleGate, and a full squeeze-and-excitation channel attention (``se``: pool, 1x1, ReLU, 1x1, sigmoid).
``BaselineLocal`` adds TLSC (see ``tlsc.py``).
"""
from functools import partial

from torch import nn

from basicsr.models.archs.nafnet_arch import RestorationUNet, set_two_branch_layers
from basicsr.models.archs.tlsc import check_train_size
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY


@BLOCK_REGISTRY.register()
class BaselineBlock(nn.Module):
    """Baseline block on (N, c, H, W) -> (N, c, H, W); also usable as a NAFSSR intra-view block."""
    block_kind = 'intra'

    def __init__(self, c, dw_expand=1, ffn_expand=2, drop_out_rate=0.):
        super().__init__()
        dw_channel = c * dw_expand
        set_two_branch_layers(self, c, dw_channel, c * ffn_expand, 1, drop_out_rate, mixing=(
            ('gelu', nn.GELU),
            ('se', lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channel, dw_channel // 2, 1),
                                         nn.ReLU(inplace=True), nn.Conv2d(dw_channel // 2, dw_channel, 1),
                                         nn.Sigmoid()))))

    def forward(self, inp):
        x = self.gelu(self.conv2(self.conv1(self.norm1(inp))))
        x = x * self.se(x)
        y = inp + self.dropout1(self.conv3(x)) * self.beta

        x = self.conv5(self.gelu(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


@ARCH_REGISTRY.register()
class Baseline(RestorationUNet):
    """The Baseline network, (N, img_channel, H, W) -> same shape."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(),
                 dw_expand=1, ffn_expand=2):
        block = partial(BaselineBlock, dw_expand=dw_expand, ffn_expand=ffn_expand)
        super().__init__(block, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)


@ARCH_REGISTRY.register()
class BaselineLocal(Baseline):
    """Baseline with TLSC built from ``train_size`` (N, C, H, W)."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(),
                 dw_expand=1, ffn_expand=2, train_size=(1, 3, 256, 256), fast_imp=False):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, dw_expand, ffn_expand)
        self.convert_to_tlsc(check_train_size(train_size, img_channel), fast_imp)
