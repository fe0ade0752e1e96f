"""NAFNet: the nonlinear-activation-free block and the U-shaped restoration network built from it.

Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022 (arXiv:2204.04676).
Parameter names follow the released checkpoints (``encoders.0.1.conv2.weight``, ``middle_blks.0.sca.1.bias``...).
``NAFNetLocal`` is NAFNet with TLSC (see ``tlsc.py``) built from its training size.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import LayerNorm2d, SimpleGate
from basicsr.models.archs.tlsc import check_train_size, convert_global_pools, fast_max_reduction, tlsc_kernel_size
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY


def set_two_branch_layers(block, c, dw_channel, ffn_channel, shrink, drop_out_rate, mixing):
    """Set the layers of a NAFNet-style two-branch block on ``block``, in the released checkpoints' order:
    ``norm1``, ``conv1`` (1x1, c -> dw_channel), ``conv2`` (3x3 depthwise), the ``mixing`` modules ((name, factory)
    pairs: NAFBlock's SimpleGate and ``sca``, the Baseline's GELU and ``se``), ``conv3`` (1x1, dw_channel // shrink
    -> c), ``dropout1``, ``beta``; ``norm2``, ``conv4`` (1x1, c -> ffn_channel), ``conv5`` (1x1, ffn_channel //
    shrink -> c), ``dropout2``, ``gamma`` (``beta`` and ``gamma`` zero-initialised per-channel factors)."""
    block.norm1 = LayerNorm2d(c)
    block.conv1 = nn.Conv2d(c, dw_channel, 1)
    block.conv2 = nn.Conv2d(dw_channel, dw_channel, 3, padding=1, groups=dw_channel)
    for name, make in mixing:  # made here, so that random initialisation draws in the released order
        setattr(block, name, make())
    block.conv3 = nn.Conv2d(dw_channel // shrink, c, 1)
    block.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
    block.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
    block.norm2 = LayerNorm2d(c)
    block.conv4 = nn.Conv2d(c, ffn_channel, 1)
    block.conv5 = nn.Conv2d(ffn_channel // shrink, c, 1)
    block.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
    block.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))


@BLOCK_REGISTRY.register()
class NAFBlock(nn.Module):
    """NAFNet block on (N, c, H, W) -> (N, c, H, W).

    Two residual branches, each scaled by a zero-initialised per-channel factor (``beta``, ``gamma``):
    LayerNorm -> 1x1 conv (x dw_expand) -> 3x3 depthwise conv -> SimpleGate -> simplified channel attention
    (``sca``: global average pool, 1x1 conv, multiply) -> 1x1 conv; then LayerNorm -> 1x1 conv (x ffn_expand)
    -> SimpleGate -> 1x1 conv. Subclasses change the spatial mixing by overriding ``spatial``.
    """
    block_kind = 'intra'

    def __init__(self, c, dw_expand=2, ffn_expand=2, drop_out_rate=0.):
        super().__init__()
        dw_channel = c * dw_expand
        set_two_branch_layers(self, c, dw_channel, c * ffn_expand, 2, drop_out_rate, mixing=(
            ('sg', SimpleGate),
            ('sca', lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channel // 2, dw_channel // 2, 1)))))

    def spatial(self, x):
        """The spatial mixing of the first branch (a depthwise 3x3 conv here)."""
        return self.conv2(x)

    def forward(self, inp):
        x = self.sg(self.spatial(self.conv1(self.norm1(inp))))
        x = x * self.sca(x)
        y = torch.addcmul(inp, self.dropout1(self.conv3(x)), self.beta)  # inp + branch * beta, one pass

        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return torch.addcmul(y, self.dropout2(x), self.gamma)


class RestorationUNet(nn.Module):
    """The U-shaped image-to-image network of NAFNet and its Baseline, for any block ``block(c)``.

    (N, img_channel, H, W) -> same shape. The input is zero-padded at the bottom and right to a multiple of
    2 ** len(enc_blk_nums) and the output cropped back; the network predicts a residual added to the input.
    """

    def __init__(self, block, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=()):
        super().__init__()
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[block(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[block(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[block(chan) for _ in range(num)]))
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.in_channels = img_channel
        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, -w % self.padder_size, 0, -h % self.padder_size))
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[..., :h, :w]

    def convert_to_tlsc(self, train_size, fast_imp=False):
        """Replace the global pools of every stage by TLSC windows sized for a ``train_size`` input.

        A stage's window is scaled to the resolution of its features for a (padded) training-size input.
        """
        train_hw = tuple(train_size[-2:])
        padded = [-(-t // self.padder_size) * self.padder_size for t in train_hw]
        levels = len(self.encoders)
        stages = [(enc, i) for i, enc in enumerate(self.encoders)] + [(self.middle_blks, levels)]
        stages += [(dec, levels - 1 - j) for j, dec in enumerate(self.decoders)]
        for stage, level in stages:
            feature_hw = tuple(p >> level for p in padded)
            convert_global_pools(stage, tlsc_kernel_size(train_hw, feature_hw), fast_imp=fast_imp,
                                 max_reduction=fast_max_reduction(train_hw, feature_hw))


@ARCH_REGISTRY.register()
class NAFNet(RestorationUNet):
    """NAFNet (Chen et al. 2022) with global channel-attention pooling, as trained."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=()):
        super().__init__(NAFBlock, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)


@ARCH_REGISTRY.register()
class NAFNetLocal(NAFNet):
    """NAFNet with TLSC: local statistics for inputs larger than 1.5x ``train_size`` (N, C, H, W)."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(),
                 train_size=(1, 3, 256, 256), fast_imp=False):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        self.convert_to_tlsc(check_train_size(train_size, img_channel), fast_imp)
