"""NAFSSR: stereo image super-resolution with NAFNet blocks and stereo cross-attention.

Chu, Chen, Yu, "NAFSSR: Stereo Image Super-Resolution Using NAFNet", CVPR Workshops 2022 (arXiv:2204.08714).

Input (N, 6, h, w): the left and right low-resolution views concatenated on channels, in [0, 1].
Output (N, 6, s*h, s*w). Both views go through the same weights: a 3x3 conv (``intro``), ``num_blks`` stereo
blocks (an intra-view block applied to each view, then a cross-view block exchanging information along rows),
a 3x3 conv with PixelShuffle (``up``), plus the bilinear up-sampling of the input.

The intra-view and cross-view blocks are chosen by their BLOCK_REGISTRY names (defaults ``NAFBlock`` and
``SCAM``, the paper's); with the defaults, parameter names and shapes equal the released checkpoints
(``body.{i}.module.blk.*``, ``body.{i}.module.fusion.*``). Channel attention uses TLSC (``tlsc.py``) built from
``train_size``, as in the release.
"""
import inspect
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.models.archs.drop_path import DropPath
from basicsr.models.archs.tlsc import (STEREO_TRAIN_SIZE, check_train_size, convert_global_pools, fast_max_reduction,
                                      tlsc_kernel_size)
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY, check_kwargs, nested_key_path


def resolve_block(kind, name, kwargs):
    """The constructor ``f(c)`` of the registered ``kind`` ('intra' or 'cross') block ``name`` with ``kwargs``.

    Errors name the constructor argument (``intra_block``, ``intra_kwargs:<key>``), under the key path being built
    (``network_g:intra_block``) when the network is built from options.
    """
    cls = BLOCK_REGISTRY.get(name, key_path=nested_key_path(f'{kind}_block'))
    actual = getattr(cls, 'block_kind', kind)
    if actual != kind:
        raise ArchOptionError(f'{kind}_block', f'{name} is a {actual}-view block; expected a {kind}-view block')
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise ArchOptionError(f'{kind}_kwargs', f'expected a mapping of keyword arguments for {name}, '
                                                f'got {kwargs!r}')
    check_kwargs(partial(cls, 0), kwargs, nested_key_path(f'{kind}_kwargs'))
    return partial(cls, **kwargs)


class StereoBlock(nn.Module):
    """One intra-view block ``blk`` applied to each view (shared weights), then the cross-view block
    ``fusion`` (or nothing when ``fusion`` is None)."""

    def __init__(self, blk, fusion=None):
        super().__init__()
        self.blk = blk
        self.fusion = fusion

    def forward(self, x_l, x_r):
        x_l, x_r = self.blk(x_l), self.blk(x_r)
        if self.fusion is not None:
            x_l, x_r = self.fusion(x_l, x_r)
        return x_l, x_r


@ARCH_REGISTRY.register()
class NAFSSR(nn.Module):
    """NAFSSR stereo super-resolution network.

    Args:
        up_scale: up-sampling factor s.
        width: channels of the features.
        num_blks: number of stereo blocks.
        drop_path_rate: probability of skipping a whole stereo block in training (same for every block).
        drop_out_rate: dropout inside the intra-view block (passed to it as ``drop_out_rate``).
        train_size: (N, 6, H, W) of the training input; TLSC windows are 1.5x (H, W).
        fast_imp: use the release's approximate fast TLSC pooling.
        fusion_from, fusion_to: the cross-view block follows blocks fusion_from..fusion_to (inclusive).
        channels_last: run the features channels-last in memory (same results, faster on CPUs and GPUs: the
            convolutions need no reorders and the channel LayerNorm and SCAM's permutes become free views);
            the output is returned in the usual contiguous layout either way.
        intra_block, intra_kwargs: registered intra-view block ``f(c, **intra_kwargs)``: (N,c,H,W) -> same.
        cross_block, cross_kwargs: registered cross-view block ``f(c, **cross_kwargs)``: (x_l, x_r) -> same.
    """

    def __init__(self, up_scale=4, width=48, num_blks=16, drop_path_rate=0., drop_out_rate=0.,
                 train_size=STEREO_TRAIN_SIZE, fast_imp=False, fusion_from=-1, fusion_to=1000,
                 intra_block='NAFBlock', intra_kwargs=None, cross_block='SCAM', cross_kwargs=None,
                 channels_last=True):
        super().__init__()
        img_channel = 3
        for arg, value, least in (('up_scale', up_scale, 1), ('width', width, 1), ('num_blks', num_blks, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ArchOptionError(arg, f'expected an integer >= {least}, got {value!r}')
        if not 0 <= drop_path_rate < 1:
            raise ArchOptionError('drop_path_rate', f'expected a probability in [0, 1), got {drop_path_rate!r}')
        train_size = check_train_size(train_size, 2 * img_channel)
        make_intra = resolve_block('intra', intra_block, intra_kwargs)
        make_cross = resolve_block('cross', cross_block, cross_kwargs)
        if drop_out_rate and 'drop_out_rate' not in (intra_kwargs or {}):
            if 'drop_out_rate' not in inspect.signature(make_intra.func).parameters:
                raise ArchOptionError('drop_out_rate', f'{intra_block} takes no drop_out_rate; leave it 0')
            make_intra = partial(make_intra, drop_out_rate=drop_out_rate)

        self.up_scale = up_scale
        self.channels_last = bool(channels_last)
        self.in_channels = 2 * img_channel  # left and right views
        self.train_size = train_size
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.body = nn.ModuleList(
            DropPath(drop_path_rate,
                     StereoBlock(make_intra(width), make_cross(width) if fusion_from <= i <= fusion_to else None))
            for i in range(num_blks))
        self.up = nn.Sequential(nn.Conv2d(width, img_channel * up_scale ** 2, 3, padding=1),
                                nn.PixelShuffle(up_scale))
        # every block works at the input resolution, so one window size serves all pools
        train_hw = train_size[-2:]
        convert_global_pools(self.body, tlsc_kernel_size(train_hw), fast_imp=fast_imp,
                             max_reduction=fast_max_reduction(train_hw))
        if self.channels_last:
            # convolution weights in the layout their gradients come back in, so that DDP's gradient buckets match
            # them (no "grad strides do not match bucket view strides" copy); values and names are unchanged
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.to(memory_format=torch.channels_last)

    def forward(self, inp):
        return stereo_forward(self, inp, self.body)


def stereo_forward(net, inp, layers):
    """The NAFSSR skeleton's forward pass (NAFSSR, SCGLANet): ``net.intro`` on each view of ``inp`` (N, 6, h, w),
    the stereo ``layers`` ((x_l, x_r) -> (x_l, x_r)) in order, ``net.up`` on each view, plus the bilinear
    up-sampled input; (N, 6, h * up_scale, w * up_scale)."""
    if inp.dim() != 4 or inp.shape[1] != 6:
        raise ValueError(f'{type(net).__name__} expects (N, 6, h, w) = left and right views on channels, '
                         f'got {tuple(inp.shape)}')
    inp_hr = F.interpolate(inp, scale_factor=net.up_scale, mode='bilinear', align_corners=False)
    views = inp.chunk(2, dim=1)
    if net.channels_last:
        views = tuple(v.contiguous(memory_format=torch.channels_last) for v in views)
    feats = tuple(net.intro(view) for view in views)
    for layer in layers:
        feats = layer(*feats)
    out = torch.cat([net.up(f) for f in feats], dim=1) + inp_hr
    return out.contiguous()
