"""iPASSR: stereo image super-resolution with symmetric (bi-directional) parallax attention.

Wang, Ying, Wang, Yang, An, Guo, "Symmetric Parallax Attention for Stereo Image Super-Resolution", CVPR Workshops
2021 (arXiv:2011.03802); released code and weights: github.com/YingqianWang/iPASSR (``log/iPASSR_2xSR.pth.tar``,
``log/iPASSR_4xSR.pth.tar``, ``{'epoch': int, 'state_dict': ...}``).

Input (N, 6, h, w): the left and right LR views on channels, in [0, 1] (RGB: the release reads its images with PIL).
Output (N, 6, s*h, s*w). Both views share every weight: a 3x3 conv, a residual dense group (``deep_feature``: 4
residual dense blocks whose outputs are also concatenated), the bi-directional parallax attention module (``pam``,
``BiPAM``) that lets each row of one view gather the same row of the other, gated by a validity (occlusion) mask
deduced from the two attention maps; a fusion (residual dense block, channel attention, 1x1 conv) of each view's
features with what it gathered; a second residual dense group; a 1x1 conv, PixelShuffle and a 3x3 conv; plus the
bicubic up-sampling of the input. ``forward(x, return_attention=True)`` also returns the attention maps and
validity masks the release's training returns (``is_training=1``), which its losses need (``losses/parallax_loss.py``).

Parameter names and shapes equal the release's ``Net(upscale_factor)``, so its ``state_dict`` loads strictly.
One release behaviour is kept on purpose: the release never calls ``eval()``, so its only BatchNorm (in the
parallax attention) always normalises with the statistics of the input it sees (at test time, of the one test
image). ``test_bn_stats='input'`` (default) does the same in eval mode, per image; ``'running'`` uses the tracked
averages as an ordinary BatchNorm would (not what the released weights were evaluated with).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY

VALIDITY_SHARPNESS = 5.0  # masks are tanh(5 * V), as in the release
RELAX_RADIUS = 2  # the release relaxes each attention column by +-2 pixels before deducing the validity masks


def _check_int(arg, value, error=ArchOptionError):
    """Networks raise ``ArchOptionError(arg, ...)`` (named ``network_g:<arg>``); blocks, whose arguments come from
    ``<kind>_kwargs``, a ValueError that starts with the argument's name (as the other registered blocks)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        message = f'expected an integer >= 1, got {value!r}'
        raise error(arg, message) if error is ArchOptionError else ValueError(f'{arg}: {message}')


class DenseLayer(nn.Module):
    """3x3 conv + LeakyReLU(0.1) whose output is appended to its input on channels: (N, c, H, W) -> (N, c+g, H, W)."""

    def __init__(self, c, growth):
        super().__init__()
        self.conv = nn.Conv2d(c, growth, 3, padding=1)

    def forward(self, x):
        return torch.cat((x, F.leaky_relu(self.conv(x), 0.1, inplace=True)), dim=1)


@BLOCK_REGISTRY.register()
class ResidualDenseBlock(nn.Module):
    """iPASSR's residual dense block (the release's ``RDB``, after RDN): (N, c, H, W) -> (N, c, H, W).

    ``num_layers`` dense layers each add ``growth`` channels; a 1x1 conv (``LFF``, local feature fusion) maps the
    concatenation back to ``c`` channels and the input is added.
    """
    block_kind = 'intra'

    def __init__(self, c, growth=24, num_layers=4):
        super().__init__()
        _check_int('growth', growth, ValueError)
        _check_int('num_layers', num_layers, ValueError)
        self.conv = nn.Sequential(*(DenseLayer(c + i * growth, growth) for i in range(num_layers)))
        self.LFF = nn.Conv2d(c + num_layers * growth, c, 1)

    def forward(self, x):
        return self.LFF(self.conv(x)) + x


