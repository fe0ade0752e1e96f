"""CVHSSR: the Cross-View Hierarchy Network for stereo image super-resolution.

Zou, Gao, Chen, Zhang, Jiang, Yu, Tan, "Cross-View Hierarchy Network for Stereo Image Super-Resolution",
CVPR Workshops 2023 (arXiv:2304.06236); released code and weights: github.com/AlexZou14/CVHSSR.

The skeleton is NAFSSR's (``nafssr_arch.py``): input (N, 6, h, w), the left and right LR views on channels in
[0, 1] (BGR, as the release's data pipeline leaves them); a 3x3 conv per view, ``num_blks`` stereo blocks, a 3x3
conv with PixelShuffle, plus the bilinear up-sampling of the input; output (N, 6, s*h, s*w). CVHSSR changes the two
blocks of every stereo block:

* ``CHIMB`` (cross-hierarchy information mining block), the intra-view block: NAFNet's gated depthwise branch whose
  gated features are re-weighted by channel attention (global statistics; TLSC at test time) *plus* a large-kernel
  spatial attention (VAN's LKA), then a feed-forward branch gated by GELU after a depthwise 3x3 conv.
* ``CVIM`` (cross-view interaction module), the cross-view block: SCAM's row attention between the views, with a
  depthwise 3x3 conv after each query and value projection and a 1x1 output projection per view.

Both are registered in BLOCK_REGISTRY, so ``intra_block: CHIMB`` or ``cross_block: CVIM`` also work in NAFSSR.
Parameter names and shapes equal the released checkpoints' (``body.{i}.module.blk.{conv1..conv6, sca1.conv0,
sca1.conv_spatial, sca1.conv1, sca2.1, norm1, norm2, beta, gamma}``, ``body.{i}.module.fusion.{norm_l, norm_r,
l_proj1.0, l_proj1.1, ..., l_proj3, r_proj3, beta, gamma}``), so ``{'params': ...}`` files load unchanged.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import LayerNorm2d, SimpleGate
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.models.archs.scam import row_cross_attention, set_cross_view_layers
from basicsr.models.archs.tlsc import STEREO_TRAIN_SIZE
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY


class LargeKernelAttention(nn.Module):
    """VAN's large kernel attention (Guo et al., "Visual Attention Network", 2022): (N, c, H, W) -> same.

    A 21x21 receptive field from a depthwise 5x5 conv, a depthwise 7x7 conv with dilation 3 and a 1x1 conv; the
    result multiplies the input element-wise.
    """

    def __init__(self, c):
        super().__init__()
        self.conv0 = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.conv_spatial = nn.Conv2d(c, c, 7, padding=9, dilation=3, groups=c)
        self.conv1 = nn.Conv2d(c, c, 1)

    def attention(self, x):
        """The attention map (before it multiplies ``x``)."""
        return self.conv1(self.conv_spatial(self.conv0(x)))

    def forward(self, x):
        return x * self.attention(x)


@BLOCK_REGISTRY.register()
class CHIMB(nn.Module):
    """Cross-hierarchy information mining block, (N, c, H, W) -> (N, c, H, W).

    Two residual branches scaled by zero-initialised per-channel factors (``beta``, ``gamma``):
    LayerNorm -> 1x1 conv (x dw_expand) -> depthwise 3x3 -> SimpleGate -> ``x * sca2(x) + sca1(x)`` (channel
    attention from pooled statistics, and large kernel attention) -> 1x1 conv; then LayerNorm -> 1x1 conv
    (x ffn_expand) -> depthwise 3x3 -> GELU(first half) * second half -> 1x1 conv.
    """
    block_kind = 'intra'

    def __init__(self, c, dw_expand=2, ffn_expand=2, drop_out_rate=0.):
        super().__init__()
        for arg, value in (('dw_expand', dw_expand), ('ffn_expand', ffn_expand)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{arg}: expected an integer >= 1, got {value!r}')
        dw_channel = c * dw_expand
        ffn_channel = c * ffn_expand
        gated = dw_channel // 2
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw_channel, 1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, 3, padding=1, groups=dw_channel)
        self.sg = SimpleGate()
        self.sca1 = LargeKernelAttention(gated)
        self.sca2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(gated, gated, 1))
        self.conv3 = nn.Conv2d(gated, c, 1)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, ffn_channel, 1)
        self.conv5 = nn.Conv2d(ffn_channel, ffn_channel, 3, padding=1, groups=ffn_channel)
        self.conv6 = nn.Conv2d(ffn_channel // 2, c, 1)
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        # x * pooled + x * lka == x * (pooled + lka): one product instead of two
        x = x * (self.sca2(x) + self.sca1.attention(x))
        y = torch.addcmul(inp, self.dropout1(self.conv3(x)), self.beta)

        a, b = self.conv5(self.conv4(self.norm2(y))).chunk(2, dim=1)
        x = self.conv6(F.gelu(a) * b)
        return torch.addcmul(y, self.dropout2(x), self.gamma)


def _pointwise_then_depthwise(c):
    return nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c))


@BLOCK_REGISTRY.register()
class CVIM(nn.Module):
    """Cross-view interaction module: (x_l, x_r), each (N, c, H, W) -> the same.

    As SCAM (``scam.py``), each row of one view attends to the same row of the other with one shared logit map
    scaled by c ** -0.5; queries/keys come from the LayerNorm'd features (``l_proj1``, ``r_proj1``), values from
    the raw features (``l_proj2``, ``r_proj2``), each a 1x1 conv followed by a depthwise 3x3 conv; what a view
    gathers passes a 1x1 conv (``l_proj3`` into the left view, ``r_proj3`` into the right) and is scaled by the
    zero-initialised per-channel ``beta`` (left) and ``gamma`` (right) before it is added.
    """
    block_kind = 'cross'

    def __init__(self, c):
        super().__init__()
        set_cross_view_layers(self, c, lambda: _pointwise_then_depthwise(c), out_proj=lambda: nn.Conv2d(c, c, 1))

    def forward(self, x_l, x_r):
        r2l, l2r = row_cross_attention(self.l_proj1(self.norm_l(x_l)), self.r_proj1(self.norm_r(x_r)),
                                       self.l_proj2(x_l), self.r_proj2(x_r), self.scale)
        return torch.addcmul(x_l, self.l_proj3(r2l), self.beta), torch.addcmul(x_r, self.r_proj3(l2r), self.gamma)


@ARCH_REGISTRY.register()
class CVHSSR(NAFSSR):
    """CVHSSR stereo super-resolution network: NAFSSR's skeleton with ``CHIMB`` and ``CVIM`` blocks.

    Args (the release's option keys, so its ``network_g`` mappings work unchanged, plus NAFSSR's own):
        up_scale: up-sampling factor s.
        width: channels of the features.
        num_blks: number of stereo blocks.
        drop_path_rate: probability of skipping a whole stereo block in training.
        drop_out_rate: dropout inside CHIMB (the release accepts this key but never uses it; its option files
            all say 0).
        train_size: (N, 6, H, W) of the training input; TLSC windows of the channel attention are 1.5x (H, W).
        fast_imp: the release's approximate fast TLSC pooling.
        fusion_from, fusion_to: CVIM follows blocks fusion_from..fusion_to (inclusive).
        intra_block, intra_kwargs, cross_block, cross_kwargs, channels_last: as in NAFSSR.
    """

    def __init__(self, up_scale=4, width=48, num_blks=16, drop_path_rate=0., drop_out_rate=0.,
                 train_size=STEREO_TRAIN_SIZE, fast_imp=False, fusion_from=-1, fusion_to=1000,
                 intra_block='CHIMB', intra_kwargs=None, cross_block='CVIM', cross_kwargs=None,
                 channels_last=True):
        super().__init__(up_scale=up_scale, width=width, num_blks=num_blks, drop_path_rate=drop_path_rate,
                         drop_out_rate=drop_out_rate, train_size=train_size, fast_imp=fast_imp,
                         fusion_from=fusion_from, fusion_to=fusion_to, intra_block=intra_block,
                         intra_kwargs=intra_kwargs, cross_block=cross_block, cross_kwargs=cross_kwargs,
                         channels_last=channels_last)