class ResidualDenseGroup(nn.Module):
    """``num_blocks`` residual dense blocks in a row (the release's ``RDG``); returns the 1x1 fusion of all their
    outputs, (N, c, H, W), and that concatenation itself, (N, num_blocks * c, H, W), which the attention reads."""

    def __init__(self, c, growth, num_layers, num_blocks):
        super().__init__()
        self.RDB = nn.Sequential(*(ResidualDenseBlock(c, growth, num_layers) for _ in range(num_blocks)))
        self.conv = nn.Conv2d(c * num_blocks, c, 1)

    def forward(self, x):
        feats = []
        for block in self.RDB:
            x = block(x)
            feats.append(x)
        feats = torch.cat(feats, dim=1)
        return self.conv(feats), feats


class ChannelAttention(nn.Module):
    """RCAN's channel attention (the release's ``CALayer``): x * sigmoid(conv(lrelu(conv(global mean of x))))."""

    def __init__(self, c, reduction=16):
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(c, c // reduction, 1), nn.LeakyReLU(0.1, inplace=True),
                                     nn.Conv2d(c // reduction, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class GroupedResBlock(nn.Module):
    """x + conv(lrelu(conv(x))) with grouped 3x3 convs (the release's ``ResB``)."""

    def __init__(self, c, groups):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=groups), nn.LeakyReLU(0.1, inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1, groups=groups))

    def forward(self, x):
        return self.body(x) + x


class InputStatBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in eval mode, normalises each image with its own statistics (``input_stats=True``), as the
    release's BatchNorm does at test time (it is never put in eval mode; batch 1); in training it is an ordinary
    BatchNorm over the batch (running averages updated), and with ``input_stats=False`` an ordinary one in eval."""

    def __init__(self, c, input_stats=True):
        super().__init__(c)
        self.input_stats = input_stats

    def forward(self, x):
        if self.training or not self.input_stats:
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def relax(m, dim, radius=RELAX_RADIUS):
    """Sum of ``m`` shifted by -radius..radius along ``dim`` (zeros shifted in): a box filter of width
    2 * radius + 1, which tolerates attention that lands a pixel or two off (the release's ``M_Relax``)."""
    size = m.shape[dim]
    out = m.clone()
    for d in range(1, min(radius, size - 1) + 1):
        out.narrow(dim, d, size - d).add_(m.narrow(dim, 0, size - d))
        out.narrow(dim, 0, size - d).add_(m.narrow(dim, d, size - d))
    return out


def parallax_attention(q, k):
    """Row attention maps of (N, C, H, W) left queries ``q`` and right keys ``k``, both centred over the width.

    Returns ``(m_r2l, m_l2r_t)``, both (N, H, W_left, W_right): ``m_r2l`` is the softmax of the scores over the
    right positions (each left pixel's weights over its row of the right view), ``m_l2r_t`` the softmax over the
    left positions, i.e. the left-to-right map transposed (a view of it, never copied).
    """
    q = q - q.mean(dim=3, keepdim=True)
    k = k - k.mean(dim=3, keepdim=True)
    score = torch.matmul(q.permute(0, 2, 3, 1), k.permute(0, 2, 1, 3))  # N, H, W_left, W_right
    return torch.softmax(score, dim=-1), torch.softmax(score, dim=-2)


def validity_masks(m_r2l, m_l2r_t):
    """The release's occlusion reasoning: a left pixel is valid (visible in the right view) when going to the right
    view and back (relaxed by +-2 pixels) returns to it. Returns ``(v_left, v_right)`` = tanh(5 V), (N, 1, H, W),
    without gradient (the release detaches them)."""
    with torch.no_grad():
        v_left = (relax(m_r2l, dim=-2) * m_l2r_t).sum(dim=-1)   # N, H, W_left
        v_right = (relax(m_l2r_t, dim=-1) * m_r2l).sum(dim=-2)  # N, H, W_right
        return (torch.tanh(VALIDITY_SHARPNESS * v_left).unsqueeze(1),
                torch.tanh(VALIDITY_SHARPNESS * v_right).unsqueeze(1))


def warp_rows(m, x):
    """Gather ``x`` (N, C, H, W) along rows with attention ``m`` (N, H, W_out, W): (N, C, H, W_out)."""
    return torch.matmul(m, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)



def attention_disparity(m_r2l, mode='expectation'):
    """Disparity (N, H, W) of the left view read from the right-to-left attention (N, H, W, W), in pixels of the
    attention's resolution and the SGBM convention (left pixel x matches right pixel x - d): x minus the attended
    right position, its expectation under the attention row or its most attended one (``mode='argmax'``)."""
    w = m_r2l.shape[-1]
    positions = torch.arange(w, dtype=m_r2l.dtype, device=m_r2l.device)
    if mode == 'expectation':
        attended = (m_r2l * positions).sum(dim=-1)
    elif mode == 'argmax':
        attended = m_r2l.argmax(dim=-1).to(m_r2l.dtype)
    else:
        raise ValueError(f"mode: expected expectation or argmax, got {mode!r}")
    return positions[:m_r2l.shape[-2]] - attended

@BLOCK_REGISTRY.register()
class BiPAM(nn.Module):
    """iPASSR's bi-directional parallax attention module (the release's ``PAM``): (x_l, x_r), each (N, c, H, W)
    -> the same.

    Queries (left) and keys (right) come from ``key`` features of ``key_channels`` channels (in iPASSR the
    concatenated residual dense block outputs, 4c; by default the features themselves): BatchNorm (``bn``), a
    grouped residual block (``rb``) and a grouped 1x1 conv each (``bq``, ``bs``). One score map gives both
    directions (softmax over each axis); each view receives what it gathers from the other where its validity
    mask says the pixel is visible there: ``x * (1 - v) + gathered * v``.
    """
    block_kind = 'cross'

    def __init__(self, c, key_channels=None, groups=4, input_stats=True):
        super().__init__()
        key_channels = c if key_channels is None else key_channels
        _check_int('groups', groups, ValueError)
        if c % groups or key_channels % groups:
            raise ValueError(f'groups: {c} and {key_channels} channels are not divisible by {groups} groups')
        self.bq = nn.Conv2d(key_channels, c, 1, groups=groups)
        self.bs = nn.Conv2d(key_channels, c, 1, groups=groups)
        self.rb = GroupedResBlock(key_channels, groups)
        self.bn = InputStatBatchNorm2d(key_channels, input_stats=input_stats)

    def attend(self, x_l, x_r, key_l=None, key_r=None):
        """``(out_l, out_r, (m_r2l, m_l2r), (v_left, v_right))``; the maps are (N, H, W, W) (``m_l2r`` is a
        transposed view), the masks (N, 1, H, W)."""
        key_l = x_l if key_l is None else key_l
        key_r = x_r if key_r is None else key_r
        # BatchNorm statistics per view, left first, as the release normalises each view in its own call
        q = self.bq(self.rb(self.bn(key_l)))
        k = self.bs(self.rb(self.bn(key_r)))
        m_r2l, m_l2r_t = parallax_attention(q, k)
        v_left, v_right = validity_masks(m_r2l, m_l2r_t)
        m_l2r = m_l2r_t.transpose(-1, -2)
        out_l = torch.lerp(x_l, warp_rows(m_r2l, x_r), v_left)
        out_r = torch.lerp(x_r, warp_rows(m_l2r, x_l), v_right)
        return out_l, out_r, (m_r2l, m_l2r), (v_left, v_right)

    def forward(self, x_l, x_r):
        return self.attend(x_l, x_r)[:2]


@ARCH_REGISTRY.register()
class iPASSR(nn.Module):  # noqa: N801  (the paper's and the release's spelling)
    """iPASSR stereo super-resolution network.

    Args:
        up_scale: up-sampling factor s (the release's ``upscale_factor``; released: 2 and 4).
        width: feature channels (release: 64).
        growth, dense_layers, num_rdb: each residual dense group has ``num_rdb`` blocks of ``dense_layers``
            layers adding ``growth`` channels each (release: 24, 4, 4).
        fusion_growth: growth of the fusion's residual dense block on 2 * width channels (release: 32).
        groups: groups of the attention's convolutions (release: 4).
        test_bn_stats: ``input`` (the release's behaviour: in eval mode the attention's BatchNorm uses each test
            image's own statistics) or ``running`` (the tracked averages).
        channels_last: run the features channels-last in memory (same results; faster convolutions on CPUs and
            GPUs, and the attention's permutes become free views); the output is contiguous either way.
    """

    def __init__(self, up_scale=4, width=64, growth=24, dense_layers=4, num_rdb=4, fusion_growth=32, groups=4,
                 test_bn_stats='input', channels_last=True):
        super().__init__()
        for arg, value in (('up_scale', up_scale), ('width', width), ('growth', growth),
                           ('dense_layers', dense_layers), ('num_rdb', num_rdb), ('fusion_growth', fusion_growth)):
            _check_int(arg, value)
        if test_bn_stats not in ('input', 'running'):
            raise ArchOptionError('test_bn_stats', f'expected input or running, got {test_bn_stats!r}')
        if 2 * width < 16:
            raise ArchOptionError('width', f'expected at least 8 (channel attention reduces 2 * width by 16), '
                                           f'got {width}')
        self.up_scale = up_scale
        self.in_channels = 6
        self.init_feature = nn.Conv2d(3, width, 3, padding=1)
        self.deep_feature = ResidualDenseGroup(width, growth, dense_layers, num_rdb)
        self.pam = BiPAM(width, key_channels=num_rdb * width, groups=groups, input_stats=test_bn_stats == 'input')
        self.fusion = nn.Sequential(ResidualDenseBlock(2 * width, fusion_growth, dense_layers),
                                    ChannelAttention(2 * width), nn.Conv2d(2 * width, width, 1))
        self.reconstruct = ResidualDenseGroup(width, growth, dense_layers, num_rdb)
        self.upscale = nn.Sequential(nn.Conv2d(width, width * up_scale ** 2, 1), nn.PixelShuffle(up_scale),
                                     nn.Conv2d(width, 3, 3, padding=1))
        self.channels_last = bool(channels_last)
        if self.channels_last:  # weights in the layout of their gradients (values and names unchanged)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.to(memory_format=torch.channels_last)

    def forward(self, inp, return_attention=False):
        """SR (N, 6, s*h, s*w); with ``return_attention`` also ``(m_r2l, m_l2r)`` (N, h, w, w) and the validity
        masks ``(v_left, v_right)`` (N, 1, h, w), as the release's ``Net(..., is_training=1)``."""
        if inp.dim() != 4 or inp.shape[1] != 6:
            raise ValueError(f'{type(self).__name__} expects (N, 6, h, w) = left and right views on channels, '
                             f'got {tuple(inp.shape)}')
        # one view at a time through the shared weights: the same work as a (2N)-batch, half the peak memory
        views = inp.chunk(2, dim=1)
        if self.channels_last:
            views = tuple(v.contiguous(memory_format=torch.channels_last) for v in views)
        (feat_l, key_l), (feat_r, key_r) = (self.deep_feature(self.init_feature(v)) for v in views)
        out_l, out_r, maps, masks = self.pam.attend(feat_l, feat_r, key_l, key_r)
        del key_l, key_r
        out = F.interpolate(inp, scale_factor=self.up_scale, mode='bicubic', align_corners=False)
        for view, pair in enumerate(((feat_l, out_l), (feat_r, out_r))):
            out[:, 3 * view:3 * view + 3] += self.upscale(self.reconstruct(self.fusion(torch.cat(pair, dim=1)))[0])
        return (out, maps, masks) if return_attention else out
